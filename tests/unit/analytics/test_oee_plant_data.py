"""Building OEE logs from stored station measurements (a real DuckDB store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ironbridge.analytics.plant_data import load_logs
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

S = 1_000_000
SERIES = {("st", "state"): 1, ("st", "reason"): 2, ("st", "good_count"): 3}


def _store(tmp_path: Path, rows: list[tuple[int, int, float]]) -> DuckDBTelemetryStore:
    store = DuckDBTelemetryStore(tmp_path / "t.duckdb", threads=1)
    sid, ts, val = zip(*rows, strict=True)
    store.append(PointBatch(np.array(sid, np.int64), np.array(ts, np.int64), np.array(val)))
    return store


def test_states_collapse_reasons_join_and_counters_reset(tmp_path: Path) -> None:
    t0 = 1_767_571_200 * S
    rows = [
        (1, t0, 0.0), (1, t0 + 10 * S, 0.0),            # polled: same state twice
        (1, t0 + 20 * S, 2.0), (2, t0 + 20 * S + 300_000, 1.0),  # down, reason 0.3 s later
        (1, t0 + 30 * S, 0.0), (2, t0 + 30 * S, 0.0),
        (1, t0 + 40 * S, 9.0),                           # out of range code: unknown
        (3, t0, 100.0), (3, t0 + 10 * S, 110.0), (3, t0 + 20 * S, 5.0),  # reset at 20 s
    ]  # fmt: skip
    store = _store(tmp_path, rows)
    try:
        states, counts = load_logs(store, SERIES, ["st"], {1: "jam"}, t0, t0 + 60 * S)
    finally:
        store.close()
    ts, st, rs = states.slice_of(0)
    assert (ts - t0).tolist() == [0, 20 * S, 20 * S + 300_000, 30 * S, 40 * S]
    assert st.tolist() == [0, 2, 2, 0, 5]
    names = [states.reasons[r] if r >= 0 else None for r in rs]
    assert names == [None, "jam", "jam", None, None]
    assert (counts.ts_us - t0).tolist() == [10 * S, 20 * S]
    assert counts.good.tolist() == [10, 5]
    assert counts.scrap.tolist() == [0, 0]


def test_station_without_data_is_empty(tmp_path: Path) -> None:
    store = _store(tmp_path, [(9, 1, 1.0)])
    try:
        states, counts = load_logs(store, {}, ["st"], {}, 0, 10 * S)
    finally:
        store.close()
    assert states.stations == ("st",)
    assert len(states.ts_us) == 0
    assert len(counts.ts_us) == 0
