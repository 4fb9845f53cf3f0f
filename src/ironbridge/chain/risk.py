"""Supplier risk scores: structural exposure, sharpened by live plant performance where known."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ironbridge.chain.frame import ChainFrame
from ironbridge.model import InvalidInput

#: weight of the structural part that live performance cannot reduce
STRUCTURAL_FLOOR = 0.5
#: (1 − performance) assumed when no live figure is known: the midpoint, flagged live=False
UNKNOWN_SHORTFALL = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveInputs:
    """What the platform knows live about one enterprise's connected plants.

    ``oee`` and ``delivery_performance`` are fractions 0–1 (mean over the linked
    assets that report them); ``fault_events`` counts the linked assets' events of
    kind ``fault`` over the look-back window (shown, not scored).
    """

    assets: tuple[str, ...] = ()
    oee: float | None = None
    delivery_performance: float | None = None
    fault_events: int = 0

    def __post_init__(self) -> None:
        for name in ("oee", "delivery_performance"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise InvalidInput(name, f"must be a fraction between 0 and 1, got {value!r}")

    @property
    def performance(self) -> float | None:
        """Mean of the live figures known (None when neither is)."""
        known = [v for v in (self.oee, self.delivery_performance) if v is not None]
        return sum(known) / len(known) if known else None


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplierRisk:
    """One supplier's risk score (0–100) and what went into it."""

    firm_id: str
    firm: str
    score: float
    exposure: float
    sole_source_inputs: int
    customers: int
    live: bool
    performance: float | None
    inputs: LiveInputs
    reason: str


def supplier_risk(
    frame: ChainFrame, live: Mapping[str, LiveInputs] | None = None
) -> tuple[SupplierRisk, ...]:
    """Score every supplier of the chain, highest risk first.

    * exposure = Σ(value × volume share × component importance) / Σ value over the
      firm's deliveries: 1 for a sole source of critical-importance inputs, near 0 for
      a minor second source (equal link weights when its deliveries carry no value);
    * performance P = mean of the live OEE and delivery performance known for its
      linked plants;
    * score = 100 × exposure × (0.5 + 0.5 × (1 − P)); with no live figure
      (1 − P) is taken as 0.5 and the result is marked ``live=False``.
    """
    live = live or {}
    n = frame.n_firms
    imp = frame.comp_importance[frame.comp]
    weight = np.where(frame.value > 0, frame.value, 0.0)
    total = np.bincount(frame.sup, weights=weight, minlength=n)
    exposed = np.bincount(frame.sup, weights=weight * frame.share * imp, minlength=n)
    n_links = np.bincount(frame.sup, minlength=n)
    plain = np.bincount(frame.sup, weights=frame.share * imp, minlength=n)
    exposure = np.where(
        total > 0, exposed / np.maximum(total, 1e-300), plain / np.maximum(n_links, 1)
    )
    exposure = np.clip(exposure, 0.0, 1.0)
    sole = np.bincount(frame.sup, weights=(frame.share >= 1.0).astype(np.float64), minlength=n)
    pairs = np.unique(frame.sup * n + frame.cus)
    customers = np.bincount(pairs // n, minlength=n)
    out: list[SupplierRisk] = []
    for f in np.flatnonzero(n_links > 0).tolist():
        firm_id = frame.firm_ids[f]
        inputs = live.get(firm_id, LiveInputs())
        perf = inputs.performance
        shortfall = UNKNOWN_SHORTFALL if perf is None else 1.0 - perf
        score = 100.0 * float(exposure[f]) * (STRUCTURAL_FLOOR + (1 - STRUCTURAL_FLOOR) * shortfall)
        parts = [f"exposure {exposure[f]:.2f}"]
        if sole[f]:
            parts.append(f"sole source on {int(sole[f])} of {int(n_links[f])} deliveries")
        if inputs.oee is not None:
            parts.append(f"live OEE {inputs.oee:.0%}")
        if inputs.delivery_performance is not None:
            parts.append(f"on-time delivery {inputs.delivery_performance:.0%}")
        if perf is None:
            parts.append("no live data" if not inputs.assets else "linked, no OEE/delivery data")
        if inputs.fault_events:
            parts.append(f"{inputs.fault_events} fault events")
        out.append(
            SupplierRisk(
                firm_id=firm_id,
                firm=frame.firm_names[f],
                score=round(score, 2),
                exposure=float(exposure[f]),
                sole_source_inputs=int(sole[f]),
                customers=int(customers[f]),
                live=perf is not None,
                performance=perf,
                inputs=inputs,
                reason="; ".join(parts),
            )
        )
    out.sort(key=lambda r: (-r.score, r.firm_id))
    return tuple(out)
