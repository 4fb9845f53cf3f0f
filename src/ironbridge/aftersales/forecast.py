"""Spare-parts demand: intermittent-demand forecasts (Croston, SBA, TSB) and planned demand.

Methods as in Croston (1972), Syntetos & Boylan (2005) and Teunter, Syntetos & Babai
(2011); the demand classes use the Syntetos-Boylan cut-offs ADI = 1.32, CV² = 0.49.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ironbridge.aftersales.maintenance import DueItem, MaintenancePlan, Usage
from ironbridge.model import InvalidInput

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49


class DemandClass(StrEnum):
    """Syntetos-Boylan demand classes."""

    SMOOTH = "smooth"
    INTERMITTENT = "intermittent"
    ERRATIC = "erratic"
    LUMPY = "lumpy"
    NONE = "none"


class Method(StrEnum):
    """Forecast methods for per-period demand."""

    CROSTON = "croston"
    SBA = "sba"
    TSB = "tsb"


def classify(demand: Sequence[float]) -> tuple[DemandClass, float, float]:
    """Return the demand class, ADI and CV² of a per-period demand series.

    ADI is the mean interval between non-zero demands (periods / non-zero periods);
    CV² is the squared coefficient of variation of the non-zero sizes.
    """
    sizes = [d for d in demand if d > 0]
    if not sizes:
        return DemandClass.NONE, math.inf, 0.0
    adi = len(demand) / len(sizes)
    mean = sum(sizes) / len(sizes)
    var = sum((s - mean) ** 2 for s in sizes) / len(sizes)
    cv2 = var / mean**2
    if adi < ADI_CUTOFF:
        cls = DemandClass.SMOOTH if cv2 < CV2_CUTOFF else DemandClass.ERRATIC
    else:
        cls = DemandClass.INTERMITTENT if cv2 < CV2_CUTOFF else DemandClass.LUMPY
    return cls, adi, cv2


def _check(demand: Sequence[float], alpha: float) -> None:
    if not 0 < alpha <= 1:
        raise InvalidInput("alpha", "must be in (0, 1]")
    if any(d < 0 for d in demand):
        raise InvalidInput("demand", "demand cannot be negative")


def croston(demand: Sequence[float], alpha: float = 0.1, *, sba: bool = False) -> float:
    """Return Croston's per-period demand forecast after the last period.

    Sizes ``z`` and intervals ``p`` are smoothed separately, only in periods with a
    demand; they start at the first demand and its interval (periods since the start,
    counting the demand period). The forecast is ``z / p``; with ``sba`` it is
    multiplied by ``1 - alpha / 2`` (Syntetos-Boylan approximation, which removes
    Croston's positive bias). 0 when there was no demand.
    """
    _check(demand, alpha)
    z = p = None
    q = 1
    for d in demand:
        if d > 0:
            if z is None or p is None:
                z, p = float(d), float(q)
            else:
                z += alpha * (d - z)
                p += alpha * (q - p)
            q = 1
        else:
            q += 1
    if z is None or p is None:
        return 0.0
    f = z / p
    return f * (1 - alpha / 2) if sba else f


def tsb(demand: Sequence[float], alpha: float = 0.1, beta: float = 0.1) -> float:
    """Return the Teunter-Syntetos-Babai per-period forecast ``prob * size``.

    The demand probability is smoothed every period (towards 1 with a demand, towards 0
    without), so the forecast decays through a run of zeros, unlike Croston's. Starts
    at the first demand with probability 1 / (its period number).
    """
    _check(demand, alpha)
    if not 0 < beta <= 1:
        raise InvalidInput("beta", "must be in (0, 1]")
    z = prob = None
    for i, d in enumerate(demand):
        if z is None or prob is None:
            if d > 0:
                z, prob = float(d), 1.0 / (i + 1)
            continue
        if d > 0:
            z += alpha * (d - z)
            prob += beta * (1 - prob)
        else:
            prob += beta * (0 - prob)
    if z is None or prob is None:
        return 0.0
    return prob * z


def forecast(demand: Sequence[float], method: Method, alpha: float = 0.1) -> float:
    """Return the per-period forecast of ``demand`` by ``method``."""
    if method is Method.TSB:
        return tsb(demand, alpha, alpha)
    return croston(demand, alpha, sba=method is Method.SBA)


def pick_method(cls: DemandClass) -> Method:
    """SBA for intermittent and lumpy demand, TSB for erratic (obsolescence-prone), else SBA.

    SBA is the usual choice for intermittent and lumpy items (Syntetos-Boylan 2005);
    TSB reacts to demand that stops, which matters for erratic items being phased out.
    """
    return Method.TSB if cls is DemandClass.ERRATIC else Method.SBA


@dataclass(frozen=True, slots=True, kw_only=True)
class PartForecast:
    """Expected demand of one part over a horizon."""

    part_no: str
    horizon_days: int
    #: from maintenance falling due on the installed base
    planned: float
    #: from unplanned use history (intermittent-demand method)
    unplanned: float
    method: Method
    demand_class: DemandClass
    adi: float
    cv2: float

    @property
    def total(self) -> float:
        """Planned plus unplanned demand."""
        return self.planned + self.unplanned


def planned_demand(
    machines: Iterable[tuple[MaintenancePlan, Usage, Sequence[DueItem]]],
    horizon_days: float,
) -> dict[str, float]:
    """Return part -> quantity the installed base needs for services due within the horizon.

    For each machine and interval the first due date comes from its forecast; repeating
    intervals recur every interval length at the machine's own usage rate (the first of
    hours, km and months), so a busy machine can need a kit more than once.
    """
    out: dict[str, float] = {}
    for plan, usage, items in machines:
        intervals = {i.name: i for i in plan.intervals}
        for item in items:
            if item.forecast_ts_us is None:
                continue
            first_days = max(0.0, (item.forecast_ts_us - usage.ts_us) / 86_400e6)
            if first_days > horizon_days:
                continue
            interval = intervals[item.interval]
            times = 1
            if interval.repeat:
                period = _period_days(interval.hours, interval.km, interval.months, usage)
                if period is not None and period > 0:
                    times += int((horizon_days - first_days) // period)
            for part in interval.parts:
                out[part.part_no] = out.get(part.part_no, 0.0) + part.qty * times
    return out


def _period_days(
    hours: float | None, km: float | None, months: int | None, usage: Usage
) -> float | None:
    cands = []
    if hours is not None and usage.hours_per_day > 0:
        cands.append(hours / usage.hours_per_day)
    if km is not None and usage.km_per_day > 0:
        cands.append(km / usage.km_per_day)
    if months is not None:
        cands.append(months * 30.4375)
    return min(cands) if cands else None


def part_forecast(
    part_no: str,
    history: Sequence[float],
    planned: Mapping[str, float],
    *,
    horizon_days: int,
    period_days: int = 7,
    alpha: float = 0.1,
    method: Method | None = None,
) -> PartForecast:
    """Combine planned demand with an intermittent-demand forecast of unplanned use.

    Args:
        part_no: the part.
        history: unplanned use per period, oldest first.
        planned: part -> planned quantity over the horizon (from :func:`planned_demand`).
        horizon_days: the horizon.
        period_days: length of one history period.
        alpha: smoothing constant.
        method: force a method; default picks one from the demand class.
    """
    cls, adi, cv2 = classify(history)
    chosen = method or pick_method(cls)
    per_period = forecast(history, chosen, alpha)
    return PartForecast(
        part_no=part_no,
        horizon_days=horizon_days,
        planned=planned.get(part_no, 0.0),
        unplanned=per_period * horizon_days / period_days,
        method=chosen,
        demand_class=cls,
        adi=adi,
        cv2=cv2,
    )
