"""The Sparkplug B payload (``org.eclipse.tahu.protobuf.Payload``): encode and decode.

Supported: Payload{timestamp, metrics, seq, uuid, body} and Metric{name, alias, timestamp,
datatype, is_historical, is_transient, is_null, scalar value}. Metric metadata,
properties, DataSet and Template values are skipped on decode (the fields are read past,
never misread) and cannot be encoded.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from ironbridge.codec.binary import CodecError
from ironbridge.codec.sparkplug.wire import (
    WT_FIXED32,
    WT_FIXED64,
    WT_LEN,
    WT_VARINT,
    iter_fields,
    put_bytes,
    put_fixed32,
    put_fixed64,
    put_varint,
)

__all__ = ["DataType", "Metric", "MetricValue", "Payload", "decode_payload", "encode_payload"]

#: a metric's scalar value (None for is_null or a type this codec does not carry)
MetricValue = int | float | bool | str | bytes | None


class DataType(enum.IntEnum):
    """Sparkplug B metric data types (spec 6.4.16); arrays and complex types omitted."""

    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19


_SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_INT_VALUE = {1, 2, 3, 5, 6, 7}  # carried in int_value (uint32)
_LONG_VALUE = {4, 8, 13}  # carried in long_value (uint64)
_STRING_VALUE = {12, 14, 15}
_BYTES_VALUE = {17, 18}

# Metric value oneof field numbers
_F_INT, _F_LONG, _F_FLOAT, _F_DOUBLE, _F_BOOL, _F_STRING, _F_BYTES = 10, 11, 12, 13, 14, 15, 16


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One Sparkplug metric.

    Attributes:
        name: metric name; present in BIRTH, usually absent in DATA (alias only).
        alias: numeric alias, unique per edge node.
        timestamp: ms since the epoch (UTC).
        datatype: a :class:`DataType` code; present in BIRTH, may be absent in DATA.
        value: the scalar value, signed integers already sign-converted when the
            datatype is known (see :func:`coerce_value`).
    """

    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    is_historical: bool = False
    is_transient: bool = False
    is_null: bool = False
    value: MetricValue = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Payload:
    """A Sparkplug B payload.

    Attributes:
        timestamp: ms since the epoch (UTC) when the message was created.
        seq: 0-255 sequence number; None in NDEATH and STATE-like payloads.
    """

    timestamp: int | None = None
    metrics: tuple[Metric, ...] = field(default_factory=tuple)
    seq: int | None = None
    uuid: str | None = None
    body: bytes | None = None


def coerce_value(datatype: int | None, value: MetricValue) -> MetricValue:
    """Convert a raw wire value to the datatype's Python value.

    Signed Int8..Int64 are carried as two's complement in the unsigned proto fields
    (Sparkplug 3.0, 6.4.16); this undoes that. Other values pass through.
    """
    if datatype is None or not isinstance(value, int) or isinstance(value, bool):
        return value
    bits = _SIGNED_BITS.get(DataType(datatype)) if datatype in _SIGNED_BITS else None
    if bits is None:
        return value
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def _check_range(metric: Metric, datatype: int, value: int) -> None:
    bits = _SIGNED_BITS.get(DataType(datatype)) if datatype in _SIGNED_BITS else None
    if bits is not None:
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    else:
        width = {5: 8, 6: 16, 7: 32}.get(datatype, 64)
        low, high = 0, (1 << width) - 1
    if not low <= value <= high:
        raise CodecError(
            f"value {value} out of range for datatype {datatype}", field=str(metric.name)
        )


def _encode_value(buf: bytearray, metric: Metric) -> None:
    value = metric.value
    dt = metric.datatype
    if value is None or metric.is_null:
        return
    if isinstance(value, bool):
        put_varint(buf, _F_BOOL, int(value))
    elif isinstance(value, int):
        code = dt if dt is not None else (3 if -(1 << 31) <= value < (1 << 31) else 4)
        _check_range(metric, code, value)
        if code in _INT_VALUE:
            put_varint(buf, _F_INT, value & 0xFFFFFFFF)
        elif code in _LONG_VALUE:
            put_varint(buf, _F_LONG, value & ((1 << 64) - 1))
        else:
            raise CodecError(f"int value for datatype {code}", field=str(metric.name))
    elif isinstance(value, float):
        if dt == DataType.FLOAT:
            put_fixed32(buf, _F_FLOAT, value)
        else:
            put_fixed64(buf, _F_DOUBLE, value)
    elif isinstance(value, str):
        put_bytes(buf, _F_STRING, value.encode())
    else:
        put_bytes(buf, _F_BYTES, bytes(value))


def _encode_metric(metric: Metric) -> bytes:
    buf = bytearray()
    if metric.name is not None:
        put_bytes(buf, 1, metric.name.encode())
    if metric.alias is not None:
        put_varint(buf, 2, metric.alias)
    if metric.timestamp is not None:
        put_varint(buf, 3, metric.timestamp)
    if metric.datatype is not None:
        put_varint(buf, 4, metric.datatype)
    if metric.is_historical:
        put_varint(buf, 5, 1)
    if metric.is_transient:
        put_varint(buf, 6, 1)
    if metric.is_null:
        put_varint(buf, 7, 1)
    _encode_value(buf, metric)
    return bytes(buf)


def encode_payload(payload: Payload) -> bytes:
    """Encode a payload to protobuf bytes (fields in field-number order).

    Raises:
        CodecError: an integer value outside its datatype's range.
    """
    buf = bytearray()
    if payload.timestamp is not None:
        put_varint(buf, 1, payload.timestamp)
    for metric in payload.metrics:
        put_bytes(buf, 2, _encode_metric(metric))
    if payload.seq is not None:
        put_varint(buf, 3, payload.seq)
    if payload.uuid is not None:
        put_bytes(buf, 4, payload.uuid.encode())
    if payload.body is not None:
        put_bytes(buf, 5, payload.body)
    return bytes(buf)


def _text(value: int | bytes, what: str) -> str:
    if not isinstance(value, bytes):
        raise CodecError(f"{what}: expected a length-delimited field")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise CodecError(f"{what}: invalid UTF-8") from exc


def _int(value: int | bytes, what: str) -> int:
    if not isinstance(value, int):
        raise CodecError(f"{what}: expected a varint")
    return value


def _decode_metric(data: bytes) -> Metric:
    name: str | None = None
    alias = timestamp = datatype = None
    hist = trans = null = False
    value: MetricValue = None
    for num, wtype, raw in iter_fields(data):
        if num == 1:
            name = _text(raw, "metric.name")
        elif num == 2:
            alias = _int(raw, "metric.alias")
        elif num == 3:
            timestamp = _int(raw, "metric.timestamp")
        elif num == 4:
            datatype = _int(raw, "metric.datatype") & 0xFFFFFFFF
        elif num in (5, 6, 7):
            flag = bool(_int(raw, "metric flag"))
            hist, trans, null = (
                (flag, trans, null)
                if num == 5
                else (hist, flag, null)
                if num == 6
                else (hist, trans, flag)
            )
        elif num == _F_INT:
            value = _int(raw, "metric.int_value") & 0xFFFFFFFF
        elif num == _F_LONG:
            value = _int(raw, "metric.long_value")
        elif num == _F_FLOAT and wtype == WT_FIXED32 and isinstance(raw, bytes):
            value = struct.unpack("<f", raw)[0]
        elif num == _F_DOUBLE and wtype == WT_FIXED64 and isinstance(raw, bytes):
            value = struct.unpack("<d", raw)[0]
        elif num == _F_BOOL:
            value = bool(_int(raw, "metric.boolean_value"))
        elif num == _F_STRING:
            value = _text(raw, "metric.string_value")
        elif num == _F_BYTES and wtype == WT_LEN and isinstance(raw, bytes):
            value = bytes(raw)
        elif num in (_F_FLOAT, _F_DOUBLE, _F_BYTES):
            raise CodecError(f"metric field {num}: wrong wire type {wtype}")
        # 8 metadata, 9 properties, 17 dataset, 18 template, 19 extension: skipped
    return Metric(
        name=name,
        alias=alias,
        timestamp=timestamp,
        datatype=datatype,
        is_historical=hist,
        is_transient=trans,
        is_null=null,
        value=None if null else coerce_value(datatype, value),
    )


def decode_payload(data: bytes) -> Payload:
    """Decode protobuf bytes into a :class:`Payload`; unknown fields are skipped.

    Raises:
        CodecError: malformed protobuf or a field of the wrong wire type.
    """
    timestamp = seq = None
    uuid: str | None = None
    body: bytes | None = None
    metrics: list[Metric] = []
    for num, wtype, raw in iter_fields(data):
        if num == 1:
            timestamp = _int(raw, "payload.timestamp")
        elif num == 2:
            if wtype != WT_LEN or not isinstance(raw, bytes):
                raise CodecError("payload.metrics: expected a length-delimited field")
            metrics.append(_decode_metric(raw))
        elif num == 3:
            seq = _int(raw, "payload.seq")
        elif num == 4:
            uuid = _text(raw, "payload.uuid")
        elif num == 5:
            if wtype != WT_LEN or not isinstance(raw, bytes):
                raise CodecError("payload.body: expected a length-delimited field")
            body = bytes(raw)
        elif wtype == WT_VARINT:
            continue  # extensions 6..max
    return Payload(timestamp=timestamp, metrics=tuple(metrics), seq=seq, uuid=uuid, body=body)
