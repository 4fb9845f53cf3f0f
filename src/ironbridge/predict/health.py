"""Health index 0–100 and the vectorised fleet scorer (health + anomaly + RUL at once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ironbridge.predict.anomaly import PcaDetector
from ironbridge.predict.rul import RulModel

__all__ = ["FleetScorer", "Scores", "health_index"]


def health_index(rul: np.ndarray, anomaly: np.ndarray, cap: float) -> np.ndarray:
    """Health 0–100 from remaining life and anomaly score.

    ``100 * min(rul, cap) / cap`` is the life part; it is divided by
    ``1 + max(0, anomaly - 1)`` so that behaviour beyond the limits learned from normal
    data (anomaly score above 1) lowers health even while the RUL model still sees
    plenty of life. Both inputs are arrays of the same shape.
    """
    life = 100.0 * np.clip(np.asarray(rul, dtype=np.float64), 0.0, cap) / cap
    excess = np.maximum(np.asarray(anomaly, dtype=np.float64) - 1.0, 0.0)
    out: np.ndarray = life / (1.0 + excess)
    return out


class Scores(NamedTuple):
    """Per-asset scores, one array element per asset."""

    health: np.ndarray
    anomaly: np.ndarray
    rul: np.ndarray
    rul_lo: np.ndarray
    rul_hi: np.ndarray


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetScorer:
    """Scores a batch of assets from their latest feature rows in a few numpy calls."""

    rul_model: RulModel
    detector: PcaDetector

    @classmethod
    def fit(cls, rul_model: RulModel, features: np.ndarray, rul: np.ndarray) -> FleetScorer:
        """Fit the anomaly part on the healthy rows (true RUL at or above the cap)."""
        x = np.asarray(features, dtype=np.float64)
        healthy = np.asarray(rul) >= rul_model.cap
        normal = x[healthy] if healthy.sum() >= 3 else x
        return cls(rul_model=rul_model, detector=PcaDetector.fit(normal, drift_r2=1.1))

    def score_batch(self, features: np.ndarray) -> Scores:
        """Health, anomaly score, RUL and its interval for each row (asset) of ``features``."""
        rul, lo, hi = self.rul_model.predict(features)
        anomaly = self.detector.score(features)
        return Scores(
            health=health_index(rul, anomaly, self.rul_model.cap),
            anomaly=anomaly,
            rul=rul,
            rul_lo=lo,
            rul_hi=hi,
        )
