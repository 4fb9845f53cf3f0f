"""Validation of device events: ``{"events": [{"ts", "kind", "code", "payload", "asset"}]}``.

Events (fault codes, alarm flags, logins) travel on ``ib.v1.<device>.events`` and are
stored with the points of the same batch, in one transaction. As with telemetry a
message is accepted or rejected whole, with the field and the reason.
"""

from __future__ import annotations

from typing import Any

import orjson

from ironbridge.model import (
    MAX_FUTURE_SKEW_US,
    MIN_DEVICE_TS_US,
    US_PER_MS,
    Event,
    InvalidInput,
)
from ironbridge.store import DeviceRoute

#: more events than this in one message is a misbehaving device
MAX_EVENTS_PER_MESSAGE = 10_000
_MAX_TEXT = 128


def _text(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not raw or len(raw) > _MAX_TEXT:
        raise InvalidInput(where, f"must be a non-empty string of at most {_MAX_TEXT} characters")
    return raw


def to_events(payload: bytes, route: DeviceRoute, received_us: int, now_us: int) -> list[Event]:
    """Decode and validate an events message of one device.

    Args:
        payload: the JSON body.
        route: the device's assets (an event names one with ``asset``, default the first).
        received_us: stamped on events without ``ts``.
        now_us: the platform's clock, for the future-timestamp check.

    Raises:
        InvalidInput: not JSON, wrong shape, unknown asset, or a bad timestamp.
    """
    try:
        doc: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput("", f"not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise InvalidInput("events", 'expected {"events": [...]}')
    raw_events = doc["events"]
    if len(raw_events) > MAX_EVENTS_PER_MESSAGE:
        raise InvalidInput("events", f"more than {MAX_EVENTS_PER_MESSAGE} events")
    latest_ok = now_us + MAX_FUTURE_SKEW_US
    out: list[Event] = []
    for i, raw in enumerate(raw_events):
        where = f"events[{i}]"
        if not isinstance(raw, dict):
            raise InvalidInput(where, "must be an object")
        asset = raw.get("asset") or route.asset_ids[0]
        if asset not in route.series:
            raise InvalidInput(f"{where}.asset", f"asset {asset!r} is not bound to this device")
        ts_raw = raw.get("ts")
        if ts_raw is None:
            ts = received_us
        elif isinstance(ts_raw, int) and not isinstance(ts_raw, bool):
            ts = ts_raw * US_PER_MS
        else:
            raise InvalidInput(f"{where}.ts", "must be an integer (ms since the epoch)")
        if ts < MIN_DEVICE_TS_US or ts > latest_ok:
            raise InvalidInput(f"{where}.ts", f"timestamp {ts // US_PER_MS} ms is out of range")
        payload_obj = raw.get("payload", {})
        if not isinstance(payload_obj, dict):
            raise InvalidInput(f"{where}.payload", "must be an object")
        out.append(
            Event(
                asset_id=str(asset),
                ts_us=ts,
                kind=_text(raw.get("kind"), f"{where}.kind"),
                code=_text(raw.get("code"), f"{where}.code"),
                payload=payload_obj,
            )
        )
    return out
