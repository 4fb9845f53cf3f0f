"""Remaining-useful-life regression: a LightGBM fold ensemble with cross-conformal intervals."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ironbridge.model import InvalidInput
from ironbridge.predict._lazy import require

__all__ = ["DEFAULT_PARAMS", "RulModel", "train_rul"]

#: Fixed hyperparameters, the same for every data set (no per-subset tuning).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "regression",
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    # One thread: on a shared 2-core machine two OpenMP threads spin at every barrier
    # while the other is descheduled. Measured at a load average of ~25: FD001 training
    # had burnt 5 min of CPU after 38 min with 2 threads (about 30 s when idle).
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbosity": -1,
}
DEFAULT_ROUNDS = 600


@dataclass(frozen=True, slots=True, kw_only=True)
class RulModel:
    """K boosters trained on K unit-wise folds; prediction is their mean.

    The interval is cross-conformal: the ``alpha/2`` and ``1 - alpha/2`` quantiles of the
    out-of-fold residuals (each unit predicted by the booster that never saw it) are added
    to the point prediction, then clipped to ``[0, cap]``.
    """

    boosters: tuple[Any, ...]
    feature_names: tuple[str, ...]
    cap: float
    alpha: float
    resid_lo: float
    resid_hi: float
    oof_rmse: float
    params: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (point, lower, upper) RUL for each row of ``features``."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.feature_names):
            raise InvalidInput("features", f"expected (n, {len(self.feature_names)}) array")
        pred = np.zeros(x.shape[0])
        for b in self.boosters:
            pred += b.predict(x, num_threads=2)
        pred = np.clip(pred / len(self.boosters), 0.0, self.cap)
        lo = np.clip(pred + self.resid_lo, 0.0, self.cap)
        hi = np.clip(pred + self.resid_hi, 0.0, self.cap)
        return pred, lo, hi

    def save(self, directory: str | Path) -> list[Path]:
        """Write ``model.<i>.txt`` (LightGBM text format) and ``model.json``; return paths."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, b in enumerate(self.boosters):
            p = d / f"model.{i}.txt"
            b.save_model(str(p))
            paths.append(p)
        meta = {
            "n_boosters": len(self.boosters),
            "feature_names": list(self.feature_names),
            "cap": self.cap,
            "alpha": self.alpha,
            "resid_lo": self.resid_lo,
            "resid_hi": self.resid_hi,
            "oof_rmse": self.oof_rmse,
            "params": dict(self.params),
        }
        p = d / "model.json"
        p.write_text(json.dumps(meta, indent=2))
        paths.append(p)
        return paths

    @classmethod
    def load(cls, directory: str | Path) -> RulModel:
        """Read a model written by :meth:`save` (LightGBM text + JSON, no pickle)."""
        lgb = require("lightgbm")
        d = Path(directory)
        meta = json.loads((d / "model.json").read_text())
        boosters = tuple(
            lgb.Booster(model_file=str(d / f"model.{i}.txt")) for i in range(meta["n_boosters"])
        )
        return cls(
            boosters=boosters,
            feature_names=tuple(meta["feature_names"]),
            cap=float(meta["cap"]),
            alpha=float(meta["alpha"]),
            resid_lo=float(meta["resid_lo"]),
            resid_hi=float(meta["resid_hi"]),
            oof_rmse=float(meta["oof_rmse"]),
            params=meta.get("params", {}),
        )


def _conformal_quantile(r: np.ndarray, q: float) -> float:
    n = r.shape[0]
    # Finite-sample correction of split conformal prediction.
    level = (
        min(1.0, max(0.0, np.ceil((n + 1) * q) / n))
        if q > 0.5
        else max(0.0, np.floor((n + 1) * q) / n)
    )
    return float(np.quantile(r, level))


def train_rul(
    features: np.ndarray,
    rul: np.ndarray,
    units: np.ndarray,
    feature_names: list[str] | tuple[str, ...],
    *,
    cap: float = 125.0,
    folds: int = 5,
    alpha: float = 0.1,
    rounds: int = DEFAULT_ROUNDS,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> RulModel:
    """Train the fold ensemble on the capped RUL target.

    Args:
        features: (n, m) feature rows.
        rul: (n,) true remaining life of each row (capped here at ``cap``).
        units: (n,) unit id of each row; folds never split a unit.
        feature_names: the m feature names.
        cap: piecewise-linear target cap.
        folds: number of unit-wise folds (and boosters); at least 2.
        alpha: miscoverage of the interval (0.1: 90 % interval).
        rounds: boosting rounds per booster.
        params: LightGBM parameters (default :data:`DEFAULT_PARAMS`).
        seed: seed of the fold split and of LightGBM.

    Returns:
        The trained :class:`RulModel`.
    """
    lgb = require("lightgbm")
    x = np.asarray(features, dtype=np.float32)
    y = np.minimum(np.asarray(rul, dtype=np.float64), cap)
    u = np.asarray(units)
    if x.shape[0] != y.shape[0] or x.shape[0] != u.shape[0]:
        raise InvalidInput("features", "features, rul and units need the same number of rows")
    uniq = np.unique(u)
    if folds < 2 or uniq.shape[0] < folds:
        raise InvalidInput("folds", f"need 2 <= folds <= number of units ({uniq.shape[0]})")
    p = dict(DEFAULT_PARAMS if params is None else params)
    p["seed"] = seed
    rng = np.random.default_rng(seed)
    order = rng.permutation(uniq).tolist()
    fold_of_unit = dict(zip(order, np.arange(uniq.shape[0]) % folds, strict=True))
    fold = np.array([fold_of_unit[v] for v in u.tolist()])
    oof = np.zeros(y.shape[0])
    boosters = []
    for k in range(folds):
        tr = fold != k
        ds = lgb.Dataset(x[tr], label=y[tr], free_raw_data=True, params={"verbose": -1})
        b = lgb.train(p, ds, num_boost_round=rounds)
        oof[~tr] = b.predict(x[~tr], num_threads=2)
        boosters.append(b)
    oof = np.clip(oof, 0.0, cap)
    resid = y - oof
    return RulModel(
        boosters=tuple(boosters),
        feature_names=tuple(feature_names),
        cap=cap,
        alpha=alpha,
        resid_lo=_conformal_quantile(resid, alpha / 2),
        resid_hi=_conformal_quantile(resid, 1 - alpha / 2),
        oof_rmse=float(np.sqrt(np.mean(resid * resid))),
        params=p,
    )
