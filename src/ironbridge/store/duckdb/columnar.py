"""Pure columnar helpers of the DuckDB store: batch dedupe, the max-ts index, M4 merge."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ironbridge.model import InvalidInput

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: Sentinel "nothing written yet" timestamp of the max-ts index.
NO_TS = np.iinfo(np.int64).min


class PreparedBatch(NamedTuple):
    """A batch sorted by (series, ts) with one point per (series, ts), the last one kept.

    Attributes:
        series: series ids, sorted.
        ts: timestamps (µs), sorted within each series.
        value: values.
        group_series: the distinct series of the batch, sorted.
        group_start: index of each series' first point.
        group_end: index of each series' last point (its latest in the batch).
    """

    series: I64
    ts: I64
    value: F64
    group_series: I64
    group_start: I64
    group_end: I64


def prepare_batch(series: object, ts: object, value: object) -> PreparedBatch:
    """Validate, sort by (series, ts) and drop all but the last occurrence of each key.

    Args:
        series: series ids (array-like of integers, non-negative).
        ts: timestamps in µs since the epoch (array-like of integers).
        value: values (array-like of floats).

    Returns:
        The prepared batch (empty arrays for an empty input).

    Raises:
        InvalidInput: on arrays of different lengths, non-1-D arrays or negative series.
    """
    s = np.ascontiguousarray(series, dtype=np.int64)
    t = np.ascontiguousarray(ts, dtype=np.int64)
    v = np.ascontiguousarray(value, dtype=np.float64)
    if s.ndim != 1 or t.ndim != 1 or v.ndim != 1:
        raise InvalidInput("points", "series, ts and value must be 1-D arrays")
    n = s.shape[0]
    if t.shape[0] != n or v.shape[0] != n:
        raise InvalidInput(
            "points", f"arrays differ in length (series {n}, ts {t.shape[0]}, value {v.shape[0]})"
        )
    if n == 0:
        empty = np.empty(0, dtype=np.int64)
        return PreparedBatch(s, t, v, empty, empty, empty)
    if int(s.min()) < 0:
        raise InvalidInput("points.series", "series ids must be non-negative")
    # lexsort is stable: equal (series, ts) keep arrival order, so the last one of a run
    # is the last write.
    order = np.lexsort((t, s))
    s, t, v = s[order], t[order], v[order]
    new_series = s[1:] != s[:-1]
    distinct = new_series | (t[1:] != t[:-1])
    if not distinct.all():
        keep = np.ones(n, dtype=np.bool_)
        keep[:-1] = distinct
        s, t, v = s[keep], t[keep], v[keep]
        new_series = s[1:] != s[:-1]
    bounds = np.flatnonzero(new_series)
    start = np.concatenate(([0], bounds + 1)).astype(np.int64)
    end = np.concatenate((bounds, [s.shape[0] - 1])).astype(np.int64)
    return PreparedBatch(s, t, v, s[start], start, end)


class MaxTsIndex:
    """Highest timestamp written per series, as two sorted parallel arrays.

    Lookups are vectorised (``np.searchsorted``); adding new series re-sorts, which only
    happens while the set of series grows.
    """

    __slots__ = ("_series", "_ts")

    def __init__(self, series: I64 | None = None, ts: I64 | None = None) -> None:
        s = np.empty(0, np.int64) if series is None else np.asarray(series, np.int64)
        t = np.empty(0, np.int64) if ts is None else np.asarray(ts, np.int64)
        order = np.argsort(s, kind="stable")
        self._series: I64 = s[order]
        self._ts: I64 = t[order]

    def __len__(self) -> int:
        return int(self._series.shape[0])

    def lookup(self, series: I64) -> I64:
        """Return the max ts of each of ``series`` (:data:`NO_TS` for unknown series)."""
        idx = np.searchsorted(self._series, series)
        safe = np.minimum(idx, max(len(self) - 1, 0))
        if len(self) == 0:
            return np.full(series.shape[0], NO_TS, dtype=np.int64)
        found = self._series[safe] == series
        return np.where(found, self._ts[safe], NO_TS).astype(np.int64)

    def update(self, series: I64, ts: I64) -> None:
        """Raise the max ts of distinct ``series`` to at least ``ts``."""
        if series.shape[0] == 0:
            return
        idx = np.searchsorted(self._series, series)
        safe = np.minimum(idx, max(len(self) - 1, 0))
        found = (self._series[safe] == series) if len(self) else np.zeros(len(series), bool)
        hit = safe[found]
        self._ts[hit] = np.maximum(self._ts[hit], ts[found])
        if not found.all():
            s = np.concatenate((self._series, series[~found]))
            t = np.concatenate((self._ts, ts[~found]))
            order = np.argsort(s, kind="stable")
            self._series, self._ts = s[order], t[order]


def late_mask(batch: PreparedBatch, prev_max: I64) -> Mask | None:
    """Mark points at or below their series' stored max ts (they may overwrite rows).

    Args:
        batch: the prepared batch.
        prev_max: max ts stored per ``batch.group_series`` before this batch.

    Returns:
        A boolean mask over the batch's points, or ``None`` when no point is late (the
        common case, decided per series without touching every point).
    """
    late_groups = batch.ts[batch.group_start] <= prev_max
    if not late_groups.any():
        return None
    counts = batch.group_end - batch.group_start + 1
    return np.asarray(batch.ts <= np.repeat(prev_max, counts), dtype=np.bool_)


def m4_merge(
    corners_ts: tuple[I64, I64, I64, I64], corners_value: tuple[F64, F64, F64, F64]
) -> tuple[I64, F64]:
    """Merge the four M4 corner points of every pixel column into one drawing.

    Args:
        corners_ts: timestamps of the first, last, min and max point of each column.
        corners_value: the values at those points, in the same order.

    Returns:
        (ts, value) sorted by ts, one point per timestamp (a point that is both first
        and min of its column is kept once).
    """
    ts = np.concatenate(corners_ts).astype(np.int64, copy=False)
    value = np.concatenate(corners_value).astype(np.float64, copy=False)
    order = np.argsort(ts, kind="stable")
    ts, value = ts[order], value[order]
    if ts.shape[0] > 1:
        keep = np.ones(ts.shape[0], dtype=np.bool_)
        keep[1:] = ts[1:] != ts[:-1]
        ts, value = ts[keep], value[keep]
    return ts, value
