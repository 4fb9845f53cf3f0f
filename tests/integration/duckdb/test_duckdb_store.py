"""DuckDB-only behaviour of the telemetry store (the shared contract is in store_contract/)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

pytestmark = pytest.mark.integration

S = 1_000_000
T0 = 1_699_920_000 * S


def test_rebuild_latest_after_bulk_load(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    DuckDBTelemetryStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO points SELECT i % 3, make_timestamp($t0 + i * 1000000), i::DOUBLE "
        "FROM range(30) t(i)",
        {"t0": T0},
    )
    con.close()
    with DuckDBTelemetryStore(path) as s:
        assert s.latest([0, 1, 2]).num_rows == 0
        s.rebuild_latest()
        assert s.latest([0, 1, 2]).column("value").to_pylist() == [27.0, 28.0, 29.0]
        # overwrites the bulk-loaded point
        s.append(PointBatch(np.array([0]), np.array([T0]), np.array([-1.0])))
        assert s.count() == 30


def test_opening_a_file_without_rollups_builds_them(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    n = 20_000
    ts = T0 + np.arange(n, dtype=np.int64) * 7 * S
    value = np.cos(np.arange(n) / 50.0)
    value[12_345] = 99.0
    with DuckDBTelemetryStore(path) as s:
        s.append(PointBatch(np.full(n, 3, np.int64), ts, value))
        want = s.downsample_many([3], T0, T0 + n * 7 * S, 800)
    # what a file written before the roll-ups existed looks like: schema version 1
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE rollup_1m")
    con.execute("DROP TABLE rollup_1h")
    con.execute("DROP TABLE latest_state")
    con.execute("UPDATE schema_version SET version = 1")
    con.close()
    with DuckDBTelemetryStore(path) as s:
        got = s.downsample_many([3], T0, T0 + n * 7 * S, 800)
    assert got.equals(want)
    assert 99.0 in got.column("value").to_pylist()


def test_bulk_load_then_rebuild_fills_rollups(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    DuckDBTelemetryStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO points SELECT 5, make_timestamp($t0 + i * 1000000), (i % 1000)::DOUBLE "
        "FROM range(200000) t(i)",
        {"t0": T0},
    )
    con.close()
    with DuckDBTelemetryStore(path) as s:
        s.rebuild_latest()
        after = s.downsample_many([5], T0, T0 + 200_000 * S, 400)
        assert after.num_rows > 0
        assert after.column("value").to_numpy().max() == 999.0
        assert after.column("value").to_numpy().min() == 0.0


def test_small_appends_are_compacted_into_one_rollup_row_per_bucket() -> None:
    # one point a second for 2 hours, appended 12 at a time (like a slow live feed)
    n = 7_200
    ts = T0 + 30 * S + np.arange(n, dtype=np.int64) * S
    value = np.sin(np.arange(n) / 40.0)
    value[4_321] = 7.0
    with DuckDBTelemetryStore(":memory:", compact_after=100) as s:
        for i in range(0, n, 12):
            s.append(PointBatch(np.full(12, 9, np.int64), ts[i : i + 12], value[i : i + 12]))
        s.compact_rollups()
        rows = dict(
            s._writer.execute(
                "SELECT 'm', count(*) FROM rollup_1m UNION ALL SELECT 'h', count(*) FROM rollup_1h"
            ).fetchall()
        )
        assert rows == {"m": 121, "h": 3}  # 120.5 minutes and parts of 3 hours
        chart = s.downsample_many([9], T0, T0 + 3 * 3_600 * S, 400)
        got = chart.column("value").to_numpy()
        assert got.max() == 7.0
        assert got.min() == value.min()
        assert s.count() == n


def _latest(s: DuckDBTelemetryStore, ids: list[int]) -> dict[int, tuple[int, float]]:
    got = s.latest(ids).to_pydict()
    return {
        sid: (int(ts.timestamp() * S), v)
        for sid, ts, v in zip(got["series"], got["ts"], got["value"], strict=True)
    }


def test_latest_reads_merge_points_not_yet_written_to_the_latest_table(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    with DuckDBTelemetryStore(path, latest_flush_s=3600) as s:
        s.append(PointBatch(np.array([1, 2, 1]), np.array([T0, T0, T0 + S]), np.array([1.0, 2, 3])))
        s.append(PointBatch(np.array([2, 3]), np.array([T0 + 5 * S, T0]), np.array([4.0, 5])))
        # a late point below the latest changes nothing; one at the latest ts overwrites it
        s.append(PointBatch(np.array([2, 3]), np.array([T0 + S, T0]), np.array([9.0, 6])))
        want = {1: (T0 + S, 3.0), 2: (T0 + 5 * S, 4.0), 3: (T0, 6.0)}
        assert _latest(s, [1, 2, 3]) == want
        # nothing was written to the latest table yet: the reads above merged the pending
        assert s._writer.execute("SELECT count(*) FROM latest").fetchall() == [(0,)]
    # closed cleanly: the table holds everything and the state says so
    con = duckdb.connect(str(path))
    rows = con.execute("SELECT series, value FROM latest ORDER BY series").fetchall()
    synced = con.execute("SELECT synced FROM latest_state").fetchall()
    con.close()
    assert rows == [(1, 3.0), (2, 4.0), (3, 6.0)]
    assert synced == [(True,)]


_CRASHING_WRITER = """
import sys, time
import numpy as np
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore
S, T0 = 1_000_000, {t0}
s = DuckDBTelemetryStore(sys.argv[1], latest_flush_s=0.0)
s.append(PointBatch(np.array([1, 2]), np.array([T0, T0]), np.array([1.0, 2.0])))  # flushed
s._latest_flush_s = 3600.0  # from here on nothing reaches the latest table
s.append(PointBatch(np.array([1, 3]), np.array([T0 + 10 * S, T0]), np.array([10.0, 3.0])))
print("appended", flush=True)
time.sleep(600)
"""


def test_latest_and_the_overwrite_index_are_rebuilt_after_a_crash(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "t.duckdb"
    script = tmp_path / "writer.py"
    script.write_text(_CRASHING_WRITER.format(t0=T0))
    with subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "appended"
        finally:
            proc.kill()  # SIGKILL: no close, no flush
    con = duckdb.connect(str(path))
    before = con.execute("SELECT series, value FROM latest ORDER BY series").fetchall()
    con.close()
    assert before == [(1, 1.0), (2, 2.0)]  # the crash left the table behind the points
    with DuckDBTelemetryStore(path) as s:
        assert _latest(s, [1, 2, 3]) == {1: (T0 + 10 * S, 10.0), 2: (T0, 2.0), 3: (T0, 3.0)}
        # the overwrite index came back too: a redelivered point replaces, never doubles
        s.append(PointBatch(np.array([1]), np.array([T0 + 10 * S]), np.array([11.0])))
        assert s.count() == 4
        assert _latest(s, [1])[1] == (T0 + 10 * S, 11.0)
