"""Robust anomaly training: find the assets whose training rows are far off the fleet's.

An anomaly model learns "normal" from its training rows. A few machines already faulty
in the training range (overheating from the start, say) widen that normal until real
wear no longer stands out. Trimming finds them in two steps:

1. **Screen** (:func:`outlier_assets`), on a first fit to every training row. Each asset
   is summed up by medians over its rows (the median, so a healthy machine with a few
   odd buckets, a gear change, is not judged by them): of its anomaly score, and of each
   sensor normalised per operating condition (its *level*). Across the assets, each of
   these gets a modified z-score (Iglewicz and Hoaglin, 1993): the distance to the median
   over assets in units of their median absolute deviation scaled by 1.4826 (the
   standard deviation for normal data). The median and MAD ignore the few off assets,
   which a mean and std would not. An asset is a suspect when a level is more than
   ``k`` = 3.5 (their recommended cut) off either way, or its score that much above.
   Levels are screened as well as scores because several machines with the same fault
   become a direction of the first fit's own PCA, which then scores them as normal;
   scores catch what levels do not, odd relations between sensors. At most 20 % of the
   assets are suspects, the furthest off first.
2. **Confirm** (:meth:`AssetTrim.confirmed`), on a fit without the suspects: a suspect
   stays out only if its median score is above 1, that is, if more than half its rows are
   beyond the limit that the other machines' rows set (the 99th percentile of their
   scores). The others come back. The screen alone over-trims: per-asset medians are
   spread wider than normal values in a real fleet (duty cycles differ), so a healthy
   machine with an unusual duty passes 3.5; under a model without it, it stays well below
   1, while a faulty machine scores far above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = [
    "CONFIRM_LIMIT",
    "SCORE",
    "TRIM_K",
    "TRIM_MAX_FRACTION",
    "TRIM_MIN_ASSETS",
    "TRIM_MIN_ROWS",
    "AssetTrim",
    "outlier_assets",
]

#: Cut of the modified z-score (Iglewicz and Hoaglin's recommendation).
TRIM_K = 3.5
#: At most this share of the judged assets is left out, the furthest off first: beyond it
#: the "outliers" are no longer a few faulty machines but a fleet that is not homogeneous
#: (two models of machine under one type, say), which trimming must not hide.
TRIM_MAX_FRACTION = 0.2
#: Fewer judged assets than this: no trimming. A median and a MAD over a handful of
#: values are too unstable to exclude a machine on (and 20 % of 4 is no asset at all).
TRIM_MIN_ASSETS = 10
#: An asset is judged only with at least this many training rows (its medians are noise
#: below); one with fewer is kept and does not count towards the fleet statistics.
TRIM_MIN_ROWS = 5
#: A suspect stays out when its median score under a fit without the suspects is above
#: this: more than half its rows are beyond the limit the other machines' rows set.
CONFIRM_LIMIT = 1.0
#: What a suspect was screened on when it was its anomaly score (not a sensor's level).
SCORE = "anomaly_score"
#: MAD → standard deviation for normally distributed values.
_MAD_TO_SD = 1.4826
#: Mean absolute deviation → standard deviation, the fallback when the MAD is 0 (more
#: than half the assets share one value).
_MEANAD_TO_SD = 1.2533


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetTrim:
    """Which assets a fit left out of its anomaly training, and why.

    Attributes:
        excluded: asset ids left out (after the screen: the suspects), furthest off first.
        screened_on: per excluded asset, what was furthest off in the screen: a sensor's
            name (its level) or ``"anomaly_score"``.
        screen_z: per excluded asset, that modified z-score (signed for a level).
        scores: per excluded asset, its median anomaly score under the model fitted
            without the suspects (NaN until confirmed).
        judged: assets with enough training rows to be judged.
        k: the cut of the modified z-score.
        over_cap: suspects kept because of the cap on the excluded share (the least far
            off of them).
        readmitted: suspects of the screen that the confirmation brought back.
        skipped: why no asset was judged ("" when they were).
    """

    excluded: tuple[str, ...] = ()
    screened_on: tuple[str, ...] = ()
    screen_z: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()
    judged: int = 0
    k: float = TRIM_K
    over_cap: int = 0
    readmitted: tuple[str, ...] = ()
    skipped: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON form, as stored with a version and returned by the API."""

        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "excluded": [
                {"asset": a, "screened_on": on, "screen_z": num(z), "median_score": num(s)}
                for a, on, z, s in zip(
                    self.excluded, self.screened_on, self.screen_z, self.scores, strict=True
                )
            ],
            "judged_assets": self.judged,
            "k": self.k,
            "over_cap": self.over_cap,
            "readmitted": list(self.readmitted),
            "skipped": self.skipped or None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> AssetTrim:
        """Parse :meth:`to_json`."""

        def num(v: Any) -> float:
            return float("nan") if v is None else float(v)

        excluded = list(d.get("excluded") or ())
        return cls(
            excluded=tuple(str(e["asset"]) for e in excluded),
            screened_on=tuple(str(e["screened_on"]) for e in excluded),
            screen_z=tuple(num(e["screen_z"]) for e in excluded),
            scores=tuple(num(e["median_score"]) for e in excluded),
            judged=int(d.get("judged_assets", 0)),
            k=float(d.get("k", TRIM_K)),
            over_cap=int(d.get("over_cap", 0)),
            readmitted=tuple(str(a) for a in d.get("readmitted") or ()),
            skipped=str(d.get("skipped") or ""),
        )

    def confirmed(
        self, scores: np.ndarray, unit: np.ndarray, asset_ids: Sequence[str]
    ) -> AssetTrim:
        """Keep out only the suspects whose median score is above 1 under a refit.

        Args:
            scores: anomaly score of each training row (of every asset) under the model
                fitted without the suspects.
            unit: index into ``asset_ids`` of each row's asset.
            asset_ids: the assets.

        Returns:
            This trim with the confirmed suspects in ``excluded`` (in the screen's order)
            and their ``scores`` from the refit, and the others in ``readmitted``.
        """
        s = np.asarray(scores, dtype=np.float64)
        u = np.asarray(unit, dtype=np.int64)
        index = {a: i for i, a in enumerate(asset_ids)}
        med = [float(np.median(s[u == index[a]])) for a in self.excluded]
        out = [i for i, m in enumerate(med) if m > CONFIRM_LIMIT]
        return replace(
            self,
            excluded=tuple(self.excluded[i] for i in out),
            screened_on=tuple(self.screened_on[i] for i in out),
            screen_z=tuple(self.screen_z[i] for i in out),
            scores=tuple(med[i] for i in out),
            readmitted=tuple(a for i, a in enumerate(self.excluded) if i not in out),
        )


def _robust_z(values: np.ndarray) -> np.ndarray:
    """Modified z-score of each value (rows) per column; 0 where the column does not vary."""
    centre = np.median(values, axis=0)
    dev = np.abs(values - centre)
    spread = _MAD_TO_SD * np.median(dev, axis=0)
    spread = np.where(spread > 0, spread, _MEANAD_TO_SD * dev.mean(axis=0))
    out: np.ndarray = np.where(spread > 0, (values - centre) / np.where(spread > 0, spread, 1), 0)
    return out


def outlier_assets(
    scores: np.ndarray,
    levels: np.ndarray,
    unit: np.ndarray,
    asset_ids: Sequence[str],
    level_names: Sequence[str],
    *,
    k: float = TRIM_K,
    max_fraction: float = TRIM_MAX_FRACTION,
    min_assets: int = TRIM_MIN_ASSETS,
    min_rows: int = TRIM_MIN_ROWS,
) -> AssetTrim:
    """The screen: assets whose median score or sensor level is an outlier in the fleet.

    Args:
        scores: anomaly score of each training row under a fit on all of them.
        levels: (rows, sensors) each training row's sensors, normalised per condition.
        unit: index into ``asset_ids`` of each row's asset.
        asset_ids: the assets.
        level_names: the sensors (columns of ``levels``).
        k: cut of the modified z-score.
        max_fraction: at most ``floor(max_fraction · judged)`` assets are suspects.
        min_assets: judge nothing with fewer judged assets than this.
        min_rows: judge an asset only with at least this many rows.

    Returns:
        The suspects in ``excluded``, furthest off first (ties in asset order). The
        result depends only on the inputs.
    """
    s = np.asarray(scores, dtype=np.float64)
    lv = np.asarray(levels, dtype=np.float64).reshape(s.shape[0], -1)
    u = np.asarray(unit, dtype=np.int64)
    counts = np.bincount(u, minlength=len(asset_ids))
    judged = np.flatnonzero(counts >= min_rows)
    if judged.shape[0] < min_assets:
        return AssetTrim(
            judged=int(judged.shape[0]),
            k=k,
            skipped=f"{judged.shape[0]} assets with {min_rows}+ training rows, "
            f"fewer than {min_assets}",
        )
    order = np.argsort(u, kind="stable")
    bounds = np.searchsorted(u[order], np.arange(len(asset_ids) + 1))
    table = np.column_stack([s, lv])[order]
    med = np.array([np.median(table[bounds[a] : bounds[a + 1]], axis=0) for a in judged])
    z = _robust_z(med)
    # A high score is off; a low one is not. A level is off either way.
    off = np.column_stack([z[:, 0], np.abs(z[:, 1:])])
    worst = off.argmax(axis=1)
    far = off[np.arange(off.shape[0]), worst]
    suspects = np.flatnonzero(far > k)
    suspects = suspects[np.argsort(-far[suspects], kind="stable")]
    cap = int(np.floor(max_fraction * judged.shape[0]))
    kept = suspects[:cap]
    names = (SCORE, *level_names)
    return AssetTrim(
        excluded=tuple(asset_ids[int(judged[i])] for i in kept),
        screened_on=tuple(names[int(worst[i])] for i in kept),
        screen_z=tuple(float(z[i, worst[i]]) for i in kept),
        scores=tuple(float("nan") for _ in kept),
        judged=int(judged.shape[0]),
        k=k,
        over_cap=int(suspects.shape[0] - kept.shape[0]),
    )
