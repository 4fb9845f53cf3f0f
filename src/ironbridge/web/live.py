"""Fleet summary and live feeds (Server-Sent Events) for the console and API users.

The streams push from the server: the page opens one ``EventSource`` and never polls.
Each stream checks the store for changes at a fixed cadence and sends an event only
when something changed (plus a heartbeat comment), and ends after a bounded lifetime
so that a browser left open never holds up a shutdown; ``EventSource`` reconnects on
its own after the ``retry`` delay.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ironbridge.api.auth import Ctx, CurrentUser
from ironbridge.api.context import ApiContext
from ironbridge.api.responses import FastJSON
from ironbridge.model import Asset, InvalidInput, Principal, TransientError, now_us

router = APIRouter(prefix="/api/v1/live", tags=["live"])

#: an asset whose newest point is younger than this is online
ONLINE_WINDOW_US = 120 * 1_000_000
#: an SSE stream ends after this many seconds; the browser reconnects at once
STREAM_LIFETIME_S = 20.0
_RETRY_MS = 500
#: ingest-rate samples kept per app for the charts of a page opened later: (ms, points/s)
RATE_HISTORY = 900
_POSITION = ("latitude", "longitude")


_PAGE = 10_000


def all_assets(ctx: ApiContext, who: Principal) -> list[Asset]:
    """Every asset visible to ``who``, read page by page."""
    out: list[Asset] = []
    while True:
        page = ctx.registry.list_assets(who, limit=_PAGE, offset=len(out))
        out.extend(page)
        if len(page) < _PAGE:
            return out


def fleet_summary(ctx: ApiContext, who: Principal, now: int | None = None) -> dict[str, Any]:
    """Every visible asset with its last-seen time, online state and position.

    Args:
        ctx: the API context.
        who: the caller (only visible assets are counted).
        now: the current time in µs (default: the clock).

    Returns:
        ``{"now", "counts": {total, online, offline, never, by_type}, "assets": [...]}``;
        each asset has ``id``, ``name``, ``type``, ``last_seen`` (ms or null),
        ``online``, ``lat`` and ``lon`` (null when the asset reports no position).
    """
    now = now_us() if now is None else now
    assets = all_assets(ctx, who)
    refs = ctx.registry.series_of(who, [a.id for a in assets]) if assets else []
    by_id = {r.id: r for r in refs}
    last: dict[str, int] = {}
    pos: dict[str, dict[str, float]] = {}
    if refs:
        table = ctx.store.latest([r.id for r in refs])
        series = table["series"].to_numpy()
        ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
        values = table["value"].to_numpy()
        for s, t, v in zip(series.tolist(), ts.tolist(), values.tolist(), strict=True):
            ref = by_id[int(s)]
            if t > last.get(ref.asset_id, -1):
                last[ref.asset_id] = t
            if ref.measurement in _POSITION:
                pos.setdefault(ref.asset_id, {})[ref.measurement] = v
    by_type: dict[str, dict[str, int]] = {}
    rows: list[dict[str, Any]] = []
    online_n = never_n = 0
    for a in assets:
        seen = last.get(a.id)
        online = seen is not None and now - seen <= ONLINE_WINDOW_US
        online_n += online
        never_n += seen is None
        counts = by_type.setdefault(a.type_name, {"total": 0, "online": 0})
        counts["total"] += 1
        counts["online"] += online
        p = pos.get(a.id, {})
        rows.append(
            {
                "id": a.id,
                "name": a.name,
                "type": a.type_name,
                "last_seen": None if seen is None else seen // 1000,
                "online": online,
                "lat": p.get("latitude"),
                "lon": p.get("longitude"),
            }
        )
    return {
        "now": now // 1000,
        "counts": {
            "total": len(assets),
            "online": online_n,
            "offline": len(assets) - online_n,
            "never": never_n,
            "by_type": by_type,
        },
        "assets": rows,
    }


def latest_of(ctx: ApiContext, who: Principal, asset_id: str) -> dict[str, Any]:
    """Latest value and time (ms) of each measurement of one visible asset."""
    ctx.registry.get_asset(who, asset_id)  # NotFound for an invisible asset
    refs = ctx.registry.series_of(who, [asset_id])
    if not refs:
        return {"asset": asset_id, "values": {}}
    by_id = {r.id: r.measurement for r in refs}
    table = ctx.store.latest(list(by_id))
    ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64) // 1000
    values = {
        by_id[int(s)]: {"ts": int(t), "value": v}
        for s, t, v in zip(
            table["series"].to_pylist(), ts.tolist(), table["value"].to_pylist(), strict=True
        )
    }
    return {"asset": asset_id, "values": values}


@router.get("/fleet")
async def fleet(ctx: Ctx, who: CurrentUser) -> FastJSON:
    """Counts of online/offline machines by type, with each asset's last seen and position."""
    return FastJSON(await run_in_threadpool(fleet_summary, ctx, who))


async def _stream(
    request: Request,
    produce: Callable[[], Awaitable[Any]],
    name: str,
    interval_s: float,
    lifetime_s: float,
) -> AsyncIterator[bytes]:
    yield f"retry: {_RETRY_MS}\n\n".encode()
    deadline = time.monotonic() + lifetime_s
    previous: bytes | None = None
    while time.monotonic() < deadline:
        try:
            data: bytes | None = orjson.dumps(await produce())
        except TransientError:  # the store is busy: keep the stream, try at the next tick
            data = None
        if data is not None and data != previous:
            previous = data
            yield b"event: " + name.encode() + b"\ndata: " + data + b"\n\n"
        else:
            yield b": idle\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(interval_s)


async def ingest_sample(ctx: ApiContext) -> dict[str, Any]:
    """Current ingest stats, with ``history``: the recent (ms, points/s) samples.

    Samples are taken whenever a live feed reads the stats, so the history covers the
    time someone watched; it lives in ``ctx.extra`` and is lost on restart.
    """
    stats = dict(await ctx.ingest_stats()) if ctx.ingest_stats else {}
    history: collections.deque[tuple[int, float]] = ctx.extra.setdefault(
        "web.rate_history", collections.deque(maxlen=RATE_HISTORY)
    )
    rate = stats.get("points_per_s")
    if isinstance(rate, int | float):
        t = now_us() // 1000
        if not history or t - history[-1][0] >= 1000:
            history.append((t, float(rate)))
    stats["history"] = list(history)
    return stats


def _sse(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


Interval = Annotated[float, Query(ge=0.2, le=60.0)]


@router.get("/fleet/stream")
async def fleet_stream(
    request: Request, ctx: Ctx, who: CurrentUser, interval: Interval = 2.0
) -> StreamingResponse:
    """SSE: a ``fleet`` event (the body of ``GET /live/fleet`` plus ``ingest`` stats) on change."""
    pending = [await run_in_threadpool(fleet_summary, ctx, who)]  # errors before streaming

    async def produce() -> dict[str, Any]:
        summary = pending.pop() if pending else await run_in_threadpool(fleet_summary, ctx, who)
        summary["ingest"] = await ingest_sample(ctx)
        summary.pop("now")
        return summary

    return _sse(_stream(request, produce, "fleet", interval, STREAM_LIFETIME_S))


@router.get("/latest/stream")
async def latest_stream(
    request: Request, ctx: Ctx, who: CurrentUser, asset: str = "", interval: Interval = 1.0
) -> StreamingResponse:
    """SSE: a ``latest`` event with every measurement's newest value of ``asset`` on change."""
    if not asset:
        raise InvalidInput("asset", "name the asset to follow")
    pending = [await run_in_threadpool(latest_of, ctx, who, asset)]  # errors before streaming

    async def produce() -> dict[str, Any]:
        return pending.pop() if pending else await run_in_threadpool(latest_of, ctx, who, asset)

    return _sse(_stream(request, produce, "latest", interval, STREAM_LIFETIME_S))


@router.get("/ingest/stream")
async def ingest_stream(
    request: Request, ctx: Ctx, who: CurrentUser, interval: Interval = 2.0
) -> StreamingResponse:
    """SSE: an ``ingest`` event with the body of ``GET /ingest/stats`` on change."""

    async def produce() -> dict[str, Any]:
        return await ingest_sample(ctx)

    return _sse(_stream(request, produce, "ingest", interval, STREAM_LIFETIME_S))


#: work-order states on the service board (closed and cancelled orders leave it)
BOARD_STATES = (
    "new", "assigned", "en_route", "on_site", "in_progress", "on_hold", "completed",
)  # fmt: skip


def work_order_board(ctx: ApiContext, who: Principal, limit: int = 2000) -> dict[str, Any]:
    """The service board: every visible order on it, with its due times (µs)."""
    if ctx.aftersales is None:
        return {"orders": []}
    rows = ctx.aftersales.list_work_orders(who, states=list(BOARD_STATES), limit=limit)
    return {
        "orders": [
            {
                "id": w.id,
                "asset_id": w.asset_id,
                "title": w.title,
                "source": w.source.value,
                "priority": w.priority.value,
                "state": w.state.value,
                "technician_id": w.technician_id,
                "station_id": w.station_id,
                "lat": w.lat,
                "lon": w.lon,
                "created_us": w.created_us,
                "response_due_us": w.response_due_us,
                "repair_due_us": w.repair_due_us,
                "arrived_us": w.arrived_us,
                "completed_us": w.completed_us,
            }
            for w in rows
        ]
    }


@router.get("/work-orders/stream")
async def work_orders_stream(
    request: Request, ctx: Ctx, who: CurrentUser, interval: Interval = 2.0
) -> StreamingResponse:
    """SSE: a ``board`` event with the open and completed work orders whenever one changes."""

    async def produce() -> dict[str, Any]:
        return await run_in_threadpool(work_order_board, ctx, who)

    return _sse(_stream(request, produce, "board", interval, STREAM_LIFETIME_S))


__all__ = ["all_assets", "fleet_summary", "latest_of", "router", "work_order_board"]
