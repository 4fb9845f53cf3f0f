"""J1939-73 DM1 (active DTCs, PGN 65226) and DM2 payloads: lamps and SPN/FMI/OC codes."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ironbridge.codec.binary import CodecError
from ironbridge.model import Event

__all__ = [
    "DM1_PGN",
    "DM2_PGN",
    "DTC_EVENT_KIND",
    "Dm1",
    "Dtc",
    "Lamps",
    "decode_dm1",
    "dm1_events",
    "encode_dm1",
]

DM1_PGN = 65226
DM2_PGN = 65227
DTC_EVENT_KIND = "j1939_dtc"
_LAMP_NAMES = ("mil", "red_stop", "amber_warning", "protect")


@dataclass(frozen=True, slots=True, kw_only=True)
class Lamps:
    """Lamp states: True on, False off, None reserved/not available; flash 0 slow, 1 fast."""

    mil: bool | None
    red_stop: bool | None
    amber_warning: bool | None
    protect: bool | None
    raw_status: int = 0xFF
    raw_flash: int = 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtc:
    """One diagnostic trouble code.

    Attributes:
        oc: occurrence count, None when 127 (not available).
        cm: SPN conversion method bit; True marks the deprecated J1939-73 layouts (the SPN
            is still decoded with the current method; reinterpret if the ECU is that old).
    """

    spn: int
    fmi: int
    oc: int | None
    cm: bool = False

    @property
    def code(self) -> str:
        """``SPN110-FMI0`` style code."""
        return f"SPN{self.spn}-FMI{self.fmi}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Dm1:
    """A decoded DM1/DM2 message."""

    lamps: Lamps
    dtcs: tuple[Dtc, ...]


def _lamp(value: int, shift: int) -> bool | None:
    state = (value >> shift) & 0x3
    return None if state >= 2 else state == 1


def decode_dm1(data: bytes) -> Dm1:
    """Decode a DM1 payload (single frame or reassembled); placeholder DTCs are skipped.

    Raises:
        CodecError: shorter than 2 bytes, or a trailing partial DTC of non-padding bytes.
    """
    if len(data) < 2:
        raise CodecError(
            f"DM1 needs at least 2 bytes, got {len(data)}", field="dm1", offset=len(data)
        )
    status, flash = data[0], data[1]
    lamps = Lamps(
        mil=_lamp(status, 6),
        red_stop=_lamp(status, 4),
        amber_warning=_lamp(status, 2),
        protect=_lamp(status, 0),
        raw_status=status,
        raw_flash=flash,
    )
    body = data[2:]
    usable = len(body) - len(body) % 4
    tail = body[usable:]
    if tail.strip(b"\xff"):
        raise CodecError(
            f"{len(tail)} trailing bytes do not form a DTC", field="dm1", offset=2 + usable
        )
    dtcs = []
    for (word,) in struct.iter_unpack("<I", body[:usable]):
        if word in (0, 0xFFFFFFFF):
            continue
        spn = (word & 0xFFFF) | ((word >> 5) & 0x70000)
        fmi = (word >> 16) & 0x1F
        if spn == 0 and fmi == 0:
            continue
        oc = (word >> 24) & 0x7F
        dtcs.append(Dtc(spn=spn, fmi=fmi, oc=None if oc == 127 else oc, cm=bool(word >> 31)))
    return Dm1(lamps=lamps, dtcs=tuple(dtcs))


def _lamp_bits(value: bool | None) -> int:
    return 0x3 if value is None else int(value)


def encode_dm1(dm1: Dm1) -> bytes:
    """Encode a DM1 payload; no DTC gives the 8-byte "no active fault" frame."""
    lamps = dm1.lamps
    status = (
        _lamp_bits(lamps.mil) << 6
        | _lamp_bits(lamps.red_stop) << 4
        | _lamp_bits(lamps.amber_warning) << 2
        | _lamp_bits(lamps.protect)
    )
    parts = [bytes((status, lamps.raw_flash & 0xFF))]
    if not dm1.dtcs:
        parts.append(b"\x00\x00\x00\x00\xff\xff")
    for dtc in dm1.dtcs:
        if not (0 <= dtc.spn < 1 << 19 and 0 <= dtc.fmi < 32):
            raise CodecError(f"SPN {dtc.spn} / FMI {dtc.fmi} out of range", field="dtc")
        oc = 127 if dtc.oc is None else dtc.oc
        if not 0 <= oc <= 127:
            raise CodecError(f"occurrence count {oc} out of range", field="dtc.oc")
        word = (dtc.spn & 0xFFFF) | ((dtc.spn & 0x70000) << 5) | dtc.fmi << 16 | oc << 24
        parts.append(struct.pack("<I", word | (1 << 31 if dtc.cm else 0)))
    out = b"".join(parts)
    return out if len(out) >= 8 else out.ljust(8, b"\xff")


def dm1_events(dm1: Dm1, *, asset_id: str, ts_us: int, sa: int) -> list[Event]:
    """One ``j1939_dtc`` event per active DTC, code ``SPN<spn>-FMI<fmi>``, with the lamps."""
    lamps = {name: getattr(dm1.lamps, name) for name in _LAMP_NAMES}
    return [
        Event(
            asset_id=asset_id,
            ts_us=ts_us,
            kind=DTC_EVENT_KIND,
            code=dtc.code,
            payload={"spn": dtc.spn, "fmi": dtc.fmi, "oc": dtc.oc, "sa": sa, "lamps": lamps},
        )
        for dtc in dm1.dtcs
    ]
