"""Columnar batches of points: the unit of work between ingest and the telemetry store."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

SeriesArray = npt.NDArray[np.int64]
TsArray = npt.NDArray[np.int64]
ValueArray = npt.NDArray[np.float64]


class PointBatch(NamedTuple):
    """Parallel arrays of points: series id, timestamp (µs since epoch, UTC), value.

    A batch is columnar on purpose: ingest and the store do per-batch work, never
    per-point Python work.
    """

    series: SeriesArray
    ts: TsArray
    value: ValueArray

    def __len__(self) -> int:
        return int(self.series.shape[0])

    @classmethod
    def empty(cls) -> PointBatch:
        """Return a batch with no points."""
        return cls(
            np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64), np.empty(0, np.float64)
        )

    @classmethod
    def concat(cls, batches: list[PointBatch]) -> PointBatch:
        """Join batches end to end (order kept)."""
        if not batches:
            return cls.empty()
        return cls(
            np.concatenate([b.series for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.value for b in batches]),
        )
