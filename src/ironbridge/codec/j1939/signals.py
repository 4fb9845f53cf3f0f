"""Scaled J1939 signals (SPNs) from the curated ``spn.csv`` table: decode and encode."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from ironbridge.codec.binary import CodecError, load_table

__all__ = ["Spn", "decode_pgn", "encode_pgn", "spn_table", "spns_for_pgn"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Spn:
    """One SPN definition.

    Attributes:
        start_byte: 1-based byte position; ``start_bit``: 0 = LSB of that byte.
        scale_num, scale_den: the resolution as an exact fraction (0.05 = 1/20).
        max_valid: largest raw value that is a measurement; above it the raw value means
            reserved, error or not available and decodes to None (J1939-71).
    """

    spn: int
    name: str
    pgn: int
    start_byte: int
    start_bit: int
    length: int
    scale_num: int
    scale_den: int
    offset: float
    unit: str
    measurement: str
    provenance: str

    @property
    def max_valid(self) -> int:
        """Largest valid raw value (0xFA, 0xFAFF, 0xFAFFFFFF ...; 1 for a 2-bit state)."""
        if self.length >= 8:
            rest = self.length - 8
            return (0xFA << rest) | ((1 << rest) - 1)
        return (1 << self.length) - 3

    @property
    def scale(self) -> float:
        """Resolution per bit."""
        return self.scale_num / self.scale_den

    def decode(self, data: bytes) -> float | None:
        """Scaled value, or None when not available/error or the frame is too short."""
        first = self.start_byte - 1
        nbytes = (self.start_bit + self.length + 7) // 8
        if first + nbytes > len(data):
            return None
        raw = int.from_bytes(data[first : first + nbytes], "little") >> self.start_bit
        raw &= (1 << self.length) - 1
        if raw > self.max_valid:
            return None
        return raw * self.scale_num / self.scale_den + self.offset

    def raw_for(self, value: float | None) -> int:
        """Raw bits for a value; None gives "not available" (all ones)."""
        if value is None:
            return (1 << self.length) - 1
        raw = round((value - self.offset) * self.scale_den / self.scale_num)
        if not 0 <= raw <= self.max_valid:
            raise CodecError(
                f"value {value} out of range for SPN {self.spn}", field=self.measurement
            )
        return raw


@cache
def spn_table() -> dict[int, Spn]:
    """SPN number -> definition, loaded once from ``spn.csv``."""
    table = {}
    for r in load_table("ironbridge.codec.j1939", "spn.csv"):
        scale = Fraction(r["scale"])
        spn = Spn(
            spn=int(r["spn"]),
            name=r["name"],
            pgn=int(r["pgn"]),
            start_byte=int(r["start_byte"]),
            start_bit=int(r["start_bit"]),
            length=int(r["length"]),
            scale_num=scale.numerator,
            scale_den=scale.denominator,
            offset=float(r["offset"]),
            unit=r["unit"],
            measurement=r["measurement"],
            provenance=r["provenance"],
        )
        table[spn.spn] = spn
    return table


@cache
def _by_pgn() -> dict[int, tuple[Spn, ...]]:
    grouped: dict[int, list[Spn]] = {}
    for spn in spn_table().values():
        grouped.setdefault(spn.pgn, []).append(spn)
    return {pgn: tuple(spns) for pgn, spns in grouped.items()}


def spns_for_pgn(pgn: int) -> tuple[Spn, ...]:
    """The known SPNs carried by a PGN (empty if none)."""
    return _by_pgn().get(pgn, ())


def decode_pgn(pgn: int, data: bytes) -> dict[str, float | None]:
    """Decode every known SPN of a PGN into ``{measurement: value}`` (None = not available)."""
    return {spn.measurement: spn.decode(data) for spn in _by_pgn().get(pgn, ())}


def encode_pgn(pgn: int, values: dict[str, float | None], *, size: int = 8) -> bytes:
    """Build a payload: listed measurements set, everything else 0xFF (not available)."""
    spns = _by_pgn().get(pgn, ())
    known = {spn.measurement for spn in spns}
    unknown = set(values) - known
    if unknown:
        raise CodecError(f"PGN {pgn} has no measurement {sorted(unknown)}", field="values")
    word = int.from_bytes(b"\xff" * size, "little")
    for spn in spns:
        if spn.measurement not in values:
            continue
        shift = (spn.start_byte - 1) * 8 + spn.start_bit
        mask = ((1 << spn.length) - 1) << shift
        word = (word & ~mask) | (spn.raw_for(values[spn.measurement]) << shift)
    return word.to_bytes(size, "little")
