import numpy as np
import pytest

from ironbridge.model import InvalidInput
from ironbridge.store.duckdb.columnar import (
    NO_TS,
    MaxTsIndex,
    late_mask,
    m4_columns,
    m4_merge,
    prepare_batch,
    rollup_states,
    rollup_width,
)


def arr(*xs: int) -> np.ndarray:
    return np.array(xs, dtype=np.int64)


def test_prepare_batch_sorts_and_keeps_last_occurrence() -> None:
    b = prepare_batch(arr(2, 1, 2, 1, 2), arr(10, 5, 10, 7, 3), [1.0, 2.0, 3.0, 4.0, 5.0])
    assert b.series.tolist() == [1, 1, 2, 2]
    assert b.ts.tolist() == [5, 7, 3, 10]
    # (2, 10) arrived twice: the later value 3.0 wins
    assert b.value.tolist() == [2.0, 4.0, 5.0, 3.0]
    assert b.group_series.tolist() == [1, 2]
    assert b.group_start.tolist() == [0, 2]
    assert b.group_end.tolist() == [1, 3]


def test_prepare_batch_empty_and_invalid() -> None:
    b = prepare_batch(arr(), arr(), np.empty(0))
    assert len(b.series) == 0
    assert len(b.group_series) == 0
    with pytest.raises(InvalidInput) as err:
        prepare_batch(arr(1, 2), arr(1), [1.0, 2.0])
    assert err.value.field == "points"
    with pytest.raises(InvalidInput) as err:
        prepare_batch(arr(-1), arr(1), [1.0])
    assert err.value.field == "points.series"


def test_max_ts_index_lookup_and_update() -> None:
    idx = MaxTsIndex(arr(5, 1), arr(50, 10))
    assert idx.lookup(arr(1, 3, 5, 9)).tolist() == [10, NO_TS, 50, NO_TS]
    idx.update(arr(1, 3), arr(5, 30))  # 1 stays at 10 (lower), 3 is new
    assert idx.lookup(arr(1, 3, 5)).tolist() == [10, 30, 50]
    idx.update(arr(5, 7), arr(60, 70))
    assert idx.lookup(arr(1, 3, 5, 7)).tolist() == [10, 30, 60, 70]
    assert len(idx) == 4
    empty = MaxTsIndex()
    assert empty.lookup(arr(1)).tolist() == [NO_TS]
    empty.update(arr(2), arr(20))
    assert empty.lookup(arr(1, 2)).tolist() == [NO_TS, 20]


def test_late_mask_only_points_at_or_below_stored_max() -> None:
    b = prepare_batch(arr(1, 1, 1, 2, 2), arr(5, 10, 15, 1, 2), np.zeros(5))
    assert late_mask(b, arr(4, 0)) is None
    mask = late_mask(b, arr(10, 0))
    assert mask is not None
    assert mask.tolist() == [True, True, False, False, False]


def test_m4_merge_sorts_and_drops_repeated_points() -> None:
    ts, value = m4_merge(
        (arr(0, 10), arr(9, 19), arr(0, 15), arr(4, 19)),
        (
            np.array([1.0, 2.0]),
            np.array([3.0, 4.0]),
            np.array([1.0, -5.0]),
            np.array([9.0, 4.0]),
        ),
    )
    assert ts.tolist() == [0, 4, 9, 10, 15, 19]
    assert value.tolist() == [1.0, 9.0, 3.0, 2.0, -5.0, 4.0]


def test_rollup_states_per_series_and_epoch_aligned_bucket() -> None:
    # series 1: ts -5, 3, 7, 12 (buckets of 10: -10, 0, 0, 10); series 2: 1, 2 (bucket 0)
    r = rollup_states(
        arr(1, 1, 1, 1, 2, 2),
        arr(-5, 3, 7, 12, 1, 2),
        np.array([4.0, 9.0, -2.0, 5.0, 1.0, 1.0]),
        10,
    )
    assert r.series.tolist() == [1, 1, 1, 2]
    assert r.bucket.tolist() == [-10, 0, 10, 0]
    assert r.n.tolist() == [1, 2, 1, 2]
    assert r.sum.tolist() == [4.0, 7.0, 5.0, 2.0]
    assert (r.min.tolist(), r.min_ts.tolist()) == ([4.0, -2.0, 5.0, 1.0], [-5, 7, 12, 1])
    assert (r.max.tolist(), r.max_ts.tolist()) == ([4.0, 9.0, 5.0, 1.0], [-5, 3, 12, 1])
    assert (r.first_ts.tolist(), r.first_v.tolist()) == ([-5, 3, 12, 1], [4.0, 9.0, 5.0, 1.0])
    assert (r.last_ts.tolist(), r.last_v.tolist()) == ([-5, 7, 12, 2], [4.0, -2.0, 5.0, 1.0])
    assert rollup_states(arr(), arr(), np.empty(0), 10).n.shape == (0,)


def test_m4_columns_cover_the_range_in_whole_units() -> None:
    assert m4_columns(100, 1_100, 10) == (100, 100)
    assert m4_columns(100, 1_101, 10) == (100, 101)
    origin, width = m4_columns(1_234, 10_000, 7, unit=60)
    assert origin == 1_200
    assert width % 60 == 0
    # at most 7 columns, and the last one reaches the end
    assert -(-(10_000 - origin) // width) <= 7
    assert origin + 7 * width >= 10_000


def test_rollup_width_picks_the_coarsest_that_fits() -> None:
    widths = (60, 3_600)
    assert rollup_width(4 * 3_600, widths) == 3_600
    assert rollup_width(4 * 3_600 - 1, widths) == 60
    assert rollup_width(60, widths) == 60
    assert rollup_width(59, widths) is None
    assert rollup_width(10_000, ()) is None


def test_last_per_series_keeps_highest_ts_and_the_later_row_on_ties() -> None:
    from ironbridge.store.duckdb.columnar import last_per_series

    s, t, v = last_per_series(
        np.array([7, 3, 7, 3, 7], np.int64),
        np.array([5, 1, 9, 1, 9], np.int64),
        np.array([1.0, 2.0, 3.0, 4.0, 5.0]),
    )
    assert s.tolist() == [3, 7]
    assert t.tolist() == [1, 9]
    assert v.tolist() == [4.0, 5.0]  # ties on ts: the later row wins


def test_pending_latest_reduces_across_chunks_and_clears() -> None:
    from ironbridge.store.duckdb.columnar import PendingLatest

    p = PendingLatest()
    assert p.snapshot()[0].size == 0
    for k in range(PendingLatest.MAX_CHUNKS + 3):  # past the reduction threshold
        p.add(np.array([1, 2], np.int64), np.array([k, 100 - k], np.int64), np.array([k, k], float))
    s, t, v = p.snapshot()
    assert s.tolist() == [1, 2]
    assert t.tolist() == [PendingLatest.MAX_CHUNKS + 2, 100]
    assert v.tolist() == [PendingLatest.MAX_CHUNKS + 2, 0]
    # a batch not yet committed is merged without being kept
    s, t, v = p.with_batch(np.array([3], np.int64), np.array([0], np.int64), np.array([9.0]))
    assert s.tolist() == [1, 2, 3]
    assert p.snapshot()[0].tolist() == [1, 2]
    p.clear()
    assert len(p) == 0
