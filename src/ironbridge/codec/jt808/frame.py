"""JT/T 808 framing: 0x7E delimiters, 0x7D escaping, BCC, 2013/2019 headers, stream split."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import timedelta, timezone
from enum import IntEnum

from ironbridge.codec.binary import CodecError, xor_checksum

__all__ = [
    "BEIJING",
    "FLAG",
    "MAX_BODY_LENGTH",
    "Frame",
    "Header",
    "Version",
    "bcd_decode",
    "bcd_encode",
    "build_frame",
    "escape",
    "parse_frame",
    "split_stream",
    "unescape",
]

#: JT/T 808 times are BCD Beijing wall-clock time (GMT+8).
BEIJING = timezone(timedelta(hours=8))
FLAG = 0x7E
MAX_BODY_LENGTH = 1023
_FLAG_B = b"\x7e"
_HEAD = struct.Struct(">HH")
_PACKETS = struct.Struct(">HH")


class Version(IntEnum):
    """Protocol edition of a frame's header."""

    V2013 = 2013
    V2019 = 2019


@dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    """Message header.

    Attributes:
        msg_id: message id (0x0200 location report, ...).
        phone: terminal phone number, BCD digits with leading zeros (12 in 2013, 20 in 2019).
        serial: message serial number.
        version: header layout actually used.
        protocol_version: 2019 protocol version byte; None in 2013.
        encryption: body-properties bits 10-12 (0 none, 1 RSA).
        packet: ``(total, index)`` when the subpackage bit is set.
        version_flag: raw bit 14; True with a 2013 layout marks a non-conformant device.
    """

    msg_id: int
    phone: str
    serial: int
    version: Version = Version.V2013
    protocol_version: int | None = None
    encryption: int = 0
    packet: tuple[int, int] | None = None
    version_flag: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Frame:
    """A verified, unescaped frame: header and raw body."""

    header: Header
    body: bytes


def escape(data: bytes) -> bytes:
    """Escape 0x7D then 0x7E (0x7D -> 7D 01, 0x7E -> 7D 02)."""
    return data.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def unescape(data: bytes, *, base_offset: int = 0) -> bytes:
    """Undo :func:`escape`; reject a 0x7D not followed by 01/02 and a bare 0x7E."""
    if _FLAG_B in data:
        raise CodecError(
            "unescaped 0x7E inside a frame", field="escape", offset=base_offset + data.index(0x7E)
        )
    n_esc = data.count(b"\x7d")
    if n_esc == 0:
        return data
    if n_esc != data.count(b"\x7d\x01") + data.count(b"\x7d\x02"):
        pos = 0
        while True:
            pos = data.index(0x7D, pos)
            if data[pos + 1 : pos + 2] not in (b"\x01", b"\x02"):
                raise CodecError(
                    "0x7D must be followed by 0x01 or 0x02",
                    field="escape",
                    offset=base_offset + pos,
                )
            pos += 2
    return data.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def bcd_decode(raw: bytes, field: str = "bcd", offset: int = -1) -> str:
    """Decode packed BCD to a digit string; reject nibbles above 9."""
    text = raw.hex()
    if not text.isdigit():
        raise CodecError(f"not BCD: {text}", field=field, offset=offset)
    return text


def bcd_encode(digits: str, size: int, field: str = "bcd") -> bytes:
    """Encode a digit string as ``size`` bytes of BCD, left-padded with zeros."""
    if not digits.isdigit() or not digits.isascii() or len(digits) > 2 * size:
        raise CodecError(f"{digits!r} is not at most {2 * size} digits", field=field)
    return bytes.fromhex(digits.rjust(2 * size, "0"))


def parse_frame(raw: bytes | bytearray | memoryview, *, strict_version: bool = False) -> Frame:
    """Parse one frame including both 0x7E flags.

    Version detection (pitfall J13): with bit 14 set the 2019 layout is tried first; a
    frame whose length only fits the 2013 layout is accepted as 2013 (``version_flag``
    stays True) unless ``strict_version`` is set, in which case it is rejected.

    Raises:
        CodecError: missing flags, bad escape, checksum or length mismatch, truncation.
    """
    data = bytes(raw)
    if len(data) < 2 or data[0] != FLAG or data[-1] != FLAG:
        raise CodecError("frame must start and end with 0x7E", field="flag", offset=0)
    inner = unescape(data[1:-1], base_offset=1)
    if len(inner) < 13:
        raise CodecError(
            f"truncated frame: {len(inner)} bytes unescaped, need at least 13",
            field="header",
            offset=len(data),
        )
    expected = xor_checksum(inner, 0, -1)
    if inner[-1] != expected:
        raise CodecError(
            f"checksum mismatch: frame has 0x{inner[-1]:02X}, computed 0x{expected:02X}",
            field="checksum",
            offset=len(data) - 2,
        )
    msg_id, props = _HEAD.unpack_from(inner)
    body_len = props & 0x3FF
    sub = bool(props & 0x2000)
    flag = bool(props & 0x4000)
    extra = 4 if sub else 0
    size = len(inner)
    fits_2019 = size == 17 + extra + body_len + 1
    fits_2013 = size == 12 + extra + body_len + 1
    if flag and fits_2019:
        version = Version.V2019
        head_len = 17
    elif fits_2013 and (not flag or not strict_version):
        version = Version.V2013
        head_len = 12
    else:
        declared = (17 if flag else 12) + extra + body_len + 1
        reason = (
            f"version flag set but the length only fits a 2013 header ({size} bytes)"
            if flag and fits_2013
            else f"length mismatch: {size} bytes unescaped, header declares {declared}"
        )
        raise CodecError(reason, field="header.body_length", offset=3)
    if version == Version.V2019:
        protocol_version: int | None = inner[4]
        phone = bcd_decode(inner[5:15], "header.phone", 6)
    else:
        protocol_version = None
        phone = bcd_decode(inner[4:10], "header.phone", 5)
    (serial,) = struct.unpack_from(">H", inner, head_len - 2)
    packet = _PACKETS.unpack_from(inner, head_len) if sub else None
    header = Header(
        msg_id=msg_id,
        phone=phone,
        serial=serial,
        version=version,
        protocol_version=protocol_version,
        encryption=(props >> 10) & 0x7,
        packet=packet,
        version_flag=flag,
    )
    start = head_len + extra
    return Frame(header=header, body=inner[start : start + body_len])


def build_frame(header: Header, body: bytes) -> bytes:
    """Serialise, checksum, escape and wrap a frame.

    ``header.version_flag`` None means "as the version says"; True with a 2013 header
    reproduces the non-conformant devices (for tests and simulators).
    """
    if len(body) > MAX_BODY_LENGTH:
        raise CodecError(
            f"body of {len(body)} bytes above 1023; subpackage it", field="body_length"
        )
    if not 0 <= header.msg_id <= 0xFFFF or not 0 <= header.serial <= 0xFFFF:
        raise CodecError("message id or serial out of range", field="header")
    if not 0 <= header.encryption <= 7:
        raise CodecError("encryption does not fit 3 bits", field="header.encryption")
    flag = header.version == Version.V2019 if header.version_flag is None else header.version_flag
    props = len(body) | header.encryption << 10 | (0x2000 if header.packet else 0)
    props |= 0x4000 if flag else 0
    parts = [_HEAD.pack(header.msg_id, props)]
    if header.version == Version.V2019:
        pv = 1 if header.protocol_version is None else header.protocol_version
        if not 0 <= pv <= 0xFF:
            raise CodecError(
                "protocol version does not fit a byte", field="header.protocol_version"
            )
        parts.append(bytes((pv,)))
        parts.append(bcd_encode(header.phone, 10, "header.phone"))
    else:
        parts.append(bcd_encode(header.phone, 6, "header.phone"))
    parts.append(struct.pack(">H", header.serial))
    if header.packet:
        total, index = header.packet
        if not (0 <= total <= 0xFFFF and 0 <= index <= 0xFFFF):
            raise CodecError("packet total/index out of range", field="header.packet")
        parts.append(_PACKETS.pack(total, index))
    parts.append(body)
    inner = b"".join(parts)
    return _FLAG_B + escape(inner + bytes((xor_checksum(inner),))) + _FLAG_B


def split_stream(buf: bytes | bytearray) -> tuple[list[bytes], bytes]:
    """Cut ``7E ... 7E`` frames out of a byte stream.

    Returns:
        ``(frames, rest)``: complete frames (flags included, still escaped) and the tail
        to keep. Bytes between frames are dropped; in ``7E7E`` the second flag starts
        the next frame (a lost end flag costs one frame, never the stream).
    """
    data = bytes(buf)
    frames: list[bytes] = []
    start = data.find(_FLAG_B)
    if start < 0:
        return frames, b""
    while True:
        end = data.find(_FLAG_B, start + 1)
        if end < 0:
            return frames, data[start:]
        if end == start + 1:
            start = end
            continue
        frames.append(data[start : end + 1])
        nxt = data.find(_FLAG_B, end + 1)
        if nxt < 0:
            return frames, b""
        start = nxt
