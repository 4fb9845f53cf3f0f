"""JT/T 808 location report body (0x0200): basic block, alarm/status bits, additional items."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from ironbridge.codec.binary import CodecError, load_table
from ironbridge.codec.jt808.frame import BEIJING, Version, bcd_decode, bcd_encode
from ironbridge.model import Event, from_datetime

__all__ = [
    "ALARM_EVENT_KIND",
    "ItemSpec",
    "LocationFlattened",
    "LocationReport",
    "additional_items",
    "alarm_bit_names",
    "decode_location",
    "encode_location",
    "flatten_location",
    "status_bits",
]

ALARM_EVENT_KIND = "jt808_alarm"
_PACKAGE = "ironbridge.codec.jt808"
_BASIC = struct.Struct(">IIIIHHH6s")
_BASIC_SIZE = _BASIC.size  # 28


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemSpec:
    """One row of ``additional_items.csv``."""

    item_id: int
    name: str
    type: str
    divisor: int
    unit: str
    measurement: str


@cache
def additional_items() -> dict[int, ItemSpec]:
    """Additional-item id -> spec, loaded once from ``additional_items.csv``."""
    return {
        int(r["id"], 0): ItemSpec(
            item_id=int(r["id"], 0),
            name=r["name"],
            type=r["type"],
            divisor=int(r["divisor"] or "1"),
            unit=r["unit"],
            measurement=r["measurement"],
        )
        for r in load_table(_PACKAGE, "additional_items.csv")
    }


@cache
def alarm_bit_names(version: Version) -> dict[int, str]:
    """Alarm bit -> name for an edition (2013 names also cover 2011)."""
    column = "name_2019" if version == Version.V2019 else "name_2013"
    return {int(r["bit"]): r[column] for r in load_table(_PACKAGE, "alarm_bits.csv") if r[column]}


@cache
def status_bits() -> dict[int, tuple[str, str]]:
    """Status bit -> ``(name, measurement)``."""
    return {
        int(r["bit"]): (r["name"], r["measurement"])
        for r in load_table(_PACKAGE, "status_bits.csv")
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationReport:
    """A 0x0200 body (also the element of 0x0704 batches).

    Attributes:
        latitude: degrees, negative when status bit 2 (south) is set.
        longitude: degrees, negative when status bit 3 (west) is set.
        time: GMT+8 device time; None when the device sends an all-zero time.
        items: additional items as ``(id, raw value)`` in wire order (lossless).
    """

    alarm: int
    status: int
    latitude: float
    longitude: float
    altitude_m: int
    speed_kmh: float
    direction: int
    time: datetime | None
    items: tuple[tuple[int, bytes], ...] = ()

    def item(self, item_id: int) -> bytes | None:
        """Raw value of the first additional item with this id."""
        for key, value in self.items:
            if key == item_id:
                return value
        return None

    def item_value(self, item_id: int) -> float | None:
        """Scaled value of a numeric item per ``additional_items.csv`` (None if absent)."""
        raw = self.item(item_id)
        spec = additional_items().get(item_id)
        if raw is None or spec is None:
            return None
        return _scaled(spec, raw)

    @property
    def mileage_km(self) -> float | None:
        """Item 0x01: odometer in km."""
        return self.item_value(0x01)

    @property
    def fuel_l(self) -> float | None:
        """Item 0x02: fuel in litres."""
        return self.item_value(0x02)

    @property
    def recorder_speed_kmh(self) -> float | None:
        """Item 0x03: tachograph speed in km/h."""
        return self.item_value(0x03)

    @property
    def load_state(self) -> int:
        """Status bits 8-9: 0 empty, 1 half, 2 reserved, 3 full."""
        return (self.status >> 8) & 0x3


_SIZES = {"u8": 1, "u16": 2, "u32": 4, "s16_sign": 2}


def _scaled(spec: ItemSpec, raw: bytes) -> float | None:
    size = _SIZES.get(spec.type)
    if size is None or len(raw) != size:
        return None
    value = int.from_bytes(raw, "big")
    if spec.type == "s16_sign" and value & 0x8000:
        value = -(value & 0x7FFF)
    return value / spec.divisor if spec.divisor != 1 else float(value)


def _decode_bcd_time(raw: bytes, offset: int) -> datetime | None:
    if raw == b"\x00" * 6:
        return None
    digits = bcd_decode(raw, "time", offset)
    try:
        return datetime(
            2000 + int(digits[0:2]),
            int(digits[2:4]),
            int(digits[4:6]),
            int(digits[6:8]),
            int(digits[8:10]),
            int(digits[10:12]),
            tzinfo=BEIJING,
        )
    except ValueError as exc:
        raise CodecError(f"invalid time {digits}", field="time", offset=offset) from exc


def decode_location(body: bytes, *, base_offset: int = 0) -> LocationReport:
    """Decode a 0x0200 body (basic block + additional items).

    Raises:
        CodecError: truncated basic block or an item running past the body end.
    """
    if len(body) < _BASIC_SIZE:
        raise CodecError(
            f"location body has {len(body)} bytes, basic block needs 28",
            field="location",
            offset=base_offset + len(body),
        )
    alarm, status, lat, lon, alt, speed, direction, time_raw = _BASIC.unpack_from(body)
    latitude = lat / 1_000_000
    longitude = lon / 1_000_000
    if status & 0x4:
        latitude = -latitude
    if status & 0x8:
        longitude = -longitude
    items: list[tuple[int, bytes]] = []
    pos = _BASIC_SIZE
    end = len(body)
    while pos < end:
        if pos + 2 > end:
            raise CodecError(
                "truncated additional item header", field="location.items", offset=base_offset + pos
            )
        item_id = body[pos]
        length = body[pos + 1]
        stop = pos + 2 + length
        if stop > end:
            raise CodecError(
                f"additional item 0x{item_id:02X} declares {length} bytes, {end - pos - 2} left",
                field="location.items",
                offset=base_offset + pos,
            )
        items.append((item_id, body[pos + 2 : stop]))
        pos = stop
    return LocationReport(
        alarm=alarm,
        status=status,
        latitude=latitude,
        longitude=longitude,
        altitude_m=alt,
        speed_kmh=speed / 10,
        direction=direction,
        time=_decode_bcd_time(time_raw, base_offset + 22),
        items=tuple(items),
    )


def encode_location(report: LocationReport) -> bytes:
    """Encode a 0x0200 body; hemisphere bits follow the signs of latitude/longitude."""
    status = report.status
    if report.latitude < 0:
        status |= 0x4
    if report.longitude < 0:
        status |= 0x8
    if report.time is None:
        time_raw = b"\x00" * 6
    else:
        t = report.time.astimezone(BEIJING) if report.time.tzinfo else report.time
        if not 2000 <= t.year <= 2099:
            raise CodecError(f"year {t.year} outside 2000-2099", field="time")
        time_raw = bcd_encode(t.strftime("%y%m%d%H%M%S"), 6, "time")
    try:
        head = _BASIC.pack(
            report.alarm,
            status,
            round(abs(report.latitude) * 1_000_000),
            round(abs(report.longitude) * 1_000_000),
            report.altitude_m,
            round(report.speed_kmh * 10),
            report.direction,
            time_raw,
        )
    except struct.error as exc:
        raise CodecError(f"location value out of range: {exc}", field="location") from exc
    parts = [head]
    for item_id, value in report.items:
        if not 0 <= item_id <= 0xFF or len(value) > 0xFF:
            raise CodecError(f"additional item 0x{item_id:X} too long", field="location.items")
        parts.append(bytes((item_id, len(value))))
        parts.append(value)
    return b"".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocationFlattened:
    """A location report as measurements and alarm events."""

    ts_us: int | None
    values: dict[str, float | None] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def flatten_location(
    report: LocationReport, *, asset_id: str, version: Version = Version.V2013
) -> LocationFlattened:
    """Turn a location report into ``{measurement: value}`` plus one event per alarm bit.

    Measurements: ``latitude``, ``longitude``, ``altitude`` (m), ``speed`` (km/h),
    ``direction`` (°), ``load_state``, the 0/1 status flags of ``status_bits.csv`` and the
    numeric items of ``additional_items.csv`` (``mileage``, ``fuel``, ...), plus
    ``analog_ad0``/``analog_ad1`` from item 0x2B. Position values are None when the
    terminal reports no fix (status bit 1 clear). Events: kind ``jt808_alarm``, code = bit name.
    """
    ts_us = None if report.time is None else from_datetime(report.time)
    positioned = bool(report.status & 0x2)
    v: dict[str, float | None] = {
        "latitude": report.latitude if positioned else None,
        "longitude": report.longitude if positioned else None,
        "altitude": float(report.altitude_m) if positioned else None,
        "speed": report.speed_kmh,
        "direction": float(report.direction),
        "load_state": float(report.load_state),
    }
    for bit, (_name, measurement) in status_bits().items():
        if measurement:
            v[measurement] = float(report.status >> bit & 1)
    specs = additional_items()
    for item_id, raw in report.items:
        spec = specs.get(item_id)
        if spec is not None and spec.measurement:
            v[spec.measurement] = _scaled(spec, raw)
        elif item_id == 0x2B and len(raw) == 4:
            word = int.from_bytes(raw, "big")
            v["analog_ad0"] = float(word & 0xFFFF)
            v["analog_ad1"] = float(word >> 16)
    events: list[Event] = []
    if report.alarm:
        names = alarm_bit_names(version)
        for bit in range(32):
            if report.alarm >> bit & 1:
                events.append(
                    Event(
                        asset_id=asset_id,
                        ts_us=ts_us if ts_us is not None else 0,
                        kind=ALARM_EVENT_KIND,
                        code=names.get(bit, f"bit{bit}"),
                        payload={"bit": bit, "version": version.value},
                    )
                )
    return LocationFlattened(ts_us=ts_us, values=v, events=events)
