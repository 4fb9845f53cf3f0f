"""Raw J1939 CAN frames from loggers and edge boxes: SPNs to telemetry, DM1 to fault events."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from ironbridge.api.auth import Ctx, CurrentDevice
from ironbridge.codec import decode_telemetry
from ironbridge.connect.j1939_decoder import J1939Decoder
from ironbridge.ingest import to_events, to_points
from ironbridge.model import AuthenticationFailed, InvalidInput, now_us

router = APIRouter(prefix="/api/v1/j1939", tags=["j1939"])

MAX_BODY_BYTES = 8 * 1024 * 1024
_DECODERS = "j1939_decoders"


@router.post("/frames", status_code=202)
async def post_frames(request: Request, device: CurrentDevice, ctx: Ctx) -> dict[str, Any]:
    """Accept ``candump -l`` lines (text/plain) from a device (HTTP Basic).

    Known SPNs become measurements of the device's first asset (those its asset type
    declares; others are counted as ``ignored``); DM1 messages (single-frame or BAM /
    RTS-CTS multi-packet) become ``j1939_dtc`` events with ``payload.state`` ``opened``,
    ``recurred`` or ``cleared``, compared with the previous DM1 of the same source address
    (state kept per device across uploads). Lines that do not parse are listed with their
    line number and reason; the rest is accepted.
    """
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput("", f"body larger than {MAX_BODY_BYTES} bytes")
    route = await ctx.routes.aget(device.id)
    if route is None or route.revoked:
        raise AuthenticationFailed(f"device {device.id!r} is not registered or is revoked")
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput("", "body must be ASCII candump log lines") from exc
    asset_id = route.asset_ids[0]
    decoders: dict[str, J1939Decoder] = ctx.extra.setdefault(_DECODERS, {})
    decoder = decoders.get(device.id)
    if decoder is None or decoder.asset_id != asset_id:
        decoder = decoders[device.id] = J1939Decoder(asset_id)
    out = decoder.feed_lines(text.splitlines())
    asset_type = route.types[asset_id]
    ts_list = sorted(out.samples)
    names = sorted({n for v in out.samples.values() for n in v})
    known = [n for n in names if asset_type.measurement(n) is not None]
    received = now_us()
    points = 0
    seqs: list[int] = []
    if known and ts_list:
        payload = orjson.dumps(
            {"ts": ts_list, "values": {n: [out.samples[t].get(n) for t in ts_list] for n in known}}
        )
        points = len(to_points(decode_telemetry(payload), route, received, received))
        seqs.append(
            await ctx.publisher.publish(
                f"ib.v1.{device.id}.telemetry", payload, {"Ib-Received-Us": str(received)}
            )
        )
    if out.events:
        payload = orjson.dumps(
            {
                "events": [
                    {"ts": e.ts_us // 1000, "kind": e.kind, "code": e.code, "payload": e.payload}
                    for e in out.events
                ]
            }
        )
        to_events(payload, route, received, received)
        seqs.append(
            await ctx.publisher.publish(
                f"ib.v1.{device.id}.events", payload, {"Ib-Received-Us": str(received)}
            )
        )
    return {
        "frames": out.frames,
        "accepted_points": points,
        "ignored_measurements": sorted(set(names) - set(known)),
        "events": [{"code": e.code, **e.payload} for e in out.events],
        "errors": [{"line": n, "reason": r} for n, r in out.errors],
        "stream_seqs": seqs,
    }
