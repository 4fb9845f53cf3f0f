"""Block rows of the PostgreSQL store: where blocks are cut and how they are encoded."""

from __future__ import annotations

import struct

import numpy as np

from ironbridge.store.postgres.blocks import (
    BLOCK_POINTS,
    BLOCK_SPAN_US,
    block_bounds,
    encode_blocks,
)

H = BLOCK_SPAN_US


def test_blocks_cut_at_series_hour_and_size() -> None:
    # series 1: 1 000 points a second apart from 5 s before an hour (crosses it);
    # series 2: one point
    t1 = 10 * H - 5_000_000 + np.arange(1000, dtype=np.int64) * 1_000_000
    series = np.array([1] * 1000 + [2], np.int64)
    ts = np.append(t1, 3 * H)
    starts = block_bounds(series, ts)
    # 5 points before the hour, then 995 after it: 480 + 480 + 35, then series 2
    assert starts.tolist() == [0, 5, 5 + BLOCK_POINTS, 5 + 2 * BLOCK_POINTS, 1000]
    ends = np.append(starts[1:], series.shape[0])
    for a, b in zip(starts, ends, strict=True):
        assert b - a <= BLOCK_POINTS
        assert len(set(series[a:b].tolist())) == 1
        assert ts[a] // H == ts[b - 1] // H


def test_no_points_no_blocks() -> None:
    empty = np.empty(0, np.int64)
    assert block_bounds(empty, empty).tolist() == []


def _decode(data: bytes) -> list[tuple[int, int, int, int, list[int], list[float]]]:
    """Parse binary COPY rows (series, t0, t1, n, int8[], float8[]) the slow, plain way."""
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
    pos = 19
    rows = []
    while True:
        (fields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        if fields == -1:
            break
        assert fields == 6
        scalars = []
        for width, fmt in ((8, ">q"), (8, ">q"), (8, ">q"), (4, ">i")):
            (length,) = struct.unpack_from(">i", data, pos)
            assert length == width
            scalars.append(struct.unpack_from(fmt, data, pos + 4)[0])
            pos += 4 + width
        arrays: list[list[float]] = []
        for oid, fmt in ((20, ">q"), (701, ">d")):
            (length,) = struct.unpack_from(">i", data, pos)
            ndim, nulls, elem, dim, lbound = struct.unpack_from(">5i", data, pos + 4)
            assert (ndim, nulls, elem, lbound) == (1, 0, oid, 1)
            assert length == 20 + 12 * dim
            p = pos + 24
            items = []
            for _ in range(dim):
                assert struct.unpack_from(">i", data, p)[0] == 8
                items.append(struct.unpack_from(fmt, data, p + 4)[0])
                p += 12
            arrays.append(items)
            pos = p
        rows.append((*scalars, arrays[0], arrays[1]))  # type: ignore[arg-type]
    assert pos == len(data)
    return rows  # type: ignore[return-value]


def test_encoded_blocks_hold_exactly_their_points() -> None:
    rng = np.random.default_rng(3)
    series = np.sort(rng.integers(0, 5, 2000)).astype(np.int64)
    ts = np.zeros(2000, np.int64)
    for s in range(5):
        m = series == s
        ts[m] = np.sort(rng.choice(4 * H // 1_000_000, int(m.sum()), replace=False)) * 1_000_000
    value = rng.normal(size=2000)
    starts = block_bounds(series, ts)
    ends = np.append(starts[1:], 2000)
    # rows come grouped by block size; the store does not care about their order
    rows = sorted(_decode(encode_blocks(series, ts, value, starts, ends)))
    assert len(rows) == starts.shape[0]
    assert len({r[3] for r in rows}) > 2
    got_s = np.concatenate([np.full(r[3], r[0]) for r in rows])
    got_t = np.concatenate([r[4] for r in rows])
    got_v = np.concatenate([r[5] for r in rows])
    assert np.array_equal(got_s, series)
    assert np.array_equal(got_t, ts)
    assert np.array_equal(got_v, value)
    for r in rows:
        assert (r[1], r[2], r[3]) == (r[4][0], r[4][-1], len(r[4]))
    # a subset of the blocks encodes just those
    pick = np.array([1, 3])
    sub = sorted(_decode(encode_blocks(series, ts, value, starts[pick], ends[pick])))
    assert [r[4] for r in sub] == [rows[1][4], rows[3][4]]
