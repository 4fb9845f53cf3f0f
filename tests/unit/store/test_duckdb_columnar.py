import numpy as np
import pytest

from ironbridge.model import InvalidInput
from ironbridge.store.duckdb.columnar import (
    NO_TS,
    MaxTsIndex,
    late_mask,
    m4_merge,
    prepare_batch,
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
