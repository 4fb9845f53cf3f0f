"""Automatic work orders (predictions, maintenance due), unattended dispatch and the
demo's simulated technicians, on a real registry database with an injected clock."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sql_registry_support import Tree

from ironbridge.aftersales import Aftersales, FieldSimulator, run_periodic
from ironbridge.app import prediction_work_order_action
from ironbridge.model import Asset, InvalidInput
from ironbridge.predict.service import PredictService
from ironbridge.store.sql import SqlRegistry

H = 3_600_000_000
DAY = 24 * H
MIN = 60_000_000


class Clock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def _asset(registry: SqlRegistry, asset_id: str) -> Asset:
    return registry.create_asset(
        None,
        Asset(
            id=asset_id,
            tenant_id="acme",
            type_name="truck",
            name=asset_id,
            attributes={"vin": asset_id},
        ),
    )


@pytest.fixture
def clock(registry: SqlRegistry, tree: Tree) -> Clock:
    created = _asset(registry, "t1").created_at
    _asset(registry, "t2")
    assert created is not None
    return Clock(int(created.timestamp() * 1e6))


@pytest.fixture
def svc(registry: SqlRegistry, clock: Clock) -> Aftersales:
    service = Aftersales(registry.engine, registry, None, clock=clock)
    service.put_station(None, {"id": "s1", "lat": 36.65, "lon": 117.12})
    return service


# -- work orders from predictions ------------------------------------------------------
async def test_prediction_opens_one_order_per_asset_while_it_is_open(svc: Aftersales) -> None:
    hook = prediction_work_order_action(svc, rul_threshold_h=8.0, health_threshold=30.0)
    low = {"t1": {"rul": 5.0, "health_index": 60.0}, "t2": {"rul": 20.0, "health_index": 90.0}}
    await hook("truck", 3, low)
    [wo] = svc.list_work_orders(None)
    assert (wo.asset_id, wo.source, wo.priority) == ("t1", "prediction", "P1")
    assert "truck/v3" in wo.title
    assert "RUL 5 h" in wo.title
    await hook("truck", 3, low)  # still low, order still open: no second one
    await hook("truck", 3, {"t1": {"rul": 20.0, "health_index": 12.0}})
    assert [w.id for w in svc.list_work_orders(None)] == [wo.id]
    svc.transition(None, wo.id, "cancelled")
    await hook("truck", 3, {"t1": {"rul": 20.0, "health_index": 12.0}})  # health 12 % < 30 %
    again = svc.list_work_orders(None, states=["new"])
    assert [(w.asset_id, w.priority) for w in again] == [("t1", "P2")]
    assert again[0].id != wo.id
    await hook("truck", 3, {"t2": {"rul": 9.0, "health_index": 31.0}})  # above both thresholds
    assert len(svc.list_work_orders(None)) == 2


async def test_the_scorer_calls_its_hooks_with_each_assets_values(tmp_path: Any) -> None:
    published: list[str] = []

    class Publisher:
        async def publish(self, subject: str, payload: bytes, headers: Any = None) -> None:
            published.append(subject)

    predict = PredictService(
        registry=SimpleNamespace(),  # type: ignore[arg-type]
        store=SimpleNamespace(),  # type: ignore[arg-type]
        publisher=Publisher(),
        models_dir=tmp_path,
    )
    # One message per asset, as the scorer publishes them; the hook gets the newest values.
    values = {"rul": [5.0, 3.0], "health_index": [40.0, None]}
    body = {"asset": "a1", "ts": [1, 2], "values": values}
    predict.deployed_types = lambda: ["truck"]  # type: ignore[method-assign]
    predict.models.active = lambda name, kind: SimpleNamespace(version=2)  # type: ignore[method-assign]
    predict._score_type = lambda name, version: (  # type: ignore[method-assign]
        {"a1": orjson.dumps(body)},
        {"a1": 1},
        0,
    )
    seen: list[tuple[str, int, dict[str, Any]]] = []

    async def hook(asset_type: str, version: int, values: Any) -> None:
        seen.append((asset_type, version, dict(values)))

    async def broken(asset_type: str, version: int, values: Any) -> None:
        raise RuntimeError("a consumer bug")

    predict.score_hooks.extend([broken, hook])
    assert (await predict.score_once())["published"] == 1
    assert published == ["ib.v1._asset-a1.telemetry"]
    assert seen == [("truck", 2, {"a1": {"rul": 3.0, "health_index": 40.0}})]


# -- work orders from maintenance falling due ------------------------------------------
def test_due_scan_opens_one_order_per_due_service(svc: Aftersales, clock: Clock) -> None:
    svc.put_plan(
        None,
        {
            "asset_type": "truck",
            "lead_days": 5,
            "intervals": [{"name": "monthly", "months": 1, "labour_h": 1.5}],
        },
    )
    clock.now += 20 * DAY
    assert svc.scan_fleet_due() == []  # due in about 10 days: only "due soon"
    clock.now += 11 * DAY
    opened = svc.scan_fleet_due()
    assert sorted(w.asset_id for w in opened) == ["t1", "t2"]
    assert {(w.source, w.priority, w.duration_min) for w in opened} == {("maintenance", "P3", 90)}
    clock.now += 1 * DAY
    again = svc.scan_fleet_due()  # still due, not yet serviced: the same orders
    assert sorted(w.id for w in again) == sorted(w.id for w in opened)
    assert len(svc.list_work_orders(None)) == 2
    svc.record_service(None, "t1", "monthly", hours=0.0)
    clock.now += 1 * DAY
    assert [w.asset_id for w in svc.scan_fleet_due()] == ["t2"]
    clock.now += 31 * DAY  # t1's next month has passed: its next service is a new order
    later = svc.scan_fleet_due()
    t1 = [w for w in later if w.asset_id == "t1"]
    assert len(t1) == 1
    assert t1[0].id not in {w.id for w in opened}
    assert len(svc.list_work_orders(None)) == 3


# -- unattended dispatch and simulated technicians ---------------------------------------
def test_auto_dispatch_then_simulated_technicians_work_the_orders(
    svc: Aftersales, clock: Clock
) -> None:
    svc.put_part(None, {"part_no": "P1"})
    svc.set_stock(None, "s1", "P1", 5)
    svc.put_plan(
        None,
        {
            "asset_type": "truck",
            "intervals": [{"name": "oil", "hours": 500, "parts": [{"part_no": "P1", "qty": 2}]}],
        },
    )
    svc.put_technician(
        None,
        {
            "id": "k1",
            "station_id": "s1",
            "lat": 36.65,
            "lon": 117.12,
            "skills": ["engine"],
            "shift_start_h": 0,
            "shift_end_h": 24,
        },
    )
    clock.now = clock.now - clock.now % DAY + 2 * H  # 10:00 in UTC+8
    wo = svc.create_work_order(
        None,
        {"asset_id": "t1", "title": "noise", "lat": 36.75, "lon": 117.12, "duration_min": 60},
    )
    oil = svc.create_work_order(
        None,
        {
            "asset_id": "t2",
            "title": "oil",
            "lat": 36.65,
            "lon": 117.2,
            "duration_min": 30,
            "source": "maintenance",
            "source_ref": "maintenance:oil:500.0:None:None",
        },
    )
    assigned = svc.auto_dispatch(time_limit_s=1.0)
    assert sorted(w.id for w in assigned) == [wo.id, oil.id]
    assert {w.technician_id for w in assigned} == {"k1"}
    assert svc.auto_dispatch(time_limit_s=1.0) == []  # nothing new left

    field = FieldSimulator(svc, speedup=1.0, set_off_min=10, start_min=5, close_min=30)
    assert field.step() == []  # first sight: the stage clock starts now
    clock.now += 9 * MIN
    assert field.step() == []
    clock.now += 1 * MIN
    assert {(m.work_order_id, m.to) for m in field.step()} == {
        (wo.id, "en_route"),
        (oil.id, "en_route"),
    }
    # 11.1 km great circle x 1.3 road factor at 60 km/h is 14.5 minutes to t1
    clock.now += 14 * MIN
    assert [(m.work_order_id, m.to) for m in field.step()] == [(oil.id, "on_site")]
    clock.now += 1 * MIN
    assert [(m.work_order_id, m.to) for m in field.step()] == [(wo.id, "on_site")]
    clock.now += 5 * MIN
    assert len(field.step()) == 2  # both in progress
    clock.now += 30 * MIN
    assert [(m.work_order_id, m.to) for m in field.step()] == [(oil.id, "completed")]
    clock.now += 30 * MIN
    moves = {(m.work_order_id, m.to) for m in field.step()}
    assert moves == {(wo.id, "completed"), (oil.id, "closed")}
    assert svc.get_work_order(None, wo.id).state == "completed"
    kinds = sorted(ln["kind"] for ln in svc.lines(None, oil.id))
    assert kinds == ["labour", "part"]
    [stock] = svc.list_stock(None, "s1")
    assert stock["available"] == 3  # the oil kit reserved at the technician's station
    assert "oil" in svc.last_services("t2")
    path = [e["data"]["to"] for e in svc.events(None, oil.id) if e["kind"] == "transition"]
    assert path == ["assigned", "en_route", "on_site", "in_progress", "completed", "closed"]


async def test_periodic_job_survives_failures_and_stops_when_told() -> None:
    stop = asyncio.Event()
    calls: list[int] = []

    def job() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise InvalidInput("x", "a failing pass")
        if len(calls) == 4:
            stop.set()

    await asyncio.wait_for(run_periodic("test job", job, stop, 0.001), timeout=10)
    assert len(calls) == 4
