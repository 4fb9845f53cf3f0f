"""Modbus register codec: every type × byte/word order against struct-packed bytes."""

from __future__ import annotations

import math
import struct

import pytest

from ironbridge.codec.modbus import (
    ByteOrder,
    RegisterSpec,
    RegisterType,
    Table,
    decode,
    decode_raw,
    encode,
    parse_register_map,
    parse_register_spec,
    plan_reads,
)
from ironbridge.model import InvalidInput

# (dtype, big-endian struct format, sample values)
CASES = [
    (RegisterType.INT16, ">h", [-32768, -2, 0, 1234, 32767]),
    (RegisterType.UINT16, ">H", [0, 1, 0xABCD, 65535]),
    (RegisterType.INT32, ">i", [-(2**31), -123456789, 0, 0x12345678, 2**31 - 1]),
    (RegisterType.UINT32, ">I", [0, 0x12345678, 0xDEADBEEF, 2**32 - 1]),
    (RegisterType.FLOAT32, ">f", [0.0, -1.5, 3.140625, 1.0e20, -2.5e-10]),
    (RegisterType.INT64, ">q", [-(2**63), -1, 0x0102030405060708]),
    (RegisterType.UINT64, ">Q", [0, 0x0102030405060708, 2**64 - 1]),
    (RegisterType.FLOAT64, ">d", [0.0, -1234.5678, 6.02214076e23]),
]
ORDERS = [(b, w) for b in ByteOrder for w in ByteOrder]


def hand_pack(fmt: str, value: float, byte_order: ByteOrder, word_order: ByteOrder) -> list[int]:
    """Registers a device with this layout would hold, built from struct bytes by hand."""
    raw = struct.pack(fmt, value)  # canonical big-endian: A B C D ...
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]  # [AB, CD, ...]
    if word_order is ByteOrder.LITTLE:
        words.reverse()  # CDAB: least significant register first
    if byte_order is ByteOrder.LITTLE:
        words = [w[::-1] for w in words]  # BA DC: bytes swapped within each register
    return [int.from_bytes(w, "big") for w in words]


def test_known_layouts_of_float32_one() -> None:
    # 1.0f = 0x3F800000: ABCD, CDAB, BADC, DCBA as named in device manuals.
    expected = {
        (ByteOrder.BIG, ByteOrder.BIG): [0x3F80, 0x0000],
        (ByteOrder.BIG, ByteOrder.LITTLE): [0x0000, 0x3F80],
        (ByteOrder.LITTLE, ByteOrder.BIG): [0x803F, 0x0000],
        (ByteOrder.LITTLE, ByteOrder.LITTLE): [0x0000, 0x803F],
    }
    for (b, w), regs in expected.items():
        spec = RegisterSpec(measurement="x", address=0, dtype="float32", byte_order=b, word_order=w)
        assert decode(regs, spec) == 1.0
        assert encode(1.0, spec) == regs


@pytest.mark.parametrize(("byte_order", "word_order"), ORDERS)
@pytest.mark.parametrize(("dtype", "fmt", "values"), CASES)
def test_decode_every_type_and_order(
    dtype: RegisterType,
    fmt: str,
    values: list[float],
    byte_order: ByteOrder,
    word_order: ByteOrder,
) -> None:
    spec = RegisterSpec(
        measurement="v", address=100, dtype=dtype, byte_order=byte_order, word_order=word_order
    )
    for value in values:
        regs = hand_pack(fmt, value, byte_order, word_order)
        assert len(regs) == spec.count
        expected = struct.unpack(fmt, struct.pack(fmt, value))[0]
        assert decode_raw(regs, spec) == expected
        assert decode(regs, spec) == float(expected)
        assert encode(expected, spec) == regs


def test_int16_reads_negative_from_raw_register() -> None:
    spec = RegisterSpec(measurement="t", address=0, dtype="int16")
    assert decode([0xFFFE], spec) == -2.0
    assert decode([0xFFFE], RegisterSpec(measurement="t", address=0)) == 65534.0


def test_scale_and_offset_round_trip() -> None:
    spec = RegisterSpec(measurement="oil_temp", address=10, dtype="int16", scale=0.1, offset=-40.0)
    # raw 652 -> 652 * 0.1 - 40 = 25.2
    assert decode([652], spec) == pytest.approx(25.2)
    assert encode(25.2, spec) == [652]
    assert encode(-43.0, spec) == [(-30) & 0xFFFF]  # raw -30
    with pytest.raises(InvalidInput) as err:
        encode(10_000.0, spec)  # raw 100400 does not fit int16
    assert err.value.field == "value"


def test_float32_round_trip_with_scale() -> None:
    spec = RegisterSpec(
        measurement="p", address=0, dtype="float32", word_order="little", scale=2.0, offset=1.0
    )
    regs = encode(7.5, spec)
    assert decode(regs, spec) == 7.5
    assert math.isnan(decode(encode(float("nan"), spec), spec))


def test_coils_and_discrete_inputs() -> None:
    coil = RegisterSpec(measurement="running", table="coil", address=5, dtype="bool")
    assert decode([1], coil) == 1.0
    assert decode([True], coil) == 1.0
    assert decode([0], coil) == 0.0
    assert encode(1, coil) == [1]
    with pytest.raises(InvalidInput):
        decode([2], coil)
    with pytest.raises(InvalidInput) as err:
        RegisterSpec(measurement="running", table="discrete", address=5, dtype="uint16")
    assert err.value.field == "dtype"
    with pytest.raises(InvalidInput):
        RegisterSpec(measurement="running", table="holding", address=5, dtype="bool")


def test_decode_rejects_bad_registers() -> None:
    spec = RegisterSpec(measurement="v", address=0, dtype="uint32")
    with pytest.raises(InvalidInput) as err:
        decode([1], spec)
    assert err.value.field == "registers"
    with pytest.raises(InvalidInput) as err:
        decode([1, 70000], spec)
    assert err.value.field.startswith("registers[")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"measurement": "v", "address": 70000}, "registers[0].address"),
        ({"measurement": "v", "address": 65535, "dtype": "float32"}, "registers[0].address"),
        ({"measurement": "v", "address": 1, "dtype": "float16"}, "registers[0].dtype"),
        ({"measurement": "v", "address": 1, "word_order": "middle"}, "registers[0].word_order"),
        ({"measurement": "v", "address": 1, "scale": 0}, "registers[0].scale"),
        ({"measurement": "v", "address": 1, "offset": "x"}, "registers[0].offset"),
        ({"measurement": "Bad Name", "address": 1}, "registers[0].measurement"),
        ({"measurement": "v"}, "registers[0].address"),
        ({"measurement": "v", "address": 1, "colour": 1}, "registers[0].colour"),
        ({"measurement": "v", "address": 1, "unit_id": 300}, "registers[0].unit_id"),
    ],
)
def test_validation_names_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_register_map([data])
    assert err.value.field == field


def test_parse_register_map_rejects_duplicates() -> None:
    with pytest.raises(InvalidInput) as err:
        parse_register_map([{"measurement": "v", "address": 1}, {"measurement": "v", "address": 2}])
    assert err.value.field == "registers[1].measurement"
    spec = parse_register_spec({"measurement": "v", "address": 3, "table": "input"})
    assert spec.table is Table.INPUT


def test_plan_reads_coalesces_adjacent_addresses() -> None:
    specs = [
        RegisterSpec(measurement="a", address=0, dtype="uint16"),
        RegisterSpec(measurement="b", address=1, dtype="float32"),  # 1-2
        RegisterSpec(measurement="c", address=3, dtype="int32"),  # 3-4
        RegisterSpec(measurement="d", address=10, dtype="uint16"),  # gap of 5
        RegisterSpec(measurement="e", address=0, table="input", dtype="uint16"),
        RegisterSpec(measurement="f", address=1, table="coil", dtype="bool"),
        RegisterSpec(measurement="g", address=2, table="coil", dtype="bool"),
        RegisterSpec(measurement="h", address=0, unit_id=2),
    ]
    blocks = plan_reads(specs)
    summary = [
        (b.unit_id, b.table.value, b.start, b.count, [s.measurement for s in b.specs])
        for b in blocks
    ]
    assert summary == [
        (1, "coil", 1, 2, ["f", "g"]),
        (1, "holding", 0, 5, ["a", "b", "c"]),
        (1, "holding", 10, 1, ["d"]),
        (1, "input", 0, 1, ["e"]),
        (2, "holding", 0, 1, ["h"]),
    ]
    # Allowing a gap of 5 unused registers merges the two holding reads.
    merged = [b for b in plan_reads(specs, max_gap=5) if b.table is Table.HOLDING]
    assert [(b.start, b.count) for b in merged if b.unit_id == 1] == [(0, 11)]


def test_plan_reads_respects_size_limits_and_decodes_blocks() -> None:
    specs = [RegisterSpec(measurement=f"r{i}", address=2 * i, dtype="float32") for i in range(100)]
    blocks = plan_reads(specs)
    assert [(b.start, b.count) for b in blocks] == [(0, 124), (124, 76)]  # 62 + 38 floats
    assert all(b.count <= 125 for b in blocks)
    coils = [
        RegisterSpec(measurement=f"c{i}", table="coil", address=i, dtype="bool")
        for i in range(4500)
    ]
    assert [(b.start, b.count) for b in plan_reads(coils)] == [(0, 2000), (2000, 2000), (4000, 500)]
    # Decode a block from one simulated read.
    registers: list[int] = []
    for i in range(62):
        registers += encode(i * 0.5, specs[i])
    values = blocks[0].decode(registers)
    assert values["r10"] == 5.0
    assert len(values) == 62
    with pytest.raises(InvalidInput):
        blocks[0].decode(registers[:10])
    with pytest.raises(InvalidInput) as err:
        plan_reads(specs, max_registers=200)
    assert err.value.field == "max_registers"
