"""Multivariate anomaly detection: PCA Hotelling T² and Q (SPE), thresholds from normal data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ironbridge.model import InvalidInput
from ironbridge.predict.features import rolling_mean

__all__ = ["PcaDetector", "isolation_forest_scores"]


def _trend_r2(x: np.ndarray) -> np.ndarray:
    """Squared correlation of each column with time (how much it drifts)."""
    t = np.arange(x.shape[0], dtype=np.float64)
    t = (t - t.mean()) / (t.std() or 1.0)
    sd = x.std(axis=0)
    z = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    r: np.ndarray = (z * t[:, None]).mean(axis=0) ** 2
    return r


def _roughness(x: np.ndarray) -> np.ndarray:
    """Std of row-to-row changes over the std of each column (√2 for white noise)."""
    sd = x.std(axis=0)
    r: np.ndarray = np.diff(x, axis=0).std(axis=0) / np.where(sd > 0, sd, 1.0)
    return r


@dataclass(frozen=True, slots=True, kw_only=True)
class PcaDetector:
    """PCA model of normal behaviour with T² and Q limits learned from the training rows.

    The anomaly score of a row is ``max(T² / T²_lim, Q / Q_lim)`` where the limits are the
    ``quantile`` of the training scores, so 1.0 means "as unusual as the most unusual
    normal rows". ``detect`` smooths the score with a causal rolling mean of ``smooth``
    rows and flags rows above the largest smoothed training score.

    Columns whose level drifts over the training window (squared correlation with time at
    least ``drift_r2``, such as a slowly warming temperature) are left out: a level
    learned from a drifting window does not describe the next one.
    """

    keep: np.ndarray  # bool mask over input columns
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (k, f_kept)
    variances: np.ndarray  # (k,)
    t2_limit: float
    q_limit: float
    threshold: float
    smooth: int

    @classmethod
    def fit(
        cls,
        normal: np.ndarray,
        *,
        explained: float = 0.85,
        quantile: float = 0.99,
        smooth: int = 5,
        drift_r2: float = 0.3,
        min_roughness: float = 0.0,
    ) -> PcaDetector:
        """Fit on rows assumed normal.

        Args:
            normal: (n, f) training rows, in time order.
            explained: fraction of variance the retained components explain.
            quantile: training quantile that normalises T² and Q.
            smooth: rows of the causal rolling mean applied before thresholding.
            drift_r2: columns drifting at least this much in training are ignored.
            min_roughness: columns smoother than this are ignored: the std of their
                row-to-row changes over their std (white noise: √2; a slow thermal
                signal: ~0.2). Over a short training window the level of such a column
                is one point of a slow wander, not a normal range.
        """
        x = np.asarray(normal, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 3:
            raise InvalidInput("normal", "need a 2-D array with at least 3 rows")
        sd = x.std(axis=0)
        keep = (sd > 0) & (_trend_r2(x) < drift_r2) & (_roughness(x) >= min_roughness)
        if not keep.any():
            keep = sd > 0
        if not keep.any():
            raise InvalidInput("normal", "every column is constant")
        xk = x[:, keep]
        mu = xk.mean(axis=0)
        scale = xk.std(axis=0)
        z = (xk - mu) / scale
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        lam = s**2 / max(z.shape[0] - 1, 1)
        ratio = np.cumsum(lam) / lam.sum()
        k = int(min(np.searchsorted(ratio, explained) + 1, lam.shape[0]))
        comps, var = vt[:k], np.maximum(lam[:k], 1e-12)
        t2, q = _t2_q(z, comps, var)
        t2_lim = float(np.quantile(t2, quantile)) or 1.0
        q_lim = float(np.quantile(q, quantile)) or 1.0
        score = np.maximum(t2 / t2_lim, q / q_lim)
        sm = rolling_mean(score, np.zeros(score.shape[0], dtype=np.int8), smooth)[:, 0]
        return cls(
            keep=keep,
            mean=mu,
            scale=scale,
            components=comps,
            variances=var,
            t2_limit=t2_lim,
            q_limit=q_lim,
            threshold=float(sm.max()),
            smooth=smooth,
        )

    def t2_q(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hotelling T² and Q (squared prediction error) of each row."""
        z = self._z(rows)
        return _t2_q(z, self.components, self.variances)

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Per-row anomaly score, ``max(T²/limit, Q/limit)`` (no smoothing; vectorised)."""
        t2, q = self.t2_q(rows)
        out: np.ndarray = np.maximum(t2 / self.t2_limit, q / self.q_limit)
        return out

    def detect(self, rows: np.ndarray) -> np.ndarray:
        """Boolean flag per row of a time-ordered sequence (smoothed score above threshold)."""
        s = self.score(rows)
        sm = rolling_mean(s, np.zeros(s.shape[0], dtype=np.int8), self.smooth)[:, 0]
        out: np.ndarray = sm > self.threshold
        return out

    def _z(self, rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.keep.shape[0]:
            raise InvalidInput("rows", f"expected (n, {self.keep.shape[0]}) array")
        out: np.ndarray = (x[:, self.keep] - self.mean) / self.scale
        return out

    def save(self, directory: str | Path) -> list[Path]:
        """Write ``model.npz`` (arrays) and ``model.json`` (scalars); return the paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        npz = d / "model.npz"
        np.savez(
            npz,
            keep=self.keep,
            mean=self.mean,
            scale=self.scale,
            components=self.components,
            variances=self.variances,
        )
        js = d / "model.json"
        js.write_text(
            json.dumps(
                {
                    "t2_limit": self.t2_limit,
                    "q_limit": self.q_limit,
                    "threshold": self.threshold,
                    "smooth": self.smooth,
                }
            )
        )
        return [npz, js]

    @classmethod
    def load(cls, directory: str | Path) -> PcaDetector:
        """Read a detector written by :meth:`save` (``allow_pickle=False``)."""
        d = Path(directory)
        meta = json.loads((d / "model.json").read_text())
        with np.load(d / "model.npz", allow_pickle=False) as a:
            return cls(
                keep=a["keep"].astype(bool),
                mean=a["mean"],
                scale=a["scale"],
                components=a["components"],
                variances=a["variances"],
                t2_limit=float(meta["t2_limit"]),
                q_limit=float(meta["q_limit"]),
                threshold=float(meta["threshold"]),
                smooth=int(meta["smooth"]),
            )


def _t2_q(z: np.ndarray, comps: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = z @ comps.T
    t2 = (t * t / var).sum(axis=1)
    resid = z - t @ comps
    q = (resid * resid).sum(axis=1)
    return t2, q


def isolation_forest_scores(
    normal: np.ndarray, rows: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Isolation-forest anomaly scores of ``rows`` (higher is more anomalous) and a limit.

    The limit is the largest score of the training rows. Needs scikit-learn (the
    ``predict`` extra).
    """
    from ironbridge.predict._lazy import require

    ensemble = require("sklearn.ensemble")
    model = ensemble.IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)
    model.fit(np.asarray(normal, dtype=np.float64))
    train = -model.score_samples(np.asarray(normal, dtype=np.float64))
    score: np.ndarray = -model.score_samples(np.asarray(rows, dtype=np.float64))
    return score, float(train.max())
