"""Sparkplug B payload codec: hand-computed bytes, the protobuf runtime, round trips."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sparkplug_reference_proto import payload_class

from ironbridge.codec.binary import CodecError
from ironbridge.codec.sparkplug import (
    DataType,
    Metric,
    Payload,
    coerce_value,
    decode_payload,
    encode_payload,
)

PB = payload_class()


def test_hand_computed_bytes() -> None:
    payload = Payload(
        timestamp=1,
        seq=255,
        metrics=(Metric(name="a", alias=2, datatype=DataType.INT8, value=-1),),
    )
    # metric: 0a 01 'a' | 10 02 | 20 01 | 50 ff ff ff ff 0f  (-1 as uint32 two's complement)
    metric = bytes([0x0A, 1, ord("a"), 0x10, 2, 0x20, 1, 0x50, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
    expected = bytes([0x08, 1, 0x12, len(metric)]) + metric + bytes([0x18, 0xFF, 0x01])
    assert encode_payload(payload) == expected
    assert decode_payload(expected) == payload


def test_float_and_double_fixed_widths() -> None:
    enc = encode_payload(
        Payload(
            metrics=(
                Metric(alias=1, datatype=DataType.FLOAT, value=1.5),
                Metric(alias=2, datatype=DataType.DOUBLE, value=2.25),
            )
        )
    )
    assert struct.pack("<f", 1.5) in enc
    assert b"\x65" + struct.pack("<f", 1.5) in enc
    assert b"\x69" + struct.pack("<d", 2.25) in enc


def test_matches_protobuf_runtime_both_ways() -> None:
    ours = Payload(
        timestamp=1_700_000_000_000,
        seq=7,
        uuid="u-1",
        body=b"\x00\x01",
        metrics=(
            Metric(name="rpm", alias=1, timestamp=5, datatype=DataType.UINT16, value=1500),
            Metric(alias=2, datatype=DataType.INT64, value=-(2**40)),
            Metric(alias=3, datatype=DataType.DOUBLE, value=-0.5, is_historical=True),
            Metric(alias=4, datatype=DataType.BOOLEAN, value=True, is_transient=True),
            Metric(alias=5, datatype=DataType.STRING, value="héllo"),
            Metric(alias=6, datatype=DataType.BYTES, value=b"\xff"),
            Metric(alias=7, datatype=DataType.INT32, is_null=True),
        ),
    )
    ref = PB()
    ref.ParseFromString(encode_payload(ours))
    assert ref.seq == 7
    assert ref.uuid == "u-1"
    assert ref.body == b"\x00\x01"
    assert ref.metrics[0].name == "rpm"
    assert ref.metrics[0].int_value == 1500
    assert ref.metrics[1].long_value == 2**64 - 2**40
    assert ref.metrics[2].double_value == -0.5
    assert ref.metrics[2].is_historical
    assert ref.metrics[3].boolean_value
    assert ref.metrics[4].string_value == "héllo"
    assert ref.metrics[5].bytes_value == b"\xff"
    assert ref.metrics[6].is_null
    assert ref.metrics[6].WhichOneof("value") is None
    # the runtime's serialisation decodes to the same value, and is byte-identical
    assert decode_payload(ref.SerializeToString()) == ours
    assert ref.SerializeToString() == encode_payload(ours)


def test_unknown_fields_skipped() -> None:
    ref = PB()
    ref.seq = 3
    data = ref.SerializeToString() + bytes([0x30, 0x05]) + bytes([0x3A, 2, 1, 2])  # fields 6, 7
    assert decode_payload(data) == Payload(seq=3)


@pytest.mark.parametrize(
    "data",
    [b"\x08", b"\x12\x05ab", b"\x08" + b"\xff" * 11, b"\x0b", b"\x00\x01", b"\x12\x02\x65\x00"],
)
def test_malformed_is_codec_error(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_payload(data)


def test_out_of_range_refused() -> None:
    with pytest.raises(CodecError):
        encode_payload(Payload(metrics=(Metric(name="x", datatype=DataType.INT8, value=200),)))
    with pytest.raises(CodecError):
        encode_payload(Payload(metrics=(Metric(name="x", datatype=DataType.UINT8, value=-1),)))


def test_coerce_signed() -> None:
    assert coerce_value(DataType.INT16, 0xFFFF) == -1
    assert coerce_value(DataType.INT32, 0x7FFFFFFF) == 2**31 - 1
    assert coerce_value(DataType.UINT32, 0xFFFFFFFF) == 2**32 - 1
    assert coerce_value(None, 5) == 5


_INT_TYPES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT8: (0, 2**8 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.UINT64: (0, 2**64 - 1),
    DataType.DATETIME: (0, 2**63 - 1),
}


@st.composite
def metrics(draw: st.DrawFn) -> Metric:
    kind = draw(st.sampled_from(["int", "float", "double", "bool", "str", "bytes", "null"]))
    common = {
        "name": draw(st.none() | st.text(max_size=8)),
        "alias": draw(st.none() | st.integers(0, 2**64 - 1)),
        "timestamp": draw(st.none() | st.integers(0, 2**64 - 1)),
        "is_historical": draw(st.booleans()),
        "is_transient": draw(st.booleans()),
    }
    if kind == "int":
        dt = draw(st.sampled_from(list(_INT_TYPES)))
        lo, hi = _INT_TYPES[dt]
        return Metric(datatype=dt, value=draw(st.integers(lo, hi)), **common)
    if kind == "float":
        v = draw(st.floats(width=32, allow_nan=False))
        return Metric(datatype=DataType.FLOAT, value=v, **common)
    if kind == "double":
        return Metric(datatype=DataType.DOUBLE, value=draw(st.floats(allow_nan=False)), **common)
    if kind == "bool":
        return Metric(datatype=DataType.BOOLEAN, value=draw(st.booleans()), **common)
    if kind == "str":
        return Metric(datatype=DataType.STRING, value=draw(st.text()), **common)
    if kind == "bytes":
        return Metric(datatype=DataType.BYTES, value=draw(st.binary()), **common)
    return Metric(datatype=DataType.INT32, is_null=True, **common)


@given(
    ts=st.none() | st.integers(0, 2**64 - 1),
    seq=st.none() | st.integers(0, 255),
    ms=st.lists(metrics(), max_size=6),
    uuid=st.none() | st.text(max_size=5),
    body=st.none() | st.binary(max_size=5),
)
def test_round_trip_and_runtime_agree(
    ts: int | None, seq: int | None, ms: list[Metric], uuid: str | None, body: bytes | None
) -> None:
    payload = Payload(timestamp=ts, seq=seq, metrics=tuple(ms), uuid=uuid, body=body)
    data = encode_payload(payload)
    back = decode_payload(data)
    assert back == payload or any(  # -0.0 == 0.0 but NaN excluded, so equality holds
        isinstance(m.value, float) and math.isnan(m.value) for m in back.metrics
    )
    ref = PB()
    ref.ParseFromString(data)
    assert ref.SerializeToString() == data
