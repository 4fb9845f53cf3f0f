"""OEE interval arithmetic against a minute-by-minute brute force on random state logs."""

from __future__ import annotations

from datetime import time

import numpy as np
import pytest

from ironbridge.analytics.oee import CountLog, StateLog, compute_oee
from ironbridge.analytics.plant import (
    STATE_ORDER,
    Break,
    PlannedStop,
    Shift,
    ShiftCalendar,
    Station,
    StationState,
)

MIN = 60_000_000
T0 = 1_709_568_000_000_000  # 2024-03-05 00:00 Asia/Shanghai (UTC+8) = 2024-03-04T16:00Z
CAL = ShiftCalendar(
    shifts=(
        Shift(
            name="a", start=time(6), end=time(14), breaks=(Break(start=time(10), end=time(10, 20)),)
        ),
        Shift(name="b", start=time(14), end=time(22)),
        Shift(
            name="c",
            start=time(22),
            end=time(6),
            breaks=(Break(start=time(23, 50), end=time(0, 30)),),
        ),
    ),
    planned_stops=(PlannedStop(start_us=T0 + 30 * 60 * MIN, end_us=T0 + 33 * 60 * MIN),),
)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_minute_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    minutes = 4 * 24 * 60
    start, end = T0 + 7 * MIN, T0 + (minutes - 13) * MIN
    names = ["s0", "s1", "s2"]
    st_rows, ts_rows, state_rows = [], [], []
    for name in names:
        n = 300
        t = np.sort(rng.choice(np.arange(30, minutes), n, replace=False)) * MIN + T0
        st_rows += [name] * n
        ts_rows += list(t)
        state_rows += [STATE_ORDER[k].value for k in rng.integers(0, 5, n)]
    log = StateLog.from_columns(station=st_rows, ts_us=ts_rows, state=state_rows)
    c_ts = T0 + rng.integers(0, minutes * 60, 500) * 1_000_000
    c_st = rng.choice(names, 500)
    good, scrap = rng.integers(0, 5, 500), rng.integers(0, 2, 500)
    cnt = CountLog.from_columns(station=list(c_st), ts_us=c_ts, good=good, scrap=scrap)
    stations = [Station(id=n, ideal_cycle_s=7.0) for n in names]
    rep = compute_oee(stations, CAL, log, cnt, start, end).shifts.to_pylist()

    cal = CAL.periods(start, end)
    grid = np.arange(start, end, MIN)
    for k, name in enumerate(names):
        mask = np.array(st_rows) == name
        ets, est = (
            np.array(ts_rows)[mask],
            np.array([StationState(s).code for s in state_rows])[mask],
        )
        idx = np.searchsorted(ets, grid, side="right") - 1
        state = np.where(idx >= 0, est[np.maximum(idx, 0)], StationState.UNKNOWN.code)
        for p in range(len(cal)):
            in_p = (grid >= cal.start_us[p]) & (grid < cal.end_us[p])
            in_w = np.zeros_like(in_p)
            for a, b in zip(cal.window_start_us, cal.window_end_us, strict=True):
                in_w |= (grid >= a) & (grid < b)
            busy = in_p & ~in_w
            row = rep[k * len(cal) + p]
            assert row["station"] == name
            assert row["pot_s"] == in_p.sum() * 60
            assert (
                row["pdot_s"]
                == (in_p & in_w).sum() * 60
                + (busy & (state == StationState.PLANNED_STOP.code)).sum() * 60
            )
            assert row["apt_s"] == (busy & (state == StationState.RUNNING.code)).sum() * 60
            assert row["down_s"] == (busy & (state == StationState.DOWN.code)).sum() * 60
            assert row["delay_s"] == (busy & (state == StationState.IDLE.code)).sum() * 60
            assert row["setup_s"] == (busy & (state == StationState.SETUP.code)).sum() * 60
            assert row["unknown_s"] == (busy & (state == StationState.UNKNOWN.code)).sum() * 60
            cm = (c_st == name) & (c_ts >= cal.start_us[p]) & (c_ts < cal.end_us[p])
            assert row["good"] == good[cm].sum()
            assert row["scrap"] == scrap[cm].sum()
