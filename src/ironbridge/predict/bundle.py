"""A deployable model version of an asset type: anomaly detector, optional RUL model, config.

Rows are equally spaced time buckets per asset (:mod:`ironbridge.predict.frames`). The
window features use only the last few buckets (no unit age or start-of-life baseline:
a machine on the platform has no known start of life), so scoring needs only a short
trailing window per asset.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ironbridge.model import InvalidInput
from ironbridge.predict.anomaly import PcaDetector
from ironbridge.predict.features import (
    ConditionNormaliser,
    FeatureSpec,
    build_features,
    group_starts,
    rolling_mean,
)
from ironbridge.predict.frames import AssetFrames
from ironbridge.predict.health import Scores, health_index
from ironbridge.predict.pipeline import last_rows
from ironbridge.predict.rul import RulModel, train_rul
from ironbridge.predict.trim import AssetTrim, outlier_assets

__all__ = ["PLATFORM_SPEC", "BundleConfig", "PdmBundle", "RunCondition", "rul_labels"]

#: Window features of platform models (in buckets); needs ``lookback`` rows to score.
PLATFORM_SPEC = FeatureSpec(
    mean_windows=(3, 6, 12),
    std_windows=(6,),
    slope_windows=(6, 12),
    include_position=False,
    include_baseline=False,
)

US_PER_H = 3_600_000_000
#: With ``BundleConfig.running``: a run of buckets is scored from its this-many-th bucket
#: (the std window), once a start's transient has left the windows.
RUNNING_SETTLE_ROWS = PLATFORM_SPEC.std_windows[0]


class RunCondition(NamedTuple):
    """One condition of the running gate: the bucket mean of ``measurement`` is above ``above``.

    A plain ``(measurement, threshold)`` tuple compares equal to it.
    """

    measurement: str
    above: float

    def to_json(self) -> dict[str, Any]:
        """JSON form, as in the API's training request."""
        return {"measurement": self.measurement, "above": self.above}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RunCondition:
        """Parse :meth:`to_json`."""
        return cls(str(d["measurement"]), float(d["above"]))


def _parse_running(raw: Any) -> tuple[RunCondition, ...]:
    """Parse a stored ``running``.

    It is absent or null (no gate), one condition (versions written before the gate took
    several) or a list of conditions.
    """
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        return (RunCondition.from_json(raw),)
    return tuple(RunCondition.from_json(c) for c in raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleConfig:
    """What a version was trained on; stored with it and used again to score."""

    asset_type: str
    sensors: tuple[str, ...]
    settings: tuple[str, ...]
    bucket_s: int
    rul_cap_h: float
    #: The running gate, empty for none. A bucket is *running* when every condition
    #: holds: the bucket mean of each measurement is above its threshold (an engine
    #: speed above idle for the whole bucket, and a coolant temperature in the
    #: thermostat's band, say: a cold engine warming up is not normal running). When
    #: set, only *settled* running buckets, the ``RUNNING_SETTLE_ROWS``-th and later of
    #: an unbroken run, are learned from and scored. Each such stretch is its own group
    #: for the window features and the smoothing, so no window mixes a parked machine, a
    #: start, a warm-up or a stop with normal running. A machine outside the gate gets no
    #: new prediction, so its last one (from when it last ran) stands.
    running: tuple[RunCondition, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """Measurements read from the store: settings first, then sensors."""
        return self.settings + self.sensors

    @property
    def lookback(self) -> int:
        """Rows per asset needed to compute the features of its newest row."""
        return 2 * max(PLATFORM_SPEC.mean_windows + PLATFORM_SPEC.slope_windows)

    def to_json(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "asset_type": self.asset_type,
            "sensors": list(self.sensors),
            "settings": list(self.settings),
            "bucket_s": self.bucket_s,
            "rul_cap_h": self.rul_cap_h,
            "running": [c.to_json() for c in self.running] if self.running else None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BundleConfig:
        """Parse :meth:`to_json`."""
        return cls(
            asset_type=str(d["asset_type"]),
            sensors=tuple(d["sensors"]),
            settings=tuple(d["settings"]),
            bucket_s=int(d["bucket_s"]),
            rul_cap_h=float(d["rul_cap_h"]),
            running=_parse_running(d.get("running")),
        )

    def running_rows(self, frames: AssetFrames) -> tuple[np.ndarray, np.ndarray]:
        """Rows learned from and scored, and a group id per such row for its windows.

        Without ``running``: every row, grouped by asset. With it: the settled running
        rows (see ``running``), grouped by unbroken stretch. A measurement an asset never
        reported fails its condition.
        """
        n = len(frames)
        if not self.running:
            return np.ones(n, dtype=bool), frames.unit
        on = np.ones(n, dtype=bool)
        for name, above in self.running:
            col = frames.values[:, self.columns.index(name)]
            on &= np.nan_to_num(col, nan=-np.inf) > above
        idx = np.arange(n)
        # Index of the last row that was not running (or the row before the asset's first).
        last_off = np.maximum.accumulate(np.where(on, group_starts(frames.unit) - 1, idx))
        run_len = idx - last_off  # consecutive running rows ending at each row
        mask = on & (run_len >= RUNNING_SETTLE_ROWS)
        groups: np.ndarray = np.cumsum(run_len[mask] == RUNNING_SETTLE_ROWS)
        return mask, groups


def rul_labels(
    frames: AssetFrames, failures: Mapping[str, Sequence[int]], cap_h: float
) -> np.ndarray:
    """Remaining life in hours of each row, NaN where it is not known.

    A row before a known failure of its asset gets the time to that failure. A row with
    no failure ahead is right-censored: its life is at least the time to the asset's last
    row, so it is labelled ``cap_h`` when that is already at least the cap, else unknown.
    """
    out = np.full(len(frames), np.nan)
    end = frames.last_ts()
    for a, asset in enumerate(frames.asset_ids):
        rows = np.flatnonzero(frames.unit == a)
        t = frames.ts_us[rows] + frames.bucket_us  # a bucket's data is complete at its end
        fail = np.sort(np.asarray(failures.get(asset, ()), dtype=np.int64))
        nxt = np.searchsorted(fail, t, side="left")
        ahead = nxt < fail.shape[0]
        life = np.full(rows.shape[0], np.nan)
        life[ahead] = (fail[nxt[ahead]] - t[ahead]) / US_PER_H
        seen = (end[a] + frames.bucket_us - t) / US_PER_H
        life[~ahead & (seen >= cap_h)] = cap_h
        out[rows] = np.minimum(life, cap_h)
    return out


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    if pos.shape[0] == 0 or neg.shape[0] == 0:
        return float("nan")
    allv = np.concatenate([pos, neg])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(allv.shape[0])
    ranks[order] = np.arange(1, allv.shape[0] + 1)
    # average ranks of ties
    _, inv, counts = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.zeros(counts.shape[0])
    np.add.at(sums, inv, ranks)
    ranks = (sums / counts)[inv]
    r_pos = ranks[: pos.shape[0]].sum()
    return float((r_pos - pos.shape[0] * (pos.shape[0] + 1) / 2) / (pos.shape[0] * neg.shape[0]))


@dataclass(frozen=True, slots=True, kw_only=True)
class PdmBundle:
    """A trained version: condition normaliser, anomaly detector and, if labels allowed, RUL."""

    config: BundleConfig
    normaliser: ConditionNormaliser
    keep: np.ndarray  # mask over config.sensors
    detector: PcaDetector
    rul: RulModel | None
    #: The assets left out of the normaliser and the detector (versions saved before
    #: trimming load with an empty one).
    trim: AssetTrim = field(default_factory=AssetTrim)

    # -- features ---------------------------------------------------------------------
    def features(self, frames: AssetFrames) -> np.ndarray:
        """Feature rows for every row of ``frames`` (columns as in ``config.columns``)."""
        return _features(self.config, self.normaliser, self.keep, frames)

    # -- training ---------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        config: BundleConfig,
        frames: AssetFrames,
        failures: Mapping[str, Sequence[int]],
        *,
        rounds: int = 300,
        progress: Callable[[str, float], None] = lambda stage, frac: None,
    ) -> tuple[PdmBundle, dict[str, float], list[str]]:
        """Train on ``frames``; return the bundle, its validation metrics and feature names.

        The RUL model is trained only when at least one failure is known and at least two
        assets have labelled rows; otherwise the version has the anomaly model only and
        health comes from the anomaly score alone.

        The anomaly model is trimmed (:mod:`ironbridge.predict.trim`): assets whose
        median score under a first fit, or median sensor level, is far off the fleet's
        are suspects (at most 20 % of them); the normaliser and the detector are fitted
        again without them; a suspect whose median score under that refit is above 1
        stays out, the others come back (and the model is fitted a third time). The RUL
        model keeps every labelled row: its labels come from known failures, not from
        the rows' looking normal. ``bundle.trim`` records who was left out and why.
        """
        if frames.columns != config.columns:
            raise InvalidInput("measurements", "frames do not match the configuration")
        if len(frames) < 10:
            raise InvalidInput("range", f"only {len(frames)} buckets of data in the range")
        progress("features", 0.2)
        ns = len(config.settings)
        settings = frames.values[:, :ns] if ns else np.zeros((len(frames), 1))
        sensors = frames.values[:, ns:]
        seen = ~np.isnan(sensors).all(axis=0)
        if not seen.all():
            missing = [c for c, m in zip(config.sensors, seen, strict=True) if not m]
            raise InvalidInput("measurements", f"no data at all for {', '.join(missing)}")
        settings = np.nan_to_num(settings)
        running, _ = config.running_rows(frames)
        if running.sum() < 10:
            raise InvalidInput("running", f"only {int(running.sum())} running buckets in the range")
        # Stats per condition ignore assets that never reported a column (NaN rows).
        filled = np.where(np.isnan(sensors), np.nanmean(sensors, axis=0), sensors)
        labels = rul_labels(frames, failures, config.rul_cap_h)
        labelled = ~np.isnan(labels) & running
        n_fail = sum(len(v) for k, v in failures.items() if k in frames.asset_ids)
        lab_units = np.unique(frames.unit[labelled])
        with_rul = n_fail > 0 and lab_units.shape[0] >= 2
        # The anomaly model's rows: far from any known failure when there is a RUL model.
        normal = labelled & (labels >= config.rul_cap_h) if with_rul else running
        if normal.sum() < 10:
            normal = running
        norm, keep, x = _fit_features(config, frames, settings, filled, running)
        progress("trimming", 0.3)
        first = PcaDetector.fit(x[normal], drift_r2=1.1)
        levels = np.nan_to_num(norm.transform(settings[normal], filled[normal])[:, keep])
        trim = outlier_assets(
            first.score(x[normal]),
            levels,
            frames.unit[normal],
            frames.asset_ids,
            [n for n, k in zip(config.sensors, keep, strict=True) if k],
        )
        # At least 80 % of 10+ judged assets of 5+ rows each stay: the refits have rows.
        if trim.excluded:
            drop = _rows_of(frames, trim.excluded)
            norm, keep, x = _fit_features(config, frames, settings, filled, running & ~drop)
            refit = PcaDetector.fit(x[normal & ~drop], drift_r2=1.1)
            trim = trim.confirmed(refit.score(x[normal]), frames.unit[normal], frames.asset_ids)
            if trim.readmitted:
                drop = _rows_of(frames, trim.excluded)
                norm, keep, x = _fit_features(config, frames, settings, filled, running & ~drop)
            normal = normal & ~drop
        names = _feature_names(config, keep)
        metrics: dict[str, float] = {
            "assets": float(len(frames.asset_ids)),
            "rows": float(len(frames)),
            "failures": float(n_fail),
        }
        rul: RulModel | None = None
        if with_rul:
            progress("rul", 0.4)
            rul = train_rul(
                x[labelled],
                labels[labelled],
                frames.unit[labelled],
                names,
                cap=config.rul_cap_h,
                folds=int(min(5, lab_units.shape[0])),
                rounds=rounds,
            )
            metrics["rul_cv_rmse_h"] = rul.oof_rmse
            metrics["rul_interval_width_h"] = rul.resid_hi - rul.resid_lo
            metrics["rul_rows"] = float(labelled.sum())
        progress("anomaly", 0.8)
        detector = PcaDetector.fit(x[normal], drift_r2=1.1)
        train_scores = detector.score(x[normal])
        metrics["anomaly_train_rows"] = float(normal.sum())
        metrics["anomaly_train_above_1"] = float(np.mean(train_scores > 1.0))
        metrics["anomaly_excluded_assets"] = float(len(trim.excluded))
        if rul is not None:
            near = labelled & (labels <= 0.2 * config.rul_cap_h)
            auc = _auc(detector.score(x[near]), train_scores)
            if np.isfinite(auc):
                metrics["anomaly_auc_near_failure"] = auc
        bundle = cls(
            config=config, normaliser=norm, keep=keep, detector=detector, rul=rul, trim=trim
        )
        return bundle, metrics, names

    # -- scoring ----------------------------------------------------------------------
    def score_last(self, frames: AssetFrames) -> Scores:
        """Scores at the newest row of each asset of ``frames`` (in ``asset_ids`` order).

        The anomaly score is the mean of the last ``detector.smooth`` rows' scores, as in
        :meth:`PcaDetector.detect`, so one noisy bucket does not swing health.
        """
        return self.score_rows(frames, last_rows(frames.unit))

    def score_rows(self, frames: AssetFrames, idx: np.ndarray) -> Scores:
        """Scores at rows ``idx`` of ``frames``, each from that row's own past only.

        The features are causal windows, so a row scored here gets the value it would
        have got had it been the newest row: this is how a new version back-fills the
        recent history of its assets.
        """
        x = self.features(frames)
        run, groups = self.config.running_rows(frames)
        # Smoothing runs over the scored rows of each group only (other rows have no
        # features); an unscored row gets NaN, which the scorer does not publish.
        smooth = np.full(len(frames), np.nan)
        if run.any():
            raw = self.detector.score(x[run])
            smooth[run] = rolling_mean(raw, groups, self.detector.smooth)[:, 0]
        anomaly = smooth[idx]
        nan = np.full(idx.shape[0], np.nan)
        if self.rul is not None:
            rul, lo, hi = nan.copy(), nan.copy(), nan.copy()
            ok = run[idx]
            if ok.any():
                rul[ok], lo[ok], hi[ok] = self.rul.predict(x[idx[ok]])
            health = health_index(rul, anomaly, self.config.rul_cap_h)
        else:
            rul, lo, hi = nan, nan, nan
            health = health_index(np.ones(idx.shape[0]), anomaly, 1.0)
        return Scores(health=health, anomaly=anomaly, rul=rul, rul_lo=lo, rul_hi=hi)

    # -- storage ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Write ``bundle.json``, ``normaliser.npz``, ``anomaly/`` and ``rul/`` (no pickle)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "bundle.json").write_text(
            json.dumps(
                {
                    "config": self.config.to_json(),
                    "has_rul": self.rul is not None,
                    "trim": self.trim.to_json(),
                }
            )
        )
        n = self.normaliser
        np.savez(
            directory / "normaliser.npz",
            centres=n.centres,
            setting_mean=n.setting_mean,
            setting_scale=n.setting_scale,
            mean=n.mean,
            std=n.std,
            keep=self.keep,
        )
        self.detector.save(directory / "anomaly")
        if self.rul is not None:
            self.rul.save(directory / "rul")

    @classmethod
    def load(cls, directory: Path) -> PdmBundle:
        """Read a bundle written by :meth:`save`."""
        meta = json.loads((directory / "bundle.json").read_text())
        with np.load(directory / "normaliser.npz", allow_pickle=False) as a:
            norm = ConditionNormaliser(
                centres=a["centres"],
                setting_mean=a["setting_mean"],
                setting_scale=a["setting_scale"],
                mean=a["mean"],
                std=a["std"],
            )
            keep = a["keep"].astype(bool)
        return cls(
            config=BundleConfig.from_json(meta["config"]),
            normaliser=norm,
            keep=keep,
            detector=PcaDetector.load(directory / "anomaly"),
            rul=RulModel.load(directory / "rul") if meta.get("has_rul") else None,
            trim=AssetTrim.from_json(meta["trim"]) if meta.get("trim") else AssetTrim(),
        )


def _feature_names(config: BundleConfig, keep: np.ndarray) -> list[str]:
    kept = [n for n, k in zip(config.sensors, keep, strict=True) if k]
    _, names = build_features(np.zeros((1, len(kept))), np.zeros(1), kept, PLATFORM_SPEC)
    return names


def _rows_of(frames: AssetFrames, assets: Sequence[str]) -> np.ndarray:
    """Mask of the rows of ``assets``."""
    units = [i for i, a in enumerate(frames.asset_ids) if a in set(assets)]
    out: np.ndarray = np.isin(frames.unit, units)
    return out


def _fit_features(
    config: BundleConfig,
    frames: AssetFrames,
    settings: np.ndarray,
    filled: np.ndarray,
    rows: np.ndarray,
) -> tuple[ConditionNormaliser, np.ndarray, np.ndarray]:
    """Fit the normaliser on ``rows``; return it, its informative sensors, every row's features."""
    norm = ConditionNormaliser.fit(settings[rows], filled[rows])
    keep = norm.informative()
    if not keep.any():
        raise InvalidInput("measurements", "every measurement is constant in the range")
    return norm, keep, _features(config, norm, keep, frames)


def _features(
    config: BundleConfig, norm: ConditionNormaliser, keep: np.ndarray, frames: AssetFrames
) -> np.ndarray:
    ns = len(config.settings)
    settings = np.nan_to_num(frames.values[:, :ns]) if ns else np.zeros((len(frames), 1))
    sensors = frames.values[:, ns:]
    # A sensor an asset never reported sits at its condition mean (z = 0).
    z = np.nan_to_num(norm.transform(settings, sensors)[:, keep])
    kept = [n for n, k in zip(config.sensors, keep, strict=True) if k]
    if not config.running:
        x, _ = build_features(z, frames.unit, kept, PLATFORM_SPEC)
        return x
    # Windows over each stretch of settled running rows only; other rows get NaN.
    run, groups = config.running_rows(frames)
    out = np.full((len(frames), len(_feature_names(config, keep))), np.nan)
    if run.any():
        out[run], _ = build_features(z[run], groups, kept, PLATFORM_SPEC)
    return out
