"""Device telemetry over HTTP: the same bodies as MQTT, validated before they are accepted."""

from __future__ import annotations

from fastapi import APIRouter, Request

from ironbridge.api.auth import Ctx, CurrentDevice
from ironbridge.api.schemas import TelemetryAccepted
from ironbridge.codec import decode_telemetry
from ironbridge.ingest import to_points
from ironbridge.model import AuthenticationFailed, InvalidInput, now_us

router = APIRouter(prefix="/api/v1", tags=["telemetry"])

#: HTTP bodies above this size are refused (use several requests or MQTT batches).
MAX_BODY_BYTES = 4 * 1024 * 1024


@router.post("/telemetry", status_code=202)
async def post_telemetry(request: Request, device: CurrentDevice, ctx: Ctx) -> TelemetryAccepted:
    """Accept telemetry from a device (HTTP Basic: device id and credential).

    The body is validated against the device's asset types first, so a bad reading is
    answered with 422 naming the field; an accepted body is durably queued (JetStream)
    before the 202 is sent, and stored by the ingest worker.
    """
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise InvalidInput("", f"body larger than {MAX_BODY_BYTES} bytes")
    route = await ctx.routes.aget(device.id)
    if route is None or route.revoked:
        raise AuthenticationFailed(f"device {device.id!r} is not registered or is revoked")
    received = now_us()
    points = to_points(decode_telemetry(body), route, received, received)
    seq = await ctx.publisher.publish(
        f"ib.v1.{device.id}.telemetry", body, headers={"Ib-Received-Us": str(received)}
    )
    return TelemetryAccepted(accepted_points=len(points), stream_seq=seq)
