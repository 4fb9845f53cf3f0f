"""Validation of telemetry against asset types: points out, or the field and reason."""

import numpy as np
import orjson
import pytest

from ironbridge.codec import decode_telemetry
from ironbridge.ingest import to_points
from ironbridge.model import InvalidInput, parse_asset_type
from ironbridge.store import DeviceRoute

TRUCK = parse_asset_type(
    {
        "name": "truck",
        "measurements": [
            {"name": "rpm", "unit": "rpm", "min": 0, "max": 4000},
            {"name": "gear", "dtype": "int", "min": -2, "max": 16},
            {"name": "ignition", "dtype": "bool"},
        ],
    }
)
ROUTE = DeviceRoute(
    device_id="dev-1",
    tenant_id="t",
    revoked=False,
    asset_ids=("truck-1", "truck-2"),
    types={"truck-1": TRUCK, "truck-2": TRUCK},
    series={
        "truck-1": {"rpm": 1, "gear": 2, "ignition": 3},
        "truck-2": {"rpm": 11, "gear": 12, "ignition": 13},
    },
)
NOW_US = 1_700_000_000_000_000
RECEIVED_US = NOW_US - 5


def points(payload: bytes):  # type: ignore[no-untyped-def]
    return to_points(decode_telemetry(payload), ROUTE, RECEIVED_US, NOW_US)


def test_single_sample_maps_to_series_of_default_asset() -> None:
    batch = points(b'{"ts": 1700000000000, "values": {"rpm": 1500, "gear": 3, "ignition": true}}')
    assert batch.series.tolist() == [1, 2, 3]
    assert batch.ts.tolist() == [1_700_000_000_000_000] * 3
    assert batch.value.tolist() == [1500.0, 3.0, 1.0]


def test_asset_selector_targets_another_bound_asset() -> None:
    batch = points(b'{"asset": "truck-2", "ts": 1700000000000, "values": {"rpm": 10}}')
    assert batch.series.tolist() == [11]


def test_missing_ts_uses_receive_time() -> None:
    batch = points(b'{"rpm": 900}')
    assert batch.ts.tolist() == [RECEIVED_US]


def test_columnar_batch_with_gaps_skips_nulls() -> None:
    batch = points(b'{"ts": [1700000000000, 1700000001000], "values": {"rpm": [1, null]}}')
    assert batch.series.tolist() == [1]
    assert batch.ts.tolist() == [1_700_000_000_000_000]
    assert batch.value.dtype == np.float64


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (b'{"ts": 1700000000000, "values": {"speed": 1}}', "values.speed", "unknown measurement"),
        (b'{"ts": 1700000000000, "values": {"rpm": "fast"}}', "values.rpm", "expected float"),
        (b'{"ts": 1700000000000, "values": {"rpm": true}}', "values.rpm", "boolean"),
        (b'{"ts": 1700000000000, "values": {"rpm": 5000}}', "values.rpm", "above the valid range"),
        (b'{"ts": 1700000000000, "values": {"rpm": -1}}', "values.rpm", "below the valid range"),
        (b'{"ts": 1700000000000, "values": {"gear": 2.5}}', "values.gear", "integer"),
        (b'{"ts": 1700000000000, "values": {"ignition": 2}}', "values.ignition", "boolean"),
        (b'{"ts": 1, "values": {"rpm": 1}}', "ts", "before 2000"),
        (b'{"ts": 1800000000000, "values": {"rpm": 1}}', "ts", "in the future"),
        (b'{"asset": "truck-9", "ts": 1700000000000, "values": {"rpm": 1}}', "asset", "not bound"),
        (
            b'{"ts": [1700000000000, 1700000001000], "values": {"rpm": [1, 9999]}}',
            "values.rpm[1]",
            "above",
        ),
        (
            b'[{"ts": 1700000000000, "values": {"rpm": 1}}, '
            b'{"ts": 1700000000000, "values": {"rpm": []}}]',
            "[1].values.rpm",
            "expected float",
        ),
    ],
)
def test_every_rejection_names_field_and_reason(payload: bytes, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        points(payload)
    assert info.value.field == field
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("[1700000000000, 10000000000000000]", "more than 24 h in the future"),
        ("[1700000000000, 18446744073709551615]", "more than 24 h in the future"),
        ("[1700000000000, 100000000000000000000]", "more than 24 h in the future"),
        ("[1700000000000, -100000000000000000000]", "before 2000-01-01"),
        ("18446744073709551615", "more than 24 h in the future"),
    ],
)
def test_timestamps_beyond_int64_are_rejected_not_overflowed(ts: str, reason: str) -> None:
    # written by hand: orjson.dumps refuses integers beyond 64 bits, devices need not
    if ts.startswith("["):
        payload = f'{{"ts": {ts}, "values": {{"rpm": [1.0, 1.0]}}}}'.encode()
    else:
        payload = f'{{"ts": {ts}, "values": {{"rpm": 1.0}}}}'.encode()
    with pytest.raises(InvalidInput) as err:
        points(payload)
    assert reason in err.value.reason
    assert "ts" in err.value.field


def test_columnar_timestamps_fast_path_matches_checked_path() -> None:
    ts = [NOW_US // 1000 - 3000 + 10 * i for i in range(50)]
    values = {"rpm": [float(i) for i in range(50)]}
    got = points(orjson.dumps({"ts": ts, "values": values}))
    assert got.ts.tolist() == [t * 1000 for t in ts]
    # float timestamps take the per-element checked path: same result
    again = points(orjson.dumps({"ts": [float(t) for t in ts], "values": values}))
    assert again.ts.tolist() == got.ts.tolist()


WIDE = parse_asset_type(
    {
        "name": "pack",
        "measurements": [
            *({"name": f"cell_{i}", "unit": "V", "min": 0, "max": 5} for i in range(20)),
            {"name": "faults", "dtype": "int", "min": 0, "max": 99},
            {"name": "charging", "dtype": "bool"},
        ],
    }
)
WIDE_ROUTE = DeviceRoute(
    device_id="dev-2",
    tenant_id="t",
    revoked=False,
    asset_ids=("pack-1",),
    types={"pack-1": WIDE},
    series={"pack-1": {m.name: 100 + i for i, m in enumerate(WIDE.measurements)}},
)


def _wide(values: dict[str, object]):  # type: ignore[no-untyped-def]
    body = orjson.dumps({"ts": [1_700_000_000_000], "values": {k: [v] for k, v in values.items()}})
    return to_points(decode_telemetry(body), WIDE_ROUTE, RECEIVED_US, NOW_US)


def test_wide_row_is_checked_in_one_pass_with_the_same_result() -> None:
    row: dict[str, object] = {f"cell_{i}": 3.0 + i / 100 for i in range(20)}
    row |= {"faults": 2, "charging": 1}
    for _ in range(2):  # the second time from the cached plan
        batch = _wide(row)
        assert batch.series.tolist() == list(range(100, 122))
        assert batch.value.tolist() == [3.0 + i / 100 for i in range(20)] + [2.0, 1.0]
        assert batch.ts.tolist() == [1_700_000_000_000_000] * 22


@pytest.mark.parametrize(
    ("bad", "field", "reason"),
    [
        ({"cell_7": 5.5}, "values.cell_7", "above the valid range"),
        ({"faults": 2.5}, "values.faults", "expected an integer"),
        ({"charging": 2}, "values.charging", "expected a boolean"),
        ({"cell_3": "x"}, "values.cell_3", "expected float"),
        ({"cell_99": 1.0}, "values.cell_99", "unknown measurement"),
    ],
)
def test_wide_row_errors_name_the_field(bad: dict[str, object], field: str, reason: str) -> None:
    row: dict[str, object] = {f"cell_{i}": 3.0 for i in range(20)} | bad
    with pytest.raises(InvalidInput) as err:
        _wide(row)
    assert err.value.field == field
    assert reason in err.value.reason
