"""Devices: connection identities, their credentials and revocation."""

from __future__ import annotations

import shlex
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.api.schemas import DeviceCreate, DevicePublic
from ironbridge.model import Device

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


def connection_examples(ctx: ApiContext, device_id: str, credential: str) -> dict[str, str]:
    """Ready-to-run commands that send one reading as this device."""
    payload = '{"values": {"temperature": 21.5}}'
    return {
        "mosquitto_pub": " ".join(
            [
                "mosquitto_pub",
                f"-h {ctx.mqtt_host} -p {ctx.mqtt_port} -q 1",
                f"-i {shlex.quote(device_id)} -u {shlex.quote(device_id)}",
                f"-P {shlex.quote(credential)}",
                f"-t ib/v1/{device_id}/telemetry",
                f"-m {shlex.quote(payload)}",
            ]
        ),
        "curl": " ".join(
            [
                "curl -sS",
                f"-u {shlex.quote(device_id + ':' + credential)}",
                "-H 'Content-Type: application/json'",
                f"-d {shlex.quote(payload)}",
                f"{ctx.public_url}/api/v1/telemetry",
            ]
        ),
    }


async def _changed(ctx: ApiContext, device_id: str) -> None:
    ctx.routes.invalidate(device_id)
    await ctx.on_devices_changed()


@router.get("")
def list_devices(
    ctx: Ctx,
    who: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[DevicePublic]:
    """List visible devices."""
    return [DevicePublic.of(d) for d in ctx.registry.list_devices(who, limit=limit, offset=offset)]


@router.post("", status_code=201)
async def create_device(body: DeviceCreate, ctx: Ctx, who: Operator) -> DevicePublic:
    """Create a device; its credential and connection examples are returned this once."""
    device = Device(
        id=body.id,
        tenant_id=body.tenant_id or who.tenant_id,
        asset_ids=tuple(body.asset_ids),
        name=body.name or body.id,
    )
    saved, credential = await run_in_threadpool(ctx.registry.create_device, who, device)
    await _changed(ctx, saved.id)
    out = DevicePublic.of(saved)
    out.credential = credential
    out.examples = connection_examples(ctx, saved.id, credential)
    return out


@router.get("/{device_id}")
def get_device(device_id: str, ctx: Ctx, who: CurrentUser) -> DevicePublic:
    """Return one device."""
    return DevicePublic.of(ctx.registry.get_device(who, device_id))


@router.post("/{device_id}/rotate-credential")
async def rotate_credential(device_id: str, ctx: Ctx, who: Operator) -> DevicePublic:
    """Issue a new credential; the old one stops working at once."""
    credential = await run_in_threadpool(ctx.registry.rotate_device_credential, who, device_id)
    await _changed(ctx, device_id)
    out = DevicePublic.of(await run_in_threadpool(ctx.registry.get_device, who, device_id))
    out.credential = credential
    out.examples = connection_examples(ctx, device_id, credential)
    return out


@router.post("/{device_id}/revoke")
async def revoke_device(device_id: str, ctx: Ctx, who: Operator) -> DevicePublic:
    """Revoke a device: its connections are closed and it can no longer send."""
    device = await run_in_threadpool(ctx.registry.set_device_revoked, who, device_id, True)
    await _changed(ctx, device_id)
    return DevicePublic.of(device)


@router.post("/{device_id}/reinstate")
async def reinstate_device(device_id: str, ctx: Ctx, who: Operator) -> DevicePublic:
    """Undo a revocation."""
    device = await run_in_threadpool(ctx.registry.set_device_revoked, who, device_id, False)
    await _changed(ctx, device_id)
    return DevicePublic.of(device)


@router.delete("/{device_id}", status_code=204)
async def delete_device(device_id: str, ctx: Ctx, who: Operator) -> None:
    """Delete a device."""
    await run_in_threadpool(ctx.registry.delete_device, who, device_id)
    await _changed(ctx, device_id)
