"""Validation of decoded telemetry against a device's assets and their asset types.

Shared by the HTTP endpoint (which answers 4xx with the field and reason) and the ingest
worker (which dead-letters the message with the same reason). A message is accepted or
rejected whole, so a device never has to guess which of its points were kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from ironbridge.codec import Samples
from ironbridge.model import (
    MAX_FUTURE_SKEW_US,
    MIN_DEVICE_TS_US,
    US_PER_MS,
    AssetType,
    DType,
    InvalidInput,
    Measurement,
)
from ironbridge.store import DeviceRoute, PointBatch

_NUMERIC = frozenset({int, float})
_INF = float("inf")


def _column(values: list[Any], m: Measurement, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Return (float64 values, index of present rows or None if all present)."""
    kinds = set(map(type, values))
    keep: np.ndarray | None = None
    if type(None) in kinds:
        idx = [i for i, v in enumerate(values) if v is not None]
        keep = np.asarray(idx, dtype=np.int64)
        values = [values[i] for i in idx]
        kinds.discard(type(None))
    if kinds - _NUMERIC - {bool}:
        for i, v in enumerate(values):
            if type(v) not in _NUMERIC and type(v) is not bool:
                row = int(keep[i]) if keep is not None else i
                raise InvalidInput(
                    f"{where}[{row}]" if len(values) > 1 or keep is not None else where,
                    f"expected {m.dtype.value}, got {type(v).__name__} {v!r:.40}",
                )
    if bool in kinds and m.dtype is not DType.BOOL:
        raise InvalidInput(where, f"expected {m.dtype.value}, got a boolean")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except OverflowError as exc:
        raise InvalidInput(where, "number out of range for float64") from exc
    bad = ~np.isfinite(arr)
    reason = "must be a finite number"
    if not bad.any():
        if m.dtype is DType.BOOL:
            bad = (arr != 0.0) & (arr != 1.0)
            reason = "expected a boolean (true/false or 0/1)"
        elif m.dtype is DType.INT:
            bad = arr != np.floor(arr)
            reason = "expected an integer"
    if not bad.any() and m.min is not None:
        bad = arr < m.min
        reason = f"below the valid range [{m.min}, {m.max}]"
    if not bad.any() and m.max is not None:
        bad = arr > m.max
        reason = f"above the valid range [{m.min}, {m.max}]"
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = int(keep[i]) if keep is not None else i
        field = f"{where}[{row}]" if arr.shape[0] > 1 or keep is not None else where
        raise InvalidInput(field, f"{arr[i]!r} {reason}")
    return arr, keep


def _check_scalar(value: Any, m: Measurement, where: str) -> float:
    """Validate one value of a measurement; return it as float (the fast path)."""
    kind = type(value)
    if kind is float or kind is int:
        v = float(value)
        if m.dtype is DType.BOOL:
            if v != 0.0 and v != 1.0:
                raise InvalidInput(where, f"{v!r} expected a boolean (true/false or 0/1)")
        elif v != v or v in (_INF, -_INF):
            raise InvalidInput(where, f"{v!r} must be a finite number")
        elif m.dtype is DType.INT and v != int(v):
            raise InvalidInput(where, f"{v!r} expected an integer")
        if m.min is not None and v < m.min:
            raise InvalidInput(where, f"{v!r} below the valid range [{m.min}, {m.max}]")
        if m.max is not None and v > m.max:
            raise InvalidInput(where, f"{v!r} above the valid range [{m.min}, {m.max}]")
        return v
    if kind is bool:
        if m.dtype is not DType.BOOL:
            raise InvalidInput(where, f"expected {m.dtype.value}, got a boolean")
        return 1.0 if value else 0.0
    raise InvalidInput(where, f"expected {m.dtype.value}, got {kind.__name__} {value!r:.40}")


def _scalar_block(
    block: Samples,
    asset_type: AssetType,
    series_map: Mapping[str, int],
    ts: int,
    series_parts: list[np.ndarray],
    ts_parts: list[np.ndarray],
    value_parts: list[np.ndarray],
) -> None:
    ids: list[int] = []
    values: list[float] = []
    for name, column in block.values.items():
        where = f"{block.where}.{name}" if block.where else name
        measurement = asset_type.measurement(name)
        if measurement is None:
            raise InvalidInput(where, f"unknown measurement for asset type {asset_type.name!r}")
        series_id = series_map.get(name)
        if series_id is None:
            raise InvalidInput(where, "measurement has no series yet (asset type changed?)")
        value = column[0]
        if value is None:
            continue
        ids.append(series_id)
        values.append(_check_scalar(value, measurement, where))
    if ids:
        series_parts.append(np.asarray(ids, dtype=np.int64))
        ts_parts.append(np.full(len(ids), ts, dtype=np.int64))
        value_parts.append(np.asarray(values, dtype=np.float64))


class _Plan(NamedTuple):
    """What validating rows of a given set of measurements needs, as arrays."""

    asset_type: AssetType
    series_map: Mapping[str, int]
    ids: np.ndarray
    low: np.ndarray
    high: np.ndarray
    integral: np.ndarray | None
    flag: np.ndarray | None


#: plans by (asset type, series map, measurement names); a device sends the same set
_PLANS: dict[tuple[int, int, tuple[str, ...]], _Plan] = {}
_PLANS_MAX = 4096
#: below this many values a row is validated by the plain loop (numpy's set-up dominates)
_ROW_FAST_MIN = 16


def _plan(
    asset_type: AssetType, series_map: Mapping[str, int], names: tuple[str, ...]
) -> _Plan | None:
    key = (id(asset_type), id(series_map), names)
    plan = _PLANS.get(key)
    if plan is not None and plan.asset_type is asset_type and plan.series_map is series_map:
        return plan
    ids: list[int] = []
    low: list[float] = []
    high: list[float] = []
    integral: list[bool] = []
    flag: list[bool] = []
    for name in names:
        m = asset_type.measurement(name)
        sid = series_map.get(name)
        if m is None or sid is None:
            return None  # the slow path words the error
        ids.append(sid)
        low.append(-_INF if m.min is None else m.min)
        high.append(_INF if m.max is None else m.max)
        integral.append(m.dtype is DType.INT)
        flag.append(m.dtype is DType.BOOL)
    plan = _Plan(
        asset_type,
        series_map,
        np.asarray(ids, dtype=np.int64),
        np.asarray(low, dtype=np.float64),
        np.asarray(high, dtype=np.float64),
        np.asarray(integral) if any(integral) else None,
        np.asarray(flag) if any(flag) else None,
    )
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _clean(arr: np.ndarray, plan: _Plan) -> bool:
    """True if every value (a row per measurement of ``plan``) is finite, in range, typed."""
    bad = ~np.isfinite(arr)
    bad |= arr < plan.low[:, None]
    bad |= arr > plan.high[:, None]
    if plan.integral is not None:
        rows = arr[plan.integral]
        bad[plan.integral] |= rows != np.floor(rows)
    if plan.flag is not None:
        rows = arr[plan.flag]
        bad[plan.flag] |= (rows != 0.0) & (rows != 1.0)
    return not bool(bad.any())


def _fast_row(
    block: Samples,
    asset_type: AssetType,
    series_map: Mapping[str, int],
    ts: int,
    series_parts: list[np.ndarray],
    ts_parts: list[np.ndarray],
    value_parts: list[np.ndarray],
) -> bool:
    """Validate a clean one-row block in one numpy pass; False means "use the loop".

    Like :func:`_fast_block`, it only recognises a row with nothing wrong in it (numbers
    only, every measurement known and in range); the loop words any error.
    """
    values = [column[0] for column in block.values.values()]
    if not all(type(v) is float or type(v) is int for v in values):
        return False
    plan = _plan(asset_type, series_map, tuple(block.values))
    if plan is None:
        return False
    try:
        arr = np.array(values, dtype=np.float64)
    except (OverflowError, ValueError):
        return False
    if not _clean(arr[:, None], plan):
        return False
    series_parts.append(plan.ids)
    ts_parts.append(np.full(arr.shape[0], ts, dtype=np.int64))
    value_parts.append(arr)
    return True


def _fast_block(
    block: Samples,
    asset_type: AssetType,
    series_map: Mapping[str, int],
    ts: np.ndarray,
    series_parts: list[np.ndarray],
    ts_parts: list[np.ndarray],
    value_parts: list[np.ndarray],
) -> bool:
    """Validate a clean columnar block in one numpy pass; False means "use the slow path".

    The slow path (one column at a time) also words the precise error, so this one only
    has to recognise a block with nothing wrong in it.
    """
    columns = list(block.values.values())
    if not all(type(v) is float or type(v) is int for col in columns for v in col):
        return False  # nulls, booleans or wrong types: the slow path handles them
    plan = _plan(asset_type, series_map, tuple(block.values))
    if plan is None:
        return False
    try:
        arr = np.array(columns, dtype=np.float64)
    except (OverflowError, ValueError):
        return False
    if arr.ndim != 2 or not _clean(arr, plan):
        return False
    k, n = arr.shape
    series_parts.append(np.repeat(plan.ids, n))
    ts_parts.append(np.tile(ts, k))
    value_parts.append(arr.ravel())
    return True


#: |ms| below this cannot overflow int64 when scaled to µs
_MS_SAFE = 9_000_000_000_000_000


def _timestamps_us(ts_ms: Sequence[int | None], received_us: int) -> np.ndarray:
    """Millisecond timestamps (None: stamp on receipt) as int64 microseconds.

    Values too large for int64 microseconds are clamped to just inside it: they fail
    the range check as "in the future" (or "before 2000") instead of overflowing.
    """
    if len(ts_ms) > 1 and None not in ts_ms:
        try:
            ms = np.asarray(ts_ms, dtype=np.int64)
        except (OverflowError, TypeError, ValueError):
            ms = None
        if ms is not None and int(np.abs(ms).max()) < _MS_SAFE:
            return ms * US_PER_MS
    lim = _MS_SAFE * US_PER_MS
    return np.asarray(
        [received_us if t is None else max(-lim, min(lim, t * US_PER_MS)) for t in ts_ms],
        dtype=np.int64,
    )


def to_points(
    blocks: Sequence[Samples], route: DeviceRoute, received_us: int, now_us: int
) -> PointBatch:
    """Turn decoded sample blocks of one device into a point batch.

    Args:
        blocks: decoded payload.
        route: the device's assets, their types and series ids.
        received_us: receive time, stamped on samples that carry no timestamp.
        now_us: the platform's current time (for the future-timestamp check).

    Raises:
        InvalidInput: unknown asset or measurement, wrong type, out of range, or a
            timestamp before 2000 or more than a day in the future.
    """
    series_parts: list[np.ndarray] = []
    ts_parts: list[np.ndarray] = []
    value_parts: list[np.ndarray] = []
    latest_ok = now_us + MAX_FUTURE_SKEW_US
    for block in blocks:
        asset_id = block.asset or route.asset_ids[0]
        series_map = route.series.get(asset_id)
        if series_map is None:
            field = block.where.rsplit("values", 1)[0] + "asset"
            raise InvalidInput(field, f"asset {asset_id!r} is not bound to this device")
        asset_type = route.types[asset_id]
        ts = _timestamps_us(block.ts_ms, received_us)
        bad_ts = (ts < MIN_DEVICE_TS_US) | (ts > latest_ok)
        if bad_ts.any():
            i = int(np.flatnonzero(bad_ts)[0])
            base = block.where.rsplit("values", 1)[0]
            field = f"{base}ts[{i}]" if ts.shape[0] > 1 else f"{base}ts"
            too_old = ts[i] < MIN_DEVICE_TS_US
            why = "before 2000-01-01" if too_old else "more than 24 h in the future"
            raise InvalidInput(field, f"timestamp {int(ts[i]) // US_PER_MS} ms is {why}")
        if ts.shape[0] == 1:
            # One sample: a row of many measurements is checked in one numpy pass against
            # a cached plan (a GB/T 32960 frame carries ~150); a short row, or one with
            # anything wrong in it, goes through the plain loop.
            row = (int(ts[0]), series_parts, ts_parts, value_parts)
            if len(block.values) < _ROW_FAST_MIN or not _fast_row(
                block, asset_type, series_map, *row
            ):
                _scalar_block(block, asset_type, series_map, *row)
            continue
        if _fast_block(block, asset_type, series_map, ts, series_parts, ts_parts, value_parts):
            continue
        for name, column in block.values.items():
            where = f"{block.where}.{name}" if block.where else name
            measurement = asset_type.measurement(name)
            if measurement is None:
                raise InvalidInput(where, f"unknown measurement for asset type {asset_type.name!r}")
            series_id = series_map.get(name)
            if series_id is None:
                raise InvalidInput(where, "measurement has no series yet (asset type changed?)")
            values, keep = _column(column, measurement, where)
            if values.shape[0] == 0:
                continue
            series_parts.append(np.full(values.shape[0], series_id, dtype=np.int64))
            ts_parts.append(ts if keep is None else ts[keep])
            value_parts.append(values)
    if not series_parts:
        return PointBatch.empty()
    return PointBatch(
        np.concatenate(series_parts), np.concatenate(ts_parts), np.concatenate(value_parts)
    )
