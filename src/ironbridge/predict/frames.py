"""Per-asset time-bucket frames read from the telemetry store (the rows models see)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ironbridge.model import InvalidInput, SeriesRef
from ironbridge.store import Agg, TelemetryStore

__all__ = ["AssetFrames", "forward_fill", "load_frames"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetFrames:
    """Rows of equally spaced time buckets, grouped by asset (rows of one asset contiguous).

    Each asset's rows run from its first to its last bucket with any data; a bucket
    without a reading repeats the last known value (forward fill), and a column never
    seen before a row takes the first later value of that asset.
    """

    asset_ids: tuple[str, ...]
    unit: np.ndarray  # (n,) index into asset_ids
    ts_us: np.ndarray  # (n,) bucket start, µs
    values: np.ndarray  # (n, m) bucket means, NaN only where an asset never had the column
    columns: tuple[str, ...]
    bucket_us: int

    def __len__(self) -> int:
        return int(self.unit.shape[0])

    def last_ts(self) -> np.ndarray:
        """Timestamp of the last row of each asset (in ``asset_ids`` order)."""
        out = np.zeros(len(self.asset_ids), dtype=np.int64)
        out[self.unit] = self.ts_us  # rows are in time order, so the last write wins
        return out


def forward_fill(x: np.ndarray) -> np.ndarray:
    """Fill NaN along axis 1 of an (a, b, m) array with the last earlier value, then the next."""
    out = x.copy()
    for arr in (out, out[:, ::-1]):
        b = arr.shape[1]
        idx = np.where(np.isnan(arr), 0, np.arange(b)[None, :, None])
        np.maximum.accumulate(idx, axis=1, out=idx)
        filled = np.take_along_axis(arr, idx, axis=1)
        arr[...] = np.where(np.isnan(arr), filled, arr)
    return out


def load_frames(
    store: TelemetryStore,
    series: Sequence[SeriesRef],
    columns: Sequence[str],
    start_us: int,
    end_us: int,
    bucket_us: int,
    *,
    last_rows: int | None = None,
) -> AssetFrames:
    """Read bucket means of ``columns`` for every asset in ``series`` over a time range.

    Args:
        store: the telemetry store.
        series: series of the assets (others than ``columns`` are ignored).
        columns: measurement names, in the column order wanted.
        start_us: range start (inclusive).
        end_us: range end (exclusive).
        bucket_us: bucket width; buckets are aligned to the epoch.
        last_rows: keep only the last this many rows of each asset.

    Returns:
        The frames; assets without any reading in the range are left out.
    """
    if bucket_us <= 0:
        raise InvalidInput("bucket_s", "must be positive")
    col_of = {c: i for i, c in enumerate(columns)}
    refs = [s for s in series if s.measurement in col_of]
    assets = sorted({s.asset_id for s in refs})
    asset_of = {a: i for i, a in enumerate(assets)}
    empty = AssetFrames(
        asset_ids=(),
        unit=np.zeros(0, dtype=np.int64),
        ts_us=np.zeros(0, dtype=np.int64),
        values=np.zeros((0, len(columns))),
        columns=tuple(columns),
        bucket_us=bucket_us,
    )
    if not refs:
        return empty
    table = store.aggregate([s.id for s in refs], start_us, end_us, bucket_us, [Agg.AVG])
    if table.num_rows == 0:
        return empty
    sid = np.asarray(table.column("series").to_numpy(), dtype=np.int64)
    bucket_col = table.column("bucket")
    if pa.types.is_timestamp(bucket_col.type):
        bucket_col = bucket_col.cast(pa.int64())
    bts = np.asarray(bucket_col.to_numpy(), dtype=np.int64)
    val = np.asarray(table.column("avg").to_numpy(zero_copy_only=False), dtype=np.float64)
    lut_asset = {s.id: asset_of[s.asset_id] for s in refs}
    lut_col = {s.id: col_of[s.measurement] for s in refs}
    a_idx = np.fromiter((lut_asset[int(s)] for s in sid), dtype=np.int64, count=sid.shape[0])
    c_idx = np.fromiter((lut_col[int(s)] for s in sid), dtype=np.int64, count=sid.shape[0])
    origin = int(bts.min())
    b_idx = (bts - origin) // bucket_us
    nb = int(b_idx.max()) + 1
    cube = np.full((len(assets), nb, len(columns)), np.nan)
    cube[a_idx, b_idx, c_idx] = val
    has = ~np.isnan(cube).all(axis=2)  # (a, b)
    cube = forward_fill(cube)
    units, ts, rows = [], [], []
    kept: list[str] = []
    for a in range(len(assets)):
        hit = np.flatnonzero(has[a])
        if hit.shape[0] == 0:
            continue
        lo, hi = int(hit[0]), int(hit[-1]) + 1
        if last_rows is not None:
            lo = max(lo, hi - last_rows)
        units.append(np.full(hi - lo, len(kept), dtype=np.int64))
        ts.append(origin + np.arange(lo, hi, dtype=np.int64) * bucket_us)
        rows.append(cube[a, lo:hi])
        kept.append(assets[a])
    return AssetFrames(
        asset_ids=tuple(kept),
        unit=np.concatenate(units),
        ts_us=np.concatenate(ts),
        values=np.concatenate(rows),
        columns=tuple(columns),
        bucket_us=bucket_us,
    )
