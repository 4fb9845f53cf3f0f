"""JT/T 808 message bodies (responses, heartbeat, registration, authentication, locations)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from ironbridge.codec.binary import CodecError
from ironbridge.codec.jt808.frame import Frame, Header, Version, build_frame, parse_frame
from ironbridge.codec.jt808.location import LocationReport, decode_location, encode_location
from ironbridge.codec.jt808.subpackage import (
    RetransmissionRequest,
    decode_retransmission,
    encode_retransmission,
)

__all__ = [
    "Authentication",
    "BatchLocation",
    "Body",
    "GeneralResponse",
    "Heartbeat",
    "Message",
    "MsgId",
    "Registration",
    "RegistrationResponse",
    "decode_body",
    "decode_frame",
    "decode_message",
    "encode_body",
    "encode_message",
]

_RESP = struct.Struct(">HHB")
_WORD = struct.Struct(">H")
_BATCH = struct.Struct(">HB")
_ENC = "gbk"


class MsgId(IntEnum):
    """Message ids this codec decodes."""

    TERMINAL_RESPONSE = 0x0001
    HEARTBEAT = 0x0002
    TERMINAL_RETRANSMISSION_REQUEST = 0x0005
    REGISTRATION = 0x0100
    AUTHENTICATION = 0x0102
    LOCATION = 0x0200
    BATCH_LOCATION = 0x0704
    PLATFORM_RESPONSE = 0x8001
    RETRANSMISSION_REQUEST = 0x8003
    REGISTRATION_RESPONSE = 0x8100


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneralResponse:
    """0x0001 / 0x8001 body: result 0 ok, 1 failure, 2 message error, 3 unsupported, 4 alarm ack."""

    reply_serial: int
    reply_id: int
    result: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """0x0002 (empty body)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Registration:
    """0x0100 body; field widths 5/20/7 bytes in 2013, 11/30/30 in 2019.

    Attributes:
        plate_color: 0 = not registered (then ``plate`` carries the VIN).
    """

    province: int
    city: int
    manufacturer: str
    model: str
    terminal_id: str
    plate_color: int
    plate: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrationResponse:
    """0x8100 body: result 0 ok (then ``auth_code`` is set), 1-4 refusal reasons."""

    reply_serial: int
    result: int
    auth_code: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Authentication:
    """0x0102 body; IMEI and software version exist only in 2019."""

    auth_code: str
    imei: str | None = None
    software_version: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchLocation:
    """0x0704 body: kind 0 normal batch, 1 blind-area re-upload."""

    kind: int
    reports: tuple[LocationReport, ...]


Body = (
    GeneralResponse
    | Heartbeat
    | Registration
    | RegistrationResponse
    | Authentication
    | LocationReport
    | BatchLocation
    | RetransmissionRequest
    | bytes
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """A decoded message; ``body`` is bytes for unmodelled ids, fragments and RSA bodies."""

    header: Header
    body: Body


def _text(raw: bytes) -> str:
    # Fixed-length fields are padded with 0x00 (sometimes ASCII spaces): trim both.
    return raw.strip(b"\x00 ").decode(_ENC, errors="replace")


def _fixed(value: str, size: int, field: str) -> bytes:
    raw = _gbk(value, field)
    if len(raw) > size:
        raise CodecError(f"{len(raw)} bytes, at most {size}", field=field)
    return raw.ljust(size, b"\x00")


def _gbk(value: str, field: str) -> bytes:
    try:
        return value.encode(_ENC)
    except UnicodeEncodeError as exc:
        raise CodecError("not encodable as GBK", field=field) from exc


def _exact(body: bytes, size: int, what: str, base: int) -> None:
    if len(body) != size:
        raise CodecError(
            f"{what} body has {len(body)} bytes, expected {size}", field=what, offset=base
        )


_REG_WIDTHS = {Version.V2013: (5, 20, 7), Version.V2019: (11, 30, 30)}


def _registration(body: bytes, version: Version, base: int) -> Registration:
    w_maker, w_model, w_id = _REG_WIDTHS[version]
    fixed = 4 + w_maker + w_model + w_id + 1
    if len(body) < fixed:
        raise CodecError(
            f"registration body has {len(body)} bytes, needs at least {fixed}",
            field="registration",
            offset=base + len(body),
        )
    province, city = struct.unpack_from(">HH", body)
    p = 4
    maker = _text(body[p : p + w_maker])
    p += w_maker
    model = _text(body[p : p + w_model])
    p += w_model
    term = _text(body[p : p + w_id])
    p += w_id
    return Registration(
        province=province,
        city=city,
        manufacturer=maker,
        model=model,
        terminal_id=term,
        plate_color=body[p],
        plate=body[p + 1 :].rstrip(b"\x00").decode(_ENC, errors="replace"),
    )


def _authentication(body: bytes, version: Version, base: int) -> Authentication:
    if version == Version.V2013:
        return Authentication(auth_code=body.rstrip(b"\x00").decode(_ENC, errors="replace"))
    if not body:
        raise CodecError("empty authentication body", field="authentication", offset=base)
    n = body[0]
    _exact(body, 1 + n + 15 + 20, "authentication", base)
    return Authentication(
        auth_code=body[1 : 1 + n].decode(_ENC, errors="replace"),
        imei=_text(body[1 + n : 16 + n]),
        software_version=_text(body[16 + n : 36 + n]),
    )


def _batch(body: bytes, base: int) -> BatchLocation:
    if len(body) < 3:
        raise CodecError("truncated batch header", field="batch", offset=base + len(body))
    count, kind = _BATCH.unpack_from(body)
    pos = 3
    reports = []
    for i in range(count):
        if pos + 2 > len(body):
            raise CodecError(f"truncated batch item {i}", field="batch", offset=base + pos)
        (length,) = _WORD.unpack_from(body, pos)
        pos += 2
        if pos + length > len(body):
            raise CodecError(
                f"batch item {i} declares {length} bytes, {len(body) - pos} left",
                field="batch",
                offset=base + pos - 2,
            )
        reports.append(decode_location(body[pos : pos + length], base_offset=base + pos))
        pos += length
    if pos != len(body):
        raise CodecError(
            f"{len(body) - pos} bytes after {count} batch items", field="batch", offset=base + pos
        )
    return BatchLocation(kind=kind, reports=tuple(reports))


def decode_body(msg_id: int, body: bytes, version: Version, *, base_offset: int = 0) -> Body:
    """Decode a complete (unfragmented, unencrypted) body by message id."""
    base = base_offset
    if msg_id == MsgId.LOCATION:
        return decode_location(body, base_offset=base)
    if msg_id in (MsgId.TERMINAL_RESPONSE, MsgId.PLATFORM_RESPONSE):
        _exact(body, 5, "general_response", base)
        serial, reply_id, result = _RESP.unpack(body)
        return GeneralResponse(reply_serial=serial, reply_id=reply_id, result=result)
    if msg_id == MsgId.HEARTBEAT:
        _exact(body, 0, "heartbeat", base)
        return Heartbeat()
    if msg_id == MsgId.REGISTRATION:
        return _registration(body, version, base)
    if msg_id == MsgId.REGISTRATION_RESPONSE:
        if len(body) < 3:
            raise CodecError(
                "registration response shorter than 3 bytes",
                field="registration_response",
                offset=base + len(body),
            )
        serial, result = struct.unpack_from(">HB", body)
        code = body[3:].decode(_ENC, errors="replace") if result == 0 else None
        return RegistrationResponse(reply_serial=serial, result=result, auth_code=code)
    if msg_id == MsgId.AUTHENTICATION:
        return _authentication(body, version, base)
    if msg_id == MsgId.BATCH_LOCATION:
        return _batch(body, base)
    if msg_id in (MsgId.RETRANSMISSION_REQUEST, MsgId.TERMINAL_RETRANSMISSION_REQUEST):
        return decode_retransmission(body, version, base_offset=base)
    return body


def decode_message(raw: bytes | bytearray | memoryview, *, strict_version: bool = False) -> Message:
    """Parse a 0x7E-delimited frame and decode its body.

    Raises:
        CodecError: malformed frame or body, with offset (in the unescaped frame) and reason.
    """
    return decode_frame(parse_frame(raw, strict_version=strict_version))


def decode_frame(frame: Frame) -> Message:
    """Decode the body of a parsed frame, or of a message reassembled from its packets.

    A single packet of a subpackaged message and an RSA-encrypted body stay bytes.

    Raises:
        CodecError: malformed body, with offset (in the unescaped frame) and reason.
    """
    h = frame.header
    if h.packet is not None or h.encryption:
        return Message(header=h, body=frame.body)
    base = (17 if h.version == Version.V2019 else 12) + 1
    return Message(header=h, body=decode_body(h.msg_id, frame.body, h.version, base_offset=base))


def encode_body(body: Body, version: Version = Version.V2013) -> bytes:
    """Encode a body for the given header version."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, LocationReport):
        return encode_location(body)
    if isinstance(body, Heartbeat):
        return b""
    if isinstance(body, RetransmissionRequest):
        return encode_retransmission(body, version)
    try:
        if isinstance(body, GeneralResponse):
            return _RESP.pack(body.reply_serial, body.reply_id, body.result)
        if isinstance(body, RegistrationResponse):
            code = b"" if body.auth_code is None else _gbk(body.auth_code, "auth_code")
            return struct.pack(">HB", body.reply_serial, body.result) + code
        if isinstance(body, BatchLocation):
            parts = [_BATCH.pack(len(body.reports), body.kind)]
            for report in body.reports:
                raw = encode_location(report)
                parts.append(_WORD.pack(len(raw)) + raw)
            return b"".join(parts)
        if isinstance(body, Registration):
            w_maker, w_model, w_id = _REG_WIDTHS[version]
            return (
                struct.pack(">HH", body.province, body.city)
                + _fixed(body.manufacturer, w_maker, "manufacturer")
                + _fixed(body.model, w_model, "model")
                + _fixed(body.terminal_id, w_id, "terminal_id")
                + bytes((body.plate_color,))
                + _gbk(body.plate, "plate")
            )
    except (struct.error, ValueError) as exc:
        raise CodecError(f"value out of range: {exc}", field=type(body).__name__) from exc
    code = _gbk(body.auth_code, "auth_code")
    if version == Version.V2013:
        return code
    if len(code) > 0xFF:
        raise CodecError("auth code longer than 255 bytes", field="auth_code")
    return (
        bytes((len(code),))
        + code
        + _fixed(body.imei or "", 15, "imei")
        + _fixed(body.software_version or "", 20, "software_version")
    )


def encode_message(header: Header, body: Body) -> bytes:
    """Encode body and header into a complete escaped frame with both 0x7E flags."""
    return build_frame(header, encode_body(body, header.version))
