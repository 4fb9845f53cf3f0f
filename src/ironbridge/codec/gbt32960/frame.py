"""GB/T 32960.3 frame: start bytes, header, data unit, BCC; parse, build and stream split."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import IntEnum

from ironbridge.codec.binary import CodecError, xor_checksum

__all__ = [
    "BEIJING",
    "HEADER_SIZE",
    "MAX_DATA_LENGTH",
    "Command",
    "Edition",
    "Encryption",
    "Frame",
    "ResponseFlag",
    "build_frame",
    "decode_time",
    "encode_time",
    "parse_frame",
    "split_stream",
]

#: GB/T 32960 times are Beijing wall-clock time (GMT+8) with a two-digit year.
BEIJING = timezone(timedelta(hours=8))
HEADER_SIZE = 24
MAX_DATA_LENGTH = 65531
_HEADER = struct.Struct(">2sBB17sBH")
_START_2016 = b"##"
_START_2025 = b"$$"


class Edition(IntEnum):
    """Protocol edition, told apart by the start bytes (``##`` 2016, ``$$`` 2025)."""

    V2016 = 2016
    V2025 = 2025


class Command(IntEnum):
    """Command identifiers (terminal <-> platform, Annex B)."""

    VEHICLE_LOGIN = 0x01
    REALTIME = 0x02
    REISSUE = 0x03
    VEHICLE_LOGOUT = 0x04
    PLATFORM_LOGIN = 0x05
    PLATFORM_LOGOUT = 0x06
    HEARTBEAT = 0x07
    TIME_SYNC = 0x08
    ACTIVATION = 0x09
    ACTIVATION_RESPONSE = 0x0A
    KEY_EXCHANGE = 0x0B
    PARAMETER_QUERY = 0x80
    PARAMETER_SET = 0x81
    TERMINAL_CONTROL = 0x82


class ResponseFlag(IntEnum):
    """Response flag; ``COMMAND`` (0xFE) marks a sender-initiated packet."""

    SUCCESS = 0x01
    ERROR = 0x02
    VIN_DUPLICATE = 0x03
    VIN_UNKNOWN = 0x04
    SIGNATURE_ERROR = 0x05
    STRUCTURE_ERROR = 0x06
    DECRYPTION_ERROR = 0x07
    COMMAND = 0xFE


class Encryption(IntEnum):
    """Data-unit encryption method (the codec never decrypts; it reports the method)."""

    NONE = 0x01
    RSA = 0x02
    AES = 0x03
    SM2 = 0x04
    SM4 = 0x05
    ABNORMAL = 0xFE
    INVALID = 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """One GB/T 32960 frame with its data unit still undecoded.

    Attributes:
        edition: 2016 (``##``) or 2025 (``$$``).
        command: command identifier (an int so that reserved/custom codes survive).
        response: response flag (0xFE for a command packet).
        vin: the 17-byte unique id, trailing NUL/space padding removed.
        encryption: data-unit encryption method code.
        data: the raw data unit.
    """

    edition: Edition
    command: int
    response: int
    vin: str
    encryption: int = Encryption.NONE
    data: bytes = b""

    @property
    def is_command(self) -> bool:
        """True for a sender-initiated packet (flag 0xFE), False for a response."""
        return self.response == ResponseFlag.COMMAND


def parse_frame(buf: bytes | bytearray | memoryview) -> Frame:
    """Parse exactly one frame; verify start bytes, length and BCC.

    Raises:
        CodecError: with the offset and reason when the frame is malformed.
    """
    raw = bytes(buf)
    if len(raw) < HEADER_SIZE + 1:
        raise CodecError(f"truncated frame: {len(raw)} bytes, need at least 25", offset=len(raw))
    start, command, response, vin_raw, encryption, length = _HEADER.unpack_from(raw)
    if start == _START_2016:
        edition = Edition.V2016
    elif start == _START_2025:
        edition = Edition.V2025
    else:
        raise CodecError(
            f"bad start bytes {start.hex()}, expected 2323 or 2424", field="start", offset=0
        )
    if length > MAX_DATA_LENGTH:
        raise CodecError(f"data unit length {length} above 65531", field="length", offset=22)
    if len(raw) != HEADER_SIZE + length + 1:
        raise CodecError(
            f"frame has {len(raw)} bytes but the header declares {HEADER_SIZE + length + 1}",
            field="length",
            offset=22,
        )
    expected = xor_checksum(raw, 2, -1)
    if raw[-1] != expected:
        raise CodecError(
            f"BCC mismatch: frame has 0x{raw[-1]:02X}, computed 0x{expected:02X}",
            field="bcc",
            offset=len(raw) - 1,
        )
    return Frame(
        edition=edition,
        command=command,
        response=response,
        vin=_decode_vin(vin_raw),
        encryption=encryption,
        data=raw[HEADER_SIZE:-1],
    )


def build_frame(frame: Frame) -> bytes:
    """Serialise a frame, computing the length and the BCC."""
    vin = frame.vin.encode("ascii")
    if len(vin) > 17:
        raise CodecError(f"VIN {frame.vin!r} longer than 17 bytes", field="vin")
    if len(frame.data) > MAX_DATA_LENGTH:
        raise CodecError(f"data unit of {len(frame.data)} bytes above 65531", field="length")
    start = _START_2016 if frame.edition == Edition.V2016 else _START_2025
    head = _HEADER.pack(
        start,
        frame.command,
        frame.response,
        vin.ljust(17, b"\x00"),
        frame.encryption,
        len(frame.data),
    )
    body = head + frame.data
    return body + bytes((xor_checksum(body, 2),))


def split_stream(buf: bytes | bytearray) -> tuple[list[bytes], bytes, int]:
    """Cut complete frames out of a TCP byte stream.

    Resynchronises on ``##``/``$$``; bytes before a start marker are skipped. Frames are
    returned undecoded (parse each with :func:`parse_frame`, which checks the BCC).

    Returns:
        ``(frames, rest, skipped)``: complete frames, the unconsumed tail to keep for the
        next read, and how many garbage bytes were dropped.
    """
    data = bytes(buf)
    frames: list[bytes] = []
    pos = 0
    skipped = 0
    size = len(data)
    while True:
        nxt = _next_start(data, pos)
        if nxt < 0:
            # keep a trailing lone start byte: it may be the first half of a marker
            keep = size - 1 if size > pos and data[-1:] in (b"#", b"$") else size
            skipped += keep - pos
            return frames, data[keep:], skipped
        skipped += nxt - pos
        pos = nxt
        if size - pos < HEADER_SIZE:
            return frames, data[pos:], skipped
        length = int.from_bytes(data[pos + 22 : pos + 24], "big")
        if length > MAX_DATA_LENGTH:
            pos += 1
            skipped += 1
            continue
        end = pos + HEADER_SIZE + length + 1
        if end > size:
            return frames, data[pos:], skipped
        frames.append(data[pos:end])
        pos = end


def _next_start(data: bytes, pos: int) -> int:
    a = data.find(_START_2016, pos)
    b = data.find(_START_2025, pos)
    if a < 0:
        return b
    if b < 0:
        return a
    return min(a, b)


def _decode_vin(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", errors="replace")


_TIME = struct.Struct(">6B")


def decode_time(data: bytes, offset: int = 0) -> datetime:
    """Decode the 6-byte YY MM DD hh mm ss Beijing time at ``offset``."""
    if len(data) < offset + 6:
        raise CodecError("truncated time field", field="time", offset=offset)
    yy, mo, dd, hh, mi, ss = _TIME.unpack_from(data, offset)
    if yy > 99:
        raise CodecError(f"year byte {yy} above 99", field="time", offset=offset)
    try:
        return datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=BEIJING)
    except ValueError as exc:
        raise CodecError(
            f"invalid time {yy:02d}-{mo:02d}-{dd:02d} {hh:02d}:{mi:02d}:{ss:02d}",
            field="time",
            offset=offset,
        ) from exc


def encode_time(value: datetime) -> bytes:
    """Encode an aware datetime (naive means Beijing time) as 6 bytes."""
    local = value.astimezone(BEIJING) if value.tzinfo is not None else value
    if not 2000 <= local.year <= 2099:
        raise CodecError(f"year {local.year} outside 2000-2099", field="time")
    yy = local.year - 2000
    return _TIME.pack(yy, local.month, local.day, local.hour, local.minute, local.second)
