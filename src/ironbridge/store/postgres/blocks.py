"""Points as blocks: many points of one series in one PostgreSQL row.

A row per point pays PostgreSQL's per-row costs (tuple header, a (series, ts) index
entry, the index descent) for every point: 3.5× the CPU of an unindexed COPY of the
same points, measured. A block row carries up to :data:`BLOCK_POINTS` consecutive points
of one series (``ts bigint[]``, ``vals float8[]``), so those costs are paid once per
block. Invariants the store keeps, and the queries rely on:

- a block never crosses an hour boundary (epoch-aligned): a block that overlaps a
  range ``[lo, hi)`` starts after ``lo - BLOCK_SPAN_US``, which bounds the index scan;
- blocks of one series never overlap in time, so no point is stored twice.

This module only builds and splits blocks (numpy); SQL lives in the store.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

#: most points in one block: 16 B a point keeps a block row within one 8 KiB page
#: (arrays are stored inline, uncompressed: no TOAST work on the write path)
BLOCK_POINTS = 480
#: a block lies within one epoch-aligned hour
BLOCK_SPAN_US = 3_600_000_000

_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_INT8_OID = 20
_FLOAT8_OID = 701

# One block row of binary COPY, in 16-bit words: the fixed part up to the ts elements,
# the ts elements (6 words each: length 8 + value), the vals array's header, the vals
# elements. All four are whole words, so a row is assembled by one gather of words.
_HEAD = np.dtype(
    [
        ("fields", ">i2"),
        ("l_series", ">i4"),
        ("series", ">i8"),
        ("l_t0", ">i4"),
        ("t0", ">i8"),
        ("l_t1", ">i4"),
        ("t1", ">i8"),
        ("l_n", ">i4"),
        ("n", ">i4"),
        ("l_ts", ">i4"),
        ("ts_ndim", ">i4"),
        ("ts_nulls", ">i4"),
        ("ts_oid", ">i4"),
        ("ts_dim", ">i4"),
        ("ts_lbound", ">i4"),
    ]
)
_MID = np.dtype(
    [
        ("l_vals", ">i4"),
        ("v_ndim", ">i4"),
        ("v_nulls", ">i4"),
        ("v_oid", ">i4"),
        ("v_dim", ">i4"),
        ("v_lbound", ">i4"),
    ]
)
_ELEM_I8 = np.dtype([("l", ">i4"), ("v", ">i8")])
_ELEM_F8 = np.dtype([("l", ">i4"), ("v", ">f8")])
_HEAD_W = _HEAD.itemsize // 2
_MID_W = _MID.itemsize // 2
_ELEM_W = _ELEM_I8.itemsize // 2


def block_bounds(series: np.ndarray[Any, Any], ts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return the start index of every block of points sorted by (series, ts).

    A block ends where the series or the epoch hour changes, or at
    :data:`BLOCK_POINTS` points.
    """
    n = series.shape[0]
    if n == 0:
        return np.empty(0, np.int64)
    hour = np.floor_divide(ts, BLOCK_SPAN_US)
    cut = np.ones(n, np.bool_)
    cut[1:] = (series[1:] != series[:-1]) | (hour[1:] != hour[:-1])
    run_start = np.flatnonzero(cut)
    run_of = np.cumsum(cut) - 1
    pos = np.arange(n, dtype=np.int64) - run_start[run_of]
    return np.flatnonzero(pos % BLOCK_POINTS == 0).astype(np.int64)


def encode_blocks(
    series: np.ndarray[Any, Any],
    ts: np.ndarray[Any, Any],
    value: np.ndarray[Any, Any],
    starts: np.ndarray[Any, Any],
    ends: np.ndarray[Any, Any],
) -> bytes:
    """Binary COPY of block rows (series, t0, t1, n, ts[], vals[]).

    Args:
        series: series ids of points sorted by (series, ts).
        ts: their timestamps (µs).
        value: their values.
        starts: first point of each block to encode (from :func:`block_bounds`; any
            subset of the blocks).
        ends: one past the last point of each of those blocks.
    """
    n = series.shape[0]
    b = starts.shape[0]
    k = ends - starts
    head = np.zeros(b, _HEAD)
    head["fields"] = 6
    head["l_series"] = head["l_t0"] = head["l_t1"] = 8
    head["series"] = series[starts]
    head["t0"] = ts[starts]
    head["t1"] = ts[ends - 1]
    head["l_n"] = 4
    head["n"] = k
    head["l_ts"] = 20 + 12 * k
    head["ts_ndim"] = 1
    head["ts_oid"] = _INT8_OID
    head["ts_dim"] = k
    head["ts_lbound"] = 1
    mid = np.zeros(b, _MID)
    mid["l_vals"] = 20 + 12 * k
    mid["v_ndim"] = 1
    mid["v_oid"] = _FLOAT8_OID
    mid["v_dim"] = k
    mid["v_lbound"] = 1
    t_el = np.empty(n, _ELEM_I8)
    t_el["l"] = 8
    t_el["v"] = ts
    v_el = np.empty(n, _ELEM_F8)
    v_el["l"] = 8
    v_el["v"] = value
    words = np.concatenate(
        [head.view(np.uint16), mid.view(np.uint16), t_el.view(np.uint16), v_el.view(np.uint16)]
    )
    # where each of a block's four segments is in `words`, and how long it is
    base_mid = b * _HEAD_W
    base_t = base_mid + b * _MID_W
    base_v = base_t + n * _ELEM_W
    idx = np.arange(b, dtype=np.int64)
    src = np.stack(
        [
            idx * _HEAD_W,
            base_t + starts * _ELEM_W,
            base_mid + idx * _MID_W,
            base_v + starts * _ELEM_W,
        ],
        axis=1,
    ).ravel()
    lengths = np.stack(
        [np.full(b, _HEAD_W), k * _ELEM_W, np.full(b, _MID_W), k * _ELEM_W], axis=1
    ).ravel()
    dst = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    total = int(lengths.sum())
    gather = np.arange(total, dtype=np.int64) + np.repeat(src - dst, lengths)
    body: bytes = words[gather].tobytes()
    return _COPY_HEADER + body + _COPY_TRAILER
