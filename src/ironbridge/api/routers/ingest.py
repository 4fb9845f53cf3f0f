"""Ingest health: rates, backlog and dead letters with their reasons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ironbridge.api.auth import Ctx, CurrentUser
from ironbridge.model import NotFound, Principal, to_datetime
from ironbridge.store import Registry

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])

_PAYLOAD_PREVIEW = 2048


def _visible(registry: Registry, who: Principal, device_id: str, cache: dict[str, bool]) -> bool:
    if device_id not in cache:
        try:
            registry.get_device(who, device_id)
            cache[device_id] = True
        except NotFound:
            # Messages from unknown devices belong to no tenant: root admins see them.
            try:
                registry.get_device(None, device_id)
                cache[device_id] = False
            except NotFound:
                cache[device_id] = who.tenant_path.count("/") == 2 and who.role.value == "admin"
    return cache[device_id]


@router.get("/dead-letters")
async def dead_letters(
    ctx: Ctx,
    who: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> dict[str, Any]:
    """The newest rejected device messages visible to the caller, with field and reason."""
    if ctx.dead_letters is None:
        return {"dead_letters": []}
    raw = await ctx.dead_letters.newest(limit * 4)
    cache: dict[str, bool] = {}
    out: list[dict[str, Any]] = []
    for item in raw:
        device_id = str(item.get("device_id", ""))
        if not await run_in_threadpool(_visible, ctx.registry, who, device_id, cache):
            continue
        payload: bytes = item.get("payload", b"")
        out.append(
            {
                "seq": item.get("seq"),
                "device_id": device_id,
                "field": item.get("field", ""),
                "reason": item.get("reason", ""),
                "subject": item.get("subject", ""),
                "received": to_datetime(int(item.get("received_us", 0))).isoformat(),
                "payload": payload[:_PAYLOAD_PREVIEW].decode("utf-8", errors="replace"),
                "payload_bytes": len(payload),
            }
        )
        if len(out) >= limit:
            break
    return {"dead_letters": out}


@router.get("/stats")
async def stats(ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Ingest rate, totals, rejects and consumer backlog."""
    if ctx.ingest_stats is None:
        return {}
    return dict(await ctx.ingest_stats())
