"""Argument checks shared by every TelemetryStore adapter, so they fail alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ironbridge.model import InvalidInput
from ironbridge.store.ports import Agg, Checkpoint


def checked_checkpoints(
    checkpoint: Checkpoint | Sequence[Checkpoint] | None,
) -> list[Checkpoint]:
    """Return the checkpoints to commit with a batch (one, several or none), checked."""
    if checkpoint is None:
        return []
    out = [checkpoint] if isinstance(checkpoint, Checkpoint) else list(checkpoint)
    for c in out:
        if not c.consumer:
            raise InvalidInput("checkpoint.consumer", "must not be empty")
        if c.seq < 0:
            raise InvalidInput("checkpoint.seq", "must be non-negative")
    return out


def check_range(start_us: int, end_us: int) -> None:
    """Refuse an empty or inverted time range."""
    if int(start_us) >= int(end_us):
        raise InvalidInput("start_us", f"must be before end_us ({start_us} >= {end_us})")


def check_limit(limit: int | None) -> None:
    """Refuse a limit below one."""
    if limit is not None and int(limit) < 1:
        raise InvalidInput("limit", f"must be a positive integer, got {limit}")


def series_ids(series: Sequence[int]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Return the series ids as a sorted, unique int64 array."""
    try:
        ids = np.asarray(series, dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidInput("series", "must be a sequence of integer series ids") from exc
    if ids.ndim != 1:
        raise InvalidInput("series", "must be a flat sequence of integer series ids")
    if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        ids = np.unique(ids)
    return ids


def aggregates(aggs: Sequence[Agg]) -> list[Agg]:
    """Return the requested aggregates, de-duplicated, in order; refuse unknown ones."""
    if isinstance(aggs, str):
        aggs = [aggs]  # type: ignore[list-item]
    out: list[Agg] = []
    for a in aggs:
        try:
            agg = Agg(a)
        except ValueError as exc:
            allowed = ", ".join(x.value for x in Agg)
            raise InvalidInput("aggs", f"unknown aggregate {a!r} (one of {allowed})") from exc
        if agg not in out:
            out.append(agg)
    if not out:
        raise InvalidInput("aggs", "at least one aggregate is required")
    return out


def events_params(
    asset_ids: Sequence[str],
    start_us: int,
    end_us: int,
    kinds: Sequence[str] | None,
    limit: int,
) -> dict[str, Any] | None:
    """Check an events query; return its bound parameters, or None when it selects nothing."""
    check_range(start_us, end_us)
    check_limit(limit)
    if isinstance(asset_ids, str) or isinstance(kinds, str):
        raise InvalidInput("asset_ids", "asset_ids and kinds must be sequences of strings")
    if not asset_ids or (kinds is not None and not kinds):
        return None
    return {
        "assets": [str(a) for a in asset_ids],
        "start": int(start_us),
        "end": int(end_us),
        "limit": int(limit),
    }
