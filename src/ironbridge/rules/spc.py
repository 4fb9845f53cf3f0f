"""SPC rules: Nelson / Western Electric violations on a control chart raise ISA-18.2 alarms.

An ``spc`` rule puts a control chart (I-MR, X̄-R or X̄-S) on one measurement of one
asset, with limits frozen from a reference period (:mod:`ironbridge.analytics.spc`).
The watcher re-plots the chart every few seconds over the newest ``window`` points and
looks at the points that arrived since it last looked:

* if any of them fires one of the rule's Nelson rules, the condition is **active** at
  the last such point (value: that point; message: the rules that fired) -- one alarm
  per (asset, SPC rule), a repeat updates it;
* if new points arrived and none fired, the condition is **normal** at the newest one,
  so the alarm returns to normal (ISA-18.2: it stays unacknowledged until someone
  acknowledges it).

The chart starts at the reference period (within :data:`LOOKBACK_US`), so the first
points after it have the history the run rules need; subgroups of X̄ charts are
consecutive samples counted from there and do not shift as the window slides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ironbridge.analytics.plant_data import load_series
from ironbridge.analytics.spc import (
    RULE_TEXT,
    ChartKind,
    ControlLimits,
    SpcChart,
    chart_series,
    fit_limits,
)
from ironbridge.model import InvalidInput, IronbridgeError, now_us
from ironbridge.rules.definitions import Rule, RuleKind
from ironbridge.rules.engine import Transition
from ironbridge.store import Registry, TelemetryStore

_LOGGER = logging.getLogger(__name__)

#: how far back the watcher reads a chart's samples (subgroups count from there)
LOOKBACK_US = 7 * 86_400_000_000
_KINDS = {"i-mr": ChartKind.I_MR, "xbar-r": ChartKind.XBAR_R, "xbar-s": ChartKind.XBAR_S}
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpcCondition:
    """The condition of an SPC rule after looking at new points.

    Attributes:
        active: a Nelson rule fired on a new point.
        ts_us: time of the last firing point (active) or of the newest point (normal).
        value: the plotted value at ``ts_us``.
        rules: the Nelson rules that fired on the new points.
        index: index of that point in the chart.
    """

    active: bool
    ts_us: int
    value: float
    rules: tuple[int, ...]
    index: int


def spc_condition(
    chart: SpcChart, stamps: I64, since_us: int, enabled: Sequence[int]
) -> SpcCondition | None:
    """Look at the chart's points newer than ``since_us``; ``None`` when there are none."""
    new = np.flatnonzero(stamps > since_us)
    if len(new) == 0:
        return None
    first = int(new[0])
    fired: dict[int, int] = {}  # rule -> last new index where it fired
    for rule in enabled:
        idx = chart.violations.get(rule)
        if idx is not None and len(idx) and int(idx[-1]) >= first:
            fired[rule] = int(idx[-1])
    if fired:
        last = max(fired.values())
        return SpcCondition(
            active=True,
            ts_us=int(stamps[last]),
            value=float(chart.points[last]),
            rules=tuple(sorted(fired)),
            index=last,
        )
    last = int(new[-1])
    return SpcCondition(
        active=False, ts_us=int(stamps[last]), value=float(chart.points[last]), rules=(), index=last
    )


def spc_message(rule: Rule, condition: SpcCondition) -> str:
    """The alarm text: the chart, the measurement and what fired."""
    p = rule.params
    what = "; ".join(f"rule {r}: {RULE_TEXT[r]}" for r in condition.rules)
    base = rule.message or rule.name
    return f"{base} — {str(p['chart']).upper()} {p['measurement']}: {what}"


class SpcWatcher:
    """Evaluates the ``spc`` rules against stored data (used by the rules worker).

    Args:
        store: the telemetry store.
        registry: for the series id of each (asset, measurement).
        interval_s: how often the rules worker calls :meth:`evaluate`.
        clock: µs clock.
    """

    def __init__(
        self,
        store: TelemetryStore,
        registry: Registry,
        *,
        interval_s: float = 5.0,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._store = store
        self._registry = registry
        self.interval_s = interval_s
        self._clock = clock
        self._limits: dict[tuple[str, int], tuple[int, ControlLimits]] = {}
        self._since: dict[str, int] = {}
        self._failed: dict[str, str] = {}

    def evaluate(self, rules: Sequence[Rule]) -> list[Transition]:
        """Plot every SPC rule's chart and return the condition changes (blocking I/O)."""
        out: list[Transition] = []
        for rule in rules:
            if rule.kind is not RuleKind.SPC or rule.asset_id is None or not rule.in_service:
                continue
            try:
                tr = self._evaluate(rule)
            except (InvalidInput, IronbridgeError) as exc:
                if self._failed.get(rule.id) != str(exc):
                    _LOGGER.warning("SPC rule %s cannot be charted: %s", rule.id, exc)
                    self._failed[rule.id] = str(exc)
                continue
            self._failed.pop(rule.id, None)
            if tr is not None:
                out.append(tr)
        return out

    def _series(self, asset: str, measurement: str) -> int:
        for ref in self._registry.series_of(None, [asset]):
            if ref.measurement == measurement:
                return ref.id
        raise InvalidInput("params.measurement", f"asset {asset!r} has no {measurement!r} data")

    def _evaluate(self, rule: Rule) -> Transition | None:
        assert rule.asset_id is not None
        p = rule.params
        sid = self._series(rule.asset_id, str(p["measurement"]))
        ref_s, ref_e = int(p["reference_start"]) * 1000, int(p["reference_end"]) * 1000
        key = (rule.id, rule.version)
        cached = self._limits.get(key)
        if cached is None or cached[0] != sid:
            _, ref_values = load_series(self._store, sid, ref_s, ref_e)
            limits = fit_limits(_KINDS[str(p["chart"])], ref_values, int(p["subgroup"]))
            self._limits = {k: v for k, v in self._limits.items() if k[0] != rule.id}
            self._limits[key] = cached = (sid, limits)
        limits = cached[1]
        now = self._clock()
        # From the reference start, so that the first new points have their history (a
        # run rule looks back up to 15 points) and subgroups do not shift as time passes.
        ts, values = load_series(self._store, sid, max(ref_s, now - LOOKBACK_US), now + 1)
        n = limits.subgroup_size
        window = int(p["window"]) * n
        if len(values) > window:  # keep whole subgroups counted from the start
            drop = (len(values) - window) // n * n
            ts, values = ts[drop:], values[drop:]
        if len(values) < max(2, n):
            return None
        chart, stamps = chart_series(limits, ts, values)
        since = self._since.get(rule.id, ref_e)
        condition = spc_condition(chart, stamps, since, [int(r) for r in p["rules"]])
        if condition is None:
            return None
        self._since[rule.id] = int(stamps[-1])
        return Transition(
            asset_id=rule.asset_id,
            rule_id=rule.id,
            ts_us=condition.ts_us,
            active=condition.active,
            value=condition.value,
            message=spc_message(rule, condition) if condition.active else None,
        )


__all__ = ["LOOKBACK_US", "SpcCondition", "SpcWatcher", "spc_condition", "spc_message"]
