"""Contract of the chart query (M4 downsampling) at every zoom level, against the raw points.

The DuckDB adapter serves wide pixel columns from its roll-ups and the ragged ends of a
range from the points; PostgreSQL reads the points. Either way each column must keep
its true first, last, lowest and highest point, so these tests compare every answer
with the raw points read back from the same store.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ironbridge.store import PointBatch, TelemetryStore

pytestmark = pytest.mark.integration

S = 1_000_000
MIN = 60 * S
HOUR = 3_600 * S
DAY = 86_400 * S
T0 = 1_699_920_000 * S  # midnight UTC
SPAN = 40 * DAY
PERIOD = 120 * S
DENSE = 20 * DAY  # a 3-hour stretch at 1 Hz starts here
TS_UTC = pa.timestamp("us", tz="UTC")


def _series(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps and values of series ``k``: every 2 min for 40 days, 1 Hz for 3 h."""
    base = T0 + k * S + np.arange(SPAN // PERIOD, dtype=np.int64) * PERIOD
    dense = T0 + DENSE + S // 2 + np.arange(3 * 3_600, dtype=np.int64) * S
    ts = np.sort(np.concatenate((base, dense)))
    rng = np.random.default_rng(k)
    v = np.sin(np.arange(ts.shape[0]) / (300.0 + k)) * 10 + rng.normal(0, 1, ts.shape[0])
    v[5_000 + 77 * k] = 500.0 + k  # one spike and one dip per series
    v[25_000 - 33 * k] = -500.0 - k
    v[int(np.searchsorted(ts, T0 + DENSE + HOUR)) + k] = 300.0 + k  # a spike at 1 Hz
    return ts, v


@pytest.fixture
def charted(store: TelemetryStore) -> TelemetryStore:
    # series 11 and 12, appended in batches that end inside minutes and hours, so
    # buckets are built from several rows
    for sid in (11, 12):
        ts, v = _series(sid)
        for lo in range(0, ts.shape[0], 7_777):
            hi = min(ts.shape[0], lo + 7_777)
            store.append(PointBatch(np.full(hi - lo, sid, np.int64), ts[lo:hi], v[lo:hi]))
    return store


def window_reduce(op: np.ufunc, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``op.reduce(v[lo[i]:hi[i]])`` for every i (non-empty windows), by a sparse table."""
    table = [v]
    while 2 ** len(table) <= v.shape[0]:
        prev, step = table[-1], 2 ** (len(table) - 1)
        table.append(op(prev[:-step], prev[step:]))
    level = np.floor(np.log2(hi - lo)).astype(np.int64)
    out = np.empty(lo.shape[0])
    for k in np.unique(level):
        sel = level == k
        out[sel] = op(table[k][lo[sel]], table[k][hi[sel] - 2**k])
    return out


def check_m4(store: TelemetryStore, start: int, end: int, max_points: int) -> pa.Table:
    """Check downsample_many over [start, end) against the raw points; return it."""
    got = store.downsample_many([12, 11, 99], start, end, max_points)
    assert got.schema == pa.schema(
        [("series", pa.int64()), ("ts", TS_UTC), ("value", pa.float64())]
    )
    raw = store.raw([11, 12], start, end)
    # a column is at most twice an even split (edges snap to whole roll-up buckets)
    reach = 2 * -(-(end - start) // (max_points // 4))
    for sid in (11, 12):
        mine = got.filter(pc.equal(got["series"], sid))
        theirs = raw.filter(pc.equal(raw["series"], sid))
        t = mine["ts"].cast(pa.int64()).to_numpy()
        v = mine["value"].to_numpy()
        rt = theirs["ts"].cast(pa.int64()).to_numpy()
        rv = theirs["value"].to_numpy()
        assert 0 < t.shape[0] <= max_points
        assert np.all(np.diff(t) > 0), "ordered by ts, one point per ts"
        # every point returned is a stored point, with its stored value
        at = np.searchsorted(rt, t)
        assert np.array_equal(rt[at], t)
        assert np.array_equal(rv[at], v)
        # first, last, lowest and highest point of the range are kept
        assert t[0] == rt[0]
        assert t[-1] == rt[-1]
        assert v.min() == rv.min()
        assert v.max() == rv.max()
        # every stored point lies within the extremes drawn near it (its column's)
        lo_i = np.searchsorted(t, rt - reach)
        hi_i = np.searchsorted(t, rt + reach, side="right")
        assert np.all(hi_i > lo_i)
        assert np.all(window_reduce(np.minimum, v, lo_i, hi_i) <= rv)
        assert np.all(rv <= window_reduce(np.maximum, v, lo_i, hi_i))
        if rt.shape[0] <= max_points:
            assert np.array_equal(t, rt), "few enough points: all of them"
    assert set(got["series"].to_pylist()) == {11, 12}
    return got


#: (start offset, span, max_points) from a year's view down to raw seconds
ZOOMS = [
    (0, SPAN, 400),  # 40 days, ~9.6 h columns: hour roll-ups
    (0, SPAN, 1_140),  # 40 days, ~3.4 h columns: minute roll-ups
    (3 * DAY + 17 * S, 30 * DAY, 1_140),  # 30 days, ragged ends
    (9 * DAY + 123_456_789, DAY, 400),  # a day, ~14 min columns
    (DENSE - HOUR + 41 * S, 6 * HOUR + 5 * S, 1_140),  # 6 h, ~76 s columns
    (DENSE + 59 * S, HOUR, 400),  # an hour at 1 Hz, 36 s columns: from the points
    (DENSE + 4 * HOUR + 1, 90 * MIN, 200),  # 45 points <= 200: all of them
]


def test_chart_keeps_every_columns_extremes_at_each_zoom(charted: TelemetryStore) -> None:
    for offset, span, max_points in ZOOMS:
        check_m4(charted, T0 + offset, T0 + offset + span, max_points)


def test_chart_follows_overwritten_and_backfilled_points(charted: TelemetryStore) -> None:
    start, end = T0, T0 + SPAN
    before = check_m4(charted, start, end, 1_140)
    assert 511.0 in before["value"].to_pylist()
    # overwrite series 11's spike with an ordinary value, and back-fill a new spike
    # between two stored points of series 12 (neither is above the series' latest ts)
    ts, v = _series(11)
    spike_ts = int(ts[np.argmax(v)])
    charted.append(
        PointBatch(
            np.array([11, 12], np.int64),
            np.array([spike_ts, T0 + 12 * S + 9_000 * PERIOD + 3 * S], np.int64),
            np.array([1.5, 777.0]),
        )
    )
    after = check_m4(charted, start, end, 1_140)
    values = after.filter(pc.equal(after["series"], 11))["value"].to_pylist()
    assert 511.0 not in values
    assert 777.0 in after.filter(pc.equal(after["series"], 12))["value"].to_pylist()


def test_chart_of_no_series_or_empty_range(charted: TelemetryStore) -> None:
    assert charted.downsample_many([], T0, T0 + DAY, 100).num_rows == 0
    empty = charted.downsample_many([11, 12], T0 - 10 * DAY, T0, 1_000)
    assert empty.num_rows == 0
    assert empty.schema.names == ["series", "ts", "value"]
