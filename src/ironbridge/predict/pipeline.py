"""End-to-end RUL pipeline: condition normalisation, window features, the RUL ensemble."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ironbridge.model import InvalidInput
from ironbridge.predict.features import (
    ConditionNormaliser,
    FeatureSpec,
    build_features,
    group_starts,
)
from ironbridge.predict.rul import DEFAULT_ROUNDS, RulModel, train_rul

__all__ = ["RulPipeline", "last_rows"]


def last_rows(units: np.ndarray) -> np.ndarray:
    """Index of the last row of each unit (rows of a unit contiguous), in unit order."""
    u = np.asarray(units)
    if u.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    is_last = np.ones(u.shape[0], dtype=bool)
    is_last[:-1] = u[1:] != u[:-1]
    return np.flatnonzero(is_last)


@dataclass(frozen=True, slots=True, kw_only=True)
class RulPipeline:
    """A fitted pipeline: what turns raw per-cycle telemetry into a RUL estimate."""

    normaliser: ConditionNormaliser
    sensor_names: tuple[str, ...]
    keep: np.ndarray  # mask over sensor_names
    spec: FeatureSpec
    model: RulModel

    @classmethod
    def fit(
        cls,
        *,
        unit: np.ndarray,
        settings: np.ndarray,
        sensors: np.ndarray,
        rul: np.ndarray,
        sensor_names: Sequence[str],
        cap: float = 125.0,
        spec: FeatureSpec | None = None,
        seed: int = 0,
        folds: int = 5,
        rounds: int | None = None,
    ) -> RulPipeline:
        """Fit on run-to-failure trajectories (rows sorted by unit, then time).

        Args:
            unit: (n,) unit id per row.
            settings: (n, s) operating settings per row.
            sensors: (n, f) sensor readings per row.
            rul: (n,) true remaining life per row (capped at ``cap`` for training).
            sensor_names: the f sensor names.
            cap: piecewise-linear target cap.
            spec: window features (default :class:`FeatureSpec`).
            seed: seed of folds and LightGBM.
            folds: boosters in the ensemble.
            rounds: boosting rounds (default of :func:`train_rul`).
        """
        spec = spec or FeatureSpec()
        names = tuple(sensor_names)
        if np.asarray(sensors).shape[1] != len(names):
            raise InvalidInput("sensor_names", "one name per sensor column")
        norm = ConditionNormaliser.fit(settings, sensors, seed=seed)
        keep = norm.informative()
        z = norm.transform(settings, sensors)[:, keep]
        kept = [n for n, k in zip(names, keep, strict=True) if k]
        x, fnames = build_features(z, unit, kept, spec)
        model = train_rul(
            x, rul, unit, fnames, cap=cap, seed=seed, folds=folds, rounds=rounds or DEFAULT_ROUNDS
        )
        return cls(normaliser=norm, sensor_names=names, keep=keep, spec=spec, model=model)

    def features(self, unit: np.ndarray, settings: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Feature rows for every input row."""
        z = self.normaliser.transform(settings, sensors)[:, self.keep]
        kept = [n for n, k in zip(self.sensor_names, self.keep, strict=True) if k]
        x, _ = build_features(z, unit, kept, self.spec)
        return x

    def predict_last(
        self, unit: np.ndarray, settings: np.ndarray, sensors: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point, lower, upper) RUL at the last row of each unit, in unit order."""
        x = self.features(unit, settings, sensors)
        idx = last_rows(unit)
        return self.model.predict(x[idx])

    def unit_age(self, unit: np.ndarray) -> np.ndarray:
        """Rows seen so far per row (1-based), the ``age`` feature."""
        out: np.ndarray = np.arange(len(unit)) - group_starts(unit) + 1
        return out
