"""Plant model and production KPIs: sites, OEE, downtime Pareto, state timeline, SPC.

A site's stations are assets whose ``state``/``reason``/``good_count``/``scrap_count``
measurements carry their data (see :mod:`ironbridge.analytics.sites`); results are
computed on request from the stored telemetry.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import yaml
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ironbridge.analytics.oee import compute_oee, downtime_pareto, rollup_lines, state_timeline
from ironbridge.analytics.plant import Line, Station, StationState
from ironbridge.analytics.plant_data import load_logs, load_series
from ironbridge.analytics.sites import SavedSite, SiteRepository, parse_reason_codes
from ironbridge.analytics.spc import ChartKind, chart_series, fit_limits
from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.api.responses import FastJSON
from ironbridge.api.routers.query import parse_time
from ironbridge.model import InvalidInput, NotFound, Principal, now_us

router = APIRouter(prefix="/api/v1/plant", tags=["plant"])

_DAY_US = 86_400_000_000


def _repo(ctx: ApiContext) -> SiteRepository:
    if ctx.plant_sites is None:
        raise NotFound("feature", "plant")
    return ctx.plant_sites


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k: _jsonable(v) for k, v in row.items()} for row in table.to_pylist()]


def _window(start: str | None, end: str | None, default_span_us: int) -> tuple[int, int]:
    end_us = parse_time(end, now_us(), "end")
    start_us = parse_time(start, end_us - default_span_us, "start")
    if start_us >= end_us:
        raise InvalidInput("start", "must be before end")
    return start_us, end_us


def _site_public(saved: SavedSite) -> dict[str, Any]:
    return {
        "id": saved.site.id,
        "tenant_id": saved.tenant_id,
        "definition": saved.definition,
        "reason_codes": {str(k): v for k, v in saved.reason_codes.items()},
        "lines": [
            {
                "id": line.id,
                "bottleneck": line.bottleneck_station.id,
                "stations": [
                    {
                        "id": s.id,
                        "name": s.name or s.id,
                        "ideal_cycle_s": s.ideal_cycle_s,
                        "micro_stop_s": s.micro_stop_s,
                        "state_from": s.state_from,
                        "counts_from": s.counts_from,
                    }
                    for s in line.stations
                ],
            }
            for line in saved.site.lines
        ],
    }


@router.post("/sites", status_code=201)
async def create_site(
    request: Request, ctx: Ctx, who: Operator, tenant_id: str | None = None
) -> dict[str, Any]:
    """Create a site from JSON or YAML: ``{id, calendar, lines, reason_codes?}``."""
    try:
        doc = yaml.safe_load(await request.body())
    except yaml.YAMLError as exc:
        raise InvalidInput("", f"body is not valid YAML or JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInput("", "the body must be a mapping")
    reasons = parse_reason_codes(doc.pop("reason_codes", None))
    tenant = await run_in_threadpool(ctx.registry.get_tenant, who, tenant_id or who.tenant_id)
    saved = await run_in_threadpool(_repo(ctx).create, tenant.id, tenant.path, doc, reasons)
    return _site_public(saved)


@router.get("/sites")
async def list_sites(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """Sites visible to the caller."""
    return [_site_public(s) for s in await run_in_threadpool(_repo(ctx).list, who)]


@router.get("/sites/{site_id}")
async def get_site(site_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """One site with its lines and stations."""
    return _site_public(await run_in_threadpool(_repo(ctx).get, who, site_id))


@router.delete("/sites/{site_id}", status_code=204)
async def delete_site(site_id: str, ctx: Ctx, who: Operator) -> None:
    """Delete a site (the stations' assets and data stay)."""
    await run_in_threadpool(_repo(ctx).delete, who, site_id)


def _scope(
    saved: SavedSite, line: str | None, station: str | None
) -> tuple[list[Line], list[Station]]:
    lines = list(saved.site.lines)
    if line is not None:
        lines = [ln for ln in lines if ln.id == line]
        if not lines:
            raise InvalidInput("line", f"site {saved.site.id!r} has no line {line!r}")
    stations = [s for ln in lines for s in ln.stations]
    if station is not None:
        stations = [s for s in stations if s.id == station]
        if not stations:
            raise InvalidInput("station", f"no station {station!r} on the selected lines")
    return lines, stations


def _series(ctx: ApiContext, who: Principal, stations: list[str]) -> dict[tuple[str, str], int]:
    return {(r.asset_id, r.measurement): r.id for r in ctx.registry.series_of(who, stations)}


def _logs(
    ctx: ApiContext, who: Principal, saved: SavedSite, stations: list[Station], s: int, e: int
) -> Any:
    ids = [st.id for st in stations]
    return load_logs(ctx.store, _series(ctx, who, ids), stations, saved.reason_codes, s, e)


@router.get("/oee")
async def oee(
    ctx: Ctx,
    who: CurrentUser,
    site: str,
    line: str | None = None,
    station: str | None = None,
    period: Literal["shift", "day", "week"] = "shift",
    rollup: Literal["bottleneck", "time_weighted"] = "bottleneck",
    start: str | None = None,
    end: str | None = None,
) -> FastJSON:
    """OEE (availability x effectiveness x quality, ISO 22400-2) per station and line.

    Rows per shift instance, production day or ISO week (``period``), with the ISO time
    elements in seconds, part counts, micro-stop time and count. Lines roll up by their
    bottleneck station (default) or time-weighted over their stations.
    """
    saved = await run_in_threadpool(_repo(ctx).get, who, site)
    lines, stations = _scope(saved, line, station)
    s, e = _window(start, end, _DAY_US)

    def compute() -> dict[str, Any]:
        states, counts = _logs(ctx, who, saved, stations, s, e)
        report = compute_oee(stations, saved.site.calendar, states, counts, s, e)
        table = {"shift": report.shifts, "day": report.days, "week": report.weeks}[period]
        return {
            "site": site,
            "period": period,
            "start_us": s,
            "end_us": e,
            "stations": _rows(table),
            "lines": _rows(rollup_lines(table, lines, rollup)) if station is None else [],
        }

    return FastJSON(await run_in_threadpool(compute))


@router.get("/pareto")
async def pareto(
    ctx: Ctx,
    who: CurrentUser,
    site: str,
    line: str | None = None,
    station: str | None = None,
    state: Literal["down", "idle", "setup", "planned_stop"] = "down",
    start: str | None = None,
    end: str | None = None,
) -> FastJSON:
    """Stop time by reason inside planned busy time, largest first, with cumulative share."""
    saved = await run_in_threadpool(_repo(ctx).get, who, site)
    _, stations = _scope(saved, line, station)
    s, e = _window(start, end, _DAY_US)

    def compute() -> list[dict[str, Any]]:
        states, _ = _logs(ctx, who, saved, stations, s, e)
        return _rows(downtime_pareto(states, saved.site.calendar, s, e, state=state))

    return FastJSON({"site": site, "state": state, "reasons": await run_in_threadpool(compute)})


@router.get("/timeline")
async def timeline(
    ctx: Ctx,
    who: CurrentUser,
    site: str,
    station: str,
    start: str | None = None,
    end: str | None = None,
) -> FastJSON:
    """Merged state intervals of one station (unknown before its first state)."""
    saved = await run_in_threadpool(_repo(ctx).get, who, site)
    _, stations = _scope(saved, None, station)
    s, e = _window(start, end, 8 * 3_600_000_000)

    def compute() -> list[dict[str, Any]]:
        states, _ = _logs(ctx, who, saved, stations, s, e)
        return _rows(state_timeline(states, station, s, e))

    return FastJSON({"station": station, "intervals": await run_in_threadpool(compute)})


_CHARTS = {"i-mr": ChartKind.I_MR, "xbar-r": ChartKind.XBAR_R, "xbar-s": ChartKind.XBAR_S}


@router.get("/spc")
async def spc(
    ctx: Ctx,
    who: CurrentUser,
    asset: str,
    measurement: str,
    reference_start: str,
    reference_end: str,
    chart: Literal["i-mr", "xbar-r", "xbar-s"] = "i-mr",
    subgroup: Annotated[int, Query(ge=2, le=25)] = 5,
    start: str | None = None,
    end: str | None = None,
) -> FastJSON:
    """A control chart of a quality measurement with limits from a reference period.

    Individuals (I-MR) or consecutive subgroups of ``subgroup`` samples (X̄-R, X̄-S).
    ``violations`` maps each Nelson rule (1-8) to the indices of points where it fired;
    ``alarms`` lists those points with their time and rules.
    """
    ref_s, ref_e = _window(reference_start, reference_end, _DAY_US)
    s, e = _window(start, end, _DAY_US)
    refs = await run_in_threadpool(ctx.registry.series_of, who, [asset])
    ref = next((r for r in refs if r.measurement == measurement), None)
    if ref is None:
        await run_in_threadpool(ctx.registry.get_asset, who, asset)
        raise InvalidInput("measurement", f"asset {asset!r} has no measurement {measurement!r}")
    kind = _CHARTS[chart]

    def compute() -> dict[str, Any]:
        _, ref_values = load_series(ctx.store, ref.id, ref_s, ref_e)
        ts, values = load_series(ctx.store, ref.id, s, e)
        limits = fit_limits(kind, ref_values, subgroup)
        result, stamps = chart_series(limits, ts, values)
        fired: dict[int, list[int]] = {}
        for rule, idx in result.violations.items():
            for i in idx.tolist():
                fired.setdefault(int(i), []).append(rule)
        return {
            "asset": asset,
            "measurement": measurement,
            "chart": chart,
            "limits": {
                "center": limits.center,
                "ucl": limits.ucl,
                "lcl": limits.lcl,
                "sigma": limits.sigma,
                "dispersion_center": limits.dispersion_center,
                "dispersion_ucl": limits.dispersion_ucl,
                "dispersion_lcl": limits.dispersion_lcl,
                "process_sigma": limits.process_sigma,
                "subgroup_size": limits.subgroup_size,
                "reference_samples": len(ref_values),
            },
            "ts_us": stamps.astype(np.int64),
            "points": result.points,
            "dispersion": result.dispersion,
            "violations": {str(r): idx for r, idx in result.violations.items() if len(idx)},
            "alarms": [
                {"index": i, "ts_us": int(stamps[i]), "value": float(result.points[i]), "rules": rs}
                for i, rs in sorted(fired.items())
            ],
        }

    return FastJSON(await run_in_threadpool(compute))


# ------------------------------------------------------------------------ live line view

#: the line view's figures are recomputed at most this often per site
LIVE_CACHE_US = 4_000_000
#: an SSE stream ends after this many seconds; the browser reconnects at once
STREAM_LIFETIME_S = 20.0
_RETRY_MS = 500


def _current_shift(saved: SavedSite, now: int) -> tuple[int, str | None]:
    """Start of the shift instance running at ``now`` (else the last 8 hours) and its name."""
    cal = saved.site.calendar.periods(now - _DAY_US, now)
    for i in range(len(cal) - 1, -1, -1):
        if cal.start_us[i] <= now - 1 < cal.end_us[i]:
            return int(cal.start_us[i]), cal.shift_names[int(cal.shift[i])]
    return now - 8 * 3_600_000_000, None


_RATIOS = ("oee", "availability", "effectiveness", "quality")


def _ratio_of(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _jsonable(row.get(k)) for k in _RATIOS}


def live_view(ctx: ApiContext, who: Principal, site: str, now: int | None = None) -> dict[str, Any]:
    """The line view of a site: every station's state now and its shift figures so far.

    Per station: ``state``, ``reason``, ``since_us`` (start of the current state),
    ``good``/``scrap`` and OEE with its factors since the current shift began; per
    line the same OEE rolled up by its bottleneck.
    """
    now = now_us() if now is None else now
    saved = _repo(ctx).get(who, site)
    stations = list(saved.site.stations)
    start, shift = _current_shift(saved, now)
    states, counts = _logs(ctx, who, saved, stations, start, now)
    report = compute_oee(stations, saved.site.calendar, states, counts, start, now)
    rows = {r["station"]: r for r in report.shifts.to_pylist() if r["end_us"] == now}
    line_rows = {
        r["line"]: r
        for r in rollup_lines(report.shifts, saved.site.lines).to_pylist()
        if r["end_us"] == now
    }
    index = {name: i for i, name in enumerate(states.stations)}
    state_names = [s.value for s in StationState]
    lines = []
    for line in saved.site.lines:
        out = []
        for st in line.stations:
            state, reason, since = StationState.UNKNOWN.value, None, None
            if st.id in index:
                ts, codes, reasons = states.slice_of(index[st.id])
                if len(ts):
                    state = state_names[int(codes[-1])]
                    r = int(reasons[-1])
                    reason = states.reasons[r] if r >= 0 else None
                    change = np.flatnonzero(codes != codes[-1])
                    since = int(ts[change[-1] + 1]) if len(change) else int(ts[0])
            row = rows.get(st.id, {})
            out.append(
                {
                    "id": st.id,
                    "name": st.name or st.id,
                    "ideal_cycle_s": st.ideal_cycle_s,
                    "state": state,
                    "reason": reason,
                    "since_us": since,
                    "good": int(row.get("good") or 0),
                    "scrap": int(row.get("scrap") or 0),
                    "micro_stop_count": int(row.get("micro_stop_count") or 0),
                    **_ratio_of(row),
                }
            )
        lrow = line_rows.get(line.id, {})
        lines.append(
            {
                "id": line.id,
                "name": line.name or line.id,
                "bottleneck": line.bottleneck_station.id,
                "good": int(lrow.get("good") or 0),
                "scrap": int(lrow.get("scrap") or 0),
                **_ratio_of(lrow),
                "stations": out,
            }
        )
    return {
        "site": saved.site.id,
        "name": saved.site.name or saved.site.id,
        "now_us": now,
        "shift": shift,
        "shift_start_us": start,
        "lines": lines,
    }


async def _live_cached(ctx: ApiContext, who: Principal, site: str) -> dict[str, Any]:
    cache: dict[tuple[str, str], tuple[int, dict[str, Any]]] = ctx.extra.setdefault(
        "plant.live", {}
    )
    key = (who.tenant_path, site)
    hit = cache.get(key)
    now = now_us()
    if hit is not None and now - hit[0] < LIVE_CACHE_US:
        return hit[1]
    view = await run_in_threadpool(live_view, ctx, who, site, now)
    cache[key] = (now, view)
    return view


@router.get("/live")
async def live(ctx: Ctx, who: CurrentUser, site: str) -> FastJSON:
    """The line view: stations' current state, shift counts and OEE, per line."""
    return FastJSON(await _live_cached(ctx, who, site))


@router.get("/live/stream")
async def live_stream(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    site: str,
    interval: Annotated[float, Query(ge=1.0, le=60.0)] = 2.0,
) -> StreamingResponse:
    """SSE: a ``plant`` event (the body of ``GET /plant/live``) whenever it changes."""
    first = await _live_cached(ctx, who, site)  # errors before streaming

    async def body() -> AsyncIterator[bytes]:
        yield f"retry: {_RETRY_MS}\n\n".encode()
        deadline = time.monotonic() + STREAM_LIFETIME_S
        previous: bytes | None = None
        view = first
        while True:
            data = orjson.dumps({k: v for k, v in view.items() if k != "now_us"})
            if data != previous:
                previous = data
                yield b"event: plant\ndata: " + orjson.dumps(view) + b"\n\n"
            else:
                yield b": idle\n\n"
            if time.monotonic() >= deadline or await request.is_disconnected():
                return
            await asyncio.sleep(interval)
            view = await _live_cached(ctx, who, site)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
