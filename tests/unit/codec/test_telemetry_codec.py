"""The telemetry JSON codec: every accepted shape and every rejection names its field."""

import pytest

from ironbridge.codec import decode_telemetry, encode_columnar, encode_telemetry
from ironbridge.model import InvalidInput


def test_single_sample_with_ts() -> None:
    [block] = decode_telemetry(b'{"ts": 1700000000000, "values": {"rpm": 1500, "t": 88.5}}')
    assert block.asset is None
    assert block.ts_ms == [1700000000000]
    assert block.values == {"rpm": [1500], "t": [88.5]}
    assert block.where == "values"


def test_bare_thingsboard_form_is_stamped_on_receipt() -> None:
    [block] = decode_telemetry(b'{"rpm": 1500, "asset": "engine-1"}')
    assert block.ts_ms == [None]
    assert block.values == {"rpm": [1500]}
    assert block.asset == "engine-1"


def test_list_of_samples_keeps_order_and_paths() -> None:
    blocks = decode_telemetry(
        b'[{"ts": 1, "values": {"a": 1}}, {"ts": 2, "values": {"a": 2}, "asset": "x"}]'
    )
    assert [b.ts_ms for b in blocks] == [[1], [2]]
    assert [b.asset for b in blocks] == [None, "x"]
    assert blocks[1].where == "[1].values"


def test_columnar_batch() -> None:
    payload = encode_columnar([1, 2, 3], {"a": [1.0, 2.0, 3.0], "b": [4.0, 5.0, 6.0]})
    [block] = decode_telemetry(payload)
    assert block.ts_ms == [1, 2, 3]
    assert block.values["b"] == [4.0, 5.0, 6.0]


def test_encode_round_trip() -> None:
    [block] = decode_telemetry(encode_telemetry(5, {"a": 1.5, "on": True}))
    assert block.ts_ms == [5]
    assert block.values == {"a": [1.5], "on": [True]}


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (b"not json", "", "not valid JSON"),
        (b"42", "", "must be a JSON object"),
        (b"{}", "", "no values"),
        (b"[]", "", "empty list"),
        (b"[1]", "[0]", "must be an object"),
        (b'{"ts": "yesterday", "values": {"a": 1}}', "ts", "milliseconds"),
        (b'{"ts": 1, "values": [1, 2]}', "values", "must be an object"),
        (b'{"ts": 1}', "values", "is required"),
        (b'{"ts": 1, "values": {"a": 1}, "colour": "red"}', "colour", "unexpected field"),
        (b'{"ts": [1, 2], "values": {"a": [1]}}', "values.a", "1 values for 2 timestamps"),
        (b'{"ts": [1, 2], "values": {"a": 3}}', "values.a", "must be a list"),
        (b'{"ts": [1, null], "values": {"a": [1, 2]}}', "ts", "timestamp for every row"),
        (b'[{"ts": 1, "values": {"a": 1}}, {"ts": true, "values": {}}]', "[1].ts", "milliseconds"),
        (b'{"asset": 5, "ts": 1, "values": {"a": 1}}', "asset", "asset id"),
    ],
)
def test_rejections_name_field_and_reason(payload: bytes, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        decode_telemetry(payload)
    assert info.value.field == field
    assert reason in info.value.reason
