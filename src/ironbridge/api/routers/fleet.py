"""Fleet KPIs, the monthly activity index, vehicle events, battery health, endpoint status."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import numpy as np
import orjson
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool

from ironbridge.analytics.battery import BATTERY_EVENT_KIND, soh_from_charging
from ironbridge.analytics.fleet import FleetKpis, activity_index, fleet_kpis, roll_up
from ironbridge.analytics.fleet_query import load_fleet, visible_assets
from ironbridge.api.auth import Ctx, CurrentUser
from ironbridge.api.context import ApiContext
from ironbridge.api.responses import FastJSON
from ironbridge.api.routers.query import parse_duration, parse_time
from ironbridge.model import InvalidInput, Principal, now_us, to_datetime

router = APIRouter(prefix="/api/v1/fleet", tags=["fleet"])

_DAY_US = 86_400_000_000
GroupBy = Literal["asset", "model", "customer", "province", "type"]


def _window(start: str | None, end: str | None, default_s: int) -> tuple[int, int]:
    end_us = parse_time(end, now_us(), "end")
    start_us = parse_time(start, end_us - default_s * 1_000_000, "start")
    if start_us >= end_us:
        raise InvalidInput("start", "must be before end")
    return start_us, end_us


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 4)


def _rows(labels: list[str], k: FleetKpis, key: str) -> list[dict[str, Any]]:
    cols = {
        "engine_hours": k.engine_hours,
        "idle_hours": k.idle_hours,
        "idle_ratio": k.idle_ratio,
        "fuel_l": k.fuel_l,
        "fuel_per_hour": k.fuel_per_hour,
        "distance_km": k.distance_km,
        "fuel_per_100km": k.fuel_per_100km,
        "utilisation": k.utilisation,
    }
    return [
        {key: label, **{name: _num(arr[i]) for name, arr in cols.items()}}
        for i, label in enumerate(labels)
    ]


def _kpis(
    ctx: ApiContext,
    who: Principal,
    start_us: int,
    end_us: int,
    bucket_us: int,
    group_by: str,
    type_name: str | None,
    planned: float,
) -> dict[str, Any]:
    assets = visible_assets(ctx.registry, who, type_name)
    data = load_fleet(ctx.registry, ctx.store, who, assets, start_us, end_us, bucket_us)
    k = fleet_kpis(
        data.frame,
        len(assets),
        bucket_h=bucket_us / 3.6e9,
        period_days=(end_us - start_us) / _DAY_US,
        planned_h_per_day=planned,
    )
    if group_by == "asset":
        rows = _rows([a.id for a in assets], k, "asset")
        rows = [r for r, rep in zip(rows, k.reporting, strict=True) if rep]
    else:
        labels = [
            a.type_name if group_by == "type" else str(a.attributes.get(group_by) or "unknown")
            for a in assets
        ]
        names = sorted(set(labels))
        index = {n: i for i, n in enumerate(names)}
        mask = k.reporting
        code = np.array([index[x] for x in labels], dtype=np.int64)
        sub = FleetKpis(
            engine_hours=k.engine_hours[mask],
            idle_hours=k.idle_hours[mask],
            on_hours=k.on_hours[mask],
            fuel_l=k.fuel_l[mask],
            distance_km=k.distance_km[mask],
            planned_hours=k.planned_hours[mask],
            reporting=k.reporting[mask],
        )
        g = roll_up(sub, code[mask], len(names))
        counts = np.bincount(code[mask], minlength=len(names))
        rows = [
            {**r, "machines": int(c)}
            for r, c in zip(_rows(names, g, group_by), counts, strict=True)
            if c
        ]
    return {
        "start": to_datetime(start_us).isoformat(),
        "end": to_datetime(end_us).isoformat(),
        "bucket_s": bucket_us // 1_000_000,
        "group_by": group_by,
        "planned_hours_per_day": planned,
        "rows": rows,
    }


@router.get("/kpis")
async def kpis(
    ctx: Ctx,
    who: CurrentUser,
    start: str | None = None,
    end: str | None = None,
    bucket: str = "5m",
    group_by: GroupBy = "asset",
    type: Annotated[str | None, Query(alias="type")] = None,
    planned_hours_per_day: Annotated[float, Query(gt=0, le=24)] = 10.0,
) -> FastJSON:
    """Engine hours, idle ratio, fuel per hour and per 100 km, utilisation; per machine or group.

    Groups (``group_by``): ``model``, ``customer``, ``province`` (asset attributes) or ``type``.
    """
    start_us, end_us = _window(start, end, 86_400)
    bucket_us = parse_duration(bucket, "bucket")
    if bucket_us < 1_000_000 or (end_us - start_us) // bucket_us > 200_000:
        raise InvalidInput("bucket", "at least 1 s and at most 200 000 buckets in the range")
    body = await run_in_threadpool(
        _kpis, ctx, who, start_us, end_us, bucket_us, group_by, type, planned_hours_per_day
    )
    return FastJSON(body)


def _months(start_us: int, end_us: int) -> list[tuple[str, int, int]]:
    t = to_datetime(start_us)
    cur = datetime(t.year, t.month, 1, tzinfo=UTC)
    out: list[tuple[str, int, int]] = []
    while True:
        nxt = datetime(cur.year + cur.month // 12, cur.month % 12 + 1, 1, tzinfo=UTC)
        s_us = int(cur.timestamp() * 1e6)
        if s_us >= end_us:
            return out
        out.append((cur.strftime("%Y-%m"), s_us, int(nxt.timestamp() * 1e6)))
        cur = nxt


def _activity(
    ctx: ApiContext,
    who: Principal,
    start_us: int,
    end_us: int,
    region_attr: str,
    h_min: float,
    type_name: str | None,
) -> dict[str, Any]:
    assets = visible_assets(ctx.registry, who, type_name)
    months = _months(start_us, end_us)
    bucket = 900_000_000
    hours = np.zeros((len(assets), len(months)))
    reported = np.zeros((len(assets), len(months)), dtype=bool)
    for j, (_label, m0, m1) in enumerate(months):
        data = load_fleet(ctx.registry, ctx.store, who, assets, m0, m1, bucket)
        k = fleet_kpis(data.frame, len(assets), bucket_h=0.25, period_days=(m1 - m0) / _DAY_US)
        hours[:, j] = k.engine_hours
        reported[:, j] = k.reporting
    regions = [str(a.attributes.get(region_attr) or "unknown") for a in assets]
    rows = activity_index([m[0] for m in months], regions, hours, reported, h_min=h_min)
    return {
        "region_attribute": region_attr,
        "h_min": h_min,
        "definition": (
            "avg_hours = total engine hours / machines with hours > 0 in the month; "
            "operating_rate = machines with hours >= h_min / machines reporting in the month"
        ),
        "rows": [
            {
                "region": r.region,
                "month": r.month,
                "machines_reporting": r.machines_reporting,
                "machines_working": r.machines_working,
                "operating_rate": round(r.operating_rate, 4),
                "avg_hours": round(r.avg_hours, 3),
                "total_hours": round(r.total_hours, 3),
            }
            for r in rows
        ],
    }


@router.get("/activity-index")
async def activity(
    ctx: Ctx,
    who: CurrentUser,
    start: str | None = None,
    end: str | None = None,
    region: str = "province",
    h_min: Annotated[float, Query(ge=0)] = 1.0,
    type: Annotated[str | None, Query(alias="type")] = None,
) -> FastJSON:
    """Monthly activity index per region (default: province), KOMTRAX / excavator-index style."""
    start_us, end_us = _window(start, end, 90 * 86_400)
    if end_us - start_us > 400 * _DAY_US:
        raise InvalidInput("start", "at most 400 days")
    body = await run_in_threadpool(_activity, ctx, who, start_us, end_us, region, h_min, type)
    return FastJSON(body)


def _events(
    ctx: ApiContext, who: Principal, asset_id: str, start_us: int, end_us: int, kinds: list[str]
) -> list[dict[str, Any]]:
    ctx.registry.get_asset(who, asset_id)
    table = ctx.store.events([asset_id], start_us, end_us, kinds or None, 10_000)
    ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
    return [
        {
            "ts": to_datetime(int(t)).isoformat(),
            "kind": k,
            "code": c,
            "payload": orjson.loads(p) if p else {},
        }
        for t, k, c, p in zip(
            ts.tolist(),
            table["kind"].to_pylist(),
            table["code"].to_pylist(),
            table["payload"].to_pylist(),
            strict=True,
        )
    ]


@router.get("/assets/{asset_id}/events")
async def asset_events(
    ctx: Ctx,
    who: CurrentUser,
    asset_id: str,
    start: str | None = None,
    end: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
) -> FastJSON:
    """Events of a vehicle: alarm flags, fault codes (opened/cleared), logins, battery safety."""
    start_us, end_us = _window(start, end, 86_400)
    rows = await run_in_threadpool(_events, ctx, who, asset_id, start_us, end_us, kind or [])
    return FastJSON({"asset": asset_id, "events": rows})


def _battery(
    ctx: ApiContext, who: Principal, asset_id: str, start_us: int, end_us: int
) -> dict[str, Any]:
    asset = ctx.registry.get_asset(who, asset_id)
    refs = {r.measurement: r.id for r in ctx.registry.series_of(who, [asset_id])}
    needed = ("total_current", "soc", "charging_status")
    sessions: list[dict[str, Any]] = []
    if all(n in refs for n in needed):
        table = ctx.store.raw([refs[n] for n in needed], start_us, end_us)
        sid = table["series"].to_numpy()
        ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
        val = table["value"].to_numpy()
        by = {
            n: dict(zip(ts[sid == refs[n]].tolist(), val[sid == refs[n]].tolist(), strict=True))
            for n in needed
        }
        common = sorted(set(by["soc"]) & set(by["total_current"]) & set(by["charging_status"]))
        t = np.array(common, dtype=np.int64)
        rated = asset.attributes.get("rated_capacity_ah")
        found = soh_from_charging(
            t,
            np.array([by["total_current"][x] for x in common]),
            np.array([by["soc"][x] for x in common]),
            np.isin(np.array([by["charging_status"][x] for x in common]), (1.0, 2.0)),
            rated_ah=float(rated) if isinstance(rated, int | float) else None,
        )
        sessions = [
            {
                "start": to_datetime(s.start_us).isoformat(),
                "end": to_datetime(s.end_us).isoformat(),
                "soc_start": s.soc_start,
                "soc_end": s.soc_end,
                "charge_ah": round(s.charge_ah, 3),
                "capacity_ah": round(s.capacity_ah, 3),
                "soh": None if s.soh is None else round(s.soh, 4),
            }
            for s in found
        ]
    return {
        "asset": asset_id,
        "charging_sessions": sessions,
        "safety_events": _events(ctx, who, asset_id, start_us, end_us, [BATTERY_EVENT_KIND]),
    }


@router.get("/assets/{asset_id}/battery")
async def battery(
    ctx: Ctx,
    who: CurrentUser,
    asset_id: str,
    start: str | None = None,
    end: str | None = None,
) -> FastJSON:
    """State-of-health trend from charging sessions, and battery safety events of an NEV."""
    start_us, end_us = _window(start, end, 30 * 86_400)
    body = await run_in_threadpool(_battery, ctx, who, asset_id, start_us, end_us)
    return FastJSON(body)


@router.get("/endpoints")
async def endpoints(ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Sessions and counters of the GB/T 32960 and JT/T 808 TCP endpoints."""
    servers = ctx.extra.get("vehicle_endpoints") or {}
    out: dict[str, Any] = {}
    for name, server in servers.items():
        st = server.stats
        out[name] = {
            "port": server.port,
            "sessions_open": st.sessions_open,
            "sessions_total": st.sessions_total,
            "frames": st.frames,
            "answered": st.answered,
            "malformed": st.malformed,
            "rejected": st.rejected,
            "published": st.published,
            "publish_errors": st.publish_errors,
            "dropped_measurements": st.dropped_measurements,
            "reassembled": st.reassembled,
            "retransmission_requests": st.retransmission_requests,
            "refused_full": st.refused_full,
        }
    return {"enabled": bool(servers), "endpoints": out}
