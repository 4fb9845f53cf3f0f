"""Pure after-sales logic: due dates, work-order transitions and SLA, forecasts, KPIs, dispatch."""

from __future__ import annotations

import pytest

from ironbridge.aftersales import (
    TRANSITIONS,
    DueStatus,
    Job,
    LastService,
    MaintenancePlan,
    PartLine,
    Priority,
    SlaKind,
    SlaLevel,
    SlaMonitor,
    Source,
    Technician,
    Usage,
    WorkOrderState,
    add_months,
    classify,
    compute,
    croston,
    due_list,
    greedy_plan,
    new_work_order,
    propose_plan,
    transition,
    tsb,
)
from ironbridge.aftersales.forecast import DemandClass
from ironbridge.model import Conflict, InvalidInput, from_datetime

H = 3_600_000_000
DAY = 24 * H
T0 = from_datetime(__import__("datetime").datetime(2026, 1, 31, tzinfo=__import__("datetime").UTC))

PLAN = MaintenancePlan.from_dict(
    {
        "asset_type": "heavy_truck",
        "lead_hours": 20,
        "lead_km": 1000,
        "lead_days": 10,
        "intervals": [{"name": "oil", "hours": 500, "km": 40_000, "months": 6}],
    }
)


def usage(hours: float, km: float, days: float, h_rate: float = 0.0, km_rate: float = 0.0) -> Usage:
    return Usage(
        hours=hours, km=km, ts_us=T0 + int(days * DAY), start_ts_us=T0,
        hours_per_day=h_rate, km_per_day=km_rate,
    )  # fmt: skip


# -- due logic -------------------------------------------------------------------------
def test_add_months_clamps_day() -> None:
    assert add_months(T0, 1) == T0 + 28 * DAY  # 31 Jan 2026 -> 28 Feb 2026
    assert add_months(T0, 12) == T0 + 365 * DAY


def test_hours_limit_comes_first() -> None:
    [item] = due_list(PLAN, usage(490, 10_000, 30, h_rate=10, km_rate=300), {})
    assert item.driver == "hours"
    assert item.status is DueStatus.DUE_SOON  # 10 h left, lead 20 h
    assert item.remaining_hours == pytest.approx(10)
    assert item.forecast_ts_us == T0 + 30 * DAY + 1 * DAY  # 10 h at 10 h/day


def test_km_limit_comes_first() -> None:
    [item] = due_list(PLAN, usage(100, 40_500, 30, h_rate=3, km_rate=1000), {})
    assert item.driver == "km"
    assert item.status is DueStatus.DUE  # 500 km past, within one lead of 1000 km
    [late] = due_list(PLAN, usage(100, 41_500, 30, h_rate=3, km_rate=1000), {})
    assert late.status is DueStatus.OVERDUE


def test_calendar_limit_comes_first_for_an_idle_machine() -> None:
    # 6 months after 31 Jan 2026 is 31 Jul 2026 = day 181; at day 175 it is due soon.
    [item] = due_list(PLAN, usage(20, 500, 175, h_rate=0.1, km_rate=3), {})
    assert item.driver == "months"
    assert item.status is DueStatus.DUE_SOON
    assert item.due_ts_us == T0 + 181 * DAY
    assert item.forecast_ts_us == T0 + 181 * DAY


def test_last_service_resets_the_interval_and_first_service_is_earlier() -> None:
    plan = MaintenancePlan.from_dict(
        {"asset_type": "x", "intervals": [{"name": "a", "hours": 250, "first_hours": 50}]}
    )
    [never] = due_list(plan, usage(60, 0, 5), {})
    assert never.due_hours == 50
    assert never.status is DueStatus.DUE
    done = {"a": LastService(hours=55, km=None, ts_us=T0 + 5 * DAY)}
    [after] = due_list(plan, usage(60, 0, 6), done)
    assert after.due_hours == 305
    assert after.status is DueStatus.OK


def test_one_time_service_disappears_once_done() -> None:
    plan = MaintenancePlan.from_dict(
        {"asset_type": "x", "intervals": [{"name": "run-in", "hours": 50, "repeat": False}]}
    )
    assert (
        due_list(plan, usage(10, 0, 1), {"run-in": LastService(hours=50, km=None, ts_us=T0)}) == []
    )


def test_plan_without_limits_is_rejected() -> None:
    with pytest.raises(InvalidInput):
        MaintenancePlan.from_dict({"asset_type": "x", "intervals": [{"name": "a"}]})


# -- work orders and SLA ---------------------------------------------------------------
def wo(priority: Priority = Priority.P0):
    return new_work_order(
        id=1, tenant_id="root", asset_id="t1", title="x", created_us=T0, priority=priority
    )


def test_happy_path_stamps_times() -> None:
    w = wo()
    w = transition(w, WorkOrderState.ASSIGNED, T0 + 1, technician_id="tech-1")
    assert w.technician_id == "tech-1"
    w = transition(w, WorkOrderState.EN_ROUTE, T0 + 2)
    w = transition(w, WorkOrderState.ON_SITE, T0 + H)
    assert w.arrived_us == T0 + H
    assert w.visits == 1
    w = transition(w, WorkOrderState.IN_PROGRESS, T0 + H + 1)
    w = transition(w, WorkOrderState.ON_HOLD, T0 + 2 * H)
    assert w.held_from is WorkOrderState.IN_PROGRESS
    w = transition(w, WorkOrderState.IN_PROGRESS, T0 + 3 * H)
    w = transition(w, WorkOrderState.COMPLETED, T0 + 5 * H)
    assert w.completed_us == T0 + 5 * H
    w = transition(w, WorkOrderState.CLOSED, T0 + 6 * H)
    assert w.closed_us == T0 + 6 * H


@pytest.mark.parametrize("src", list(WorkOrderState))
@pytest.mark.parametrize("dst", list(WorkOrderState))
def test_every_transition_follows_the_table(src: WorkOrderState, dst: WorkOrderState) -> None:
    w = new_work_order(
        id=1, tenant_id="r", asset_id="a", title="x", created_us=T0, state=src, technician_id="t"
    )
    if dst in TRANSITIONS[src]:
        assert transition(w, dst, T0 + 1).state is dst
    else:
        with pytest.raises(Conflict):
            transition(w, dst, T0 + 1)


def test_assign_needs_a_technician() -> None:
    with pytest.raises(InvalidInput):
        transition(wo(), WorkOrderState.ASSIGNED, T0)


def test_sla_warns_before_breach_and_raises_each_alert_once() -> None:
    now = [T0]
    mon = SlaMonitor(lambda: now[0])
    w = wo(Priority.P0)  # on site within 2 h, fixed within 24 h; warn at 75 %
    now[0] = T0 + int(1.4 * H)
    assert mon.check([w]) == []
    now[0] = T0 + int(1.5 * H)
    [a] = mon.check([w])
    assert (a.kind, a.level) == (SlaKind.RESPONSE, SlaLevel.WARNING)
    assert mon.check([w]) == []  # once
    now[0] = T0 + 2 * H + 1
    [b] = mon.check([w])
    assert (b.kind, b.level) == (SlaKind.RESPONSE, SlaLevel.BREACHED)
    assigned = transition(w, WorkOrderState.ASSIGNED, T0, technician_id="t")
    en_route = transition(assigned, WorkOrderState.EN_ROUTE, T0)
    arrived = transition(en_route, WorkOrderState.ON_SITE, now[0])
    now[0] = T0 + 18 * H
    [c] = mon.check([arrived])
    assert (c.kind, c.level) == (SlaKind.REPAIR, SlaLevel.WARNING)
    now[0] = T0 + 25 * H
    [d] = mon.check([arrived])
    assert (d.kind, d.level) == (SlaKind.REPAIR, SlaLevel.BREACHED)


# -- forecasts -------------------------------------------------------------------------
DEMAND = [0, 3, 0, 0, 5, 0, 2, 0, 0, 0]


def test_croston_worked_example() -> None:
    # First demand 3 in period 2: z=3, p=2. Demand 5 after 3 periods:
    # z = 3 + 0.5 (5 - 3) = 4, p = 2 + 0.5 (3 - 2) = 2.5. Demand 2 after 2 periods:
    # z = 4 + 0.5 (2 - 4) = 3, p = 2.5 + 0.5 (2 - 2.5) = 2.25. Forecast 3 / 2.25.
    assert croston(DEMAND, 0.5) == pytest.approx(3 / 2.25)
    assert croston(DEMAND, 0.5, sba=True) == pytest.approx(3 / 2.25 * 0.75)
    assert croston([0, 0, 0]) == 0.0


def test_tsb_worked_example() -> None:
    # Start at period 2: z=3, prob=1/2. Then (alpha=beta=0.5) periods 3..10:
    # 0 -> .25, 0 -> .125, 5 -> prob .5625 z 4, 0 -> .28125, 2 -> prob .640625 z 3,
    # 0 -> .3203125, 0 -> .16015625, 0 -> .080078125. Forecast prob * z.
    assert tsb(DEMAND, 0.5, 0.5) == pytest.approx(0.080078125 * 3)


def test_classify_demand() -> None:
    cls, adi, cv2 = classify(DEMAND)
    assert adi == pytest.approx(10 / 3)
    assert cls is DemandClass.INTERMITTENT
    # sizes 3, 5, 2: mean 10/3, population variance 14/9, so CV2 = (14/9) / (100/9)
    assert cv2 == pytest.approx(0.14)
    assert classify([5, 5, 6, 5])[0] is DemandClass.SMOOTH
    assert classify([1, 20, 1, 30])[0] is DemandClass.ERRATIC


# -- KPIs ------------------------------------------------------------------------------
def test_kpis_against_hand_computed_values() -> None:
    def mk(i: int, **kw: object):
        base = new_work_order(
            id=i, tenant_id="r", asset_id="a", title="x", created_us=0, priority=Priority.P0
        )
        import dataclasses

        return dataclasses.replace(base, **kw)

    orders = [
        # on site 1 h, done 10 h, one visit: both met
        mk(1, state=WorkOrderState.COMPLETED, arrived_us=1 * H, completed_us=10 * H, visits=1),
        # on site 3 h (late), done 20 h, two visits
        mk(2, state=WorkOrderState.CLOSED, arrived_us=3 * H, completed_us=20 * H, visits=2),
        # maintenance order, done 30 h (late repair), one visit
        mk(3, state=WorkOrderState.COMPLETED, arrived_us=1 * H, completed_us=30 * H, visits=1,
           source=Source.MAINTENANCE),
        # still open, within its response allowance at now = 1 h
        mk(4, state=WorkOrderState.NEW),
        mk(5, state=WorkOrderState.CANCELLED),
    ]  # fmt: skip
    lines = [
        PartLine(work_order_id=1, part_no="a", qty=1, filled_from_stock=True),
        PartLine(work_order_id=2, part_no="a", qty=1, filled_from_stock=False),
        PartLine(work_order_id=2, part_no="b", qty=1, filled_from_stock=True),
        PartLine(work_order_id=3, part_no="b", qty=1, filled_from_stock=True),
    ]
    k = compute("all", orders, now_us=1 * H, operating_hours=3000, part_lines=lines)
    assert k.work_orders == 4
    assert k.completed == 3
    assert k.mttr_h == pytest.approx((10 + 20) / 2)  # corrective: 1 and 2
    assert k.mtbf_h == pytest.approx(3000 / 3)  # corrective: 1, 2, 4
    assert k.first_time_fix == pytest.approx(2 / 3)
    assert k.response_attainment == pytest.approx(2 / 3)  # 1, 3 met; 2 late; 4 running
    assert k.repair_attainment == pytest.approx(2 / 3)  # 1, 2 met; 3 late
    assert k.sla_attainment == pytest.approx(1 / 3)  # only 1 met both
    assert k.fill_rate == pytest.approx(3 / 4)


# -- dispatch --------------------------------------------------------------------------
def test_dispatch_respects_skills_and_working_hours() -> None:
    techs = [
        Technician(id="eng", station_id="s1", lat=36.65, lon=117.12, skills=frozenset({"engine"}),
                   shift_start_min=0, shift_end_min=480),
        Technician(id="hyd", station_id="s1", lat=36.65, lon=117.12,
                   skills=frozenset({"hydraulics"}), shift_start_min=0, shift_end_min=240),
    ]  # fmt: skip
    jobs = [
        Job(id=1, lat=36.70, lon=117.20, skill="engine", duration_min=60, due_min=120),
        Job(id=2, lat=36.60, lon=117.05, skill="hydraulics", duration_min=60),
        Job(id=3, lat=36.68, lon=117.15, skill="hydraulics", duration_min=60),
        # far beyond the hydraulics technician's 4-hour day
        Job(id=4, lat=37.51, lon=122.12, skill="hydraulics", duration_min=60),
        Job(id=5, lat=36.66, lon=117.10, skill="electrical", duration_min=30),
        Job(id=6, lat=36.66, lon=117.13, skill="engine", duration_min=500),  # too long
    ]  # fmt: skip
    for plan in (propose_plan(techs, jobs, time_limit_s=1.0), greedy_plan(techs, jobs)):
        got = plan.assignment()
        assert got[1] == "eng"
        assert got[2] == "hyd"
        assert got[3] == "hyd"
        assert set(plan.unassigned) == {4, 5, 6}
        assert "skill 'electrical'" in plan.unassigned[5]
        assert "working hours" in plan.unassigned[4]
        by_id = {t.id: t for t in techs}
        for route in plan.routes:
            t = by_id[route.technician_id]
            assert route.stops[0].arrive_min >= t.shift_start_min
            last = route.stops[-1]
            back = route.travel_min - sum(s.travel_min for s in route.stops)
            assert last.depart_min + back <= t.shift_end_min + 0.1
            for s in route.stops:
                job = next(j for j in jobs if j.id == s.job_id)
                assert job.skill in t.skills
                assert s.reason
