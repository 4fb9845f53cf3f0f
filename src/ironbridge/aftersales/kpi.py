"""Service KPIs: MTTR, MTBF, first-time-fix rate, SLA attainment and parts fill rate."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from ironbridge.aftersales.workorders import Source, WorkOrder, WorkOrderState

_US_PER_H = 3_600_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class PartLine:
    """One part requested on a work order, and whether stock filled it at once."""

    work_order_id: int
    part_no: str
    qty: float
    filled_from_stock: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Kpis:
    """Service KPIs of one group of work orders (None where there is nothing to measure)."""

    group: str
    work_orders: int
    completed: int
    #: mean hours from a corrective order's creation to its completion
    mttr_h: float | None
    #: operating hours per corrective order (failure)
    mtbf_h: float | None
    #: completed orders fixed on the first visit / completed orders
    first_time_fix: float | None
    #: orders with both clocks met / orders whose clocks have stopped or broken
    sla_attainment: float | None
    response_attainment: float | None
    repair_attainment: float | None
    #: part lines filled from stock at once / part lines requested
    fill_rate: float | None


_DONE = (WorkOrderState.COMPLETED, WorkOrderState.CLOSED)


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def compute(
    group: str,
    orders: Sequence[WorkOrder],
    *,
    now_us: int,
    operating_hours: float | None = None,
    part_lines: Sequence[PartLine] = (),
) -> Kpis:
    """Return the KPIs of ``orders``.

    Definitions (also in docs/aftersales.md):

    - corrective orders are those not opened by planned maintenance; cancelled orders
      are left out of every KPI;
    - MTTR: mean of completed - created over completed corrective orders, in hours;
    - MTBF: ``operating_hours`` (of the machines in the group, over the same window)
      divided by the number of corrective orders;
    - first-time fix: completed orders with exactly one visit on site / completed orders;
    - SLA attainment: a clock counts once it has stopped (met or late) or is already
      past due; an order attains its SLA when both clocks met;
    - fill rate: part lines filled from stock when requested / part lines.
    """
    live = [wo for wo in orders if wo.state is not WorkOrderState.CANCELLED]
    done = [wo for wo in live if wo.state in _DONE and wo.completed_us is not None]
    corrective = [wo for wo in live if wo.source is not Source.MAINTENANCE]
    repairs = [
        (wo.completed_us - wo.created_us) / _US_PER_H
        for wo in corrective
        if wo.state in _DONE and wo.completed_us is not None
    ]
    mttr = sum(repairs) / len(repairs) if repairs else None
    mtbf = operating_hours / len(corrective) if operating_hours is not None and corrective else None
    ftf = _ratio(sum(1 for wo in done if wo.visits == 1), len(done))

    resp_n = resp_ok = rep_n = rep_ok = both_n = both_ok = 0
    for wo in live:
        r = _clock(wo.arrived_us, wo.response_due_us, now_us)
        f = _clock(wo.completed_us, wo.repair_due_us, now_us)
        if r is not None:
            resp_n += 1
            resp_ok += r
        if f is not None:
            rep_n += 1
            rep_ok += f
        # Judged once the outcome is known: a breach of either, or both met.
        if r is False or f is False or (r is True and f is True):
            both_n += 1
            both_ok += bool(r and f)
    lines = list(part_lines)
    fill = _ratio(sum(1 for p in lines if p.filled_from_stock), len(lines))
    return Kpis(
        group=group,
        work_orders=len(live),
        completed=len(done),
        mttr_h=mttr,
        mtbf_h=mtbf,
        first_time_fix=ftf,
        sla_attainment=_ratio(both_ok, both_n),
        response_attainment=_ratio(resp_ok, resp_n),
        repair_attainment=_ratio(rep_ok, rep_n),
        fill_rate=fill,
    )


def _clock(stop_us: int | None, due_us: int, now_us: int) -> bool | None:
    """True met, False breached, None still running within its allowance."""
    if stop_us is not None:
        return stop_us <= due_us
    if now_us > due_us:
        return False
    return None


def compute_by(
    orders: Iterable[WorkOrder],
    key: Callable[[WorkOrder], str],
    *,
    now_us: int,
    operating_hours: Mapping[str, float] | None = None,
    part_lines: Sequence[PartLine] = (),
) -> list[Kpis]:
    """Return KPIs per group (``key`` of each order: region, station, model...).

    Args:
        orders: the work orders.
        key: the group of an order.
        now_us: the time the running clocks are judged at.
        operating_hours: group -> operating hours of its machines (for MTBF).
        part_lines: part lines of these orders.
    """
    groups: dict[str, list[WorkOrder]] = {}
    for wo in orders:
        groups.setdefault(key(wo), []).append(wo)
    group_of = {wo.id: g for g, wos in groups.items() for wo in wos}
    lines: dict[str, list[PartLine]] = {}
    for line in part_lines:
        g = group_of.get(line.work_order_id)
        if g is not None:
            lines.setdefault(g, []).append(line)
    hours = operating_hours or {}
    return [
        compute(g, wos, now_us=now_us, operating_hours=hours.get(g), part_lines=lines.get(g, ()))
        for g, wos in sorted(groups.items())
    ]
