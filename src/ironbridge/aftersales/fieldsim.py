"""Simulated technicians for the demo: they work their assigned orders through the lifecycle.

Each step looks at the orders held by a technician and makes at most one move per order
once the time for the current stage has passed, on a clock running ``speedup`` times
faster than the service's: set off (``en_route``) shortly after assignment, arrive
(``on_site``) after the road-estimated drive from the home base, start work
(``in_progress``), complete it after the order's duration (booking labour, the plan's
parts for a maintenance order from the technician's station, and the service record),
and close it a little later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ironbridge.aftersales.dispatch import ROAD_FACTOR, SPEED_KMH, haversine_km
from ironbridge.aftersales.service import Aftersales
from ironbridge.aftersales.workorders import WorkOrder, WorkOrderState
from ironbridge.model import IronbridgeError

_LOGGER = logging.getLogger(__name__)
_US_PER_MIN = 60_000_000

S = WorkOrderState
_ACTIVE = (S.ASSIGNED, S.EN_ROUTE, S.ON_SITE, S.IN_PROGRESS, S.COMPLETED)


@dataclass(frozen=True, slots=True, kw_only=True)
class Move:
    """One move made by a simulated technician."""

    work_order_id: int
    technician_id: str
    to: WorkOrderState


class FieldSimulator:
    """Simulated technicians progressing their work orders.

    Args:
        service: the after-sales service (its clock is the simulator's).
        speedup: simulated minutes per real minute.
        set_off_min: simulated minutes from assignment to setting off.
        start_min: simulated minutes on site before work starts.
        close_min: simulated minutes from completion to closing.
        clock: current time in µs (default: the service's clock).
    """

    def __init__(
        self,
        service: Aftersales,
        *,
        speedup: float = 30.0,
        set_off_min: float = 10.0,
        start_min: float = 10.0,
        close_min: float = 60.0,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.service = service
        self.speedup = speedup
        self.set_off_min = set_off_min
        self.start_min = start_min
        self.close_min = close_min
        self.clock = clock or service.clock
        #: work order id -> (state last seen, since when in µs)
        self._seen: dict[int, tuple[WorkOrderState, int]] = {}

    def _stage_min(self, wo: WorkOrder, home: tuple[float, float] | None) -> float:
        if wo.state is S.ASSIGNED:
            return self.set_off_min
        if wo.state is S.EN_ROUTE:
            if home is None or wo.lat is None or wo.lon is None:
                return 30.0
            km = float(haversine_km(home[0], home[1], wo.lat, wo.lon))
            return km * ROAD_FACTOR / SPEED_KMH * 60.0
        if wo.state is S.ON_SITE:
            return self.start_min
        if wo.state is S.IN_PROGRESS:
            return wo.duration_min
        return self.close_min

    def step(self) -> list[Move]:
        """Make every move that is due now; returns the moves made."""
        now = self.clock()
        homes = {
            r["id"]: (float(r["lat"]), float(r["lon"])) for r in self.service.list_technicians(None)
        }
        orders = self.service.list_work_orders(
            None, states=[s.value for s in _ACTIVE], limit=100_000
        )
        moves: list[Move] = []
        for wo in orders:
            if wo.technician_id is None:
                continue
            seen = self._seen.get(wo.id)
            if seen is None or seen[0] is not wo.state:
                self._seen[wo.id] = (wo.state, now)
                continue
            elapsed_min = (now - seen[1]) / _US_PER_MIN * self.speedup
            if elapsed_min < self._stage_min(wo, homes.get(wo.technician_id)):
                continue
            to = {
                S.ASSIGNED: S.EN_ROUTE,
                S.EN_ROUTE: S.ON_SITE,
                S.ON_SITE: S.IN_PROGRESS,
                S.IN_PROGRESS: S.COMPLETED,
                S.COMPLETED: S.CLOSED,
            }[wo.state]
            try:
                if to is S.COMPLETED:
                    self._book_work(wo)
                self.service.transition(None, wo.id, to.value, note="simulated technician")
            except IronbridgeError as exc:  # moved meanwhile (a dispatcher was quicker)
                _LOGGER.debug("simulated technician: order %s not moved: %s", wo.id, exc)
                self._seen.pop(wo.id, None)
                continue
            self._seen[wo.id] = (to, now)
            moves.append(Move(work_order_id=wo.id, technician_id=wo.technician_id, to=to))
        for wo_id in set(self._seen) - {wo.id for wo in orders}:
            del self._seen[wo_id]
        return moves

    def _book_work(self, wo: WorkOrder) -> None:
        """Labour, the kit of a maintenance interval and the service record."""
        svc = self.service
        svc.add_line(None, wo.id, "labour", {"hours": round(wo.duration_min / 60.0, 2)})
        if wo.source != "maintenance" or not wo.source_ref:
            svc.add_line(None, wo.id, "finding", {"text": "fault found and fixed on site"})
            return
        interval = wo.source_ref.split(":")[1]
        asset = svc.registry.get_asset(None, wo.asset_id)
        plan = svc.get_plan(None, asset.type_name)
        for iv in plan.intervals:
            if iv.name == interval:
                for part in iv.parts:
                    svc.add_line(None, wo.id, "part", {"part_no": part.part_no, "qty": part.qty})
        use = svc.usage(None, wo.asset_id, days=1)
        svc.record_service(
            None, wo.asset_id, interval, hours=use.hours, km=use.km, work_order_id=wo.id
        )
