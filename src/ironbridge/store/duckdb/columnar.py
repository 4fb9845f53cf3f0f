"""Pure columnar helpers of the DuckDB store: dedupe, max-ts index, latest, roll-ups, M4."""

from __future__ import annotations

import threading
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


def last_per_series(series: I64, ts: I64, value: F64) -> tuple[I64, I64, F64]:
    """Reduce points to the latest one per series: highest ts, ties to the later row.

    Args:
        series: series ids, in any order.
        ts: timestamps (µs).
        value: values.

    Returns:
        (series, ts, value) with one row per distinct series, sorted by series.
    """
    if series.shape[0] == 0:
        return series, ts, value
    # lexsort is stable and sorts by its last key first: by series, then ts, then row
    order = np.lexsort((ts, series))
    s, t, v = series[order], ts[order], value[order]
    last = np.ones(s.shape[0], dtype=np.bool_)
    last[:-1] = s[1:] != s[:-1]
    return s[last], t[last], v[last]


class PendingLatest:
    """Latest points committed to the points table but not yet to the ``latest`` table.

    The store adds each batch's last point per series after its commit and writes the
    reduction to the ``latest`` table every few seconds (an upsert per batch costs as
    much as the points themselves); reads merge it over the table. Chunks are immutable
    once added, so a reader's :meth:`snapshot` needs the lock only to copy the list.
    """

    __slots__ = ("_chunks", "_lock")

    #: reduce the chunks to one once there are more than this many
    MAX_CHUNKS = 16

    def __init__(self) -> None:
        self._chunks: list[tuple[I64, I64, F64]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(int(c[0].shape[0]) for c in self._chunks)

    def add(self, series: I64, ts: I64, value: F64) -> None:
        """Add committed points (any order; later calls win ties on ts)."""
        if series.shape[0] == 0:
            return
        chunk = (series.copy(), ts.copy(), value.copy())
        with self._lock:
            self._chunks.append(chunk)
            if len(self._chunks) > self.MAX_CHUNKS:
                self._chunks = [_reduce(self._chunks)]

    def snapshot(self) -> tuple[I64, I64, F64]:
        """The latest pending point per series (sorted by series)."""
        with self._lock:
            chunks = list(self._chunks)
        return _reduce(chunks)

    def with_batch(self, series: I64, ts: I64, value: F64) -> tuple[I64, I64, F64]:
        """The reduction of the pending points and a batch not yet committed."""
        with self._lock:
            chunks = [*self._chunks, (series, ts, value)]
        return _reduce(chunks)

    def clear(self) -> None:
        """Forget everything: it was written to the ``latest`` table (or that was rebuilt).

        Only the writer adds, under the store's write lock, which it holds while it
        flushes and clears: nothing is added in between.
        """
        with self._lock:
            self._chunks = []


def _reduce(chunks: list[tuple[I64, I64, F64]]) -> tuple[I64, I64, F64]:
    if not chunks:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64)
    if len(chunks) == 1:
        return last_per_series(*chunks[0])
    return last_per_series(
        np.concatenate([c[0] for c in chunks]),
        np.concatenate([c[1] for c in chunks]),
        np.concatenate([c[2] for c in chunks]),
    )


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


class RollupStates(NamedTuple):
    """Per (series, bucket) summary of points: what M4 and every aggregate need.

    ``first``/``last`` are the earliest/latest point of the bucket, ``min``/``max``
    the lowest/highest value with the timestamp of its first occurrence.
    """

    series: I64
    bucket: I64
    n: I64
    sum: F64
    min: F64
    max: F64
    first_ts: I64
    first_v: F64
    last_ts: I64
    last_v: F64
    min_ts: I64
    max_ts: I64


def rollup_states(series: I64, ts: I64, value: F64, width: int) -> RollupStates:
    """Summarise points sorted by (series, ts) into epoch-aligned buckets of ``width`` µs.

    Args:
        series: series ids, sorted.
        ts: timestamps (µs), sorted within each series, one point per (series, ts).
        value: values.
        width: bucket width in µs (buckets start at multiples of it).

    Returns:
        One row per non-empty (series, bucket), in (series, bucket) order.
    """
    n = series.shape[0]
    if n == 0:
        i, f = np.empty(0, np.int64), np.empty(0, np.float64)
        return RollupStates(i, i, i, f, f, f, i, f, i, f, i, i)
    bucket = ts - np.mod(ts, width)
    change = np.flatnonzero((series[1:] != series[:-1]) | (bucket[1:] != bucket[:-1])) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change - 1, [n - 1])).astype(np.int64)
    counts = ends - starts + 1
    lo = np.minimum.reduceat(value, starts)
    hi = np.maximum.reduceat(value, starts)
    index = np.arange(n, dtype=np.int64)
    # the first index in each run where the value equals the run's min (max)
    at_lo = np.minimum.reduceat(np.where(value == np.repeat(lo, counts), index, n), starts)
    at_hi = np.minimum.reduceat(np.where(value == np.repeat(hi, counts), index, n), starts)
    # a run of NaNs has no index equal to its min: fall back to the run's first point
    at_lo = np.where(at_lo == n, starts, at_lo)
    at_hi = np.where(at_hi == n, starts, at_hi)
    return RollupStates(
        series[starts],
        bucket[starts],
        counts,
        np.add.reduceat(value, starts),
        lo,
        hi,
        ts[starts],
        value[starts],
        ts[ends],
        value[ends],
        ts[at_lo],
        ts[at_hi],
    )


def m4_columns(start: int, end: int, columns: int, unit: int = 1) -> tuple[int, int]:
    """Origin and width of at most ``columns`` M4 pixel columns covering ``[start, end)``.

    With ``unit > 1`` (a roll-up's bucket width) both are multiples of ``unit``, so each
    roll-up bucket falls inside exactly one column.
    """
    origin = start - (start % unit)
    per_column = -(-(end - origin) // columns)
    return origin, -(-per_column // unit) * unit


def rollup_width(column_width: int, widths: tuple[int, ...], min_buckets: int = 4) -> int | None:
    """The roll-up bucket width that serves M4 columns of ``column_width`` µs, if any.

    The coarsest roll-up with at least ``min_buckets`` buckets per column; else the
    finest if a column spans at least one of its buckets; else ``None`` (read points).

    Args:
        column_width: the width of an even split of the range into pixel columns.
        widths: roll-up bucket widths, finest first.
        min_buckets: buckets per column that make a coarser roll-up worth it.
    """
    for width in reversed(widths):
        if column_width >= width * min_buckets:
            return width
    if widths and column_width >= widths[0]:
        return widths[0]
    return None
