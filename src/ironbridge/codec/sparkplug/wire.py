"""Protocol Buffers wire format primitives (varint, length-delimited, fixed32/64).

Hand-written because the Sparkplug B payload is small and no protobuf compiler is part of
the toolchain; the encoder is checked against the protobuf runtime in the tests.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ironbridge.codec.binary import CodecError

__all__ = [
    "WT_FIXED32",
    "WT_FIXED64",
    "WT_LEN",
    "WT_VARINT",
    "iter_fields",
    "put_bytes",
    "put_fixed32",
    "put_fixed64",
    "put_varint",
    "read_varint",
]

WT_VARINT = 0
WT_FIXED64 = 1
WT_LEN = 2
WT_FIXED32 = 5

_U64 = (1 << 64) - 1


def _varint(value: int) -> bytes:
    if value < 0:
        value &= _U64  # proto negative ints are 10-byte two's complement varints
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def put_varint(buf: bytearray, field: int, value: int) -> None:
    """Append a varint field (wire type 0)."""
    buf += _varint(field << 3 | WT_VARINT)
    buf += _varint(value)


def put_bytes(buf: bytearray, field: int, value: bytes) -> None:
    """Append a length-delimited field (wire type 2)."""
    buf += _varint(field << 3 | WT_LEN)
    buf += _varint(len(value))
    buf += value


def put_fixed32(buf: bytearray, field: int, value: float) -> None:
    """Append an IEEE-754 single as a fixed32 field (wire type 5)."""
    buf += _varint(field << 3 | WT_FIXED32)
    buf += struct.pack("<f", value)


def put_fixed64(buf: bytearray, field: int, value: float) -> None:
    """Append an IEEE-754 double as a fixed64 field (wire type 1)."""
    buf += _varint(field << 3 | WT_FIXED64)
    buf += struct.pack("<d", value)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """Read a varint at ``pos``; return (value, next position).

    Raises:
        CodecError: truncated or longer than 10 bytes.
    """
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise CodecError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise CodecError("varint longer than 10 bytes")


def iter_fields(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield (field number, wire type, value) for each field of a message.

    Varints come as int, fixed32/64 as their raw little-endian bytes, length-delimited as
    bytes. Groups (wire types 3/4, deprecated) are refused.

    Raises:
        CodecError: malformed input.
    """
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        field, wtype = key >> 3, key & 7
        if field == 0:
            raise CodecError("field number 0")
        if wtype == WT_VARINT:
            value, pos = read_varint(data, pos)
            yield field, wtype, value
        elif wtype == WT_LEN:
            length, pos = read_varint(data, pos)
            if pos + length > end:
                raise CodecError(f"field {field}: length {length} past the end")
            yield field, wtype, data[pos : pos + length]
            pos += length
        elif wtype == WT_FIXED64:
            if pos + 8 > end:
                raise CodecError(f"field {field}: truncated fixed64")
            yield field, wtype, data[pos : pos + 8]
            pos += 8
        elif wtype == WT_FIXED32:
            if pos + 4 > end:
                raise CodecError(f"field {field}: truncated fixed32")
            yield field, wtype, data[pos : pos + 4]
            pos += 4
        else:
            raise CodecError(f"field {field}: unsupported wire type {wtype}")
