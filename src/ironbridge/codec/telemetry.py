"""Telemetry JSON: the payloads devices send over MQTT and HTTP.

Three shapes are accepted (the first two are what ThingsBoard devices already speak):

* one sample: ``{"ts": <ms>, "values": {"m": 1.5, ...}}`` (``ts`` optional: the
  platform's receive time is used), or a bare ``{"m": 1.5, ...}``;
* a list of samples: ``[{"ts": ..., "values": {...}}, ...]``;
* a columnar batch for high rates: ``{"ts": [<ms>, ...], "values": {"m": [...], ...}}``.

An optional ``"asset": "<id>"`` (top level, or per sample) targets one of the device's
bound assets instead of its default one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ironbridge.model import InvalidInput

_RESERVED = frozenset({"ts", "values", "asset"})
_INT_ONLY = frozenset({int})


@dataclass(frozen=True, slots=True, kw_only=True)
class Samples:
    """Columnar samples of one target asset.

    Attributes:
        asset: target asset id, or ``None`` for the device's default asset.
        ts_ms: one timestamp per row in ms since the epoch, or ``None`` where the
            sender gave none (the receive time applies).
        values: measurement name -> one value per row (``None`` where absent).
        where: path of this block in the payload, for error messages.
    """

    asset: str | None
    ts_ms: list[int | None]
    values: dict[str, list[Any]]
    where: str


def _ts(raw: object, where: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise InvalidInput(where, "must be a number of milliseconds since 1970-01-01 UTC")
    if raw != raw or raw in (float("inf"), float("-inf")):
        raise InvalidInput(where, "must be a finite number")
    return int(raw)


def _asset(raw: object, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise InvalidInput(where, "must be an asset id (a non-empty string)")
    return raw


def _sample(obj: dict[str, Any], where: str) -> Samples:
    prefix = f"{where}." if where else ""
    if "values" in obj:
        values = obj["values"]
        if not isinstance(values, dict):
            raise InvalidInput(f"{prefix}values", "must be an object of measurement: value")
        extra = sorted(set(obj) - _RESERVED)
        if extra:
            raise InvalidInput(f"{prefix}{extra[0]}", "unexpected field next to 'values'")
        ts_raw = obj.get("ts")
        if isinstance(ts_raw, list):
            return _columnar(obj, where)
        ts = _ts(ts_raw, f"{prefix}ts")
        return Samples(
            asset=_asset(obj.get("asset"), f"{prefix}asset"),
            ts_ms=[ts],
            values={k: [v] for k, v in values.items()},
            where=f"{prefix}values",
        )
    if "ts" in obj:
        raise InvalidInput(f"{prefix}values", "is required when 'ts' is given")
    # ThingsBoard's bare form: the whole object is the values, stamped on receipt.
    values = {k: v for k, v in obj.items() if k != "asset"}
    return Samples(
        asset=_asset(obj.get("asset"), f"{prefix}asset"),
        ts_ms=[None],
        values={k: [v] for k, v in values.items()},
        where=where,
    )


def _columnar(obj: dict[str, Any], where: str) -> Samples:
    prefix = f"{where}." if where else ""
    ts_list = obj["ts"]
    n = len(ts_list)
    if set(map(type, ts_list)) <= _INT_ONLY:
        # the common case, checked in one pass (no per-element message formatting)
        ts: list[int | None] = ts_list
    else:
        ts = [_ts(t, f"{prefix}ts[{i}]") for i, t in enumerate(ts_list)]
    if any(t is None for t in ts):
        raise InvalidInput(f"{prefix}ts", "a columnar batch needs a timestamp for every row")
    columns: dict[str, Any] = obj["values"]
    if all(type(c) is list and len(c) == n for c in columns.values()):
        # the common case, checked in one pass; the loop below words the error
        return Samples(
            asset=_asset(obj.get("asset"), f"{prefix}asset"),
            ts_ms=ts,
            values=columns,
            where=f"{prefix}values",
        )
    values: dict[str, list[Any]] = {}
    for name, column in columns.items():
        if not isinstance(column, list):
            raise InvalidInput(f"{prefix}values.{name}", "must be a list in a columnar batch")
        if len(column) != n:
            raise InvalidInput(
                f"{prefix}values.{name}", f"has {len(column)} values for {n} timestamps"
            )
        values[name] = column
    return Samples(
        asset=_asset(obj.get("asset"), f"{prefix}asset"),
        ts_ms=ts,
        values=values,
        where=f"{prefix}values",
    )


def decode_telemetry(payload: bytes) -> list[Samples]:
    """Decode a telemetry payload into columnar sample blocks.

    Args:
        payload: the raw message body (UTF-8 JSON).

    Returns:
        One :class:`Samples` block per sample object (one for a columnar batch).

    Raises:
        InvalidInput: naming the offending field (``[3].ts``, ``values.rpm``) and why.
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("", f"payload is not valid JSON: {exc}") from exc
    if isinstance(doc, dict):
        if not doc:
            raise InvalidInput("", "payload has no values")
        return [_sample(doc, "")]
    if isinstance(doc, list):
        if not doc:
            raise InvalidInput("", "payload is an empty list")
        blocks = []
        for i, item in enumerate(doc):
            if not isinstance(item, dict):
                raise InvalidInput(f"[{i}]", "each sample must be an object")
            blocks.append(_sample(item, f"[{i}]"))
        return blocks
    raise InvalidInput("", "payload must be a JSON object or a list of objects")


def encode_telemetry(ts_ms: int, values: dict[str, float | int | bool]) -> bytes:
    """Encode one sample in the ``{"ts", "values"}`` form."""
    return orjson.dumps({"ts": ts_ms, "values": values})


def encode_columnar(ts_ms: list[int], values: dict[str, list[float]]) -> bytes:
    """Encode a columnar batch ``{"ts": [...], "values": {"m": [...]}}``."""
    return orjson.dumps({"ts": ts_ms, "values": values})
