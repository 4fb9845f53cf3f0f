"""Validation of telemetry against asset types: points out, or the field and reason."""

import numpy as np
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
