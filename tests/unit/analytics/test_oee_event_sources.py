"""Stations whose state, part counts and scrap arrive as events (a real DuckDB store)."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import numpy as np
import pytest

from ironbridge.analytics.oee import compute_oee
from ironbridge.analytics.plant import Shift, ShiftCalendar, Station, parse_site
from ironbridge.analytics.plant_data import load_logs
from ironbridge.model import Event, InvalidInput
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

S = 1_000_000
T0 = 1_767_571_200 * S  # 2026-01-05 00:00 UTC, a Monday


def _ev(t_s: float, kind: str, code: str, **payload: object) -> Event:
    return Event(asset_id="cell", ts_us=T0 + int(t_s * S), kind=kind, code=code, payload=payload)


@pytest.fixture
def store(tmp_path: Path) -> DuckDBTelemetryStore:
    st = DuckDBTelemetryStore(tmp_path / "t.duckdb", threads=1)
    yield st  # type: ignore[misc]
    st.close()


def _append(store: DuckDBTelemetryStore, events: list[Event], rows=()) -> None:  # type: ignore[no-untyped-def]
    sid, ts, val = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    batch = PointBatch(np.array(sid, np.int64), np.array(ts, np.int64), np.array(val, float))
    store.append(batch, events)


def test_state_reason_and_parts_from_events(store: DuckDBTelemetryStore) -> None:
    _append(
        store,
        [
            _ev(0, "station_state", "running"),
            _ev(5, "station_state", "running"),  # repeat: collapses
            _ev(100, "station_state", "down", reason=1),  # a code, named by the site
            _ev(160, "station_state", "2", reason="sensor_fault"),  # number, named reason
            _ev(200, "station_state", "setup", reason=9),  # unknown code
            _ev(230, "station_state", "running", reason=1),  # running never has a reason
            _ev(240, "station_state", "exploded"),  # not a state: skipped
            _ev(10, "part", "good"),
            _ev(20, "part", "good", count=3),
            _ev(30, "part", "scrap", count=2),
            _ev(40, "part", "scrap", count=-1),  # not a count: skipped
            _ev(50, "part", "rework"),  # not good/scrap: skipped
            _ev(60, "fault", "SPN110"),  # other kinds are ignored
        ],
    )
    station = Station(id="cell", ideal_cycle_s=10, state_from="event", counts_from="event")
    states, counts = load_logs(store, {}, [station], {1: "jam"}, T0, T0 + 300 * S)
    ts, st, rs = states.slice_of(0)
    assert ((ts - T0) // S).tolist() == [0, 100, 160, 200, 230]
    assert st.tolist() == [0, 2, 2, 4, 0]
    assert [states.reasons[r] if r >= 0 else None for r in rs] == [
        None,
        "jam",
        "sensor_fault",
        "code 9",
        None,
    ]
    assert ((counts.ts_us - T0) // S).tolist() == [10, 20, 30]
    assert counts.good.tolist() == [1, 3, 0]
    assert counts.scrap.tolist() == [0, 0, 2]


def test_event_and_measurement_sources_mix(store: DuckDBTelemetryStore) -> None:
    """State from a register (a measurement), counts from an MES's part events."""
    series = {("cell", "state"): 1, ("cell", "good_count"): 2}
    _append(
        store,
        [_ev(100, "part", "good", count=5), _ev(110, "part", "scrap")],
        rows=[(1, T0, 0.0), (1, T0 + 3000 * S, 2.0), (2, T0, 0.0), (2, T0 + 50 * S, 999.0)],
    )
    station = Station(id="cell", ideal_cycle_s=60, counts_from="event")
    states, counts = load_logs(store, series, [station], {}, T0, T0 + 3600 * S)
    assert states.state.tolist() == [0, 2]
    assert counts.good.tolist() == [5, 0]  # the good_count counter is not read
    assert counts.scrap.tolist() == [0, 1]
    cal = ShiftCalendar(shifts=(Shift(name="a", start=time(0), end=time(1)),), timezone="UTC")
    report = compute_oee([station], cal, states, counts, T0, T0 + 3600 * S)
    row = report.shifts.to_pylist()[0]
    # running 3000 s of 3600 s planned busy time; 6 parts of 60 s ideal, 5 good
    assert row["apt_s"] == pytest.approx(3000)
    assert row["down_s"] == pytest.approx(600)
    assert row["availability"] == pytest.approx(3000 / 3600)
    assert row["effectiveness"] == pytest.approx(6 * 60 / 3000)
    assert row["quality"] == pytest.approx(5 / 6)
    assert row["oee"] == pytest.approx(5 * 60 / 3600)


def test_state_before_the_range_comes_from_an_earlier_event(store: DuckDBTelemetryStore) -> None:
    _append(store, [_ev(-600, "station_state", "down", reason=1)])
    station = Station(id="cell", ideal_cycle_s=10, state_from="event")
    states, _ = load_logs(store, {}, [station], {}, T0, T0 + 60 * S)
    assert states.state.tolist() == [2]


def test_custom_event_kinds(store: DuckDBTelemetryStore) -> None:
    _append(store, [_ev(0, "mes.state", "idle"), _ev(1, "mes.unit", "good", count=2)])
    station = Station(
        id="cell",
        ideal_cycle_s=10,
        state_from="event",
        counts_from="event",
        state_event="mes.state",
        part_event="mes.unit",
    )
    states, counts = load_logs(store, {}, [station], {}, T0, T0 + 60 * S)
    assert states.state.tolist() == [1]
    assert counts.good.tolist() == [2]


def test_site_parses_sources_and_rejects_bad_ones() -> None:
    site = {
        "id": "p",
        "calendar": {"timezone": "UTC",
                     "shifts": [{"name": "a", "start": "06:00", "end": "14:00"}]},
        "lines": [{"id": "l", "stations": [
            {"id": "s1", "ideal_cycle_s": 5, "state_from": "event", "part_event": "unit"},
            {"id": "s2", "ideal_cycle_s": 5},
        ]}],
    }  # fmt: skip
    parsed = parse_site(site)
    s1, s2 = parsed.stations
    assert (s1.state_from, s1.counts_from, s1.state_event, s1.part_event) == (
        "event",
        "measurement",
        "station_state",
        "unit",
    )
    assert s2.state_from == "measurement"
    site["lines"][0]["stations"][1]["counts_from"] = "register"  # type: ignore[index]
    with pytest.raises(InvalidInput) as err:
        parse_site(site)
    assert err.value.field == "lines[0].stations[1].counts_from"
    site["lines"][0]["stations"][1]["counts_from"] = "event"  # type: ignore[index]
    site["lines"][0]["stations"][1]["state_event"] = ""  # type: ignore[index]
    with pytest.raises(InvalidInput) as err:
        parse_site(site)
    assert err.value.field == "lines[0].stations[1].state_event"
