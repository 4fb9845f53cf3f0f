"""Non-real-time GB/T 32960 data units: logins, logouts, responses; and the message dispatcher."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from ironbridge.codec.binary import CodecError
from ironbridge.codec.gbt32960.blocks import RealtimeReport
from ironbridge.codec.gbt32960.frame import (
    HEADER_SIZE,
    Command,
    Edition,
    Frame,
    ResponseFlag,
    build_frame,
    decode_time,
    encode_time,
    parse_frame,
)
from ironbridge.codec.gbt32960.realtime import decode_realtime, encode_realtime

__all__ = [
    "Empty",
    "Message",
    "PlatformLogin",
    "PlatformLogout",
    "ResponseTime",
    "Unit",
    "VehicleLogin",
    "VehicleLogin2025",
    "VehicleLogout",
    "build_response",
    "decode_frame",
    "decode_unit",
    "encode_message",
    "encode_unit",
]

_SERIAL = struct.Struct(">H")


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleLogin:
    """2016 vehicle login (0x01).

    Attributes:
        ress_count: number of energy-storage subsystems (n); codes may be omitted (m = 0).
        ress_codes: the n codes, each ``ress_code_length`` characters.
    """

    time: datetime
    serial: int
    iccid: str
    ress_count: int
    ress_code_length: int
    ress_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleLogin2025:
    """2025 vehicle login (0x01): BMS count, packs per BMS, 24-character pack codes."""

    time: datetime
    serial: int
    iccid: str
    packs_per_bms: tuple[int, ...]
    pack_codes: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleLogout:
    """Vehicle logout (0x04); ``serial`` repeats the session's login serial."""

    time: datetime
    serial: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformLogin:
    """Platform login (0x05): user (GB18030, 12 bytes), password (20 bytes), encryption rule."""

    time: datetime
    serial: int
    username: str
    password: str
    encryption_rule: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformLogout:
    """Platform logout (0x06)."""

    time: datetime
    serial: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseTime:
    """A data unit holding only a time: platform responses, time-sync answers."""

    time: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Empty:
    """An empty data unit (heartbeat, time-sync request, empty responses)."""


Unit = (
    VehicleLogin
    | VehicleLogin2025
    | VehicleLogout
    | PlatformLogin
    | PlatformLogout
    | ResponseTime
    | RealtimeReport
    | Empty
    | bytes
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A decoded frame: header fields and the decoded data unit.

    ``unit`` is ``bytes`` for encrypted data units and commands this codec does not model
    (parameter query/set, terminal control, activation, key exchange).
    """

    frame: Frame
    unit: Unit


def _string(raw: bytes, encoding: str = "ascii") -> str:
    return raw.rstrip(b"\x00 ").decode(encoding, errors="replace")


def _fixed(value: str, size: int, field: str, encoding: str = "ascii") -> bytes:
    try:
        raw = value.encode(encoding)
    except UnicodeEncodeError as exc:
        raise CodecError(f"not encodable as {encoding}", field=field) from exc
    if len(raw) > size:
        raise CodecError(f"{len(raw)} bytes, at most {size}", field=field)
    return raw.ljust(size, b"\x00")


def _need(data: bytes, size: int, what: str, base: int) -> None:
    if len(data) < size:
        raise CodecError(
            f"truncated {what}: {len(data)} bytes, need {size}", field=what, offset=base + len(data)
        )


def _exact(data: bytes, size: int, what: str, base: int) -> None:
    if len(data) != size:
        raise CodecError(
            f"{what} data unit has {len(data)} bytes, expected {size}", field=what, offset=base
        )


def _login(data: bytes, edition: Edition, base: int) -> VehicleLogin | VehicleLogin2025:
    _need(data, 29, "vehicle_login", base)
    time = decode_time(data)
    (serial,) = _SERIAL.unpack_from(data, 6)
    iccid = _string(data[8:28])
    n = data[28]
    if edition == Edition.V2025:
        _need(data, 29 + n, "vehicle_login.packs_per_bms", base)
        packs = tuple(data[29 : 29 + n])
        total = sum(packs)
        _exact(data, 29 + n + 24 * total, "vehicle_login", base)
        pos = 29 + n
        codes = tuple(_string(data[pos + 24 * i : pos + 24 * (i + 1)]) for i in range(total))
        return VehicleLogin2025(
            time=time, serial=serial, iccid=iccid, packs_per_bms=packs, pack_codes=codes
        )
    _need(data, 30, "vehicle_login", base)
    m = data[29]
    code_count = n if m else 0
    _exact(data, 30 + code_count * m, "vehicle_login", base)
    codes = tuple(_string(data[30 + i * m : 30 + (i + 1) * m]) for i in range(code_count))
    return VehicleLogin(
        time=time, serial=serial, iccid=iccid, ress_count=n, ress_code_length=m, ress_codes=codes
    )


def decode_unit(
    command: int, response: int, data: bytes, edition: Edition, *, base_offset: int = 0
) -> Unit:
    """Decode a (plain-text) data unit according to command and response flag."""
    if response != ResponseFlag.COMMAND:
        # Responses carry the time (2016 6.3.2 / 2025) or, rarely, nothing; Annex B.3.3.2
        # style responses echo the whole unit after the time, which is kept undecoded.
        if not data:
            return Empty()
        if command == Command.TIME_SYNC or len(data) == 6:
            _exact(data, 6, "response", base_offset)
            return ResponseTime(time=decode_time(data))
        return data
    if command in (Command.REALTIME, Command.REISSUE):
        return decode_realtime(data, edition, base_offset=base_offset)
    if command == Command.VEHICLE_LOGIN:
        return _login(data, edition, base_offset)
    if command in (Command.VEHICLE_LOGOUT, Command.PLATFORM_LOGOUT):
        _exact(data, 8, "logout", base_offset)
        time = decode_time(data)
        (serial,) = _SERIAL.unpack_from(data, 6)
        if command == Command.VEHICLE_LOGOUT:
            return VehicleLogout(time=time, serial=serial)
        return PlatformLogout(time=time, serial=serial)
    if command == Command.PLATFORM_LOGIN:
        _exact(data, 41, "platform_login", base_offset)
        return PlatformLogin(
            time=decode_time(data),
            serial=_SERIAL.unpack_from(data, 6)[0],
            username=_string(data[8:20], "gb18030"),
            password=_string(data[20:40], "gb18030"),
            encryption_rule=data[40],
        )
    if command in (Command.HEARTBEAT, Command.TIME_SYNC):
        _exact(data, 0, "heartbeat" if command == Command.HEARTBEAT else "time_sync", base_offset)
        return Empty()
    return data


def decode_frame(buf: bytes | bytearray | memoryview) -> Message:
    """Parse one frame and decode its data unit (left as bytes when encrypted).

    Raises:
        CodecError: malformed frame or data unit, with offset and reason.
    """
    frame = parse_frame(buf)
    if frame.encryption != 0x01:
        return Message(frame=frame, unit=frame.data)
    unit = decode_unit(
        frame.command, frame.response, frame.data, frame.edition, base_offset=HEADER_SIZE
    )
    return Message(frame=frame, unit=unit)


def encode_unit(unit: Unit, edition: Edition) -> bytes:
    """Encode a data unit."""
    if isinstance(unit, bytes):
        return unit
    if isinstance(unit, RealtimeReport):
        return encode_realtime(unit, edition)
    if isinstance(unit, Empty):
        return b""
    if isinstance(unit, ResponseTime):
        return encode_time(unit.time)
    if not 0 <= unit.serial <= 0xFFFF:
        raise CodecError(f"serial {unit.serial} out of range", field="serial")
    head = encode_time(unit.time) + _SERIAL.pack(unit.serial)
    if isinstance(unit, VehicleLogout | PlatformLogout):
        return head
    if isinstance(unit, PlatformLogin):
        if not 0 <= unit.encryption_rule <= 0xFF:
            raise CodecError("encryption rule does not fit a byte", field="encryption_rule")
        return (
            head
            + _fixed(unit.username, 12, "username", "gb18030")
            + _fixed(unit.password, 20, "password", "gb18030")
            + bytes((unit.encryption_rule,))
        )
    iccid = _fixed(unit.iccid, 20, "iccid")
    if isinstance(unit, VehicleLogin2025):
        if len(unit.packs_per_bms) > 255 or any(not 0 <= p <= 255 for p in unit.packs_per_bms):
            raise CodecError("packs per BMS out of range", field="packs_per_bms")
        if sum(unit.packs_per_bms) != len(unit.pack_codes):
            raise CodecError("pack code count differs from the packs per BMS", field="pack_codes")
        codes = b"".join(_fixed(c, 24, "pack_codes") for c in unit.pack_codes)
        return head + iccid + bytes((len(unit.packs_per_bms), *unit.packs_per_bms)) + codes
    if not (0 <= unit.ress_count <= 255 and 0 <= unit.ress_code_length <= 255):
        raise CodecError("subsystem count or code length out of range", field="ress_count")
    expected = unit.ress_count if unit.ress_code_length else 0
    if len(unit.ress_codes) != expected:
        raise CodecError(f"{len(unit.ress_codes)} codes, expected {expected}", field="ress_codes")
    codes = b"".join(_fixed(c, unit.ress_code_length, "ress_codes") for c in unit.ress_codes)
    return head + iccid + bytes((unit.ress_count, unit.ress_code_length)) + codes


def encode_message(
    command: int,
    unit: Unit,
    *,
    vin: str,
    edition: Edition = Edition.V2016,
    response: int = ResponseFlag.COMMAND,
    encryption: int = 0x01,
) -> bytes:
    """Build a complete frame (header, encoded data unit, BCC) for a simulator or a test."""
    return build_frame(
        Frame(
            edition=edition,
            command=command,
            response=response,
            vin=vin,
            encryption=encryption,
            data=encode_unit(unit, edition),
        )
    )


def build_response(
    request: Frame, flag: int = ResponseFlag.SUCCESS, *, time: datetime | None = None
) -> bytes:
    """Build the platform's answer to ``request``: same command, new flag, a 6-byte time.

    The time is the request's collection time (2016 6.3.2 / 2025) unless ``time`` is given
    (time sync answers carry the platform's clock); heartbeats are answered empty.
    """
    if request.command == Command.HEARTBEAT:
        data = b""
    elif time is not None:
        data = encode_time(time)
    elif len(request.data) >= 6:
        data = request.data[:6]
    else:
        data = b""
    return build_frame(
        Frame(
            edition=request.edition,
            command=request.command,
            response=flag,
            vin=request.vin,
            encryption=0x01,
            data=data,
        )
    )
