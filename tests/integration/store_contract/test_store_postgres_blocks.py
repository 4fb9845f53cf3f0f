"""PostgreSQL-only: points stored in block rows, late points merged into them, and the
migration of a row-per-point database (schema version 1) into blocks."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from ironbridge.store import Agg, PointBatch
from ironbridge.store.postgres import PostgresTelemetryStore
from ironbridge.store.postgres.blocks import BLOCK_POINTS, BLOCK_SPAN_US
from ironbridge.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

S = 1_000_000
H = BLOCK_SPAN_US
T0 = 1_699_920_000 * S + 5 * H - 600 * S  # ten minutes before an hour


def _blocks(url: str) -> list[tuple[int, int, int, int, list[int]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT series, t0, t1, n, ts FROM tm_blocks ORDER BY series, t0")
        return [tuple(r) for r in rows.fetchall()]  # type: ignore[misc]


def _check_invariants(url: str) -> None:
    """Blocks are whole, within an hour, at most BLOCK_POINTS, and never overlap."""
    last: dict[int, int] = {}
    for series, t0, t1, n, ts in _blocks(url):
        assert 1 <= n <= BLOCK_POINTS
        assert len(ts) == n
        assert (t0, t1) == (ts[0], ts[-1])
        assert ts == sorted(set(ts))
        assert t0 // H == t1 // H
        assert t0 > last.get(series, -1)
        last[series] = t1


def _model_check(store: PostgresTelemetryStore, model: dict[tuple[int, int], float]) -> None:
    keys = sorted(model)
    s = np.array([k[0] for k in keys], np.int64)
    t = np.array([k[1] for k in keys], np.int64)
    v = np.array([model[k] for k in keys])
    raw = store.raw([1, 2], T0 - H, T0 + 3 * H)
    assert raw.column("series").to_pylist() == s.tolist()
    assert raw.column("ts").cast("int64").to_pylist() == t.tolist()
    assert raw.column("value").to_pylist() == v.tolist()
    assert store.count() == len(model)
    aggs = [Agg.COUNT, Agg.SUM, Agg.MIN, Agg.MAX, Agg.FIRST, Agg.LAST]
    for width in (60 * S, H):  # read from the 1-minute and the 1-hour roll-ups
        got = store.aggregate([1, 2], T0 - H, T0 + 3 * H, width, aggs).to_pylist()
        want = []
        for series in (1, 2):
            m = s == series
            b = t[m] - (t[m] % width)
            for bucket in np.unique(b):
                vals = v[m][b == bucket]
                want.append((series, int(bucket), len(vals), vals.sum(), vals.min(), vals.max()))
                want[-1] += (vals[0], vals[-1])
        assert [(r["series"], int(r["bucket"].timestamp() * S), r["count"]) for r in got] == [
            w[:3] for w in want
        ]
        for r, w in zip(got, want, strict=True):
            assert r["sum"] == pytest.approx(w[3])
            assert (r["min"], r["max"], r["first"], r["last"]) == w[4:]


def test_late_points_merge_into_the_blocks_they_fall_into(pg_url: str) -> None:
    rng = np.random.default_rng(7)
    model: dict[tuple[int, int], float] = {}

    def write(series: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        store.append(PointBatch(series, ts, value))
        for k in zip(series.tolist(), ts.tolist(), value.tolist(), strict=True):
            model[(k[0], k[1])] = k[2]

    with PostgresTelemetryStore(pg_url) as store:
        # 3 000 s of 1 Hz across an hour boundary (several full blocks), and series 2
        ts = T0 + np.arange(3000, dtype=np.int64) * S
        write(np.ones(3000, np.int64), ts, rng.normal(size=3000))
        write(np.full(50, 2, np.int64), ts[:50] * 1, rng.normal(size=50))
        _check_invariants(pg_url)
        assert len(_blocks(pg_url)) > 3000 // BLOCK_POINTS
        # late: overwrite 40 stored points of both series, back-fill 30 half-seconds
        # between stored ones, and 20 points after the end in the same batch
        over = rng.choice(3000, 40, replace=False)
        fill = rng.choice(2999, 30, replace=False)
        s = np.concatenate([np.ones(70, np.int64), [2, 2], np.ones(20, np.int64)])
        t = np.concatenate([ts[over], ts[fill] + S // 2, ts[[3, 7]], ts[-1] + S + ts[:20] - T0])
        write(s, t, rng.normal(size=t.shape[0]) + 100)
        _check_invariants(pg_url)
        _model_check(store, model)
        # a late point before every stored one, in an hour of its own
        write(np.array([1]), np.array([T0 - H + 5 * S]), np.array([-5.0]))
        _check_invariants(pg_url)
        _model_check(store, model)


def test_a_row_per_point_database_migrates_into_blocks(pg_url: str) -> None:
    # a database as schema version 1 left it: a row per point in tm_points
    rng = np.random.default_rng(11)
    day = 86_400 * S
    first_day = T0 // day
    points = [(1, T0 + i * 10 * S, float(rng.normal())) for i in range(1500)]
    points += [(2, first_day * day + day - 5 * S + i * S, float(i)) for i in range(10)]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        step = MIGRATIONS[0]
        assert not callable(step)
        for statement in step:
            conn.execute(statement)
        conn.execute("CREATE TABLE tm_schema (version integer NOT NULL)")
        conn.execute("INSERT INTO tm_schema VALUES (1)")
        for d in (first_day, first_day + 1):
            conn.execute(
                f"CREATE TABLE tm_points_d{d} PARTITION OF tm_points"
                f" FOR VALUES FROM ({d * day}) TO ({(d + 1) * day})"
            )
        with conn.cursor().copy("COPY tm_points (series, ts, value) FROM STDIN") as copy:
            for row in points:
                copy.write_row(row)
    with PostgresTelemetryStore(pg_url) as store:
        model = {(s, t): v for s, t, v in points}
        _check_invariants(pg_url)
        assert store.count() == len(points)
        raw = store.raw([1, 2], T0 - day, T0 + 2 * day)
        assert raw.column("value").to_pylist() == [model[k] for k in sorted(model)]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT max(version) FROM tm_schema").fetchone() == (SCHEMA_VERSION,)
        # the old name is now a view of a row per point, for ad-hoc SQL
        assert conn.execute(
            "SELECT count(*), sum(value) FROM tm_points WHERE series = 2"
        ).fetchone() == (10, 45.0)
