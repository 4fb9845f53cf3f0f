"""Alarms: list with filters, act (acknowledge, comment, shelve, unshelve), history, KPIs, feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.routers.rules import alarm_store
from ironbridge.model import InvalidInput, now_us
from ironbridge.rules import Alarm, AlarmAction, alarm_kpis

router = APIRouter(prefix="/api/v1", tags=["alarms"])

_ACTIONS = {
    "acknowledge": AlarmAction.ACKNOWLEDGE,
    "comment": AlarmAction.COMMENT,
    "shelve": AlarmAction.SHELVE,
    "unshelve": AlarmAction.UNSHELVE,
}


class AlarmActionBody(BaseModel):
    """An operator action on an alarm."""

    comment: str = Field(default="", max_length=2000)
    duration_s: float | None = Field(default=None, gt=0, le=30 * 86400)


def _public(a: Alarm) -> dict[str, Any]:
    return {
        "id": a.id,
        "tenant_id": a.tenant_id,
        "asset_id": a.asset_id,
        "asset_type": a.asset_type,
        "rule_id": a.rule_id,
        "severity": a.severity.value,
        "state": a.state.value,
        "active": a.active,
        "message": a.message,
        "value": a.value,
        "count": a.count,
        "raised_us": a.raised_us,
        "changed_us": a.changed_us,
        "activated_us": a.activated_us,
        "shelved_until_us": a.shelved_until_us,
        "acked_by": a.acked_by,
        "acked_us": a.acked_us,
        "closed": a.closed,
    }


@router.get("/alarms")
def list_alarms(
    ctx: Ctx,
    who: CurrentUser,
    state: Annotated[list[str] | None, Query()] = None,
    severity: Annotated[list[str] | None, Query()] = None,
    asset_id: str | None = None,
    asset_type: Annotated[str | None, Query(alias="type")] = None,
    rule_id: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    include_closed: bool = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    """List alarms (open ones unless ``include_closed``), newest change first."""
    alarms = alarm_store(ctx).list_alarms(
        who,
        state=state or (),
        severity=severity or (),
        asset_id=asset_id,
        asset_type=asset_type,
        rule_id=rule_id,
        since_us=since_us,
        until_us=until_us,
        open_only=not include_closed,
        limit=limit,
    )
    return [_public(a) for a in alarms]


@router.get("/alarms/kpis")
def kpis(
    ctx: Ctx,
    who: CurrentUser,
    since_us: int | None = None,
    until_us: int | None = None,
    operators: Annotated[int, Query(ge=1)] = 1,
) -> dict[str, Any]:
    """Alarm rate per operator, floods, chattering and stale alarms (default: last 24 h)."""
    until = until_us or now_us()
    since = since_us or until - 24 * 3600 * 1_000_000
    store = alarm_store(ctx)
    history = store.history(who, since_us=since, limit=1_000_000)
    return alarm_kpis(
        history,
        store.list_alarms(who, limit=10_000),
        since_us=since,
        until_us=until,
        operators=operators,
    )


@router.get("/alarms/feed")
async def feed(ctx: Ctx, who: CurrentUser, after_id: int = 0) -> StreamingResponse:
    """Live alarm changes as server-sent events (``text/event-stream``)."""
    store = alarm_store(ctx)
    if after_id <= 0:
        after_id = await run_in_threadpool(store.latest_event_id, who)

    async def events() -> AsyncIterator[bytes]:
        last = after_id
        yield b": ironbridge alarm feed\n\n"
        while True:
            rows = await run_in_threadpool(store.history, who, None, after_id=last, limit=500)
            for r in rows:
                last = r["id"]
                yield f"id: {r['id']}\nevent: alarm\ndata: {json.dumps(r)}\n\n".encode()
            await asyncio.sleep(0.25)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get("/alarms/{alarm_id}")
def get_alarm(alarm_id: int, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Return one alarm."""
    return _public(alarm_store(ctx).get_alarm(who, alarm_id))


@router.get("/alarms/{alarm_id}/history")
def history(alarm_id: int, ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """Every change of an alarm: who did what, when, from which state to which."""
    store = alarm_store(ctx)
    store.get_alarm(who, alarm_id)
    return store.history(who, alarm_id)


@router.post("/alarms/{alarm_id}/{action}")
def act(
    alarm_id: int, action: str, body: AlarmActionBody, ctx: Ctx, who: Operator
) -> dict[str, Any]:
    """Acknowledge, comment, shelve (``duration_s``) or unshelve an alarm."""
    kind = _ACTIONS.get(action)
    if kind is None:
        raise InvalidInput("action", f"must be one of {', '.join(_ACTIONS)}")
    alarm = alarm_store(ctx).act(
        who, alarm_id, kind, comment=body.comment, shelve_for_s=body.duration_s
    )
    return _public(alarm)
