"""After-sales: maintenance plans, work orders, dispatch, stations, parts, warranty, KPIs."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool

from ironbridge.aftersales import TRANSITIONS, Aftersales, Plan, WorkOrder, sla_clocks
from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.model import PermanentError

router = APIRouter(prefix="/api/v1", tags=["aftersales"])
Doc = Annotated[dict[str, Any], Body()]


def _svc(ctx: Ctx) -> Aftersales:
    if ctx.aftersales is None:
        raise PermanentError("after-sales service is not running")
    return ctx.aftersales


def _wo(svc: Aftersales, wo: WorkOrder) -> dict[str, Any]:
    out = dataclasses.asdict(wo)
    out["sla"] = {c.kind.value: dataclasses.asdict(c) for c in sla_clocks(wo, svc.clock())}
    return out


def _plan(plan: Plan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


# -- maintenance plans -----------------------------------------------------------------
@router.get("/maintenance-plans")
def list_plans(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List maintenance plans (one per asset type)."""
    return [p.to_dict() for p in _svc(ctx).list_plans(who)]


@router.put("/maintenance-plans/{asset_type}")
def put_plan(asset_type: str, body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Create or replace the plan of an asset type (intervals: hours / km / months)."""
    return _svc(ctx).put_plan(who, {**body, "asset_type": asset_type}).to_dict()


@router.get("/maintenance-plans/{asset_type}")
def get_plan(asset_type: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Return the plan of an asset type."""
    return _svc(ctx).get_plan(who, asset_type).to_dict()


@router.delete("/maintenance-plans/{asset_type}", status_code=204)
def delete_plan(asset_type: str, ctx: Ctx, who: Operator) -> None:
    """Delete the plan of an asset type."""
    _svc(ctx).delete_plan(who, asset_type)


@router.get("/assets/{asset_id}/maintenance-due")
def maintenance_due(asset_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """What is due on a machine, with forecast due dates from its own usage rate."""
    svc = _svc(ctx)
    usage = svc.usage(who, asset_id)
    return {
        "usage": dataclasses.asdict(usage),
        "due": [dataclasses.asdict(d) for d in svc.due(who, asset_id, usage)],
    }


@router.get("/maintenance-due")
def maintenance_due_list(
    ctx: Ctx,
    who: CurrentUser,
    type_name: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 200,
) -> list[dict[str, Any]]:
    """Due list across the fleet: the most urgent interval of each machine with a plan."""
    svc = _svc(ctx)
    assets = ctx.registry.list_assets(who, type_name=type_name, limit=limit)
    return [
        {"asset_id": asset_id, **dataclasses.asdict(items[0])}
        for asset_id, items in svc.due_many(who, [a.id for a in assets]).items()
        if items
    ]


@router.post("/assets/{asset_id}/services")
def record_service(asset_id: str, body: Doc, ctx: Ctx, who: Operator) -> dict[str, str]:
    """Record a service done (interval, hours, km, ts_us)."""
    _svc(ctx).record_service(
        who,
        asset_id,
        str(body["interval"]),
        hours=float(body["hours"]),
        km=body.get("km"),
        ts_us=body.get("ts_us"),
        work_order_id=body.get("work_order_id"),
    )
    return {"status": "recorded"}


# -- work orders -----------------------------------------------------------------------
@router.get("/work-orders")
def list_work_orders(
    ctx: Ctx,
    who: CurrentUser,
    state: Annotated[list[str] | None, Query()] = None,
    asset_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> list[dict[str, Any]]:
    """List work orders (filter by state, asset), newest first, with their SLA clocks."""
    svc = _svc(ctx)
    return [
        _wo(svc, w) for w in svc.list_work_orders(who, states=state, asset_id=asset_id, limit=limit)
    ]


@router.post("/work-orders", status_code=201)
def create_work_order(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Open a work order by hand (asset_id, title, priority P0-P3, skill, duration_min)."""
    svc = _svc(ctx)
    return _wo(
        svc,
        svc.create_work_order(
            who, {**body, "source": body.get("source", "manual")}, actor=who.username
        ),
    )


@router.post("/work-orders/from-alarm", status_code=201)
def work_order_from_alarm(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """The rules engine's work-order action: open one order per alarm (idempotent)."""
    svc = _svc(ctx)
    ctx.registry.get_asset(who, str(body["asset_id"]))
    wo = svc.create_from_alarm(
        alarm_id=body["alarm_id"],
        asset_id=str(body["asset_id"]),
        severity=str(body.get("severity", "major")),
        message=str(body.get("message", "")),
        rule_id=str(body.get("rule_id", "")),
        skill=body.get("skill"),
    )
    return _wo(svc, wo)


@router.post("/work-orders/from-prediction")
def work_order_from_prediction(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any] | None:
    """Open an order when RUL or health is below its threshold (null when not)."""
    svc = _svc(ctx)
    ctx.registry.get_asset(who, str(body["asset_id"]))
    wo = svc.create_from_prediction(
        asset_id=str(body["asset_id"]),
        model=str(body.get("model", "")),
        rul_h=body.get("rul_h"),
        health=body.get("health"),
        rul_threshold_h=float(body.get("rul_threshold_h", 100.0)),
        health_threshold=float(body.get("health_threshold", 30.0)),
        skill=body.get("skill"),
    )
    return None if wo is None else _wo(svc, wo)


@router.get("/work-orders/{wo_id}")
def get_work_order(wo_id: int, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """A work order with its SLA clocks, the states it may move to, lines and audit trail."""
    svc = _svc(ctx)
    wo = svc.get_work_order(who, wo_id)
    return {
        **_wo(svc, wo),
        "allowed": sorted(s.value for s in TRANSITIONS[wo.state]),
        "lines": svc.lines(who, wo_id),
        "events": svc.events(who, wo_id),
    }


@router.post("/work-orders/{wo_id}/transition")
def transition_work_order(wo_id: int, body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Move a work order: ``{"to": "assigned", "technician_id": "...", "note": "..."}``."""
    svc = _svc(ctx)
    wo = svc.transition(
        who,
        wo_id,
        str(body["to"]),
        technician_id=body.get("technician_id"),
        note=str(body.get("note", "")),
    )
    return _wo(svc, wo)


@router.post("/work-orders/{wo_id}/warranty-claim", status_code=201)
def raise_claim(wo_id: int, body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Raise a warranty claim from a work order (hours at failure, amount)."""
    return _svc(ctx).raise_claim(
        who, wo_id, hours=float(body["hours"]), amount=float(body.get("amount", 0))
    )


@router.post("/work-orders/{wo_id}/{kind}", status_code=201)
def add_line(wo_id: int, kind: str, body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Record labour (hours), a part (part_no, qty, station_id), a finding or an attachment."""
    return _svc(ctx).add_line(
        who,
        wo_id,
        {
            "labour": "labour",
            "parts": "part",
            "findings": "finding",
            "attachments": "attachment",
        }.get(kind, kind),
        body,
    )


# -- stations, technicians, dispatch --------------------------------------------------
@router.get("/service-stations")
def list_stations(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List service stations and warehouses."""
    return _svc(ctx).list_stations(who)


@router.post("/service-stations", status_code=201)
def put_station(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Create or replace a station (id, name, region, lat, lon, is_warehouse)."""
    return _svc(ctx).put_station(who, body)


@router.get("/technicians")
def list_technicians(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List technicians."""
    return _svc(ctx).list_technicians(who)


@router.post("/technicians", status_code=201)
def put_technician(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Create or replace a technician (station_id, skills, lat/lon, shift_start_h/end_h)."""
    return _svc(ctx).put_technician(who, body)


@router.post("/dispatch/propose")
async def propose_dispatch(
    ctx: Ctx,
    who: Operator,
    time_limit_s: Annotated[float, Query(gt=0, le=60)] = 5.0,
    baseline: bool = False,
) -> dict[str, Any]:
    """Propose today's assignment and routes of the new work orders, with reasons."""
    plan = await run_in_threadpool(
        _svc(ctx).propose_dispatch, who, time_limit_s=time_limit_s, baseline=baseline
    )
    return _plan(plan)


@router.post("/dispatch/accept")
def accept_dispatch(body: Doc, ctx: Ctx, who: Operator) -> list[dict[str, Any]]:
    """Accept (or override) a plan: ``{"assignment": {"<wo id>": "<technician id>"}}``."""
    svc = _svc(ctx)
    assignment = {int(k): str(v) for k, v in dict(body["assignment"]).items()}
    return [_wo(svc, w) for w in svc.accept_dispatch(who, assignment)]


# -- parts -----------------------------------------------------------------------------
@router.post("/parts", status_code=201)
def put_part(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Create or replace a part (part_no, name, unit_cost)."""
    return _svc(ctx).put_part(who, body)


@router.get("/parts/stock")
def list_stock(ctx: Ctx, who: CurrentUser, station_id: str | None = None) -> list[dict[str, Any]]:
    """Stock per station and part: on hand, available, reorder point."""
    return _svc(ctx).list_stock(who, station_id)


@router.put("/parts/stock/{station_id}/{part_no}")
def set_stock(station_id: str, part_no: str, body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Set a stock count and reorder point / quantity."""
    return _svc(ctx).set_stock(
        who,
        station_id,
        part_no,
        float(body["on_hand"]),
        reorder_point=float(body.get("reorder_point", 0)),
        reorder_qty=float(body.get("reorder_qty", 0)),
    )


@router.post("/parts/reservations", status_code=201)
def reserve(body: Doc, ctx: Ctx, who: Operator) -> dict[str, int]:
    """Reserve parts for a work order (409 when stock is short)."""
    rid = _svc(ctx).reserve(
        who,
        int(body["work_order_id"]),
        str(body["station_id"]),
        str(body["part_no"]),
        float(body["qty"]),
    )
    return {"id": rid}


@router.post("/parts/reservations/{rid}/{action}")
def release(rid: int, action: str, ctx: Ctx, who: Operator) -> dict[str, str]:
    """``release`` a reservation back to stock or ``consume`` it."""
    _svc(ctx).release(who, rid, consume=action == "consume")
    return {"status": "consumed" if action == "consume" else "released"}


@router.post("/parts/transfers", status_code=201)
def transfer(body: Doc, ctx: Ctx, who: Operator) -> dict[str, int]:
    """Move stock between stations (part_no, from_station, to_station, qty)."""
    tid = _svc(ctx).transfer(
        who,
        str(body["part_no"]),
        str(body["from_station"]),
        str(body["to_station"]),
        float(body["qty"]),
    )
    return {"id": tid}


@router.get("/parts/reorder")
def reorder(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """Stock at or below its reorder point, with the quantity to order."""
    return _svc(ctx).reorder_suggestions(who)


@router.get("/parts/forecast")
def parts_forecast(
    ctx: Ctx,
    who: CurrentUser,
    horizon_days: Annotated[int, Query(ge=1, le=730)] = 90,
    type_name: Annotated[str | None, Query(alias="type")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[dict[str, Any]]:
    """Demand per part: planned from the installed base plus unplanned (SBA / TSB)."""
    svc = _svc(ctx)
    assets = ctx.registry.list_assets(who, type_name=type_name, limit=limit)
    usages = svc.usages(who, [a.id for a in assets])
    return [
        {**dataclasses.asdict(f), "total": f.total}
        for f in svc.part_forecasts(who, usages, horizon_days=horizon_days)
    ]


# -- warranty and KPIs -----------------------------------------------------------------
@router.get("/warranty-terms")
def list_terms(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """Warranty terms per model."""
    return _svc(ctx).list_warranty_terms(who)


@router.post("/warranty-terms", status_code=201)
def put_term(body: Doc, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Add warranty terms (model, coverage, months, hours_cap, components)."""
    return _svc(ctx).put_warranty_term(who, body)


@router.get("/service-kpis")
def kpis(
    ctx: Ctx, who: CurrentUser, by: str = "region", operating_hours: float | None = None
) -> list[dict[str, Any]]:
    """MTTR, MTBF, first-time fix, SLA attainment, fill rate by region, station or model."""
    return [dataclasses.asdict(k) for k in _svc(ctx).kpis(who, by, operating_hours)]
