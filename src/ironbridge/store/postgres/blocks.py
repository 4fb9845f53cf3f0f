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

import functools
import struct
from typing import Any

import numpy as np

#: most points in one block: 16 B a point keeps a block row within one 8 KiB page
#: (arrays are stored inline, uncompressed: no TOAST work on the write path)
BLOCK_POINTS = 480
#: a block lies within one epoch-aligned hour
BLOCK_SPAN_US = 3_600_000_000

#: framing of a binary COPY stream (signature, flags, header extension; end marker)
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
COPY_TRAILER = struct.pack(">h", -1)
_INT8_OID = 20
_FLOAT8_OID = 701

_ELEM_I8 = np.dtype([("l", ">i4"), ("v", ">i8")])
_ELEM_F8 = np.dtype([("l", ">i4"), ("v", ">f8")])


@functools.cache
def _row_template(size: int) -> np.ndarray[Any, Any]:
    """One binary COPY row of a block of ``size`` points, constants filled in.

    Fields: series, t0, t1 (int8), n (int4), ts (int8[]), vals (float8[]); an array is
    its header (dimensions 1, no nulls, element type, length, lower bound 1) followed by
    each element's length (8) and value.
    """
    array_header = [("ndim", ">i4"), ("nulls", ">i4"), ("oid", ">i4"), ("dim", ">i4")]
    array_header.append(("lbound", ">i4"))
    dtype = np.dtype(
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
            ("ts_header", array_header),
            ("ts", _ELEM_I8, (size,)),
            ("l_vals", ">i4"),
            ("vals_header", array_header),
            ("vals", _ELEM_F8, (size,)),
        ]
    )
    row = np.zeros(1, dtype)
    row["fields"] = 6
    row["l_series"] = row["l_t0"] = row["l_t1"] = 8
    row["l_n"] = 4
    row["n"] = size
    row["l_ts"] = row["l_vals"] = 20 + 12 * size
    for name, oid in (("ts_header", _INT8_OID), ("vals_header", _FLOAT8_OID)):
        row[name]["ndim"] = 1
        row[name]["oid"] = oid
        row[name]["dim"] = size
        row[name]["lbound"] = 1
    row["ts"]["l"] = 8
    row["vals"]["l"] = 8
    return row


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
    # runs of one series and hour, each cut every BLOCK_POINTS points
    run_start = np.flatnonzero(cut)
    run_len = np.diff(run_start, append=n)
    blocks = -(-run_len // BLOCK_POINTS)
    first_block = np.cumsum(blocks) - blocks
    within = np.arange(int(blocks.sum()), dtype=np.int64) - np.repeat(first_block, blocks)
    starts: np.ndarray[Any, Any] = np.repeat(run_start, blocks) + within * BLOCK_POINTS
    return starts


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
    sizes = ends - starts
    parts = [COPY_HEADER]
    # Rows of one size share a numpy record type: each size is encoded in a few array
    # operations, whatever the number of blocks (rows may come in any order).
    for size in np.unique(sizes).tolist():
        first = starts[sizes == size]
        rows = np.repeat(_row_template(size), first.shape[0])
        rows["series"] = series[first]
        rows["t0"] = ts[first]
        rows["t1"] = ts[first + (size - 1)]
        points = first[:, None] + np.arange(size)
        rows["ts"]["v"] = ts[points]
        rows["vals"]["v"] = value[points]
        parts.append(rows.tobytes())
    parts.append(COPY_TRAILER)
    return b"".join(parts)
