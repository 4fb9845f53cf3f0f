"""Fleet KPIs and activity index (hand-computed), battery watch, DM1 lifecycle."""

from __future__ import annotations

import numpy as np
import pytest

from ironbridge.analytics.battery import BatteryWatch, cell_outliers, soh_from_charging
from ironbridge.analytics.fleet import BucketFrame, activity_index, fleet_kpis, roll_up
from ironbridge.codec.j1939 import (
    DM1_PGN,
    CanFrame,
    Dm1,
    Dtc,
    Lamps,
    encode_dm1,
    encode_pgn,
    format_candump,
    make_can_id,
    segment_bam,
)
from ironbridge.connect.j1939_decoder import Dm1Tracker, J1939Decoder

H = 3_600_000_000
NAN = np.nan


def frame(rows: list[tuple[int, int, float, float, float, float, float]]) -> BucketFrame:
    a = np.array(rows, dtype=np.float64)
    return BucketFrame(
        asset=a[:, 0].astype(np.int64),
        bucket_us=(a[:, 1] * H).astype(np.int64),
        on=a[:, 2],
        speed=a[:, 3],
        fuel_rate=a[:, 4],
        odometer=a[:, 5],
        hour_meter=a[:, 6],
    )


def test_kpis_hand_computed() -> None:
    # asset 0: 4 one-hour buckets: on+moving, on+idle, on+moving, off.
    #   fuel 20 + 5 + 30 = 55 L; odometer 100 -> 160 km; no hour meter -> 3 on hours.
    # asset 1: hour meter 1000.0 -> 1001.0 -> 1002.0 (2 h), 2 on buckets, one idle; no odometer.
    f = frame(
        [
            (0, 0, 1, 60, 20, 100, NAN),
            (0, 1, 1, 0, 5, 100, NAN),
            (0, 2, 1, 60, 30, 160, NAN),
            (0, 3, 0, 0, NAN, 160, NAN),
            (1, 0, 1, 0, 4, NAN, 1000.0),
            (1, 1, 1, 10, 4, NAN, 1001.0),
            (1, 2, 0, 0, NAN, NAN, 1002.0),
        ]
    )
    k = fleet_kpis(f, 2, bucket_h=1.0, period_days=0.5, planned_h_per_day=8)
    np.testing.assert_allclose(k.engine_hours, [3.0, 2.0])
    np.testing.assert_allclose(k.idle_hours, [1.0, 1.0])
    np.testing.assert_allclose(k.idle_ratio, [1 / 3, 0.5])
    np.testing.assert_allclose(k.fuel_l, [55.0, 8.0])
    np.testing.assert_allclose(k.fuel_per_hour, [55 / 3, 4.0])
    np.testing.assert_allclose(k.distance_km, [60.0, 0.0])
    assert k.fuel_per_100km[0] == pytest.approx(55 / 60 * 100)
    assert np.isnan(k.fuel_per_100km[1])
    np.testing.assert_allclose(k.utilisation, [3 / 4, 2 / 4])
    g = roll_up(k, np.array([0, 0]), 1)
    assert g.engine_hours[0] == 5.0
    assert g.fuel_per_hour[0] == pytest.approx(63 / 5)
    assert g.idle_ratio[0] == pytest.approx(2 / 5)


def test_implausible_counter_jumps_are_dropped() -> None:
    # hour meter replaced (drops to 5) and an odometer jump of 10 000 km in an hour
    f = frame(
        [
            (0, 0, 1, 50, NAN, 100, 900.0),
            (0, 1, 1, 50, NAN, 10_100, 5.0),
            (0, 2, 1, 50, NAN, 10_150, 6.0),
        ]
    )
    k = fleet_kpis(f, 1, bucket_h=1.0, period_days=1)
    assert k.engine_hours[0] == pytest.approx(1.0)
    assert k.distance_km[0] == pytest.approx(50.0)


def test_activity_index_hand_computed() -> None:
    hours = np.array([[10.0, 0.0], [0.5, 20.0], [0.0, 30.0], [40.0, 0.0]])
    reported = np.array([[True, True], [True, True], [False, True], [True, False]])
    rows = activity_index(
        ["2026-01", "2026-02"], ["Shandong", "Shandong", "Shandong", "Hebei"], hours, reported
    )
    by = {(r.region, r.month): r for r in rows}
    jan = by[("Shandong", "2026-01")]
    assert (jan.machines_reporting, jan.machines_working) == (2, 2)
    assert jan.operating_rate == pytest.approx(1 / 2)  # 0.5 h < h_min 1
    assert jan.avg_hours == pytest.approx(10.5 / 2)
    feb = by[("Shandong", "2026-02")]
    assert feb.operating_rate == pytest.approx(2 / 3)
    assert feb.avg_hours == pytest.approx(25.0)
    assert by[("Hebei", "2026-02")].machines_reporting == 0


def cells(v: list[float]) -> dict[str, float | None]:
    return {f"cell_voltage_1_{i + 1}": x for i, x in enumerate(v)}


def test_cell_outlier_and_spread() -> None:
    v = np.full(20, 3.30)
    v[::2] += 0.002
    v[5] = 3.05
    assert cell_outliers(v, 4.0).tolist() == [5]
    w = BatteryWatch()
    events = w.observe("bus", 1_000_000, cells(v.tolist()))
    assert {e.code for e in events} == {"cell_voltage_outlier"}
    assert events[0].payload["cells"] == ["cell_voltage_1_6"]
    # raised once, then cleared when the cell recovers
    assert w.observe("bus", 11_000_000, cells(v.tolist())) == []
    v[5] = 3.30
    cleared = w.observe("bus", 21_000_000, cells(v.tolist()))
    assert [(e.code, e.payload["state"]) for e in cleared] == [("cell_voltage_outlier", "cleared")]


def test_thermal_runaway_needs_held_rise_and_drop_or_limit() -> None:
    w = BatteryWatch()
    base = {**cells([3.3] * 10), "max_probe_temp": 40.0}
    t = 0
    assert not [e for e in w.observe("b", t, base) if e.code == "thermal_runaway"]
    temps = [41.5, 43.0, 44.5, 46.0, 47.5]  # 1.5 °C/s for 5 s
    found = []
    for i, temp in enumerate(temps, 1):
        vals = {**cells([3.3] * 9 + [2.0 if i >= 4 else 3.3]), "max_probe_temp": temp}
        found += [e for e in w.observe("b", i * 1_000_000, vals) if e.code == "thermal_runaway"]
    assert len(found) == 1
    assert found[0].payload["severity"] == "critical"
    assert found[0].payload["voltage_drop"] is True
    assert found[0].payload["rise_held"] is True
    # the same rise without a drop and below the limit is only a warning
    w2 = BatteryWatch()
    codes = set()
    for i, temp in enumerate([40.0, *temps]):
        codes |= {
            e.code
            for e in w2.observe("b", i * 1_000_000, {**cells([3.3] * 10), "max_probe_temp": temp})
        }
    assert "thermal_runaway" not in codes
    assert "temperature_rise" in codes


def test_level_4_alarm_and_soc_jump() -> None:
    w = BatteryWatch()
    assert {e.code for e in w.observe("b", 0, {"soc": 50.0})} == set()
    ev = w.observe("b", 10_000_000, {"soc": 71.0, "alarm_level": 4.0})
    assert {e.code for e in ev} == {"soc_jump", "thermal_runaway"}


def test_soh_from_charging_ampere_hours() -> None:
    # 2 h charge at -50 A from 20 % to 60 %: 100 Ah for 40 % -> 250 Ah; rated 300 -> SOH 0.8333
    t = np.arange(0, 7201, 60) * 1_000_000
    soc = 20 + 40 * (t - t[0]) / (t[-1] - t[0])
    sessions = soh_from_charging(
        t, np.full(t.size, -50.0), soc, np.ones(t.size, bool), rated_ah=300
    )
    assert len(sessions) == 1
    assert sessions[0].capacity_ah == pytest.approx(250.0)
    assert sessions[0].soh == pytest.approx(250 / 300)
    # too small a SOC gain is ignored
    assert (
        soh_from_charging(t[:10], np.full(10, -50.0), soc[:10], np.ones(10, bool), rated_ah=300)
        == []
    )


def dm1(*dtcs: Dtc) -> Dm1:
    return Dm1(
        lamps=Lamps(mil=False, red_stop=False, amber_warning=bool(dtcs), protect=False), dtcs=dtcs
    )


def test_dm1_tracker_lifecycle() -> None:
    tr = Dm1Tracker()
    a = Dtc(spn=110, fmi=0, oc=1)
    b = Dtc(spn=100, fmi=1, oc=3)
    assert [(e.code, e.payload["state"]) for e in tr.update("x", 0, 1, dm1(a))] == [
        ("SPN110-FMI0", "opened")
    ]
    assert tr.update("x", 0, 2, dm1(a)) == []
    ev = tr.update("x", 0, 3, dm1(Dtc(spn=110, fmi=0, oc=2), b))
    assert [(e.code, e.payload["state"]) for e in ev] == [
        ("SPN110-FMI0", "recurred"),
        ("SPN100-FMI1", "opened"),
    ]
    ev = tr.update("x", 0, 4, dm1())
    assert sorted((e.code, e.payload["state"]) for e in ev) == [
        ("SPN100-FMI1", "cleared"),
        ("SPN110-FMI0", "cleared"),
    ]
    # another source address is independent
    assert tr.update("x", 3, 5, dm1(a))[0].payload["sa"] == 3


def test_j1939_decoder_spns_and_multipacket_dm1() -> None:
    lines = [
        format_candump(
            CanFrame(
                ts=100.0,
                channel="can0",
                can_id=make_can_id(61444, 0),
                extended=True,
                data=encode_pgn(61444, {"engine_speed": 1200.0}),
            )
        ),
        format_candump(
            CanFrame(
                ts=100.1,
                channel="can0",
                can_id=make_can_id(65266, 0),
                extended=True,
                data=encode_pgn(65266, {"fuel_rate": 25.5}),
            )
        ),
        "not a line",
    ]
    payload = encode_dm1(
        dm1(Dtc(spn=110, fmi=0, oc=1), Dtc(spn=100, fmi=1, oc=2), Dtc(spn=190, fmi=2, oc=1))
    )
    assert len(payload) > 8
    for i, (can_id, data) in enumerate(segment_bam(DM1_PGN, payload, sa=0)):
        lines.append(
            format_candump(
                CanFrame(
                    ts=101.0 + i * 0.05, channel="can0", can_id=can_id, extended=True, data=data
                )
            )
        )
    out = J1939Decoder("truck-1").feed_lines(lines)
    assert out.samples[100_000] == {"engine_speed": 1200.0}
    assert out.samples[100_100]["fuel_rate"] == pytest.approx(25.5)
    assert sorted(e.code for e in out.events) == ["SPN100-FMI1", "SPN110-FMI0", "SPN190-FMI2"]
    assert out.errors[0][0] == 3
    assert "candump" in out.errors[0][1]


@pytest.mark.parametrize("n", [1, 2, 3, 96, 97])
def test_short_array_median_matches_numpy(n: int) -> None:
    from ironbridge.analytics.battery import _median

    v = np.random.default_rng(n).normal(3.6, 0.01, n)
    assert _median(v) == pytest.approx(float(np.median(v)), abs=0)
