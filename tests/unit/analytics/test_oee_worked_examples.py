"""OEE per ISO 22400-2 against hand-computed worked examples (times in seconds)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pytest

from ironbridge.analytics.oee import (
    CountLog,
    StateLog,
    compute_oee,
    downtime_pareto,
    rollup_lines,
    state_timeline,
)
from ironbridge.analytics.plant import (
    Break,
    Line,
    PlannedStop,
    Shift,
    ShiftCalendar,
    Station,
)
from ironbridge.model import from_datetime

SH = ZoneInfo("Asia/Shanghai")


def at(day: int, hhmmss: str) -> int:
    """Local Shanghai time on 2024-03-<day> as UTC µs."""
    return from_datetime(datetime.combine(date(2024, 3, day), time.fromisoformat(hhmmss), SH))


CALENDAR = ShiftCalendar(
    shifts=(
        Shift(
            name="day",
            start=time(8),
            end=time(16),
            breaks=(Break(start=time(12), end=time(12, 30)),),
        ),
        # Night shift crosses midnight; its break is on the next calendar day.
        Shift(
            name="night",
            start=time(22),
            end=time(6),
            breaks=(Break(start=time(2), end=time(2, 30)),),
        ),
    ),
    planned_stops=(PlannedStop(start_us=at(5, "14:00"), end_us=at(5, "15:00"), reason="pm"),),
)
S1 = Station(id="S1", ideal_cycle_s=30.0, micro_stop_s=120.0)
S2 = Station(id="S2", ideal_cycle_s=20.0)
LINE = Line(id="L1", stations=(S1, S2))
START, END = at(5, "06:00"), at(6, "08:00")

EVENTS = [  # (station, local time, state, reason)
    ("S1", (5, "07:00"), "running", None),
    ("S1", (5, "09:00"), "down", "jam"),
    ("S1", (5, "09:40"), "running", None),
    ("S1", (5, "10:00"), "down", "jam"),  # 60 s: a micro-stop
    ("S1", (5, "10:01"), "running", None),
    ("S1", (5, "11:00"), "setup", "die_change"),
    ("S1", (5, "11:30"), "running", None),
    ("S1", (5, "12:05"), "idle", None),  # inside the break: not counted
    ("S1", (5, "12:20"), "running", None),
    ("S1", (5, "15:30"), "planned_stop", None),  # machine-reported planned stop
    ("S1", (5, "22:30"), "running", None),
    ("S1", (5, "23:00"), "down", "hydraulic"),
    ("S1", (5, "23:10"), "idle", "starved"),  # 90 s: a micro-stop
    ("S1", (5, "23:11:30"), "running", None),
    ("S1", (6, "02:15"), "down", "hydraulic"),  # starts inside the break
    ("S1", (6, "02:45"), "running", None),
    ("S2", (5, "06:00"), "running", None),
]
COUNTS = [  # (station, local time, good, scrap)
    ("S1", (5, "10:30"), 200, 10),
    ("S1", (5, "12:10"), 20, 0),  # made during the break, still the day shift's
    ("S1", (5, "15:59:59"), 300, 10),
    ("S1", (5, "17:00"), 50, 0),  # between shifts: not attributed
    ("S1", (6, "01:00"), 700, 10),
    ("S2", (5, "12:00"), 1000, 0),
    ("S2", (6, "03:00"), 1200, 0),
]


def states() -> StateLog:
    return StateLog.from_columns(
        station=[e[0] for e in EVENTS],
        ts_us=[at(*e[1]) for e in EVENTS],
        state=[e[2] for e in EVENTS],
        reason=[e[3] for e in EVENTS],
    )


def counts() -> CountLog:
    return CountLog.from_columns(
        station=[c[0] for c in COUNTS],
        ts_us=[at(*c[1]) for c in COUNTS],
        good=[c[2] for c in COUNTS],
        scrap=[c[3] for c in COUNTS],
    )


def rows(table: pa.Table) -> list[dict[str, object]]:
    return table.to_pylist()


@pytest.fixture(scope="module")
def report() -> object:
    return compute_oee([S1, S2], CALENDAR, states(), counts(), START, END)


def test_day_shift_with_break_planned_stop_die_change_and_micro_stop(report) -> None:
    r = [x for x in rows(report.shifts) if x["station"] == "S1" and x["shift"] == "day"]
    assert len(r) == 1
    d = r[0]
    # POT = 08:00-16:00 = 28 800 s.
    assert d["pot_s"] == 28_800
    # PDOT = break 1 800 + calendar planned stop 3 600 + machine planned_stop 15:30-16:00 1 800.
    assert d["pdot_s"] == 7_200
    # PBT = 28 800 - 7 200 = 21 600.
    assert d["pbt_s"] == 21_600
    # APT = 08:00-09:00 3 600 + 09:40-10:00 1 200 + 10:01-11:00 3 540 + 11:30-12:00 1 800
    #     + 12:30-14:00 5 400 + 15:00-15:30 1 800 = 17 340 (idle 12:05-12:20 is in the break).
    assert d["apt_s"] == 17_340
    # ADOT = jam 09:00-09:40 2 400 + jam 10:00-10:01 60 = 2 460; AUST (die change) = 1 800.
    assert d["down_s"] == 2_460
    assert d["setup_s"] == 1_800
    assert d["delay_s"] == 0
    assert d["unknown_s"] == 0
    assert d["micro_stop_count"] == 1
    assert d["micro_stop_s"] == 60
    # PQ = 210 + 20 + 310 = 540, GQ = 520 (17:00 row is between shifts).
    assert (d["produced"], d["good"], d["scrap"]) == (540, 520, 20)
    assert d["availability"] == pytest.approx(17_340 / 21_600, rel=1e-12)  # 0.8028
    assert d["effectiveness"] == pytest.approx(540 * 30 / 17_340, rel=1e-12)  # 0.9343
    assert d["quality"] == pytest.approx(520 / 540, rel=1e-12)  # 0.9630
    # OEE = A·E·Q = GQ·PRI/PBT = 15 600 / 21 600 = 0.7222
    assert d["oee"] == pytest.approx(15_600 / 21_600, rel=1e-12)
    assert d["oee"] == pytest.approx(d["availability"] * d["effectiveness"] * d["quality"])
    assert d["effectiveness_over_1"] is False


def test_night_shift_crossing_midnight(report) -> None:
    d = next(x for x in rows(report.shifts) if x["station"] == "S1" and x["shift"] == "night")
    assert d["start_us"] == at(5, "22:00")
    assert d["end_us"] == at(6, "06:00")
    assert d["day"] == date(2024, 3, 5)  # production day = the day the shift starts
    assert d["week"] == date(2024, 3, 4)  # Monday of that ISO week
    # POT 28 800; PDOT = break 02:00-02:30 1 800 + planned_stop 22:00-22:30 1 800 = 3 600.
    assert (d["pot_s"], d["pdot_s"], d["pbt_s"]) == (28_800, 3_600, 25_200)
    # APT = 22:30-23:00 1 800 + 23:11:30-02:00 10 110 + 02:45-06:00 11 700 = 23 610.
    assert d["apt_s"] == 23_610
    # ADOT = 23:00-23:10 600 + 02:30-02:45 900 (02:15-02:30 is in the break) = 1 500.
    assert d["down_s"] == 1_500
    # ADET = starved 23:10-23:11:30 = 90 s, a micro-stop (< 120 s).
    assert d["delay_s"] == 90
    assert (d["micro_stop_count"], d["micro_stop_s"]) == (1, 90)
    assert d["apt_s"] + d["down_s"] + d["delay_s"] + d["setup_s"] == d["pbt_s"]
    # OEE = 700 · 30 / 25 200 = 0.8333
    assert d["oee"] == pytest.approx(21_000 / 25_200, rel=1e-12)
    assert d["effectiveness"] == pytest.approx(710 * 30 / 23_610, rel=1e-12)


def test_day_and_week_sum_the_shift_instances(report) -> None:
    days = [x for x in rows(report.days) if x["station"] == "S1"]
    assert [x["day"] for x in days] == [date(2024, 3, 5)]
    d = days[0]
    # PBT 21 600 + 25 200, APT 17 340 + 23 610, GQ 520 + 700, PQ 540 + 710.
    assert (d["pbt_s"], d["apt_s"], d["good"], d["produced"]) == (46_800, 40_950, 1_220, 1_250)
    assert d["oee"] == pytest.approx(1_220 * 30 / 46_800, rel=1e-12)  # 0.7821
    assert d["micro_stop_count"] == 2
    w = next(x for x in rows(report.weeks) if x["station"] == "S1")
    assert w["week"] == date(2024, 3, 4)
    assert w["pbt_s"] == 46_800


def test_line_rollups(report) -> None:
    s2_day = next(x for x in rows(report.shifts) if x["station"] == "S2" and x["shift"] == "day")
    # S2 runs throughout: PBT = APT = 28 800 - 5 400 = 23 400.
    assert (s2_day["pbt_s"], s2_day["apt_s"]) == (23_400, 23_400)
    bottleneck = rows(rollup_lines(report.shifts, [LINE], "bottleneck"))
    day = next(x for x in bottleneck if x["shift"] == "day")
    # Bottleneck = largest PRI = S1 (30 s): the line OEE is S1's.
    assert day["oee"] == pytest.approx(15_600 / 21_600, rel=1e-12)
    assert day["rule"] == "bottleneck"
    assert day["line"] == "L1"
    tw = next(
        x for x in rows(rollup_lines(report.shifts, [LINE], "time_weighted")) if x["shift"] == "day"
    )
    # ΣAPT = 17 340 + 23 400; ΣPBT = 21 600 + 23 400; Σ(PQ·PRI) = 16 200 + 20 000.
    assert tw["availability"] == pytest.approx(40_740 / 45_000, rel=1e-12)
    assert tw["effectiveness"] == pytest.approx(36_200 / 40_740, rel=1e-12)
    assert tw["quality"] == pytest.approx(1_520 / 1_540, rel=1e-12)
    assert tw["oee"] == pytest.approx(40_740 / 45_000 * 36_200 / 40_740 * 1_520 / 1_540)


def test_downtime_pareto_and_timeline() -> None:
    pareto = rows(downtime_pareto(states(), CALENDAR, START, END))
    # jam 2 400 + 60 = 2 460 s in 2 stops; hydraulic 600 + 900 (in PBT) = 1 500 s in 2 stops.
    assert [(p["reason"], p["duration_s"], p["count"]) for p in pareto] == [
        ("jam", 2_460, 2),
        ("hydraulic", 1_500, 2),
    ]
    assert pareto[0]["share"] == pytest.approx(2_460 / 3_960)
    assert pareto[-1]["cumulative_share"] == pytest.approx(1.0)
    setup = rows(downtime_pareto(states(), CALENDAR, START, END, state="setup"))
    assert [(p["reason"], p["duration_s"]) for p in setup] == [("die_change", 1_800)]
    tl = rows(state_timeline(states(), "S1", at(5, "09:00"), at(5, "10:30")))
    assert [(x["start_us"], x["end_us"], x["state"], x["reason"]) for x in tl] == [
        (at(5, "09:00"), at(5, "09:40"), "down", "jam"),
        (at(5, "09:40"), at(5, "10:00"), "running", None),
        (at(5, "10:00"), at(5, "10:01"), "down", "jam"),
        (at(5, "10:01"), at(5, "10:30"), "running", None),
    ]
    before = rows(state_timeline(states(), "S1", at(5, "06:00"), at(5, "07:30")))
    assert [x["state"] for x in before] == ["unknown", "running"]


def test_station_without_events_is_unknown_time() -> None:
    ghost = Station(id="S9", ideal_cycle_s=10.0)
    rep = compute_oee([ghost], CALENDAR, states(), None, START, END)
    d = rows(rep.shifts)[0]
    # No machine planned_stop: PBT = 28 800 - break 1 800 - planned stop 3 600 = 23 400.
    assert d["unknown_s"] == d["pbt_s"] == 23_400
    assert d["availability"] == 0.0
    assert d["oee"] == 0.0
    assert d["effectiveness"] is None or np.isnan(d["effectiveness"])


def test_dst_night_shift_is_seven_hours() -> None:
    cal = ShiftCalendar(
        shifts=(Shift(name="n", start=time(22), end=time(6)),), timezone="Europe/Berlin"
    )
    berlin = ZoneInfo("Europe/Berlin")
    lo = from_datetime(datetime(2024, 3, 30, 12, tzinfo=berlin))
    hi = from_datetime(datetime(2024, 3, 31, 12, tzinfo=berlin))
    periods = cal.periods(lo, hi)
    # Clocks jump 02:00 -> 03:00 on 31 March: the night shift lasts 7 h.
    assert list((periods.end_us - periods.start_us) // 1_000_000) == [7 * 3600]


def test_weekday_filter_and_range_clipping() -> None:
    cal = ShiftCalendar(
        shifts=(Shift(name="d", start=time(8), end=time(16), weekdays=frozenset({0, 1, 2, 3, 4})),)
    )
    # 2024-03-08 is a Friday; Saturday and Sunday have no shift; clip Monday at 10:00.
    p = cal.periods(at(8, "12:00"), at(11, "10:00"))
    assert list(p.start_us) == [at(8, "12:00"), at(11, "08:00")]
    assert list(p.end_us) == [at(8, "16:00"), at(11, "10:00")]
