"""Benchmark metrics: RMSE, the PHM08 score, SKAB F1/FAR/MAR and the NAB score."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ironbridge.model import InvalidInput

__all__ = [
    "NAB_PROFILES",
    "BinaryCounts",
    "NabProfile",
    "binary_counts",
    "nab_probation",
    "nab_raw_score",
    "nab_score",
    "phm08_score",
    "rmse",
    "skab_summary",
]


def _pair(y_pred: Sequence[float] | np.ndarray, y_true: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    if p.shape != t.shape:
        raise InvalidInput("y_pred", f"{p.shape[0]} predictions for {t.shape[0]} truths")
    out: np.ndarray = p - t
    return out


def rmse(y_pred: Sequence[float] | np.ndarray, y_true: Sequence[float] | np.ndarray) -> float:
    """Root mean squared error."""
    d = _pair(y_pred, y_true)
    return float(np.sqrt(np.mean(d * d))) if d.size else 0.0


def phm08_score(
    y_pred: Sequence[float] | np.ndarray, y_true: Sequence[float] | np.ndarray
) -> float:
    """PHM08 score (Saxena et al. 2008), summed over units; lower is better.

    With ``d = pred - true``: ``exp(-d/13) - 1`` for early predictions (d < 0) and
    ``exp(d/10) - 1`` for late ones, so a late prediction costs more than an early one.
    """
    d = _pair(y_pred, y_true)
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


@dataclass(frozen=True, slots=True, kw_only=True)
class BinaryCounts:
    """Point-wise confusion counts, summed over files (SKAB micro-averaging)."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0

    def __add__(self, other: BinaryCounts) -> BinaryCounts:
        return BinaryCounts(
            tp=self.tp + other.tp,
            fp=self.fp + other.fp,
            tn=self.tn + other.tn,
            fn=self.fn + other.fn,
        )

    @property
    def f1(self) -> float:
        """``TP / (TP + (FP + FN) / 2)``."""
        den = self.tp + (self.fp + self.fn) / 2
        return self.tp / den if den else 0.0

    @property
    def far(self) -> float:
        """False alarm rate, percent: ``FP / (FP + TN) * 100``."""
        den = self.fp + self.tn
        return 100.0 * self.fp / den if den else 0.0

    @property
    def mar(self) -> float:
        """Missed alarm rate, percent: ``FN / (FN + TP) * 100``."""
        den = self.fn + self.tp
        return 100.0 * self.fn / den if den else 0.0


def binary_counts(pred: np.ndarray, truth: np.ndarray) -> BinaryCounts:
    """Confusion counts of boolean predictions against boolean labels."""
    p = np.asarray(pred).astype(bool).reshape(-1)
    t = np.asarray(truth).astype(bool).reshape(-1)
    if p.shape != t.shape:
        raise InvalidInput("pred", f"{p.shape[0]} predictions for {t.shape[0]} labels")
    return BinaryCounts(
        tp=int(np.sum(p & t)),
        fp=int(np.sum(p & ~t)),
        tn=int(np.sum(~p & ~t)),
        fn=int(np.sum(~p & t)),
    )


def skab_summary(per_file: Sequence[tuple[np.ndarray, np.ndarray]]) -> BinaryCounts:
    """SKAB outlier-detection protocol: counts summed over every file's test part.

    Args:
        per_file: (predictions, labels) of each file's test part (rows after the first 400).
    """
    total = BinaryCounts()
    for pred, truth in per_file:
        total = total + binary_counts(pred, truth)
    return total


# --- NAB -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class NabProfile:
    """NAB cost-matrix weights."""

    tp: float
    fn: float
    fp: float


NAB_PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile(tp=1.0, fn=1.0, fp=0.11),
    "reward_low_FP_rate": NabProfile(tp=1.0, fn=1.0, fp=0.22),
    "reward_low_FN_rate": NabProfile(tp=1.0, fn=2.0, fp=0.11),
}


def _scaled_sigmoid(x: float) -> float:
    # nab/scorer.py: positions more than 3 window lengths past a window score -1.
    if x > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def nab_probation(n: int, percent: float = 0.15) -> int:
    """Length of NAB's probationary period: ``min(floor(0.15 n), 0.15 * 5000)`` rows."""
    return int(min(math.floor(percent * n), percent * 5000))


def nab_raw_score(
    detections: np.ndarray,
    windows: Sequence[tuple[int, int]],
    profile: NabProfile,
    probation: int,
) -> float:
    """Raw NAB score of boolean detections for one file.

    Args:
        detections: boolean per row.
        windows: inclusive (first row, last row) of each anomaly window, sorted.
        profile: cost weights.
        probation: rows before this index are not scored.

    Returns:
        Sum of the TP, FN and FP contributions (nab/scorer.py rules).
    """
    det = np.asarray(detections, dtype=bool).reshape(-1)
    idx = np.flatnonzero(det)
    idx = idx[idx >= probation]
    max_tp = _scaled_sigmoid(-1.0)
    score = 0.0
    in_window = np.zeros(det.shape[0], dtype=bool)
    for lo, hi in windows:
        in_window[lo : hi + 1] = True
        length = hi - lo + 1
        hits = idx[(idx >= lo) & (idx <= hi)]
        if hits.size == 0:
            score -= profile.fn
        else:
            pos = -(hi - int(hits[0]) + 1) / length
            score += _scaled_sigmoid(pos) * profile.tp / max_tp
    ends = np.array([hi for _, hi in windows], dtype=np.int64)
    lengths = np.array([hi - lo + 1 for lo, hi in windows], dtype=np.int64)
    for i in idx[~in_window[idx]]:
        prev = np.flatnonzero(ends < i)
        if prev.size == 0:
            score -= profile.fp
        else:
            w = int(prev[-1])
            pos = abs(int(ends[w]) - int(i)) / float(lengths[w] - 1)
            score += _scaled_sigmoid(pos) * profile.fp
    return score


def nab_score(
    detections: np.ndarray,
    windows: Sequence[tuple[int, int]],
    profile: str = "standard",
    probation: int | None = None,
) -> float:
    """Normalised NAB score, ``100 (S - S_null) / (S_perfect - S_null)``, for one file."""
    if profile not in NAB_PROFILES:
        raise InvalidInput("profile", f"unknown NAB profile {profile!r}")
    prof = NAB_PROFILES[profile]
    n = int(np.asarray(detections).shape[0])
    prob = nab_probation(n) if probation is None else probation
    raw = nab_raw_score(detections, windows, prof, prob)
    null = -prof.fn * len(windows)
    perfect = prof.tp * len(windows)
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)
