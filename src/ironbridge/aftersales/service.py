"""The after-sales service: work orders, stations, technicians, stock, plans, warranty (SQL)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, and_, delete, insert, select, true, update

from ironbridge.aftersales import tables as t
from ironbridge.aftersales.dispatch import Job, Plan, Technician, greedy_plan, propose_plan
from ironbridge.aftersales.forecast import PartForecast, part_forecast, planned_demand
from ironbridge.aftersales.kpi import Kpis, PartLine, compute_by
from ironbridge.aftersales.maintenance import (
    DueItem,
    LastService,
    MaintenancePlan,
    Usage,
    due_list,
    usage_rate,
)
from ironbridge.aftersales.workorders import (
    OPEN_STATES,
    Priority,
    SlaAlert,
    SlaKind,
    SlaLevel,
    SlaMonitor,
    Source,
    WorkOrder,
    WorkOrderState,
    new_work_order,
    transition,
)
from ironbridge.model import Conflict, InvalidInput, NotFound, Principal, now_us
from ironbridge.store import Agg, Registry, TelemetryStore
from ironbridge.store.sql.engine import WRITE, translate_errors

_LOGGER = logging.getLogger(__name__)
_US_PER_DAY = 86_400_000_000


def _visible(col: Any, who: Principal | None) -> Any:
    if who is None:
        return true()
    return col.startswith(who.tenant_path, autoescape=True)


def _wo(row: Any) -> WorkOrder:
    return WorkOrder(
        id=row["id"],
        tenant_id=row["tenant_id"],
        asset_id=row["asset_id"],
        title=row["title"],
        description=row["description"],
        source=Source(row["source"]),
        source_ref=row["source_ref"],
        priority=Priority(row["priority"]),
        state=WorkOrderState(row["state"]),
        skill=row["skill"],
        lat=row["lat"],
        lon=row["lon"],
        duration_min=row["duration_min"],
        created_us=row["created_us"],
        response_due_us=row["response_due_us"],
        repair_due_us=row["repair_due_us"],
        technician_id=row["technician_id"],
        station_id=row["station_id"],
        arrived_us=row["arrived_us"],
        completed_us=row["completed_us"],
        closed_us=row["closed_us"],
        visits=row["visits"],
        held_from=WorkOrderState(row["held_from"]) if row["held_from"] else None,
    )


_WO_FIELDS = (
    "state",
    "technician_id",
    "station_id",
    "arrived_us",
    "completed_us",
    "closed_us",
    "visits",
    "held_from",
)


class Aftersales:
    """After-sales operations over the registry database and the telemetry store.

    Args:
        engine: the registry's SQLAlchemy engine (tables of migration aftersales_0001).
        registry: assets and tenants.
        store: telemetry (engine hours, odometer, position).
        clock: current time in µs (tests inject one).
    """

    def __init__(
        self,
        engine: Engine,
        registry: Registry,
        store: TelemetryStore | None = None,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.engine = engine
        self.registry = registry
        self.store = store
        self.clock = clock
        self.sla = SlaMonitor(clock)
        self._sla_loaded = False

    # -- plumbing --------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_errors(), self.engine.connect() as conn:
            conn = conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(), self.engine.connect() as conn, conn.begin():
            yield conn

    def _tenant(self, who: Principal | None, tenant_id: str | None) -> tuple[str, str]:
        tid = tenant_id or (who.tenant_id if who is not None else "root")
        return tid, self.registry.get_tenant(who, tid).path

    # -- stations and technicians ----------------------------------------------------
    def put_station(self, who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a service station (or the central warehouse)."""
        tid, path = self._tenant(who, data.get("tenant_id"))
        row = {
            "id": str(data["id"]),
            "tenant_id": tid,
            "tenant_path": path,
            "name": str(data.get("name") or data["id"]),
            "region": str(data.get("region", "")),
            "lat": float(data["lat"]),
            "lon": float(data["lon"]),
            "is_warehouse": bool(data.get("is_warehouse", False)),
        }
        with self._write() as conn:
            conn.execute(delete(t.stations).where(t.stations.c.id == row["id"]))
            conn.execute(insert(t.stations).values(row))
        return row

    def list_stations(self, who: Principal | None) -> list[dict[str, Any]]:
        """Return visible stations."""
        with self._read() as conn:
            q = select(t.stations).where(_visible(t.stations.c.tenant_path, who))
            return [dict(r) for r in conn.execute(q.order_by(t.stations.c.id)).mappings()]

    def put_technician(self, who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a technician (skills, home base, working hours)."""
        tid, path = self._tenant(who, data.get("tenant_id"))
        start, end = float(data.get("shift_start_h", 8)), float(data.get("shift_end_h", 18))
        if not 0 <= start < end <= 48:
            raise InvalidInput("shift_end_h", "working hours must satisfy 0 <= start < end")
        row = {
            "id": str(data["id"]),
            "tenant_id": tid,
            "tenant_path": path,
            "name": str(data.get("name") or data["id"]),
            "station_id": str(data["station_id"]),
            "skills": [str(s) for s in data.get("skills", [])],
            "lat": float(data["lat"]),
            "lon": float(data["lon"]),
            "shift_start_h": start,
            "shift_end_h": end,
            "active": bool(data.get("active", True)),
        }
        with self._write() as conn:
            conn.execute(delete(t.technicians).where(t.technicians.c.id == row["id"]))
            conn.execute(insert(t.technicians).values(row))
        return row

    def list_technicians(self, who: Principal | None) -> list[dict[str, Any]]:
        """Return visible technicians."""
        with self._read() as conn:
            q = select(t.technicians).where(_visible(t.technicians.c.tenant_path, who))
            return [dict(r) for r in conn.execute(q.order_by(t.technicians.c.id)).mappings()]

    # -- parts and stock ---------------------------------------------------------------
    def put_part(self, who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a part."""
        tid, path = self._tenant(who, data.get("tenant_id"))
        row = {
            "part_no": str(data["part_no"]),
            "tenant_id": tid,
            "tenant_path": path,
            "name": str(data.get("name", data["part_no"])),
            "unit_cost": float(data.get("unit_cost", 0.0)),
        }
        with self._write() as conn:
            conn.execute(delete(t.parts).where(t.parts.c.part_no == row["part_no"]))
            conn.execute(insert(t.parts).values(row))
        return row

    def set_stock(
        self,
        who: Principal | None,
        station_id: str,
        part_no: str,
        on_hand: float,
        *,
        reorder_point: float = 0.0,
        reorder_qty: float = 0.0,
    ) -> dict[str, Any]:
        """Set a station's stock of a part (a count); reserved quantities stay reserved."""
        if on_hand < 0:
            raise InvalidInput("on_hand", "cannot be negative")
        tid, path = self._tenant(who, None)
        key = and_(t.stock.c.station_id == station_id, t.stock.c.part_no == part_no)
        with self._write() as conn:
            old = conn.execute(select(t.stock).where(key)).mappings().first()
            reserved = (old["on_hand"] - old["available"]) if old else 0.0
            if on_hand < reserved:
                raise Conflict(f"{reserved:g} of {part_no} are reserved at {station_id}")
            values = {
                "on_hand": on_hand,
                "available": on_hand - reserved,
                "reorder_point": reorder_point,
                "reorder_qty": reorder_qty,
            }
            if old:
                conn.execute(update(t.stock).where(key).values(values))
            else:
                conn.execute(
                    insert(t.stock).values(
                        station_id=station_id,
                        part_no=part_no,
                        tenant_id=tid,
                        tenant_path=path,
                        **values,
                    )
                )
        return {"station_id": station_id, "part_no": part_no, **values}

    def list_stock(
        self, who: Principal | None, station_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Return stock rows (optionally of one station)."""
        q = select(t.stock).where(_visible(t.stock.c.tenant_path, who))
        if station_id:
            q = q.where(t.stock.c.station_id == station_id)
        with self._read() as conn:
            return [
                dict(r)
                for r in conn.execute(q.order_by(t.stock.c.station_id, t.stock.c.part_no))
                .mappings()
                .all()
            ]

    def reserve(
        self, who: Principal | None, work_order_id: int, station_id: str, part_no: str, qty: float
    ) -> int:
        """Reserve ``qty`` of a part at a station for a work order; return the reservation id.

        One conditional ``UPDATE ... WHERE available >= qty`` takes the quantity, so
        concurrent reservations can never drive availability below zero.

        Raises:
            Conflict: not enough available stock.
        """
        if qty <= 0:
            raise InvalidInput("qty", "must be positive")
        wo = self.get_work_order(who, work_order_id)
        with self._write() as conn:
            taken = conn.execute(
                update(t.stock)
                .where(
                    t.stock.c.station_id == station_id,
                    t.stock.c.part_no == part_no,
                    t.stock.c.available >= qty,
                )
                .values(available=t.stock.c.available - qty)
            ).rowcount
            if taken != 1:
                raise Conflict(f"not enough {part_no} available at {station_id} for {qty:g}")
            rid = conn.execute(
                insert(t.reservations).values(
                    tenant_id=wo.tenant_id,
                    tenant_path=self._path_of_wo(conn, work_order_id),
                    work_order_id=work_order_id,
                    station_id=station_id,
                    part_no=part_no,
                    qty=qty,
                    status="reserved",
                    ts_us=self.clock(),
                )
            ).inserted_primary_key
        return int(rid[0]) if rid else 0

    def _path_of_wo(self, conn: Connection, wo_id: int) -> str:
        path = conn.execute(
            select(t.work_orders.c.tenant_path).where(t.work_orders.c.id == wo_id)
        ).scalar_one()
        return str(path)

    def release(self, who: Principal | None, reservation_id: int, *, consume: bool) -> None:
        """Release a reservation back to stock, or consume it (stock leaves on the van)."""
        with self._write() as conn:
            r = (
                conn.execute(
                    select(t.reservations).where(
                        t.reservations.c.id == reservation_id,
                        _visible(t.reservations.c.tenant_path, who),
                    )
                )
                .mappings()
                .first()
            )
            if r is None:
                raise NotFound("reservation", str(reservation_id))
            if r["status"] != "reserved":
                raise Conflict(f"reservation {reservation_id} is already {r['status']}")
            key = and_(t.stock.c.station_id == r["station_id"], t.stock.c.part_no == r["part_no"])
            values = (
                {"on_hand": t.stock.c.on_hand - r["qty"]}
                if consume
                else {"available": t.stock.c.available + r["qty"]}
            )
            conn.execute(update(t.stock).where(key).values(values))
            conn.execute(
                update(t.reservations)
                .where(t.reservations.c.id == reservation_id)
                .values(status="consumed" if consume else "released")
            )

    def transfer(
        self, who: Principal | None, part_no: str, from_station: str, to_station: str, qty: float
    ) -> int:
        """Move available stock between stations (warehouse to station, station to station)."""
        if qty <= 0:
            raise InvalidInput("qty", "must be positive")
        tid, path = self._tenant(who, None)
        with self._write() as conn:
            taken = conn.execute(
                update(t.stock)
                .where(
                    t.stock.c.station_id == from_station,
                    t.stock.c.part_no == part_no,
                    t.stock.c.available >= qty,
                )
                .values(available=t.stock.c.available - qty, on_hand=t.stock.c.on_hand - qty)
            ).rowcount
            if taken != 1:
                raise Conflict(f"not enough {part_no} available at {from_station}")
            moved = conn.execute(
                update(t.stock)
                .where(t.stock.c.station_id == to_station, t.stock.c.part_no == part_no)
                .values(available=t.stock.c.available + qty, on_hand=t.stock.c.on_hand + qty)
            ).rowcount
            if moved != 1:
                conn.execute(
                    insert(t.stock).values(
                        station_id=to_station,
                        part_no=part_no,
                        tenant_id=tid,
                        tenant_path=path,
                        on_hand=qty,
                        available=qty,
                        reorder_point=0.0,
                        reorder_qty=0.0,
                    )
                )
            tid_row = conn.execute(
                insert(t.transfers).values(
                    tenant_id=tid,
                    tenant_path=path,
                    part_no=part_no,
                    from_station=from_station,
                    to_station=to_station,
                    qty=qty,
                    ts_us=self.clock(),
                )
            ).inserted_primary_key
        return int(tid_row[0]) if tid_row else 0

    def reorder_suggestions(self, who: Principal | None) -> list[dict[str, Any]]:
        """Stock rows at or below their reorder point, with the quantity to order."""
        return [
            {**s, "order_qty": max(s["reorder_qty"], s["reorder_point"] - s["available"])}
            for s in self.list_stock(who)
            if s["reorder_point"] > 0 and s["available"] <= s["reorder_point"]
        ]

    # -- maintenance plans -------------------------------------------------------------
    def put_plan(self, who: Principal | None, data: Mapping[str, Any]) -> MaintenancePlan:
        """Create or replace the maintenance plan of an asset type."""
        plan = MaintenancePlan.from_dict(data)
        tid, path = self._tenant(who, data.get("tenant_id"))
        with self._write() as conn:
            conn.execute(delete(t.plans).where(t.plans.c.asset_type == plan.asset_type))
            conn.execute(
                insert(t.plans).values(
                    asset_type=plan.asset_type,
                    tenant_id=tid,
                    tenant_path=path,
                    definition=plan.to_dict(),
                )
            )
        return plan

    def list_plans(self, who: Principal | None) -> list[MaintenancePlan]:
        """Return visible plans."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.plans.c.definition).where(_visible(t.plans.c.tenant_path, who))
            ).scalars()
            return [MaintenancePlan.from_dict(d) for d in rows]

    def get_plan(self, who: Principal | None, asset_type: str) -> MaintenancePlan:
        """Return the plan of an asset type."""
        for plan in self.list_plans(who):
            if plan.asset_type == asset_type:
                return plan
        raise NotFound("maintenance plan", asset_type)

    def delete_plan(self, who: Principal | None, asset_type: str) -> None:
        """Delete the plan of an asset type."""
        with self._write() as conn:
            n = conn.execute(
                delete(t.plans).where(
                    t.plans.c.asset_type == asset_type, _visible(t.plans.c.tenant_path, who)
                )
            ).rowcount
        if n == 0:
            raise NotFound("maintenance plan", asset_type)

    def record_service(
        self,
        who: Principal | None,
        asset_id: str,
        interval: str,
        *,
        hours: float,
        km: float | None = None,
        ts_us: int | None = None,
        work_order_id: int | None = None,
    ) -> None:
        """Record that a service interval was done on a machine (hour-stamped history)."""
        asset = self.registry.get_asset(who, asset_id)
        tid, path = self._tenant(None, asset.tenant_id)
        with self._write() as conn:
            conn.execute(
                insert(t.service_history).values(
                    tenant_id=tid,
                    tenant_path=path,
                    asset_id=asset_id,
                    interval=interval,
                    hours=hours,
                    km=km,
                    ts_us=ts_us or self.clock(),
                    work_order_id=work_order_id,
                )
            )

    def usage(self, who: Principal | None, asset_id: str, days: int = 30) -> Usage:
        """Read a machine's meters and daily rates through the telemetry store.

        Rates are the least-squares slope of the daily last reading of engine hours and
        odometer over the last ``days`` days.
        """
        return self.usages(who, [asset_id], days)[asset_id]

    def usages(
        self, who: Principal | None, asset_ids: Sequence[str], days: int = 30
    ) -> dict[str, Usage]:
        """:meth:`usage` of many machines, in one latest and one aggregate store query."""
        now = self.clock()
        assets = {a: self.registry.get_asset(who, a) for a in asset_ids}
        series: dict[str, dict[str, int]] = {}
        for ref in self.registry.series_of(who, list(assets)) if assets else []:
            if ref.measurement in ("engine_hours", "odometer"):
                series.setdefault(ref.asset_id, {})[ref.measurement] = ref.id
        ids = [sid for by in series.values() for sid in by.values()]
        last: dict[int, float] = {}
        xs: dict[int, list[float]] = {}
        ys: dict[int, list[float]] = {}
        if self.store is not None and ids:
            got = self.store.latest(ids).to_pydict()
            last = dict(zip(got["series"], got["value"], strict=True))
            agg = self.store.aggregate(
                ids, now - days * _US_PER_DAY, now, _US_PER_DAY, [Agg.LAST]
            ).to_pydict()
            for sid, b, v in zip(agg["series"], agg["bucket"], agg["last"], strict=True):
                xs.setdefault(sid, []).append(
                    b.timestamp() / 86400 if hasattr(b, "timestamp") else b / _US_PER_DAY
                )
                ys.setdefault(sid, []).append(v)
        out = {}
        for asset_id, asset in assets.items():
            created = int(asset.created_at.timestamp() * 1e6) if asset.created_at else now
            by = series.get(asset_id, {})
            h_id, km_id = by.get("engine_hours", -1), by.get("odometer", -1)
            km = last.get(km_id)
            out[asset_id] = Usage(
                hours=float(last.get(h_id) or 0.0),
                km=None if km is None and "odometer" not in by else float(km or 0.0),
                ts_us=now,
                start_ts_us=created,
                hours_per_day=usage_rate(xs.get(h_id, []), ys.get(h_id, [])),
                km_per_day=usage_rate(xs.get(km_id, []), ys.get(km_id, [])),
            )
        return out

    def due(
        self, who: Principal | None, asset_id: str, usage: Usage | None = None
    ) -> list[DueItem]:
        """Return what is due on one machine, with forecast due dates."""
        asset = self.registry.get_asset(who, asset_id)
        plan = self.get_plan(who, asset.type_name)
        use = usage or self.usage(who, asset_id)
        return due_list(plan, use, self.last_services(asset_id))

    def due_many(
        self,
        who: Principal | None,
        asset_ids: Sequence[str],
        usages: Mapping[str, Usage] | None = None,
    ) -> dict[str, list[DueItem]]:
        """:meth:`due` of many machines (those of a type without a plan are left out)."""
        plans = {p.asset_type: p for p in self.list_plans(who)}
        types = {a: self.registry.get_asset(who, a).type_name for a in asset_ids}
        planned = [a for a in asset_ids if types[a] in plans]
        use = dict(usages or {})
        missing = [a for a in planned if a not in use]
        if missing:
            use.update(self.usages(who, missing))
        history: dict[str, dict[str, LastService]] = {}
        with self._read() as conn:
            for chunk in range(0, len(planned), 1000):
                rows = conn.execute(
                    select(t.service_history)
                    .where(t.service_history.c.asset_id.in_(planned[chunk : chunk + 1000]))
                    .order_by(t.service_history.c.ts_us)
                ).mappings()
                for r in rows:
                    history.setdefault(r["asset_id"], {})[r["interval"]] = LastService(
                        hours=r["hours"], km=r["km"], ts_us=r["ts_us"]
                    )
        return {a: due_list(plans[types[a]], use[a], history.get(a, {})) for a in planned}

    def last_services(self, asset_id: str) -> dict[str, LastService]:
        """Return the last recorded service of each interval done on a machine."""
        with self._read() as conn:
            rows = conn.execute(
                select(t.service_history)
                .where(t.service_history.c.asset_id == asset_id)
                .order_by(t.service_history.c.ts_us)
            ).mappings()
            return {
                r["interval"]: LastService(hours=r["hours"], km=r["km"], ts_us=r["ts_us"])
                for r in rows
            }

    # -- work orders -------------------------------------------------------------------
    def create_work_order(
        self, who: Principal | None, data: Mapping[str, Any], *, actor: str | None = None
    ) -> WorkOrder:
        """Create a work order on a visible asset (manual or from a source).

        ``data``: asset_id, title, description, priority (P0-P3), skill, duration_min,
        lat/lon (default: the asset's last position), source, source_ref. With a
        source_ref, an open order of the same (asset, source, source_ref) is returned
        instead of a second one.
        """
        asset = self.registry.get_asset(who, str(data["asset_id"]))
        tid, path = self._tenant(None, asset.tenant_id)
        try:
            priority = Priority(str(data.get("priority", "P2")))
            source = Source(str(data.get("source", "manual")))
        except ValueError as exc:
            raise InvalidInput("priority", str(exc)) from exc
        ref = data.get("source_ref")
        dedup = f"{asset.id}|{source}|{ref}" if ref else None
        if dedup:
            with self._read() as conn:
                old = (
                    conn.execute(select(t.work_orders).where(t.work_orders.c.dedup_key == dedup))
                    .mappings()
                    .first()
                )
            if old is not None:
                return _wo(old)
        lat, lon = data.get("lat"), data.get("lon")
        if lat is None:
            lat, lon = self._position(asset.id)
        now = self.clock()
        wo = new_work_order(
            id=0,
            tenant_id=tid,
            asset_id=asset.id,
            title=str(data.get("title") or "service"),
            created_us=now,
            priority=priority,
            source=source,
            source_ref=ref,
            description=str(data.get("description", "")),
            skill=data.get("skill"),
            lat=lat,
            lon=lon,
            duration_min=float(data.get("duration_min", 120.0)),
        )
        row = {f.name: getattr(wo, f.name) for f in dataclasses.fields(wo) if f.name != "id"}
        row.update(
            tenant_path=path,
            dedup_key=dedup,
            region=str(asset.attributes.get("city", "")),
            model=str(asset.attributes.get("model", "")),
        )
        with self._write() as conn:
            wo_id = conn.execute(insert(t.work_orders).values(row)).inserted_primary_key
            new_id = int(wo_id[0]) if wo_id else 0
            self._event(conn, new_id, tid, path, "created", actor, {"source": str(source)})
        return dataclasses.replace(wo, id=new_id)

    def _position(self, asset_id: str) -> tuple[float | None, float | None]:
        if self.store is None:
            return None, None
        refs = {
            r.measurement: r.id
            for r in self.registry.series_of(None, [asset_id])
            if r.measurement in ("latitude", "longitude")
        }
        if len(refs) < 2:
            return None, None
        got = self.store.latest([refs["latitude"], refs["longitude"]]).to_pydict()
        by = dict(zip(got["series"], got["value"], strict=True))
        return by.get(refs["latitude"]), by.get(refs["longitude"])

    def _event(
        self,
        conn: Connection,
        wo_id: int,
        tid: str,
        path: str,
        kind: str,
        actor: str | None,
        data: Mapping[str, Any],
    ) -> None:
        conn.execute(
            insert(t.work_order_events).values(
                work_order_id=wo_id,
                tenant_id=tid,
                tenant_path=path,
                ts_us=self.clock(),
                kind=kind,
                actor=actor,
                data=dict(data),
            )
        )

    def create_from_alarm(
        self,
        *,
        alarm_id: int | str,
        asset_id: str,
        severity: str,
        message: str,
        rule_id: str = "",
        skill: str | None = None,
    ) -> WorkOrder:
        """Open (once) a work order for an alarm: the rule engine's work-order action.

        Severity maps to priority: critical P0, major/high P1, minor/medium P2, else P3.
        """
        prio = {"critical": "P0", "major": "P1", "high": "P1", "minor": "P2", "medium": "P2"}
        return self.create_work_order(
            None,
            {
                "asset_id": asset_id,
                "title": (f"Alarm {rule_id}: {message}" if rule_id else f"Alarm: {message}")[:300],
                "priority": prio.get(severity.lower(), "P3"),
                "source": "alarm",
                "source_ref": f"alarm:{alarm_id}",
                "skill": skill,
            },
            actor="rules",
        )

    def create_from_prediction(
        self,
        *,
        asset_id: str,
        model: str,
        rul_h: float | None = None,
        health: float | None = None,
        rul_threshold_h: float = 100.0,
        health_threshold: float = 30.0,
        skill: str | None = None,
    ) -> WorkOrder | None:
        """Open a work order when RUL or health falls below its threshold (else None).

        One order per asset while it is open: a further prediction below the threshold
        returns the open order; once that one is completed, closed or cancelled, the
        next one opens a new order.
        """
        if rul_h is not None and rul_h < rul_threshold_h:
            why, prio = f"RUL {rul_h:.0f} h < {rul_threshold_h:g} h", "P1"
        elif health is not None and health < health_threshold:
            why, prio = f"health {health:.0f} % < {health_threshold:g} %", "P2"
        else:
            return None
        with self._read() as conn:
            q = select(t.work_orders).where(
                t.work_orders.c.asset_id == asset_id,
                t.work_orders.c.source == Source.PREDICTION.value,
            )
            rows = [_wo(r) for r in conn.execute(q).mappings()]
        open_now = [w for w in rows if w.state in OPEN_STATES]
        if open_now:
            return open_now[0]
        data = {
            "asset_id": asset_id,
            "title": f"Predicted failure ({model}): {why}",
            "priority": prio,
            "source": "prediction",
            # the n-th prediction order of this asset: a concurrent second opener of
            # the same one meets the unique key and gets the first one's order
            "source_ref": f"prediction:{len(rows) + 1}",
            "skill": skill,
        }
        try:
            return self.create_work_order(None, data, actor="predict")
        except Conflict:
            return self.create_work_order(None, data, actor="predict")

    def scan_due_maintenance(
        self, who: Principal | None, asset_ids: Sequence[str], usages: Mapping[str, Usage]
    ) -> list[WorkOrder]:
        """Open a P3 maintenance order for every interval due or overdue on the machines.

        Idempotent: one order per due service. A service is named by its interval and
        its due point (hours, km and date from the last service), so a scan repeated
        before the service is recorded finds the same order, and the next service of
        the interval (after ``record_service``) gets a new one.
        """
        out = []
        for asset_id, items in self.due_many(who, asset_ids, usages).items():
            for item in items:
                if item.status in ("due", "overdue"):
                    h, km = item.due_hours, item.due_km
                    ref = (
                        f"maintenance:{item.interval}:{'-' if h is None else f'{h:.1f}'}:"
                        f"{'-' if km is None else f'{km:.0f}'}:{item.due_ts_us or '-'}"
                    )
                    out.append(
                        self.create_work_order(
                            None,
                            {
                                "asset_id": asset_id,
                                "title": f"Maintenance {item.interval} ({item.status})",
                                "priority": "P3",
                                "source": "maintenance",
                                "source_ref": ref,
                                "duration_min": 60.0 * (self._labour_h(asset_id, item) or 2.0),
                            },
                            actor="maintenance",
                        )
                    )
        return out

    def _labour_h(self, asset_id: str, item: DueItem) -> float | None:
        asset = self.registry.get_asset(None, asset_id)
        plan = self.get_plan(None, asset.type_name)
        for iv in plan.intervals:
            if iv.name == item.interval:
                return iv.labour_h or None
        return None

    def planned_assets(self) -> list[tuple[MaintenancePlan, list[str]]]:
        """Every asset type with a plan and the ids of its machines (all tenants)."""
        out = []
        for plan in self.list_plans(None):
            ids: list[str] = []
            while True:
                page = self.registry.list_assets(
                    None, type_name=plan.asset_type, limit=10_000, offset=len(ids)
                )
                ids.extend(a.id for a in page)
                if len(page) < 10_000:
                    break
            out.append((plan, ids))
        return out

    def scan_fleet_due(self) -> list[WorkOrder]:
        """Scan every machine of an asset type with a plan: the periodic due scan.

        Returns:
            the maintenance orders of every service due (existing ones included).
        """
        out: list[WorkOrder] = []
        for _, ids in self.planned_assets():
            out.extend(self.scan_due_maintenance(None, ids, {}))
        return out

    def get_work_order(self, who: Principal | None, wo_id: int) -> WorkOrder:
        """Return a visible work order."""
        with self._read() as conn:
            row = (
                conn.execute(
                    select(t.work_orders).where(
                        t.work_orders.c.id == wo_id, _visible(t.work_orders.c.tenant_path, who)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("work order", str(wo_id))
        return _wo(row)

    def list_work_orders(
        self,
        who: Principal | None,
        *,
        states: Sequence[str] | None = None,
        asset_id: str | None = None,
        limit: int = 1000,
    ) -> list[WorkOrder]:
        """Return visible work orders, newest first."""
        q = select(t.work_orders).where(_visible(t.work_orders.c.tenant_path, who))
        if states:
            q = q.where(t.work_orders.c.state.in_(list(states)))
        if asset_id:
            q = q.where(t.work_orders.c.asset_id == asset_id)
        with self._read() as conn:
            rows = conn.execute(q.order_by(t.work_orders.c.id.desc()).limit(limit)).mappings()
            return [_wo(r) for r in rows]

    def transition(
        self,
        who: Principal | None,
        wo_id: int,
        to: str,
        *,
        technician_id: str | None = None,
        note: str = "",
    ) -> WorkOrder:
        """Move a work order to another state (checked against the transitions table)."""
        try:
            target = WorkOrderState(to)
        except ValueError as exc:
            raise InvalidInput("state", f"unknown state {to!r}") from exc
        with self._write() as conn:
            row = (
                conn.execute(
                    select(t.work_orders).where(
                        t.work_orders.c.id == wo_id, _visible(t.work_orders.c.tenant_path, who)
                    )
                )
                .mappings()
                .first()
            )
            if row is None:
                raise NotFound("work order", str(wo_id))
            old = _wo(row)
            new = transition(old, target, self.clock(), technician_id=technician_id)
            values: dict[str, Any] = {f: getattr(new, f) for f in _WO_FIELDS}
            if target is WorkOrderState.ASSIGNED and new.technician_id:
                values["station_id"] = conn.execute(
                    select(t.technicians.c.station_id).where(
                        t.technicians.c.id == new.technician_id
                    )
                ).scalar()
            # Compare-and-set on the state: two concurrent moves cannot both win.
            n = conn.execute(
                update(t.work_orders)
                .where(t.work_orders.c.id == wo_id, t.work_orders.c.state == old.state.value)
                .values(values)
            ).rowcount
            if n != 1:
                raise Conflict(f"work order {wo_id} changed concurrently; retry")
            actor = who.username if who else None
            self._event(
                conn,
                wo_id,
                row["tenant_id"],
                row["tenant_path"],
                "transition",
                actor,
                {
                    "from": old.state.value,
                    "to": target.value,
                    "technician_id": new.technician_id,
                    "note": note,
                },
            )
        return dataclasses.replace(new, station_id=values.get("station_id", new.station_id))

    def add_line(
        self, who: Principal | None, wo_id: int, kind: str, data: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record labour (hours), a part used (reserved from stock), a finding or an attachment.

        A part line with ``station_id`` reserves the quantity there; when stock cannot
        fill it the line is still recorded, with ``filled_from_stock`` false (fill rate).
        """
        if kind not in ("labour", "part", "finding", "attachment"):
            raise InvalidInput("kind", "must be labour, part, finding or attachment")
        wo = self.get_work_order(who, wo_id)
        filled = None
        if kind == "part":
            qty = float(data.get("qty", 1))
            station = data.get("station_id") or wo.station_id
            filled = False
            if station:
                try:
                    self.reserve(who, wo_id, str(station), str(data["part_no"]), qty)
                    filled = True
                except Conflict:
                    filled = False
        row = {
            "work_order_id": wo_id,
            "tenant_id": wo.tenant_id,
            "kind": kind,
            "ts_us": self.clock(),
            "technician_id": data.get("technician_id") or wo.technician_id,
            "hours": float(data["hours"]) if kind == "labour" else None,
            "part_no": data.get("part_no"),
            "qty": float(data.get("qty", 1)) if kind == "part" else None,
            "filled_from_stock": filled,
            "text": data.get("text"),
            "meta": dict(data.get("meta") or {}) or None,
        }
        with self._write() as conn:
            row["tenant_path"] = self._path_of_wo(conn, wo_id)
            lid = conn.execute(insert(t.work_order_lines).values(row)).inserted_primary_key
        return {"id": int(lid[0]) if lid else 0, **row}

    def lines(self, who: Principal | None, wo_id: int) -> list[dict[str, Any]]:
        """Return the labour, parts, findings and attachments of a work order."""
        self.get_work_order(who, wo_id)
        with self._read() as conn:
            q = select(t.work_order_lines).where(t.work_order_lines.c.work_order_id == wo_id)
            return [dict(r) for r in conn.execute(q.order_by(t.work_order_lines.c.id)).mappings()]

    def events(self, who: Principal | None, wo_id: int) -> list[dict[str, Any]]:
        """Return the audit trail of a work order."""
        self.get_work_order(who, wo_id)
        with self._read() as conn:
            q = select(t.work_order_events).where(t.work_order_events.c.work_order_id == wo_id)
            rows = conn.execute(q.order_by(t.work_order_events.c.id)).mappings()
            return [dict(r) for r in rows]

    def check_sla(self) -> list[SlaAlert]:
        """Raise SLA warnings and breaches of open orders once each, logged as events."""
        if not self._sla_loaded:
            with self._read() as conn:
                rows = conn.execute(
                    select(t.work_order_events.c.work_order_id, t.work_order_events.c.data).where(
                        t.work_order_events.c.kind.in_(["sla_warning", "sla_breached"])
                    )
                ).all()
            self.sla.forget({(r[0], SlaKind(r[1]["clock"]), SlaLevel(r[1]["level"])) for r in rows})
            self._sla_loaded = True
        orders = self.list_work_orders(None, states=[s.value for s in OPEN_STATES], limit=100_000)
        alerts = self.sla.check(orders)
        if alerts:
            paths = {wo.id: wo.tenant_id for wo in orders}
            with self._write() as conn:
                for a in alerts:
                    self._event(
                        conn,
                        a.work_order_id,
                        paths[a.work_order_id],
                        self._path_of_wo(conn, a.work_order_id),
                        f"sla_{a.level.value}",
                        None,
                        {"clock": a.kind.value, "level": a.level.value, "due_us": a.due_us},
                    )
            for a in alerts:
                _LOGGER.warning(
                    "work order %s: %s SLA %s", a.work_order_id, a.kind.value, a.level.value
                )
        return alerts

    # -- dispatch ----------------------------------------------------------------------
    def propose_dispatch(
        self, who: Principal | None, *, time_limit_s: float = 5.0, baseline: bool = False
    ) -> Plan:
        """Propose today's assignment and routes of the NEW work orders (with reasons).

        Times are minutes from now; technicians work their hours of today's UTC+8 day.
        """
        now = self.clock()
        local_h = ((now / 3.6e9) + 8.0) % 24.0
        techs = [
            Technician(
                id=r["id"],
                station_id=r["station_id"],
                lat=r["lat"],
                lon=r["lon"],
                skills=frozenset(r["skills"]),
                shift_start_min=max(0.0, (r["shift_start_h"] - local_h) * 60),
                shift_end_min=(r["shift_end_h"] - local_h) * 60,
            )
            for r in self.list_technicians(who)
            if r["active"] and r["shift_end_h"] > local_h
        ]
        jobs = [
            Job(
                id=wo.id,
                lat=wo.lat if wo.lat is not None else float(np.nan),
                lon=wo.lon if wo.lon is not None else float(np.nan),
                skill=wo.skill,
                duration_min=wo.duration_min,
                priority=wo.priority.value,
                due_min=(wo.response_due_us - now) / 6e7,
            )
            for wo in self.list_work_orders(who, states=["new"], limit=5000)
            if wo.lat is not None and wo.lon is not None
        ]
        if baseline:
            return greedy_plan(techs, jobs)
        return propose_plan(techs, jobs, time_limit_s=time_limit_s)

    def accept_dispatch(
        self, who: Principal | None, assignment: Mapping[int, str]
    ) -> list[WorkOrder]:
        """Assign work orders to technicians (an accepted plan, or a dispatcher's override)."""
        return [
            self.transition(who, wo_id, "assigned", technician_id=tech, note="dispatch")
            for wo_id, tech in assignment.items()
        ]

    def auto_dispatch(self, *, time_limit_s: float = 5.0) -> list[WorkOrder]:
        """Plan the new orders (OR-Tools) and accept the proposal: unattended dispatch.

        An order that moved meanwhile (a dispatcher was quicker) is skipped.
        """
        plan = self.propose_dispatch(None, time_limit_s=time_limit_s)
        out = []
        for route in plan.routes:
            for stop in route.stops:
                try:
                    out.append(
                        self.transition(
                            None,
                            stop.job_id,
                            "assigned",
                            technician_id=route.technician_id,
                            note=f"auto dispatch: {stop.reason}",
                        )
                    )
                except Conflict:
                    continue
        return out

    # -- warranty ------------------------------------------------------------------------
    def put_warranty_term(self, who: Principal | None, data: Mapping[str, Any]) -> dict[str, Any]:
        """Add warranty terms for a model: months, optional hours cap, components covered."""
        tid, path = self._tenant(who, data.get("tenant_id"))
        row = {
            "tenant_id": tid,
            "tenant_path": path,
            "model": str(data["model"]),
            "coverage": str(data.get("coverage", "standard")),
            "months": int(data["months"]),
            "hours_cap": float(data["hours_cap"]) if data.get("hours_cap") is not None else None,
            "components": [str(c) for c in data.get("components", [])],
        }
        with self._write() as conn:
            rid = conn.execute(insert(t.warranty_terms).values(row)).inserted_primary_key
        return {"id": int(rid[0]) if rid else 0, **row}

    def list_warranty_terms(self, who: Principal | None) -> list[dict[str, Any]]:
        """Return visible warranty terms."""
        with self._read() as conn:
            q = select(t.warranty_terms).where(_visible(t.warranty_terms.c.tenant_path, who))
            return [dict(r) for r in conn.execute(q).mappings()]

    def raise_claim(
        self, who: Principal | None, wo_id: int, *, hours: float, amount: float = 0.0
    ) -> dict[str, Any]:
        """Raise a warranty claim from a work order; status says whether terms cover it.

        Covered iff some term of the machine's model has (now - commissioning) within its
        months and ``hours`` within its hours cap (none: no cap).
        """
        wo = self.get_work_order(who, wo_id)
        asset = self.registry.get_asset(who, wo.asset_id)
        model = str(asset.attributes.get("model", ""))
        start = int(asset.created_at.timestamp() * 1e6) if asset.created_at else self.clock()
        age_months = (self.clock() - start) / (_US_PER_DAY * 30.4375)
        term_id, status, reason = None, "rejected", f"no warranty terms for model {model!r}"
        for term in self.list_warranty_terms(who):
            if term["model"] not in (model, "*"):
                continue
            if age_months > term["months"]:
                reason = f"age {age_months:.1f} months > {term['months']}"
            elif term["hours_cap"] is not None and hours > term["hours_cap"]:
                reason = f"hours {hours:g} > cap {term['hours_cap']:g}"
            else:
                term_id, status, reason = term["id"], "submitted", "covered"
                break
        tid, path = self._tenant(None, wo.tenant_id)
        row = {
            "tenant_id": tid,
            "tenant_path": path,
            "work_order_id": wo_id,
            "asset_id": wo.asset_id,
            "term_id": term_id,
            "status": status,
            "amount": amount,
            "reason": reason,
            "ts_us": self.clock(),
        }
        with self._write() as conn:
            rid = conn.execute(insert(t.warranty_claims).values(row)).inserted_primary_key
        return {"id": int(rid[0]) if rid else 0, **row}

    # -- KPIs and forecasts ------------------------------------------------------------
    def kpis(
        self, who: Principal | None, by: str = "region", operating_hours: float | None = None
    ) -> list[Kpis]:
        """Service KPIs grouped by region, station, model or all."""
        if by not in ("region", "station", "model", "all"):
            raise InvalidInput("by", "must be region, station, model or all")
        with self._read() as conn:
            rows = list(
                conn.execute(
                    select(t.work_orders).where(_visible(t.work_orders.c.tenant_path, who))
                ).mappings()
            )
            lines = [
                PartLine(
                    work_order_id=r["work_order_id"],
                    part_no=r["part_no"],
                    qty=r["qty"] or 0.0,
                    filled_from_stock=bool(r["filled_from_stock"]),
                )
                for r in conn.execute(
                    select(t.work_order_lines).where(
                        t.work_order_lines.c.kind == "part",
                        _visible(t.work_order_lines.c.tenant_path, who),
                    )
                ).mappings()
            ]
        col = {"region": "region", "station": "station_id", "model": "model"}.get(by)
        keys = {r["id"]: (str(r[col] or "-") if col else "all") for r in rows}
        hours: Mapping[str, float] | None
        if operating_hours:
            hours = {k: operating_hours for k in set(keys.values())}
        elif rows and by != "station":
            hours = self._operating_hours(who, by, min(r["created_us"] for r in rows))
        else:
            hours = None
        return compute_by(
            [_wo(r) for r in rows],
            lambda wo: keys[wo.id],
            now_us=self.clock(),
            operating_hours=hours,
            part_lines=lines,
        )

    def _operating_hours(self, who: Principal | None, by: str, start_us: int) -> dict[str, float]:
        """Engine hours run since ``start_us`` by the machines of each group (for MTBF).

        Groups as work orders are keyed: the asset's ``city`` attribute for regions, its
        ``model`` for models. Hours are the growth of each ``engine_hours`` series.
        """
        if self.store is None:
            return {}
        attr = {"region": "city", "model": "model"}.get(by)
        assets: dict[str, str] = {}
        while True:
            page = self.registry.list_assets(who, limit=10_000, offset=len(assets))
            for a in page:
                assets[a.id] = str(a.attributes.get(attr) or "-") if attr else "all"
            if len(page) < 10_000:
                break
        refs = {
            r.id: assets[r.asset_id]
            for r in self.registry.series_of(who, list(assets))
            if r.measurement == "engine_hours"
        }
        if not refs:
            return {}
        got = self.store.aggregate(
            list(refs), start_us, self.clock() + 1, _US_PER_DAY, [Agg.MIN, Agg.MAX]
        ).to_pydict()
        lo: dict[int, float] = {}
        hi: dict[int, float] = {}
        for sid, mn, mx in zip(got["series"], got["min"], got["max"], strict=True):
            lo[sid] = min(lo.get(sid, mn), mn)
            hi[sid] = max(hi.get(sid, mx), mx)
        out: dict[str, float] = {}
        for sid, group in refs.items():
            if sid in lo:
                out[group] = out.get(group, 0.0) + hi[sid] - lo[sid]
        return out

    def part_forecasts(
        self,
        who: Principal | None,
        usages: Mapping[str, Usage],
        *,
        horizon_days: int = 90,
        weeks: int = 26,
    ) -> list[PartForecast]:
        """Demand per part: planned (installed base x plans) plus unplanned use (SBA/TSB).

        Args:
            who: the caller.
            usages: asset id -> usage of the installed base to plan for.
            horizon_days: the forecast horizon.
            weeks: weekly history of unplanned part use to fit on.
        """
        plans = {p.asset_type: p for p in self.list_plans(who)}
        machines = [
            (plans[self.registry.get_asset(who, a).type_name], usages[a], items)
            for a, items in self.due_many(who, list(usages), usages).items()
        ]
        planned = planned_demand(machines, horizon_days)
        now = self.clock()
        start = now - weeks * 7 * _US_PER_DAY
        history: dict[str, list[float]] = {}
        with self._read() as conn:
            q = (
                select(
                    t.work_order_lines.c.part_no,
                    t.work_order_lines.c.qty,
                    t.work_order_lines.c.ts_us,
                )
                .join(t.work_orders, t.work_orders.c.id == t.work_order_lines.c.work_order_id)
                .where(
                    t.work_order_lines.c.kind == "part",
                    t.work_order_lines.c.ts_us >= start,
                    t.work_orders.c.source != "maintenance",
                    _visible(t.work_order_lines.c.tenant_path, who),
                )
            )
            for part_no, qty, ts in conn.execute(q):
                week = min(weeks - 1, int((ts - start) // (7 * _US_PER_DAY)))
                history.setdefault(part_no, [0.0] * weeks)[week] += qty or 0.0
        names = sorted(set(planned) | set(history))
        return [
            part_forecast(
                p, history.get(p, [0.0] * weeks), planned, horizon_days=horizon_days, period_days=7
            )
            for p in names
        ]
