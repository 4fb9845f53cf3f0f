"""The vectorised DOUBLE-column encoder is byte-identical to the reference encoder."""

from __future__ import annotations

import numpy as np
import pytest

from ironbridge.codec.sparkplug import DataType, Metric, Payload, decode_payload, encode_payload
from ironbridge.codec.sparkplug.columnar import encode_double_columns


@pytest.mark.parametrize("historical", [False, True])
def test_columns_encode_like_the_reference(historical: bool) -> None:
    rng = np.random.default_rng(7)
    n = 500
    aliases = rng.integers(1, 40_000, n)  # 1- to 3-byte varints
    ts = 1_700_000_000_000 + rng.integers(0, 10**9, n)
    ts[:3] = [0, 127, 2**35]  # varint lengths 1, 1 and 6
    values = rng.normal(size=n) * 1e6
    values[5] = np.nan  # a null value
    got = encode_double_columns(
        aliases, ts, values, seq=200, timestamp=1_700_000_000_123, historical=historical
    )
    metrics = tuple(
        Metric(
            alias=int(a),
            timestamp=int(t),
            datatype=DataType.DOUBLE,
            value=None if np.isnan(v) else float(v),
            is_null=bool(np.isnan(v)),
            is_historical=historical,
        )
        for a, t, v in zip(aliases, ts, values, strict=True)
    )
    want = encode_payload(Payload(timestamp=1_700_000_000_123, seq=200, metrics=metrics))
    assert got == want
    back = decode_payload(got)
    assert back.seq == 200
    assert back.metrics[5].is_null
    assert [m.alias for m in back.metrics] == [int(a) for a in aliases]


def test_empty_columns() -> None:
    empty = np.array([], dtype=np.int64)
    got = encode_double_columns(empty, empty, empty.astype(float), seq=0, timestamp=5)
    assert got == encode_payload(Payload(timestamp=5, seq=0))
