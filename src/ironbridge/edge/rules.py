"""Local threshold rules of the edge agent: evaluated on every collected value."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ironbridge.edge.buffer import EventRecord
from ironbridge.edge.config import RuleConfig

__all__ = ["LocalRules"]

_OPS = {
    ">": lambda v, t: v > t,
    ">=": lambda v, t: v >= t,
    "<": lambda v, t: v < t,
    "<=": lambda v, t: v <= t,
}


@dataclass
class LocalRules:
    """Edge-triggered threshold rules: an alarm when a rule becomes true, a clear when false."""

    rules: Sequence[RuleConfig]
    _active: dict[str, bool] = field(default_factory=dict)

    @property
    def metrics(self) -> frozenset[str]:
        """The series any rule looks at (the others need no evaluation)."""
        return frozenset(rule.metric for rule in self.rules)

    def evaluate(self, series: str, ts_ms: int, value: float | None) -> list[EventRecord]:
        """Return the alarm/clear events that ``value`` causes (usually none)."""
        out: list[EventRecord] = []
        if value is None:
            return out
        for rule in self.rules:
            if rule.metric != series:
                continue
            now = bool(_OPS[rule.op](value, rule.threshold))
            if now == self._active.get(rule.name, False):
                continue
            self._active[rule.name] = now
            body = {
                "ts": ts_ms,
                "kind": "alarm",
                "code": rule.name,
                "state": "raised" if now else "cleared",
                "metric": series,
                "value": value,
                "threshold": rule.threshold,
            }
            out.append(EventRecord(ts=ts_ms, kind="alarm", body=json.dumps(body).encode()))
        return out
