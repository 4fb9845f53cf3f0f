"""Shewhart control charts (X̄-R, X̄-S, I-MR) with frozen limits and Nelson / WE rules.

Limits are estimated from a reference (Phase I) period and frozen; live data is then
plotted against them. The run rules follow Nelson (1984) with the zone convention of
JMP: zones are 1σ wide, a point exactly on a zone boundary belongs to the inner zone,
a point exactly on the centre line is on neither side (it breaks one-side runs), a
rule fires at the last point of every window that satisfies it, and counters do not
reset after a signal.

Western Electric rules (1956) that coincide with Nelson's: WE1 = N1 (one point beyond
3σ), WE2 = N5 (2 of 3 beyond 2σ, same side), WE3 = N6 (4 of 5 beyond 1σ, same side).
WE4 (8 in a row on one side) is N2 with a run of 8 instead of 9.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from ironbridge.model import InvalidInput

F64 = npt.NDArray[np.float64]
Indices = npt.NDArray[np.int64]

# Factors for constructing variables control charts (ASTM STP 15D; Montgomery, Appendix
# VI). Columns: n, A2, A3, c4, B3, B4, d2, d3, D3, D4. Checked against the defining
# integrals (d2, d3) and closed forms (c4) to within rounding, see the unit tests.
_FACTORS: tuple[tuple[float, ...], ...] = (
    (2, 1.880, 2.659, 0.7979, 0.000, 3.267, 1.128, 0.853, 0.000, 3.267),
    (3, 1.023, 1.954, 0.8862, 0.000, 2.568, 1.693, 0.888, 0.000, 2.574),
    (4, 0.729, 1.628, 0.9213, 0.000, 2.266, 2.059, 0.880, 0.000, 2.282),
    (5, 0.577, 1.427, 0.9400, 0.000, 2.089, 2.326, 0.864, 0.000, 2.114),
    (6, 0.483, 1.287, 0.9515, 0.030, 1.970, 2.534, 0.848, 0.000, 2.004),
    (7, 0.419, 1.182, 0.9594, 0.118, 1.882, 2.704, 0.833, 0.076, 1.924),
    (8, 0.373, 1.099, 0.9650, 0.185, 1.815, 2.847, 0.820, 0.136, 1.864),
    (9, 0.337, 1.032, 0.9693, 0.239, 1.761, 2.970, 0.808, 0.184, 1.816),
    (10, 0.308, 0.975, 0.9727, 0.284, 1.716, 3.078, 0.797, 0.223, 1.777),
    (11, 0.285, 0.927, 0.9754, 0.321, 1.679, 3.173, 0.787, 0.256, 1.744),
    (12, 0.266, 0.886, 0.9776, 0.354, 1.646, 3.258, 0.778, 0.283, 1.717),
    (13, 0.249, 0.850, 0.9794, 0.382, 1.618, 3.336, 0.770, 0.307, 1.693),
    (14, 0.235, 0.817, 0.9810, 0.406, 1.594, 3.407, 0.763, 0.328, 1.672),
    (15, 0.223, 0.789, 0.9823, 0.428, 1.572, 3.472, 0.756, 0.347, 1.653),
    (16, 0.212, 0.763, 0.9835, 0.448, 1.552, 3.532, 0.750, 0.363, 1.637),
    (17, 0.203, 0.739, 0.9845, 0.466, 1.534, 3.588, 0.744, 0.378, 1.622),
    (18, 0.194, 0.718, 0.9854, 0.482, 1.518, 3.640, 0.739, 0.391, 1.608),
    (19, 0.187, 0.698, 0.9862, 0.497, 1.503, 3.689, 0.734, 0.403, 1.597),
    (20, 0.180, 0.680, 0.9869, 0.510, 1.490, 3.735, 0.729, 0.415, 1.585),
    (21, 0.173, 0.663, 0.9876, 0.523, 1.477, 3.778, 0.724, 0.425, 1.575),
    (22, 0.167, 0.647, 0.9882, 0.534, 1.466, 3.819, 0.720, 0.434, 1.566),
    (23, 0.162, 0.633, 0.9887, 0.545, 1.455, 3.858, 0.716, 0.443, 1.557),
    (24, 0.157, 0.619, 0.9892, 0.555, 1.445, 3.895, 0.712, 0.451, 1.548),
    (25, 0.153, 0.606, 0.9896, 0.565, 1.435, 3.931, 0.708, 0.459, 1.541),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShewhartConstants:
    """Control chart factors for subgroup size ``n`` (E2 = 3/d2, rounded as published)."""

    n: int
    a2: float
    a3: float
    c4: float
    b3: float
    b4: float
    d2: float
    d3: float
    d3_factor: float
    d4: float
    e2: float


def constants(n: int) -> ShewhartConstants:
    """Return the control chart factors for subgroup size ``n`` (2-25).

    Raises:
        InvalidInput: ``n`` outside 2-25.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= 25:
        raise InvalidInput("subgroup_size", f"must be an integer 2-25, got {n!r}")
    row = _FACTORS[n - 2]
    return ShewhartConstants(
        n=n,
        a2=row[1],
        a3=row[2],
        c4=row[3],
        b3=row[4],
        b4=row[5],
        d2=row[6],
        d3=row[7],
        d3_factor=row[8],
        d4=row[9],
        e2=round(3.0 / row[6], 3),
    )


class ChartKind(StrEnum):
    """Variables control chart type."""

    XBAR_R = "xbar_r"
    XBAR_S = "xbar_s"
    I_MR = "i_mr"


# ------------------------------------------------------------------------ run rules


def _window_count(flags: npt.NDArray[np.bool_], width: int) -> npt.NDArray[np.int64]:
    """Number of true flags in the window of ``width`` ending at each index (-1 if short)."""
    c = np.concatenate(([0], np.cumsum(flags, dtype=np.int64)))
    out = np.full(len(flags), -1, dtype=np.int64)
    if len(flags) >= width:
        out[width - 1 :] = c[width:] - c[: len(c) - width]
    return out


def _all_in_window(flags: npt.NDArray[np.bool_], width: int) -> npt.NDArray[np.bool_]:
    return np.asarray(_window_count(flags, width) == width, dtype=np.bool_)


def _fired(mask: npt.NDArray[np.bool_]) -> Indices:
    return np.flatnonzero(mask).astype(np.int64)


def _zscores(points: Sequence[float] | F64, center: float, sigma: float) -> F64:
    if not (math.isfinite(sigma) and sigma > 0):
        raise InvalidInput("sigma", "must be a positive finite number")
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 1:
        raise InvalidInput("points", "must be one-dimensional")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("points", "must be finite numbers")
    return (x - center) / sigma


def nelson_rules(points: Sequence[float] | F64, center: float, sigma: float) -> dict[int, Indices]:
    """Evaluate the eight Nelson rules; return for each rule the indices where it fires.

    Args:
        points: plotted statistic (subgroup means or individual values).
        center: centre line.
        sigma: standard deviation of the plotted statistic (a zone width).

    Returns:
        ``{1: idx, ..., 8: idx}``; each index is the last point of a window that
        satisfies the rule.

    Raises:
        InvalidInput: non-finite points or a non-positive sigma.
    """
    z = _zscores(points, center, sigma)
    n = len(z)
    up, down = z > 0, z < 0
    rules: dict[int, Indices] = {}
    # N1: one point beyond 3σ.
    rules[1] = _fired(np.abs(z) > 3)
    # N2: nine points in a row on the same side of the centre line.
    rules[2] = _fired(_all_in_window(up, 9) | _all_in_window(down, 9))
    # N3: six points in a row steadily increasing or decreasing (five steps).
    d = np.diff(z)
    steps = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    steps[0][1:], steps[1][1:] = d > 0, d < 0
    rules[3] = _fired(_all_in_window(steps[0], 5) | _all_in_window(steps[1], 5))
    # N4: fourteen points in a row alternating up and down (13 steps, 12 sign flips).
    flips = np.zeros(n, dtype=bool)
    if n >= 3:
        flips[2:] = (d[1:] * d[:-1]) < 0
    rules[4] = _fired(_all_in_window(flips, 12))
    # N5: two of three points beyond 2σ, same side.
    rules[5] = _fired((_window_count(z > 2, 3) >= 2) | (_window_count(z < -2, 3) >= 2))
    # N6: four of five points beyond 1σ, same side.
    rules[6] = _fired((_window_count(z > 1, 5) >= 4) | (_window_count(z < -1, 5) >= 4))
    # N7: fifteen points in a row within 1σ (zone C), either side.
    rules[7] = _fired(_all_in_window(np.abs(z) <= 1, 15))
    # N8: eight points in a row with none within 1σ, on both sides of the centre line.
    outside = _all_in_window(np.abs(z) > 1, 8)
    both = (_window_count(z > 1, 8) > 0) & (_window_count(z < -1, 8) > 0)
    rules[8] = _fired(outside & both)
    return rules


def western_electric_rules(
    points: Sequence[float] | F64, center: float, sigma: float
) -> dict[int, Indices]:
    """Evaluate the four Western Electric zone rules (WE1-WE4), indices as Nelson's.

    Raises:
        InvalidInput: non-finite points or a non-positive sigma.
    """
    z = _zscores(points, center, sigma)
    nelson = nelson_rules(z, 0.0, 1.0)
    return {
        1: nelson[1],
        2: nelson[5],
        3: nelson[6],
        4: _fired(_all_in_window(z > 0, 8) | _all_in_window(z < 0, 8)),
    }


# --------------------------------------------------------------------------- charts


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlLimits:
    """Frozen limits of a location chart and its dispersion chart.

    Attributes:
        kind: chart type.
        subgroup_size: n (1 for I-MR).
        center: centre line of the location chart (X̿ or X̄).
        ucl: upper control limit of the location chart.
        lcl: lower control limit.
        sigma: standard deviation of the plotted location statistic, (UCL − CL)/3.
        dispersion_center: R̄, S̄ or MR̄.
        dispersion_ucl: upper limit of the dispersion chart.
        dispersion_lcl: lower limit (floored at 0).
        process_sigma: estimated within-subgroup σ (R̄/d2, S̄/c4 or MR̄/d2).
    """

    kind: ChartKind
    subgroup_size: int
    center: float
    ucl: float
    lcl: float
    sigma: float
    dispersion_center: float
    dispersion_ucl: float
    dispersion_lcl: float
    process_sigma: float

    def chart(self, data: Sequence[float] | Sequence[Sequence[float]] | F64) -> SpcChart:
        """Plot ``data`` (subgroups ``(k, n)`` or individuals) against these limits.

        Raises:
            InvalidInput: data of the wrong shape or not finite.
        """
        if self.kind is ChartKind.I_MR:
            x = _individuals(data)
            location, dispersion = x, np.abs(np.diff(x))
        else:
            groups = _subgroups(data, self.subgroup_size)
            location = groups.mean(axis=1)
            if self.kind is ChartKind.XBAR_R:
                dispersion = np.ptp(groups, axis=1)
            else:
                dispersion = groups.std(axis=1, ddof=1)
        if self.sigma > 0:
            violations = nelson_rules(location, self.center, self.sigma)
        else:
            violations = {r: np.zeros(0, np.int64) for r in range(1, 9)}
        beyond = (dispersion > self.dispersion_ucl) | (dispersion < self.dispersion_lcl)
        return SpcChart(
            limits=self,
            points=location,
            dispersion=dispersion,
            violations=violations,
            dispersion_violations=_fired(beyond),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SpcChart:
    """A plotted chart: points, limits and where each rule fired.

    Attributes:
        limits: the frozen limits used.
        points: location statistic per subgroup (or individual values).
        dispersion: R, S per subgroup, or moving ranges (one fewer than points; the
            moving range at position i belongs to point i+1).
        violations: Nelson rule number -> indices into ``points``.
        dispersion_violations: indices into ``dispersion`` beyond its limits.
    """

    limits: ControlLimits
    points: F64
    dispersion: F64
    violations: dict[int, Indices] = field(default_factory=dict)
    dispersion_violations: Indices = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def alarm_indices(self) -> Indices:
        """Sorted indices of points where any Nelson rule fired."""
        if not self.violations:
            return np.zeros(0, np.int64)
        return np.unique(np.concatenate(list(self.violations.values()))).astype(np.int64)


def _individuals(data: object) -> F64:
    x = np.asarray(data, dtype=np.float64)
    if x.ndim != 1 or len(x) < 2:
        raise InvalidInput("data", "individuals must be a 1-D series of at least 2 values")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("data", "must be finite numbers")
    return x


def _subgroups(data: object, n: int | None = None) -> F64:
    try:
        x = np.asarray(data, dtype=np.float64)
    except ValueError:
        raise InvalidInput("data", "subgroups must all have the same size") from None
    if x.ndim != 2 or x.shape[0] < 1:
        raise InvalidInput("data", "subgroups must be a 2-D array (subgroups × size)")
    if n is not None and x.shape[1] != n:
        raise InvalidInput("data", f"subgroup size must be {n}, got {x.shape[1]}")
    if not np.all(np.isfinite(x)):
        raise InvalidInput("data", "must be finite numbers")
    constants(int(x.shape[1]))
    return x


def fit_xbar_r(reference: Sequence[Sequence[float]] | F64) -> ControlLimits:
    """Estimate X̄-R limits from reference subgroups: X̿ ± A2·R̄, D3·R̄ .. D4·R̄.

    Raises:
        InvalidInput: not a 2-D array of subgroups of size 2-25.
    """
    x = _subgroups(reference)
    k = constants(int(x.shape[1]))
    center = float(x.mean(axis=1).mean())
    rbar = float(np.ptp(x, axis=1).mean())
    return ControlLimits(
        kind=ChartKind.XBAR_R,
        subgroup_size=k.n,
        center=center,
        ucl=center + k.a2 * rbar,
        lcl=center - k.a2 * rbar,
        sigma=k.a2 * rbar / 3,
        dispersion_center=rbar,
        dispersion_ucl=k.d4 * rbar,
        dispersion_lcl=max(0.0, k.d3_factor * rbar),
        process_sigma=rbar / k.d2,
    )


def fit_xbar_s(reference: Sequence[Sequence[float]] | F64) -> ControlLimits:
    """Estimate X̄-S limits from reference subgroups: X̿ ± A3·S̄, B3·S̄ .. B4·S̄.

    Raises:
        InvalidInput: not a 2-D array of subgroups of size 2-25.
    """
    x = _subgroups(reference)
    k = constants(int(x.shape[1]))
    center = float(x.mean(axis=1).mean())
    sbar = float(x.std(axis=1, ddof=1).mean())
    return ControlLimits(
        kind=ChartKind.XBAR_S,
        subgroup_size=k.n,
        center=center,
        ucl=center + k.a3 * sbar,
        lcl=center - k.a3 * sbar,
        sigma=k.a3 * sbar / 3,
        dispersion_center=sbar,
        dispersion_ucl=k.b4 * sbar,
        dispersion_lcl=max(0.0, k.b3 * sbar),
        process_sigma=sbar / k.c4,
    )


def fit_i_mr(reference: Sequence[float] | F64) -> ControlLimits:
    """Estimate I-MR limits from a reference series: X̄ ± E2·MR̄ (2.660), MR UCL D4·MR̄.

    Raises:
        InvalidInput: fewer than 2 values or non-finite values.
    """
    x = _individuals(reference)
    k = constants(2)
    center = float(x.mean())
    mrbar = float(np.abs(np.diff(x)).mean())
    return ControlLimits(
        kind=ChartKind.I_MR,
        subgroup_size=1,
        center=center,
        ucl=center + k.e2 * mrbar,
        lcl=center - k.e2 * mrbar,
        sigma=k.e2 * mrbar / 3,
        dispersion_center=mrbar,
        dispersion_ucl=k.d4 * mrbar,
        dispersion_lcl=0.0,
        process_sigma=mrbar / k.d2,
    )


#: What each Nelson rule looks for (Nelson 1984), for messages.
RULE_TEXT: dict[int, str] = {
    1: "one point beyond 3σ",
    2: "nine points in a row on one side",
    3: "six points in a row trending",
    4: "fourteen points alternating",
    5: "two of three beyond 2σ, same side",
    6: "four of five beyond 1σ, same side",
    7: "fifteen points in a row within 1σ",
    8: "eight points in a row outside 1σ",
}


def fit_limits(kind: ChartKind, reference: F64, subgroup: int = 5) -> ControlLimits:
    """Fit limits of ``kind`` to a reference series (consecutive samples form subgroups).

    Raises:
        InvalidInput: ``reference_start`` when the reference has too few samples.
    """
    if kind is ChartKind.I_MR:
        if len(reference) < 2:
            raise InvalidInput("reference_start", "the reference period has < 2 samples")
        return fit_i_mr(reference)
    k = len(reference) // subgroup
    if k < 1:
        raise InvalidInput("reference_start", f"the reference period has < {subgroup} samples")
    fit = fit_xbar_r if kind is ChartKind.XBAR_R else fit_xbar_s
    return fit(reference[: k * subgroup].reshape(k, subgroup))


def chart_series(
    limits: ControlLimits, ts_us: npt.NDArray[np.int64], values: F64
) -> tuple[SpcChart, npt.NDArray[np.int64]]:
    """Plot a time series against ``limits``; return the chart and each point's time.

    Subgroups are consecutive samples from the first; a subgroup is stamped with the
    time of its last sample, and an incomplete last subgroup waits.

    Raises:
        InvalidInput: ``start`` when there are too few samples to plot.
    """
    n = limits.subgroup_size
    if limits.kind is ChartKind.I_MR:
        if len(values) < 2:
            raise InvalidInput("start", "the charted period has < 2 samples")
        return limits.chart(values), ts_us
    k = len(values) // n
    if k < 1:
        raise InvalidInput("start", f"the charted period has < {n} samples")
    return limits.chart(values[: k * n].reshape(k, n)), ts_us[n - 1 : k * n : n]


__all__ = [
    "RULE_TEXT",
    "ChartKind",
    "ControlLimits",
    "ShewhartConstants",
    "SpcChart",
    "chart_series",
    "constants",
    "fit_i_mr",
    "fit_limits",
    "fit_xbar_r",
    "fit_xbar_s",
    "nelson_rules",
    "western_electric_rules",
]
