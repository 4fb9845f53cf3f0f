"""Maintenance plans: service intervals by hours, kilometres or months, whichever comes first."""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from ironbridge.model import InvalidInput

_US_PER_DAY = 86_400_000_000


class DueStatus(StrEnum):
    """Where a machine stands against one service interval."""

    OK = "ok"
    DUE_SOON = "due_soon"
    DUE = "due"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True, kw_only=True)
class PartQty:
    """A part number and how many of it a service or a repair uses."""

    part_no: str
    qty: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInterval:
    """One service of a plan: every N hours, km or months, whichever comes first.

    At least one of the three limits is set. ``first_*`` make the first service come
    earlier (the one-time run-in service, e.g. the first 250 h); ``repeat=False`` makes
    the whole interval a one-time service.
    """

    name: str
    hours: float | None = None
    km: float | None = None
    months: int | None = None
    first_hours: float | None = None
    first_km: float | None = None
    first_months: int | None = None
    repeat: bool = True
    tasks: tuple[str, ...] = ()
    parts: tuple[PartQty, ...] = ()
    #: hours of labour a technician spends on this service
    labour_h: float = 2.0

    def __post_init__(self) -> None:
        if self.hours is None and self.km is None and self.months is None:
            raise InvalidInput("intervals", f"{self.name!r} needs hours, km or months")
        for name in ("hours", "km", "months", "first_hours", "first_km", "first_months"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInput(f"intervals.{name}", "must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class MaintenancePlan:
    """The services an asset type needs, with when to warn before they fall due."""

    asset_type: str
    intervals: tuple[ServiceInterval, ...]
    #: "due soon" this many hours / km / days before a limit is reached
    lead_hours: float = 50.0
    lead_km: float = 2_000.0
    lead_days: int = 14

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MaintenancePlan:
        """Build a plan from its JSON form (as stored and as sent to the API)."""
        try:
            intervals = tuple(
                ServiceInterval(
                    name=str(i["name"]),
                    hours=i.get("hours"),
                    km=i.get("km"),
                    months=i.get("months"),
                    first_hours=i.get("first_hours"),
                    first_km=i.get("first_km"),
                    first_months=i.get("first_months"),
                    repeat=bool(i.get("repeat", True)),
                    tasks=tuple(str(t) for t in i.get("tasks", ())),
                    parts=tuple(
                        PartQty(part_no=str(p["part_no"]), qty=float(p["qty"]))
                        for p in i.get("parts", ())
                    ),
                    labour_h=float(i.get("labour_h", 2.0)),
                )
                for i in data["intervals"]
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("intervals", f"malformed interval: {exc}") from exc
        if not intervals:
            raise InvalidInput("intervals", "a plan needs at least one interval")
        names = [i.name for i in intervals]
        if len(set(names)) != len(names):
            raise InvalidInput("intervals", "interval names must be unique")
        return cls(
            asset_type=str(data["asset_type"]),
            intervals=intervals,
            lead_hours=float(data.get("lead_hours", 50.0)),
            lead_km=float(data.get("lead_km", 2_000.0)),
            lead_days=int(data.get("lead_days", 14)),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "asset_type": self.asset_type,
            "lead_hours": self.lead_hours,
            "lead_km": self.lead_km,
            "lead_days": self.lead_days,
            "intervals": [
                {
                    "name": i.name,
                    "hours": i.hours,
                    "km": i.km,
                    "months": i.months,
                    "first_hours": i.first_hours,
                    "first_km": i.first_km,
                    "first_months": i.first_months,
                    "repeat": i.repeat,
                    "tasks": list(i.tasks),
                    "parts": [{"part_no": p.part_no, "qty": p.qty} for p in i.parts],
                    "labour_h": i.labour_h,
                }
                for i in self.intervals
            ],
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class LastService:
    """When an interval was last done: the meter readings and the date (µs)."""

    hours: float
    km: float | None
    ts_us: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """A machine's meters now and how fast they grow.

    ``start_*`` are the readings at commissioning (the reference for the first service
    when none has been done yet).
    """

    hours: float
    km: float | None
    ts_us: int
    start_ts_us: int
    start_hours: float = 0.0
    start_km: float | None = 0.0
    hours_per_day: float = 0.0
    km_per_day: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DueItem:
    """What is due on one machine for one interval, and when it is expected."""

    interval: str
    status: DueStatus
    #: the limit that comes first: "hours", "km" or "months"
    driver: str
    due_hours: float | None
    due_km: float | None
    due_ts_us: int | None
    #: forecast date the first limit is reached, from the machine's own usage rate
    forecast_ts_us: int | None
    remaining_hours: float | None
    remaining_km: float | None
    remaining_days: float | None


def add_months(ts_us: int, months: int) -> int:
    """Add calendar months to a UTC timestamp, clamping the day (31 Jan + 1 = 28/29 Feb)."""
    d = datetime.fromtimestamp(ts_us / 1e6, tz=UTC)
    total = d.month - 1 + months
    year, month = d.year + total // 12, total % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    moved = d.replace(year=year, month=month, day=day)
    return int((moved - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))


def due_item(
    plan: MaintenancePlan, interval: ServiceInterval, usage: Usage, last: LastService | None
) -> DueItem | None:
    """Return where ``usage`` stands against ``interval``; None for a one-time service done.

    The next service is due at the first of: last hours + N h, last km + N km, last date +
    N months (from commissioning, with the ``first_*`` limits, when never done). It is
    *due soon* within the plan's lead, *due* once a limit is reached and *overdue* past
    one more lead beyond it.
    """
    if last is None:
        base_h, base_km, base_ts = usage.start_hours, usage.start_km, usage.start_ts_us
        lim_h = interval.first_hours or interval.hours
        lim_km = interval.first_km or interval.km
        lim_m = interval.first_months or interval.months
    else:
        if not interval.repeat:
            return None
        base_h, base_km, base_ts = last.hours, last.km, last.ts_us
        lim_h, lim_km, lim_m = interval.hours, interval.km, interval.months

    due_h = base_h + lim_h if lim_h is not None else None
    due_km = base_km + lim_km if lim_km is not None and base_km is not None else None
    due_ts = add_months(base_ts, lim_m) if lim_m is not None else None
    rem_h = due_h - usage.hours if due_h is not None else None
    rem_km = due_km - usage.km if due_km is not None and usage.km is not None else None
    rem_d = (due_ts - usage.ts_us) / _US_PER_DAY if due_ts is not None else None

    # Days until each limit at the machine's own rate; the first one drives the forecast.
    days: dict[str, float] = {}
    if rem_h is not None:
        days["hours"] = _days_to(rem_h, usage.hours_per_day)
    if rem_km is not None:
        days["km"] = _days_to(rem_km, usage.km_per_day)
    if rem_d is not None:
        days["months"] = rem_d
    driver = min(days, key=lambda k: days[k]) if days else "hours"
    first_days = days.get(driver, math.inf)
    forecast = (
        usage.ts_us + int(max(first_days, 0.0) * _US_PER_DAY) if math.isfinite(first_days) else None
    )

    # Status in each dimension's own unit, then the worst one wins.
    fractions = []  # (remaining, lead) per dimension
    if rem_h is not None:
        fractions.append((rem_h, plan.lead_hours))
    if rem_km is not None:
        fractions.append((rem_km, plan.lead_km))
    if rem_d is not None:
        fractions.append((rem_d, float(plan.lead_days)))
    status = DueStatus.OK
    for remaining, lead in fractions:
        status = max(status, _status(remaining, lead), key=_SEVERITY.__getitem__)
    return DueItem(
        interval=interval.name,
        status=status,
        driver=driver,
        due_hours=due_h,
        due_km=due_km,
        due_ts_us=due_ts,
        forecast_ts_us=forecast,
        remaining_hours=rem_h,
        remaining_km=rem_km,
        remaining_days=rem_d,
    )


_SEVERITY = {DueStatus.OK: 0, DueStatus.DUE_SOON: 1, DueStatus.DUE: 2, DueStatus.OVERDUE: 3}


def _status(remaining: float, lead: float) -> DueStatus:
    if remaining > lead:
        return DueStatus.OK
    if remaining > 0:
        return DueStatus.DUE_SOON
    if remaining > -lead:
        return DueStatus.DUE
    return DueStatus.OVERDUE


def _days_to(remaining: float, rate_per_day: float) -> float:
    if remaining <= 0:
        return 0.0
    if rate_per_day <= 0:
        return math.inf
    return remaining / rate_per_day


def due_list(
    plan: MaintenancePlan, usage: Usage, history: Mapping[str, LastService]
) -> list[DueItem]:
    """Return the due items of every interval of ``plan``, soonest first.

    Args:
        plan: the asset type's plan.
        usage: the machine's meters and rates.
        history: interval name -> when it was last done (absent: never).
    """
    items = [
        item
        for interval in plan.intervals
        if (item := due_item(plan, interval, usage, history.get(interval.name))) is not None
    ]
    return sorted(items, key=lambda i: (-_SEVERITY[i.status], i.forecast_ts_us or 2**62))


def usage_rate(days: Sequence[float], meter: Sequence[float]) -> float:
    """Return the meter's growth per day: least-squares slope over daily last readings.

    Args:
        days: day numbers (any origin), one per reading.
        meter: the meter (engine hours or odometer) at those days.
    """
    n = len(days)
    if n < 2:
        return 0.0
    mx, my = sum(days) / n, sum(meter) / n
    sxx = sum((x - mx) ** 2 for x in days)
    if sxx == 0:
        return 0.0
    slope = sum((x - mx) * (y - my) for x, y in zip(days, meter, strict=True)) / sxx
    return max(slope, 0.0)
