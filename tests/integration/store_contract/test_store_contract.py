"""The telemetry-store contract: every adapter (DuckDB, PostgreSQL) gives the same results."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pyarrow as pa
import pytest
from store_contract_support import Opener

from ironbridge.model import Event, InvalidInput, PermanentError
from ironbridge.store import Agg, Checkpoint, PointBatch, TelemetryStore

pytestmark = pytest.mark.integration

S = 1_000_000
T0 = 1_699_920_000 * S  # midnight UTC, a whole number of days since the epoch
TS_UTC = pa.timestamp("us", tz="UTC")


def batch(series: list[int], ts: list[int], value: list[float]) -> PointBatch:
    return PointBatch(
        np.array(series, dtype=np.int64),
        np.array(ts, dtype=np.int64),
        np.array(value, dtype=np.float64),
    )


def us(table: pa.Table, column: str = "ts") -> list[int]:
    return table.column(column).cast(pa.int64()).to_pylist()


@pytest.fixture
def filled(store: TelemetryStore) -> TelemetryStore:
    # series 1: one point a second for 10 s, value = second; series 2: two points
    written = store.append(
        batch(
            [1] * 10 + [2, 2],
            [T0 + i * S for i in range(10)] + [T0, T0 + 5 * S],
            [float(i) for i in range(10)] + [100.0, 200.0],
        )
    )
    assert written == 12
    return store


def test_satisfies_the_protocol(store: TelemetryStore) -> None:
    port: TelemetryStore = store
    assert port.count() == 0


def test_raw_orders_by_series_then_ts_in_half_open_range(filled: TelemetryStore) -> None:
    t = filled.raw([2, 1], T0 + 3 * S, T0 + 6 * S)
    assert t.schema == pa.schema([("series", pa.int64()), ("ts", TS_UTC), ("value", pa.float64())])
    assert t.column("series").to_pylist() == [1, 1, 1, 2]
    assert us(t) == [T0 + 3 * S, T0 + 4 * S, T0 + 5 * S, T0 + 5 * S]
    assert t.column("value").to_pylist() == [3.0, 4.0, 5.0, 200.0]
    limited = filled.raw([1, 2], T0, T0 + 10 * S, limit=3)
    assert limited.column("value").to_pylist() == [0.0, 1.0, 2.0]
    single = filled.raw([2], T0, T0 + 10 * S)
    assert single.column("value").to_pylist() == [100.0, 200.0]
    assert filled.raw([3], T0, T0 + 10 * S).num_rows == 0


def test_empty_series_gives_empty_tables_with_schema(filled: TelemetryStore) -> None:
    assert filled.raw([], T0, T0 + S).schema.names == ["series", "ts", "value"]
    agg = filled.aggregate([], T0, T0 + S, S, [Agg.AVG, Agg.COUNT])
    assert agg.num_rows == 0
    assert agg.schema.names == ["series", "bucket", "avg", "count"]
    assert agg.schema.field("bucket").type == TS_UTC
    assert filled.latest([]).num_rows == 0
    assert filled.events([], T0, T0 + S).schema.names == [
        "asset_id",
        "ts",
        "kind",
        "code",
        "payload",
    ]


def test_aggregate_epoch_aligned_buckets(filled: TelemetryStore) -> None:
    aggs = [Agg.AVG, Agg.MIN, Agg.MAX, Agg.SUM, Agg.COUNT, Agg.FIRST, Agg.LAST]
    # start at T0 + 2 s: the first bucket is still labelled T0 (floor to the epoch grid)
    t = filled.aggregate([1, 2], T0 + 2 * S, T0 + 10 * S, 5 * S, aggs)
    assert t.schema.names == [
        "series",
        "bucket",
        "avg",
        "min",
        "max",
        "sum",
        "count",
        "first",
        "last",
    ]
    assert t.schema.field("bucket").type == TS_UTC
    assert t.schema.field("count").type == pa.int64()
    rows = t.to_pylist()
    assert [(r["series"], r["bucket"].timestamp()) for r in rows] == [
        (1, T0 / S),
        (1, T0 / S + 5),
        (2, T0 / S + 5),
    ]
    assert [
        (r["avg"], r["min"], r["max"], r["sum"], r["count"], r["first"], r["last"]) for r in rows
    ] == [
        (3.0, 2.0, 4.0, 9.0, 3, 2.0, 4.0),
        (7.0, 5.0, 9.0, 35.0, 5, 5.0, 9.0),
        (200.0, 200.0, 200.0, 200.0, 1, 200.0, 200.0),
    ]


def test_aggregate_bucket_not_dividing_a_day(filled: TelemetryStore) -> None:
    # 7 s buckets aligned to the epoch: T0 is a multiple of 1 day; T0 % 7 s tells the grid
    width = 7 * S
    t = filled.aggregate([1], T0, T0 + 10 * S, width, ["count"])  # type: ignore[list-item]
    starts = us(t, "bucket")
    assert all(b % width == 0 for b in starts)
    expected: dict[int, int] = {}
    for i in range(10):
        b = (T0 + i * S) // width * width
        expected[b] = expected.get(b, 0) + 1
    assert dict(zip(starts, t.column("count").to_pylist(), strict=True)) == expected


def test_latest(filled: TelemetryStore) -> None:
    t = filled.latest([1, 2, 99])
    assert t.schema.field("ts").type == TS_UTC
    assert t.column("series").to_pylist() == [1, 2]
    assert us(t) == [T0 + 9 * S, T0 + 5 * S]
    assert t.column("value").to_pylist() == [9.0, 200.0]
    # dense id sets (read the range, filter in numpy) and sparse ones (semi join) agree
    assert filled.latest([2]).column("series").to_pylist() == [2]
    assert filled.latest([1, 2]).column("value").to_pylist() == [9.0, 200.0]
    assert filled.latest([2, 4]).column("series").to_pylist() == [2]
    assert filled.latest([1, 3]).column("series").to_pylist() == [1]
    assert filled.latest(np.array([2, 1, 2])).column("series").to_pylist() == [1, 2]
    # an older point arriving late does not move latest back
    filled.append(batch([2], [T0 + 1 * S], [150.0]))
    assert filled.latest([2]).column("value").to_pylist() == [200.0]


def test_same_batch_twice_is_stored_once(filled: TelemetryStore) -> None:
    again = batch([1, 1], [T0, T0 + 9 * S], [0.0, 9.0])
    assert filled.append(again) == 2
    assert filled.count() == 12
    assert filled.append(again) == 2
    assert filled.count() == 12


def test_duplicates_within_a_batch_keep_the_last(store: TelemetryStore) -> None:
    assert store.append(batch([1, 1, 1], [T0, T0, T0 + S], [1.0, 2.0, 3.0])) == 2
    assert store.raw([1], T0, T0 + 2 * S).column("value").to_pylist() == [2.0, 3.0]


def test_overlapping_late_data_last_write_wins(filled: TelemetryStore) -> None:
    # overlaps stored points 8 and 9 of series 1, adds 10 and 11
    late = batch([1, 1, 1, 1, 2], [T0 + k * S for k in (8, 9, 10, 11, 5)], [80, 90, 100, 110, 2000])
    assert filled.append(late) == 5
    assert filled.count() == 14
    t = filled.raw([1], T0 + 7 * S, T0 + 12 * S)
    assert t.column("value").to_pylist() == [7.0, 80.0, 90.0, 100.0, 110.0]
    assert filled.latest([1, 2]).column("value").to_pylist() == [110.0, 2000.0]


def test_redelivery_with_checkpoint(filled: TelemetryStore) -> None:
    b = batch([5, 5], [T0, T0 + S], [1.0, 2.0])
    ev = [Event(asset_id="a1", ts_us=T0, kind="fault", code="SPN110-FMI0")]
    filled.append(b, ev, Checkpoint(consumer="ingest", seq=42))
    assert filled.checkpoint("ingest") == 42
    assert filled.checkpoint("other") == 0
    filled.append(b, (), Checkpoint(consumer="ingest", seq=42))
    assert filled.count() == 14
    assert filled.checkpoint("ingest") == 42
    # a checkpoint never moves back
    filled.append(PointBatch.empty(), (), Checkpoint(consumer="ingest", seq=7))
    assert filled.checkpoint("ingest") == 42
    filled.append(PointBatch.empty(), (), Checkpoint(consumer="ingest", seq=43))
    assert filled.checkpoint("ingest") == 43


def test_several_checkpoints_commit_with_one_batch(filled: TelemetryStore) -> None:
    b = batch([6], [T0], [1.0])
    marks = [Checkpoint(consumer="ingest", seq=50), Checkpoint(consumer="ingest/published", seq=41)]
    filled.append(b, (), marks)
    assert (filled.checkpoint("ingest"), filled.checkpoint("ingest/published")) == (50, 41)
    # all or nothing: a bad one refuses the whole append, data included
    with pytest.raises(InvalidInput) as err:
        filled.append(batch([6], [T0 + S], [2.0]), (), [marks[0], Checkpoint(consumer="", seq=60)])
    assert err.value.field == "checkpoint.consumer"
    assert filled.count() == 13
    assert filled.checkpoint("ingest") == 50


def test_events_round_trip(store: TelemetryStore) -> None:
    events = [
        Event(asset_id="b", ts_us=T0 + 2 * S, kind="fault", code="F2", payload={"spn": 110}),
        Event(asset_id="a", ts_us=T0 + 1 * S, kind="state", code="running"),
        Event(asset_id="a", ts_us=T0 + 3 * S, kind="fault", code="F1", payload={"n": [1, 2]}),
        Event(asset_id="c", ts_us=T0, kind="fault", code="F0"),
    ]
    store.append(PointBatch.empty(), events)
    t = store.events(["a", "b"], T0, T0 + 10 * S)
    assert t.schema.names == ["asset_id", "ts", "kind", "code", "payload"]
    assert t.schema.field("ts").type == TS_UTC
    assert t.column("code").to_pylist() == ["running", "F2", "F1"]
    assert us(t) == [T0 + S, T0 + 2 * S, T0 + 3 * S]
    assert [orjson.loads(p) for p in t.column("payload").to_pylist()] == [
        {},
        {"spn": 110},
        {"n": [1, 2]},
    ]
    faults = store.events(["a", "b", "c"], T0, T0 + 10 * S, kinds=["fault"], limit=2)
    assert faults.column("code").to_pylist() == ["F0", "F2"]
    assert store.events(["a"], T0, T0 + 10 * S, kinds=[]).num_rows == 0
    assert store.events(["a"], T0 + 2 * S, T0 + 3 * S).num_rows == 0


def test_downsample_keeps_extremes_and_bounds_size(store: TelemetryStore) -> None:
    n = 10_000
    ts = T0 + np.arange(n, dtype=np.int64) * S
    value = np.sin(np.arange(n) / 100.0)
    value[7_345] = 50.0  # spike
    value[2_001] = -40.0  # dip
    store.append(PointBatch(np.full(n, 7, dtype=np.int64), ts, value))
    t = store.downsample(7, T0, T0 + n * S, 200)
    assert t.schema == pa.schema([("ts", TS_UTC), ("value", pa.float64())])
    assert 4 < t.num_rows <= 200
    got = dict(zip(us(t), t.column("value").to_pylist(), strict=True))
    assert got[int(ts[7_345])] == 50.0
    assert got[int(ts[2_001])] == -40.0
    assert got[int(ts[0])] == value[0]
    assert got[int(ts[-1])] == value[-1]
    assert us(t) == sorted(set(us(t)))
    # every returned point is a stored point
    assert all(value[(k - T0) // S] == v for k, v in got.items())
    # few enough points: all of them, in order
    few = store.downsample(7, T0, T0 + 100 * S, 200)
    assert us(few) == ts[:100].tolist()
    assert store.downsample(7, T0 - 10 * S, T0, 200).num_rows == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda s: s.raw([1], T0, T0), "start_us"),
        (lambda s: s.raw([1], T0 + 1, T0), "start_us"),
        (lambda s: s.raw([1], T0, T0 + 1, limit=0), "limit"),
        (lambda s: s.aggregate([1], T0, T0 + S, 0, [Agg.AVG]), "bucket_us"),
        (lambda s: s.aggregate([1], T0, T0 + S, -5, [Agg.AVG]), "bucket_us"),
        (lambda s: s.aggregate([1], T0, T0 + S, S, []), "aggs"),
        (lambda s: s.aggregate([1], T0, T0 + S, S, ["median"]), "aggs"),
        (lambda s: s.downsample(1, T0, T0 + S, 3), "max_points"),
        (lambda s: s.downsample(1, T0 + S, T0, 100), "start_us"),
        (lambda s: s.events(["a"], T0 + S, T0), "start_us"),
        (lambda s: s.events(["a"], T0, T0 + S, limit=-1), "limit"),
        (lambda s: s.raw(["x"], T0, T0 + S), "series"),
        (lambda s: s.append(batch([1, 2], [T0], [1.0, 2.0])), "points"),
        (lambda s: s.append(batch([-1], [T0], [1.0])), "points.series"),
        (
            lambda s: s.append(PointBatch.empty(), (), Checkpoint(consumer="", seq=1)),
            "checkpoint.consumer",
        ),
    ],
)
def test_invalid_arguments_raise_invalid_input(store: TelemetryStore, call, field: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as err:
        call(store)
    assert err.value.field == field
    assert store.count() == 0


def test_concurrent_readers_while_writing(store: TelemetryStore) -> None:
    per_batch = 1_000
    batches = 20
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                counts = store.aggregate([0, 1, 2, 3], T0, T0 + 10**12, 10**12, [Agg.COUNT])
                total = sum(counts.column("count").to_pylist())
                # a reader sees whole batches only (each batch commits atomically)
                assert total % per_batch == 0
                store.latest(list(range(4)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        for b in range(batches):
            k = np.arange(b * per_batch, (b + 1) * per_batch, dtype=np.int64)
            store.append(PointBatch(k % 4, T0 + k * S, k.astype(np.float64)))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    assert store.count() == per_batch * batches


def test_checkpoint_and_data_survive_reopen(opener: Opener) -> None:
    s = opener()
    s.append(
        batch([1, 2], [T0, T0], [1.0, 2.0]),
        [Event(asset_id="a", ts_us=T0, kind="state", code="running", payload={"x": 1})],
        Checkpoint(consumer="ingest", seq=9),
    )
    s.close()
    s = opener()
    assert s.count() == 2
    assert s.checkpoint("ingest") == 9
    assert s.events(["a"], T0, T0 + 1).num_rows == 1


def test_reopen_rewrites_replace_not_duplicate(opener: Opener) -> None:
    s = opener()
    s.append(batch([1, 1, 2], [T0, T0 + S, T0 + S], [1.0, 2.0, 3.0]))
    s.close()
    s = opener()
    # rewriting stored points after a restart must replace, not duplicate them
    s.append(batch([1, 2, 2], [T0, T0 + S, T0 + 2 * S], [10.0, 30.0, 40.0]))
    assert s.count() == 4
    assert s.raw([1, 2], T0, T0 + 3 * S).column("value").to_pylist() == [10.0, 2.0, 30.0, 40.0]


def test_use_after_close_is_a_permanent_error(opener: Opener) -> None:
    s = opener()
    s.close()
    s.close()  # idempotent
    with pytest.raises(PermanentError):
        s.count()
    with pytest.raises(PermanentError):
        s.append(batch([1], [T0], [1.0]))


def test_aggregates_over_hours_match_the_points(store: TelemetryStore) -> None:
    # Three days of a point every 10 s on two series, written in ragged batches and
    # partly overwritten: minute- and hour-multiple buckets (served from roll-ups where
    # an adapter has them) must equal a computation from the points themselves.
    rng = np.random.default_rng(7)
    n = 3 * 86_400 // 10
    ts = T0 - 5 * S + np.arange(n, dtype=np.int64) * 10 * S
    for sid in (1, 2):
        values = rng.normal(size=n).round(3)
        for chunk in np.array_split(np.arange(n), 7):
            store.append(
                PointBatch(np.full(chunk.shape[0], sid, np.int64), ts[chunk], values[chunk])
            )
    over = np.arange(100, n, 997)
    store.append(
        PointBatch(np.full(over.shape[0], 1, np.int64), ts[over], np.full(over.shape[0], 9.5))
    )
    aggs = [Agg.COUNT, Agg.SUM, Agg.MIN, Agg.MAX, Agg.FIRST, Agg.LAST, Agg.AVG]
    start, end = T0 + 17 * S, T0 + 2 * 86_400 * S + 123 * S
    for width in (3_600 * S, 6 * 3_600 * S, 15 * 60 * S, 7 * S):
        got = store.aggregate([1, 2], start, end, width, aggs).to_pylist()
        t = us(store.raw([1, 2], start, end))
        vals = store.raw([1, 2], start, end)
        expect: dict[tuple[int, int], list[float]] = {}
        for sid, k, v in zip(
            vals.column("series").to_pylist(), t, vals.column("value").to_pylist(), strict=True
        ):
            expect.setdefault((sid, k // width * width), []).append(v)
        assert [(r["series"], int(r["bucket"].timestamp() * S)) for r in got] == sorted(expect)
        for r in got:
            v = expect[(r["series"], int(r["bucket"].timestamp() * S))]
            assert r["count"] == len(v)
            assert r["sum"] == pytest.approx(sum(v))
            assert r["avg"] == pytest.approx(sum(v) / len(v))
            assert (r["min"], r["max"], r["first"], r["last"]) == (min(v), max(v), v[0], v[-1])
