"""Validation of a whole fetched batch at once: one numpy pass per measurement set.

Checked one at a time, a message costs some thirty numpy calls whatever its size: for
100-point messages that set-up was most of the ingest worker's validation time. Here
the blocks of every message that is plainly valid-looking (numbers only, every
timestamp given, every measurement known) are grouped by their measurement set and
checked together. A group with anything wrong in it, and every other message, go
through :func:`~ironbridge.ingest.validate.to_points` one message at a time, which
accepts or rejects each message whole and words the error, exactly as before.

The points come out in arrival order (per series), so a later message still wins
over an earlier one for the same (series, ts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from ironbridge.codec import Samples
from ironbridge.ingest.validate import _MS_SAFE, _clean, _Plan, _plan, to_points
from ironbridge.model import MAX_FUTURE_SKEW_US, MIN_DEVICE_TS_US, US_PER_MS, InvalidInput
from ironbridge.store import DeviceRoute, PointBatch

#: one decoded message: its sample blocks, its device's route, when it was received (µs)
Item = tuple[Sequence[Samples], DeviceRoute, int]

_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
#: the value types of the batch path (exactly these: ``bool`` is not one)
_NUMBERS = frozenset({int, float})


@dataclass(slots=True)
class _Group:
    """Blocks of one measurement set (plan), in arrival order."""

    plan: _Plan
    ts: list[list[Any]] = field(default_factory=list)
    #: per measurement of the plan, the blocks' columns
    columns: list[list[list[Any]]] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)


def _pick(blocks: Sequence[Samples], route: DeviceRoute) -> list[tuple[_Plan, Samples]] | None:
    """The plan of each block, or None if any block needs the one-message path."""
    out = []
    for block in blocks:
        if None in block.ts_ms:
            return None  # stamped on receipt
        asset_id = block.asset or route.asset_ids[0]
        series_map = route.series.get(asset_id)
        if series_map is None:
            return None
        if not all(set(map(type, c)) <= _NUMBERS for c in block.values.values()):
            return None  # nulls, booleans or wrong types
        plan = _plan(route.types[asset_id], series_map, tuple(block.values))
        if plan is None:
            return None
        out.append((plan, block))
    return out


def _checked(group: _Group, now_us: int) -> _Arrays | None:
    """(series, ts, value, message index) of a group, or None if anything is wrong."""
    n = sum(group.sizes)
    k = group.plan.ids.shape[0]
    if n == 0:
        empty = np.empty(0, np.int64)
        return empty, empty, np.empty(0, np.float64), empty
    try:
        ms = np.fromiter(chain.from_iterable(group.ts), np.int64, n)
        values = np.empty((k, n), np.float64)
        for j in range(k):
            values[j] = np.fromiter(chain.from_iterable(group.columns[j]), np.float64, n)
    except OverflowError:
        return None
    lo, hi = int(ms.min()), int(ms.max())
    if lo <= -_MS_SAFE or hi >= _MS_SAFE:
        return None
    if lo * US_PER_MS < MIN_DEVICE_TS_US or hi * US_PER_MS > now_us + MAX_FUTURE_SKEW_US:
        return None
    if not _clean(values, group.plan):
        return None
    message = np.repeat(np.asarray(group.messages, np.int64), group.sizes)
    return (
        np.repeat(group.plan.ids, n),
        np.tile(ms * US_PER_MS, k),
        values.ravel(),
        np.tile(message, k),
    )


def to_points_many(
    items: Sequence[Item], now_us: int
) -> tuple[PointBatch, dict[int, InvalidInput]]:
    """Validate many messages; return the points of the valid ones and the errors.

    Args:
        items: decoded messages with their routes and receive times.
        now_us: the platform's current time (for the future-timestamp check).

    Returns:
        (points of every accepted message in arrival order, index of each rejected
        message -> why, as :func:`~ironbridge.ingest.validate.to_points` words it).
    """
    groups: dict[int, _Group] = {}
    slow: set[int] = set()
    for i, (blocks, route, _) in enumerate(items):
        picked = _pick(blocks, route)
        if picked is None:
            slow.add(i)
            continue
        for plan, block in picked:
            group = groups.get(id(plan))
            if group is None:
                group = groups[id(plan)] = _Group(plan, columns=[[] for _ in plan.ids])
            group.ts.append(block.ts_ms)
            for j, column in enumerate(block.values.values()):
                group.columns[j].append(column)
            group.messages.append(i)
            group.sizes.append(len(block.ts_ms))
    parts: list[_Arrays] = []
    for group in groups.values():
        checked = _checked(group, now_us)
        if checked is None:
            slow.update(group.messages)
        else:
            parts.append(checked)
    if slow and parts:
        # a message is accepted whole: drop its blocks that passed in other groups
        redo = np.fromiter(slow, np.int64, len(slow))
        parts = [tuple(a[~np.isin(p[3], redo)] for a in p) for p in parts]  # type: ignore[misc]
    errors: dict[int, InvalidInput] = {}
    for i in sorted(slow):
        blocks, route, received = items[i]
        try:
            one = to_points(blocks, route, received, now_us)
        except InvalidInput as exc:
            errors[i] = exc
            continue
        parts.append((one.series, one.ts, one.value, np.full(len(one), i, np.int64)))
    if not parts:
        return PointBatch.empty(), errors
    if len(parts) == 1:
        series, ts, value, _ = parts[0]
        return PointBatch(series, ts, value), errors
    series, ts, value, message = (np.concatenate(c) for c in zip(*parts, strict=True))
    order = np.argsort(message, kind="stable")
    return PointBatch(series[order], ts[order], value[order]), errors
