"""The simulated plant's event-reporting station: its events are what OEE reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ironbridge.analytics.oee import compute_oee
from ironbridge.analytics.plant import parse_site
from ironbridge.analytics.plant_data import load_logs
from ironbridge.model import Event
from ironbridge.sim.plant import REASONS, PlantSimulator, site_definition
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

END_MS = 1_767_614_400_000  # 2026-01-05T12:00:00Z


def test_history_reports_the_rework_station_by_events_only() -> None:
    sim = PlantSimulator(seed=3)
    samples = list(sim.history(END_MS, 4 * 3600))
    assert {s[0] for s in samples} == {
        "press-01", "press-02", "press-03", "robot-01", "robot-02", "inspect-01"}  # fmt: skip
    events = sim.history_events
    assert {device for device, _ in events} == {"rework-01"}
    kinds = {(e["kind"], e["code"]) for _, e in events}
    assert ("station_state", "running") in kinds
    assert ("part", "good") in kinds
    assert ("station_state", "down") in kinds
    rework = next(st for st in sim.stations if st.spec.id == "rework-01")
    good = sum(e["payload"]["count"] for _, e in events if e["code"] == "good")
    scrap = sum(e["payload"]["count"] for _, e in events if e["code"] == "scrap")
    assert (good, scrap) == (rework.good, rework.scrap)
    downs = [e for _, e in events if e["code"] == "down"]
    assert all(e["payload"]["reason"] in REASONS for e in downs)


def test_oee_of_the_rework_station_from_its_events(tmp_path: Path) -> None:
    sim = PlantSimulator(seed=3)
    list(sim.history(END_MS, 4 * 3600))
    site = parse_site(site_definition())
    (station,) = next(ln for ln in site.lines if ln.id == "final").stations
    assert (station.state_from, station.counts_from) == ("event", "event")
    store = DuckDBTelemetryStore(tmp_path / "t.duckdb", threads=1)
    try:
        store.append(
            PointBatch(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)),
            [
                Event(asset_id=d, ts_us=e["ts"] * 1000, kind=e["kind"], code=e["code"],
                      payload=e["payload"])
                for d, e in sim.history_events
            ],
        )  # fmt: skip
        start, end = (END_MS - 4 * 3_600_000) * 1000, END_MS * 1000
        states, counts = load_logs(store, {}, [station], REASONS, start, end)
    finally:
        store.close()
    report = compute_oee([station], site.calendar, states, counts, start, end)
    rows = report.shifts.to_pylist()
    rework = next(st for st in sim.stations if st.spec.id == "rework-01")
    assert sum(r["good"] for r in rows) == rework.good
    assert sum(r["unknown_s"] for r in rows) == 0
    assert 0.3 < sum(r["apt_s"] for r in rows) / sum(r["pbt_s"] for r in rows) < 1
