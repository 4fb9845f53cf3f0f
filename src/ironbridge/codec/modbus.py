"""Modbus register map: decode and encode typed values, and plan coalesced reads."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ironbridge.model import InvalidInput, check_name

#: Modbus application protocol v1.1b3 §6.3/6.4: at most 125 registers per read.
MAX_REGISTERS_PER_READ = 125
#: Modbus application protocol v1.1b3 §6.1/6.2: at most 2000 coils / discrete inputs per read.
MAX_BITS_PER_READ = 2000
_MAX_ADDRESS = 0xFFFF


class Table(StrEnum):
    """The four Modbus data tables."""

    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"

    @property
    def is_bit(self) -> bool:
        """Whether the table holds single bits (coils, discrete inputs)."""
        return self in (Table.COIL, Table.DISCRETE)


class RegisterType(StrEnum):
    """Value type stored in one or more consecutive 16-bit registers (or one bit)."""

    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT64 = "float64"


class ByteOrder(StrEnum):
    """Order of bytes within a register, or of registers within a value."""

    BIG = "big"
    LITTLE = "little"


# struct format (big-endian) and register count per type.
_FORMATS: dict[RegisterType, tuple[str, int]] = {
    RegisterType.INT16: (">h", 1),
    RegisterType.UINT16: (">H", 1),
    RegisterType.INT32: (">i", 2),
    RegisterType.UINT32: (">I", 2),
    RegisterType.FLOAT32: (">f", 2),
    RegisterType.INT64: (">q", 4),
    RegisterType.UINT64: (">Q", 4),
    RegisterType.FLOAT64: (">d", 4),
}
_INT_RANGES: dict[RegisterType, tuple[int, int]] = {
    RegisterType.INT16: (-(1 << 15), (1 << 15) - 1),
    RegisterType.UINT16: (0, (1 << 16) - 1),
    RegisterType.INT32: (-(1 << 31), (1 << 31) - 1),
    RegisterType.UINT32: (0, (1 << 32) - 1),
    RegisterType.INT64: (-(1 << 63), (1 << 63) - 1),
    RegisterType.UINT64: (0, (1 << 64) - 1),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterSpec:
    """Where one measurement lives in a device's Modbus map and how to read it.

    The engineering value is ``raw * scale + offset``. ``byte_order`` is the order of
    the two bytes inside each register (Modbus itself is big-endian); ``word_order`` is
    the order of registers inside a multi-register value (``big`` = most significant
    register first, "ABCD"; ``little`` = "CDAB").

    Attributes:
        measurement: lower snake case measurement name the value is stored under.
        table: holding, input, coil or discrete.
        address: zero-based protocol address of the first register or bit.
        dtype: register type; ``bool`` for coils and discrete inputs.
        byte_order: byte order within a register.
        word_order: register order within a value.
        scale: multiplier applied to the raw value.
        offset: added after scaling.
        unit_id: Modbus unit (slave) identifier, 0-247.
    """

    measurement: str
    table: Table = Table.HOLDING
    address: int
    dtype: RegisterType = RegisterType.UINT16
    byte_order: ByteOrder = ByteOrder.BIG
    word_order: ByteOrder = ByteOrder.BIG
    scale: float = 1.0
    offset: float = 0.0
    unit_id: int = 1

    def __post_init__(self) -> None:
        check_name(self.measurement, "measurement")
        for name, enum in (
            ("table", Table),
            ("dtype", RegisterType),
            ("byte_order", ByteOrder),
            ("word_order", ByteOrder),
        ):
            value = getattr(self, name)
            if not isinstance(value, enum):
                try:
                    object.__setattr__(self, name, enum(value))
                except ValueError:
                    choices = ", ".join(m.value for m in enum)
                    raise InvalidInput(name, f"must be one of {choices}, got {value!r}") from None
        if isinstance(self.address, bool) or not isinstance(self.address, int):
            raise InvalidInput("address", "must be an integer")
        if not 0 <= self.address <= _MAX_ADDRESS:
            raise InvalidInput("address", f"must be 0-65535, got {self.address}")
        if self.table.is_bit and self.dtype is not RegisterType.BOOL:
            raise InvalidInput("dtype", f"{self.table.value} entries hold one bit: use 'bool'")
        if not self.table.is_bit and self.dtype is RegisterType.BOOL:
            raise InvalidInput("dtype", f"'bool' needs a coil or discrete table, not {self.table}")
        if self.address + self.count - 1 > _MAX_ADDRESS:
            raise InvalidInput("address", f"{self.dtype.value} at {self.address} runs past 65535")
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInput(name, "must be a number")
            if not math.isfinite(value):
                raise InvalidInput(name, "must be finite")
        if self.scale == 0:
            raise InvalidInput("scale", "must not be zero")
        if isinstance(self.unit_id, bool) or not isinstance(self.unit_id, int):
            raise InvalidInput("unit_id", "must be an integer")
        if not 0 <= self.unit_id <= 247:
            raise InvalidInput("unit_id", f"must be 0-247, got {self.unit_id}")

    @property
    def count(self) -> int:
        """Number of registers (or bits) the value occupies."""
        if self.dtype is RegisterType.BOOL:
            return 1
        return _FORMATS[self.dtype][1]

    @property
    def end(self) -> int:
        """One past the last address the value occupies."""
        return self.address + self.count


_SPEC_FIELDS = frozenset(RegisterSpec.__dataclass_fields__)


def parse_register_spec(data: Mapping[str, Any], field: str = "") -> RegisterSpec:
    """Build a :class:`RegisterSpec` from a plain mapping (YAML/JSON).

    Args:
        data: keys named like the :class:`RegisterSpec` attributes.
        field: dotted prefix for error fields (``registers[3]``).

    Raises:
        InvalidInput: naming the offending field and why.
    """
    prefix = f"{field}." if field else ""
    if not isinstance(data, Mapping):
        raise InvalidInput(field, "must be a mapping")
    unknown = sorted(set(data) - _SPEC_FIELDS)
    if unknown:
        raise InvalidInput(f"{prefix}{unknown[0]}", "unknown field")
    for required in ("measurement", "address"):
        if required not in data:
            raise InvalidInput(f"{prefix}{required}", "is required")
    try:
        return RegisterSpec(**data)
    except InvalidInput as exc:
        raise InvalidInput(f"{prefix}{exc.field}", exc.reason) from None


def parse_register_map(items: Sequence[Mapping[str, Any]]) -> list[RegisterSpec]:
    """Parse a list of register entries; measurement names must be unique per unit.

    Raises:
        InvalidInput: with a field like ``registers[2].dtype``.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInput("registers", "must be a list")
    specs = [parse_register_spec(item, f"registers[{i}]") for i, item in enumerate(items)]
    seen: set[tuple[int, str]] = set()
    for i, spec in enumerate(specs):
        key = (spec.unit_id, spec.measurement)
        if key in seen:
            raise InvalidInput(f"registers[{i}].measurement", f"duplicate {spec.measurement!r}")
        seen.add(key)
    return specs


def _registers_to_bytes(registers: Sequence[int], spec: RegisterSpec) -> bytes:
    words = list(registers)
    if spec.word_order is ByteOrder.LITTLE:
        words.reverse()
    out = bytearray()
    for i, word in enumerate(words):
        if isinstance(word, bool) or not isinstance(word, int) or not 0 <= word <= 0xFFFF:
            raise InvalidInput(f"registers[{i}]", f"must be an integer 0-65535, got {word!r}")
        hi, lo = word >> 8, word & 0xFF
        out += bytes((lo, hi)) if spec.byte_order is ByteOrder.LITTLE else bytes((hi, lo))
    return bytes(out)


def _bytes_to_registers(data: bytes, spec: RegisterSpec) -> list[int]:
    words = []
    for i in range(0, len(data), 2):
        hi, lo = data[i], data[i + 1]
        words.append(lo << 8 | hi if spec.byte_order is ByteOrder.LITTLE else hi << 8 | lo)
    if spec.word_order is ByteOrder.LITTLE:
        words.reverse()
    return words


def decode_raw(registers: Sequence[int], spec: RegisterSpec) -> int | float:
    """Return the raw (unscaled) value held in ``registers`` for ``spec``.

    Raises:
        InvalidInput: wrong number of registers or a register out of 0-65535.
    """
    if len(registers) != spec.count:
        raise InvalidInput(
            "registers", f"{spec.dtype.value} needs {spec.count} values, got {len(registers)}"
        )
    if spec.dtype is RegisterType.BOOL:
        bit = registers[0]
        if bit not in (0, 1):  # bools compare equal to 0/1
            raise InvalidInput("registers[0]", f"a bit must be 0 or 1, got {bit!r}")
        return int(bit)
    fmt, _ = _FORMATS[spec.dtype]
    value: int | float = struct.unpack(fmt, _registers_to_bytes(registers, spec))[0]
    return value


def decode(registers: Sequence[int], spec: RegisterSpec) -> float:
    """Decode ``registers`` (or one bit) into the engineering value ``raw*scale+offset``.

    Args:
        registers: exactly ``spec.count`` register values 0-65535 (or one 0/1 bit),
            in the order the device returned them.
        spec: where and how the value is stored.

    Raises:
        InvalidInput: wrong number of registers or a register out of range.
    """
    return float(decode_raw(registers, spec)) * spec.scale + spec.offset


def encode(value: float, spec: RegisterSpec) -> list[int]:
    """Encode an engineering value into the registers a device would hold (simulators).

    Integer types round ``(value-offset)/scale`` to the nearest integer.

    Raises:
        InvalidInput: the value is not finite or does not fit the type.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput("value", "must be a number")
    # Integers pass through exactly when unscaled (64-bit counters exceed float precision).
    raw: int | float = (
        value
        if isinstance(value, int) and spec.scale == 1 and spec.offset == 0
        else (value - spec.offset) / spec.scale
    )
    if spec.dtype is RegisterType.BOOL:
        if raw not in (0, 1):
            raise InvalidInput("value", f"a bit must encode 0 or 1, got {raw!r}")
        return [int(raw)]
    fmt, _ = _FORMATS[spec.dtype]
    if spec.dtype in _INT_RANGES:
        if not math.isfinite(raw):
            raise InvalidInput("value", "must be finite for an integer type")
        lo, hi = _INT_RANGES[spec.dtype]
        raw_int = round(raw)
        if not lo <= raw_int <= hi:
            raise InvalidInput("value", f"raw {raw_int} does not fit {spec.dtype.value}")
        data = struct.pack(fmt, raw_int)
    else:
        try:
            data = struct.pack(fmt, raw)
        except OverflowError:
            raise InvalidInput("value", f"raw {raw!r} overflows {spec.dtype.value}") from None
    return _bytes_to_registers(data, spec)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadBlock:
    """One Modbus read request covering several register entries.

    Attributes:
        unit_id: Modbus unit (slave) identifier.
        table: the data table read (one function code).
        start: first address read.
        count: number of registers or bits read.
        specs: the entries inside the block, by address.
    """

    unit_id: int
    table: Table
    start: int
    count: int
    specs: tuple[RegisterSpec, ...]

    def decode(self, values: Sequence[int]) -> dict[str, float]:
        """Decode every entry of the block from the values one read returned.

        Raises:
            InvalidInput: ``values`` is not ``count`` long or holds a bad value.
        """
        if len(values) < self.count:
            raise InvalidInput("values", f"block needs {self.count} values, got {len(values)}")
        out: dict[str, float] = {}
        for spec in self.specs:
            lo = spec.address - self.start
            out[spec.measurement] = decode(values[lo : lo + spec.count], spec)
        return out


def plan_reads(
    specs: Sequence[RegisterSpec],
    *,
    max_registers: int = MAX_REGISTERS_PER_READ,
    max_bits: int = MAX_BITS_PER_READ,
    max_gap: int = 0,
) -> list[ReadBlock]:
    """Coalesce entries into as few reads as possible.

    Entries are grouped by unit and table, sorted by address and packed greedily: an
    entry joins the current block while the block stays within the size limit and the
    hole before the entry is at most ``max_gap`` addresses (reading a few unused
    registers is cheaper than another round trip, but some devices reject reads of
    unmapped addresses, hence the default 0). Greedy packing of sorted intervals is
    optimal here: every entry is no larger than the limit, so starting a block at the
    first entry that does not fit never wastes a read.

    Args:
        specs: the register map.
        max_registers: register limit per read (125 by the standard; some devices less).
        max_bits: coil/discrete limit per read (2000 by the standard).
        max_gap: largest run of unmapped addresses a read may span.

    Raises:
        InvalidInput: a limit out of range.
    """
    if not 4 <= max_registers <= MAX_REGISTERS_PER_READ:
        raise InvalidInput("max_registers", f"must be 4-{MAX_REGISTERS_PER_READ}")
    if not 1 <= max_bits <= MAX_BITS_PER_READ:
        raise InvalidInput("max_bits", f"must be 1-{MAX_BITS_PER_READ}")
    if max_gap < 0:
        raise InvalidInput("max_gap", "must be >= 0")
    groups: dict[tuple[int, Table], list[RegisterSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.unit_id, spec.table), []).append(spec)
    blocks: list[ReadBlock] = []
    for (unit_id, table), members in sorted(groups.items()):
        limit = max_bits if table.is_bit else max_registers
        members.sort(key=lambda s: (s.address, s.count))
        current: list[RegisterSpec] = []
        start = end = 0
        for spec in members:
            if current and spec.address - end <= max_gap and max(end, spec.end) - start <= limit:
                current.append(spec)
                end = max(end, spec.end)
                continue
            if current:
                blocks.append(
                    ReadBlock(
                        unit_id=unit_id,
                        table=table,
                        start=start,
                        count=end - start,
                        specs=tuple(current),
                    )
                )
            current, start, end = [spec], spec.address, spec.end
        if current:
            blocks.append(
                ReadBlock(
                    unit_id=unit_id,
                    table=table,
                    start=start,
                    count=end - start,
                    specs=tuple(current),
                )
            )
    return blocks


__all__ = [
    "MAX_BITS_PER_READ",
    "MAX_REGISTERS_PER_READ",
    "ByteOrder",
    "ReadBlock",
    "RegisterSpec",
    "RegisterType",
    "Table",
    "decode",
    "decode_raw",
    "encode",
    "parse_register_map",
    "parse_register_spec",
    "plan_reads",
]
