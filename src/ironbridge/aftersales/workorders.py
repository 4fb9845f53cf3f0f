"""Work orders: the lifecycle state machine and the response / repair SLA timers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from ironbridge.model import Conflict, InvalidInput

US_PER_H = 3_600_000_000


class WorkOrderState(StrEnum):
    """Where a work order is in its life."""

    NEW = "new"
    ASSIGNED = "assigned"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    COMPLETED = "completed"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = WorkOrderState

#: state -> the states it may move to; CLOSED and CANCELLED are final
TRANSITIONS: Mapping[WorkOrderState, frozenset[WorkOrderState]] = {
    S.NEW: frozenset({S.ASSIGNED, S.ON_HOLD, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.EN_ROUTE, S.NEW, S.ON_HOLD, S.CANCELLED}),
    S.EN_ROUTE: frozenset({S.ON_SITE, S.ASSIGNED, S.ON_HOLD, S.CANCELLED}),
    S.ON_SITE: frozenset({S.IN_PROGRESS, S.ON_HOLD, S.CANCELLED}),
    S.IN_PROGRESS: frozenset({S.COMPLETED, S.ON_HOLD}),
    S.ON_HOLD: frozenset({S.NEW, S.ASSIGNED, S.IN_PROGRESS, S.CANCELLED}),
    S.COMPLETED: frozenset({S.CLOSED, S.IN_PROGRESS}),
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}

OPEN_STATES = frozenset(s for s in S if s not in (S.COMPLETED, S.CLOSED, S.CANCELLED))
#: states in which the technician has not yet reached the machine
NOT_ARRIVED = frozenset({S.NEW, S.ASSIGNED, S.EN_ROUTE})


class Source(StrEnum):
    """What opened a work order."""

    ALARM = "alarm"
    PREDICTION = "prediction"
    MAINTENANCE = "maintenance"
    MANUAL = "manual"


class Priority(StrEnum):
    """P0 machine down ... P3 planned."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaPolicy:
    """Response (on site) and repair (completed) targets of one priority, in hours."""

    response_h: float
    repair_h: float
    #: warn when this fraction of the allowed time has elapsed
    warn_fraction: float = 0.75


#: Sany's promise for a machine-down call: on site within 2 h, fixed within 24 h
DEFAULT_SLA: Mapping[Priority, SlaPolicy] = {
    Priority.P0: SlaPolicy(response_h=2.0, repair_h=24.0),
    Priority.P1: SlaPolicy(response_h=4.0, repair_h=48.0),
    Priority.P2: SlaPolicy(response_h=24.0, repair_h=72.0),
    Priority.P3: SlaPolicy(response_h=72.0, repair_h=168.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkOrder:
    """A job on one machine: what, where, by when, by whom, and how far it got."""

    id: int
    tenant_id: str
    asset_id: str
    title: str
    source: Source = Source.MANUAL
    source_ref: str | None = None
    priority: Priority = Priority.P2
    state: WorkOrderState = S.NEW
    description: str = ""
    skill: str | None = None
    lat: float | None = None
    lon: float | None = None
    #: minutes of work on site, for dispatch
    duration_min: float = 120.0
    created_us: int
    response_due_us: int
    repair_due_us: int
    technician_id: str | None = None
    station_id: str | None = None
    arrived_us: int | None = None
    completed_us: int | None = None
    closed_us: int | None = None
    #: visits to site so far (first-time fix means one)
    visits: int = 0
    #: state before going on hold, where a resume returns to by default
    held_from: WorkOrderState | None = None


def new_work_order(
    *,
    id: int,
    tenant_id: str,
    asset_id: str,
    title: str,
    created_us: int,
    priority: Priority = Priority.P2,
    sla: Mapping[Priority, SlaPolicy] = DEFAULT_SLA,
    **fields: object,
) -> WorkOrder:
    """Return a NEW work order with its SLA due times set from ``priority``."""
    policy = sla[priority]
    return WorkOrder(
        id=id,
        tenant_id=tenant_id,
        asset_id=asset_id,
        title=title,
        priority=priority,
        created_us=created_us,
        response_due_us=created_us + int(policy.response_h * US_PER_H),
        repair_due_us=created_us + int(policy.repair_h * US_PER_H),
        **fields,  # type: ignore[arg-type]
    )


def transition(
    wo: WorkOrder, to: WorkOrderState, now_us: int, *, technician_id: str | None = None
) -> WorkOrder:
    """Return ``wo`` moved to state ``to`` at ``now_us``, with its timestamps stamped.

    Raises:
        Conflict: the move is not in :data:`TRANSITIONS`.
        InvalidInput: assigning without a technician.
    """
    if to not in TRANSITIONS[wo.state]:
        allowed = ", ".join(sorted(TRANSITIONS[wo.state])) or "none (final state)"
        raise Conflict(f"work order {wo.id}: cannot go from {wo.state} to {to}; allowed: {allowed}")
    changes: dict[str, object] = {"state": to}
    if to is S.ASSIGNED:
        tech = technician_id or wo.technician_id
        if tech is None:
            raise InvalidInput("technician_id", "assigning needs a technician")
        changes["technician_id"] = tech
    elif to is S.NEW:
        changes["technician_id"] = None
    if to is S.ON_SITE:
        changes["visits"] = wo.visits + 1
        if wo.arrived_us is None:
            changes["arrived_us"] = now_us
    if to is S.COMPLETED:
        changes["completed_us"] = now_us
    if to is S.IN_PROGRESS and wo.state is S.COMPLETED:
        changes["completed_us"] = None  # reopened: the repair clock runs again
    if to is S.CLOSED:
        changes["closed_us"] = now_us
    changes["held_from"] = wo.state if to is S.ON_HOLD else None
    return dataclasses.replace(wo, **changes)  # type: ignore[arg-type]


class SlaKind(StrEnum):
    """The two SLA clocks."""

    RESPONSE = "response"
    REPAIR = "repair"


class SlaLevel(StrEnum):
    """How close a clock is to its due time."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaClock:
    """One SLA clock of one work order at a moment."""

    kind: SlaKind
    level: SlaLevel
    due_us: int
    #: negative once breached
    remaining_s: float


def sla_clocks(
    wo: WorkOrder, now_us: int, sla: Mapping[Priority, SlaPolicy] = DEFAULT_SLA
) -> tuple[SlaClock, SlaClock]:
    """Return the response and repair clocks of ``wo`` at ``now_us``.

    Response runs from creation until the technician is on site, repair until the work
    is completed. A stopped clock is MET or BREACHED for good; a running one is OK,
    WARNING once ``warn_fraction`` of its allowance has elapsed, then BREACHED.
    Cancelled orders have no running clocks (both read MET).
    """
    policy = sla[wo.priority]
    out = []
    for kind, due, stop in (
        (SlaKind.RESPONSE, wo.response_due_us, wo.arrived_us),
        (SlaKind.REPAIR, wo.repair_due_us, wo.completed_us),
    ):
        if stop is None and wo.state is S.CANCELLED:
            level, at = SlaLevel.MET, now_us
        elif stop is not None:
            level, at = (SlaLevel.MET if stop <= due else SlaLevel.BREACHED), stop
        else:
            at = now_us
            warn_at = wo.created_us + int((due - wo.created_us) * policy.warn_fraction)
            if now_us > due:
                level = SlaLevel.BREACHED
            elif now_us >= warn_at:
                level = SlaLevel.WARNING
            else:
                level = SlaLevel.OK
        out.append(SlaClock(kind=kind, level=level, due_us=due, remaining_s=(due - at) / 1e6))
    return out[0], out[1]


@dataclass(frozen=True, slots=True, kw_only=True)
class SlaAlert:
    """A warning or a breach of one clock of one work order, raised once."""

    work_order_id: int
    kind: SlaKind
    level: SlaLevel
    due_us: int
    at_us: int


class SlaMonitor:
    """Raises each SLA warning and breach once, on an injectable clock.

    Args:
        clock: returns the current time in µs (tests pass a fake).
        sla: the policy per priority.
    """

    def __init__(
        self,
        clock: Callable[[], int],
        sla: Mapping[Priority, SlaPolicy] = DEFAULT_SLA,
    ) -> None:
        self._clock = clock
        self._sla = sla
        self._raised: set[tuple[int, SlaKind, SlaLevel]] = set()

    def check(self, orders: list[WorkOrder]) -> list[SlaAlert]:
        """Return the alerts newly due among ``orders`` (running clocks only)."""
        now = self._clock()
        alerts = []
        for wo in orders:
            if wo.state not in OPEN_STATES:
                continue
            for clock in sla_clocks(wo, now, self._sla):
                running = (clock.kind is SlaKind.RESPONSE and wo.arrived_us is None) or (
                    clock.kind is SlaKind.REPAIR and wo.completed_us is None
                )
                if not running or clock.level not in (SlaLevel.WARNING, SlaLevel.BREACHED):
                    continue
                key = (wo.id, clock.kind, clock.level)
                if key in self._raised:
                    continue
                self._raised.add(key)
                alerts.append(
                    SlaAlert(
                        work_order_id=wo.id,
                        kind=clock.kind,
                        level=clock.level,
                        due_us=clock.due_us,
                        at_us=now,
                    )
                )
        return alerts

    def forget(self, raised: set[tuple[int, SlaKind, SlaLevel]]) -> None:
        """Mark alerts as already raised (e.g. loaded from the stored event log)."""
        self._raised |= raised
