"""OEE benchmark: ironbridge.analytics.oee against a straightforward pandas implementation.

Setup: N stations x D days of state data at 1-second resolution, stored the way a
plant historian stores it -- as state-change events (a change every few minutes:
running stretches of ~8 min, stops of seconds to half an hour, die changes, planned
stops), plus part counts every 15 minutes. A three-shift calendar (06-14, 14-22,
22-06 across midnight), a 30-min break per shift and a monthly 8-hour planned
maintenance stop, time zone Asia/Shanghai. Both implementations compute the ISO
22400-2 times, part counts, availability, effectiveness, quality, OEE and micro-stop
time per station per shift instance and per production day; the results must agree
to 1e-9.

Baseline: pandas, event-based (a 1 s sampled series of the full size would be
N x D x 86 400 rows -- 6.3 billion for 200 x 365 -- which does not fit in memory), in
chunks of stations to bound memory: cut each station's timeline at the calendar
boundaries, forward-fill the state, label segments with merge_asof, groupby-sum. A
1 s sampled pandas variant is also run on a small slice to check it agrees and to show
its per-station-day cost.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time as _time
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from ironbridge.analytics.oee import CountLog, StateLog, compute_oee
from ironbridge.analytics.plant import (
    Break,
    PlannedStop,
    Shift,
    ShiftCalendar,
    Station,
    StationState,
)
from ironbridge.model import from_datetime

S = 1_000_000
TZ = ZoneInfo("Asia/Shanghai")
RUN, IDLE, DOWN, PLAN, SETUP = (
    StationState(s).code for s in ("running", "idle", "down", "planned_stop", "setup")
)
PRI_S = 6.0
MICRO_S = 120.0


def make_calendar(start_day: date, days: int) -> ShiftCalendar:
    stops = []
    for month_start in pd.date_range(start_day, start_day + timedelta(days=days), freq="MS"):
        d = month_start.date() + timedelta(days=9)
        stops.append(
            PlannedStop(
                start_us=from_datetime(datetime.combine(d, time(8), TZ)),
                end_us=from_datetime(datetime.combine(d, time(16), TZ)),
                reason="maintenance",
            )
        )
    return ShiftCalendar(
        shifts=(
            Shift(
                name="early",
                start=time(6),
                end=time(14),
                breaks=(Break(start=time(10), end=time(10, 30)),),
            ),
            Shift(
                name="late",
                start=time(14),
                end=time(22),
                breaks=(Break(start=time(18), end=time(18, 30)),),
            ),
            Shift(
                name="night",
                start=time(22),
                end=time(6),
                breaks=(Break(start=time(2), end=time(2, 30)),),
            ),
        ),
        planned_stops=tuple(stops),
    )


def make_station_events(
    rng: np.random.Generator, start_us: int, end_us: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    span_s = (end_us - start_us) // S
    n = int(span_s / 330 * 1.3) + 16
    # Alternate running stretches with a stop of some kind.
    stop_kind = rng.choice([DOWN, IDLE, SETUP, PLAN], size=n, p=[0.55, 0.38, 0.05, 0.02])
    stop_dur = np.where(
        stop_kind == DOWN,
        rng.exponential(240, n),
        np.where(
            stop_kind == IDLE,
            rng.exponential(60, n),
            np.where(stop_kind == SETUP, rng.normal(1200, 200, n), rng.normal(3600, 600, n)),
        ),
    )
    run_dur = rng.exponential(480, n)
    durs = np.empty(2 * n)
    durs[0::2], durs[1::2] = run_dur, stop_dur
    durs = np.maximum(np.rint(durs), 1).astype(np.int64)  # 1-second resolution
    states = np.empty(2 * n, np.int8)
    states[0::2], states[1::2] = RUN, stop_kind
    ts = start_us + np.concatenate(([0], np.cumsum(durs[:-1]))) * S
    keep = ts < end_us
    reasons = np.where(states == DOWN, rng.integers(0, 8, 2 * n), -1).astype(np.int32)
    return ts[keep], states[keep], reasons[keep]


def make_data(n_stations: int, days: int, seed: int = 42):
    start_day = date(2024, 1, 1)
    start_us = from_datetime(datetime.combine(start_day, time(), TZ))
    end_us = from_datetime(datetime.combine(start_day + timedelta(days=days), time(), TZ))
    rng = np.random.default_rng(seed)
    parts = [make_station_events(rng, start_us, end_us) for _ in range(n_stations)]
    station = np.concatenate([np.full(len(p[0]), i, np.int32) for i, p in enumerate(parts)])
    names = tuple(f"st{i:03d}" for i in range(n_stations))
    log = StateLog(
        names,
        tuple(f"r{i}" for i in range(8)),
        station,
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )
    c_ts = np.arange(start_us + 7 * 60 * S, end_us, 15 * 60 * S, dtype=np.int64)
    n_c = len(c_ts)
    counts = CountLog(
        names,
        np.repeat(np.arange(n_stations, dtype=np.int32), n_c),
        np.tile(c_ts, n_stations),
        rng.poisson(110, n_c * n_stations),
        rng.poisson(2, n_c * n_stations),
    )
    stations = [Station(id=n, ideal_cycle_s=PRI_S, micro_stop_s=MICRO_S) for n in names]
    return stations, make_calendar(start_day, days), log, counts, start_us, end_us


# ------------------------------------------------------------------- pandas baseline

COLS = [
    "pot_s",
    "pdot_s",
    "pbt_s",
    "apt_s",
    "setup_s",
    "delay_s",
    "down_s",
    "micro_stop_s",
    "good",
    "scrap",
    "availability",
    "effectiveness",
    "quality",
    "oee",
]


def _ratios(df: pd.DataFrame) -> pd.DataFrame:
    produced = df["good"] + df["scrap"]
    df["availability"] = df["apt_s"] / df["pbt_s"]
    df["effectiveness"] = produced * PRI_S / df["apt_s"]
    df["quality"] = df["good"] / produced
    df["oee"] = produced * PRI_S * (df["good"] / produced) / df["pbt_s"]
    return df


def pandas_oee(
    log: StateLog, counts: CountLog, cal, start_us: int, end_us: int, chunk: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    periods = pd.DataFrame(
        {"p_start": cal.start_us, "p_end": cal.end_us, "day": cal.day}
    ).reset_index(names="period")
    windows = pd.DataFrame({"w_start": cal.window_start_us, "w_end": cal.window_end_us})
    bounds = np.unique(
        np.concatenate([cal.start_us, cal.end_us, cal.window_start_us, cal.window_end_us])
    )
    out = []
    n_st = len(log.stations)
    for lo in range(0, n_st, chunk):
        sel = (log.station >= lo) & (log.station < lo + chunk)
        ev = pd.DataFrame(
            {"station": log.station[sel], "ts": log.ts_us[sel], "state": log.state[sel]}
        )
        ev["end"] = ev.groupby("station")["ts"].shift(-1).fillna(end_us).astype("int64")
        ev["micro"] = ev["state"].isin([DOWN, IDLE]) & ((ev["end"] - ev["ts"]) < MICRO_S * S)
        cuts = pd.DataFrame(
            {
                "station": np.repeat(np.arange(lo, min(lo + chunk, n_st)), len(bounds)),
                "ts": np.tile(bounds, min(chunk, n_st - lo)),
            }
        )
        seg = pd.concat([ev[["station", "ts", "state", "micro"]], cuts], ignore_index=True)
        seg = seg.sort_values(["station", "ts"], kind="stable")
        seg[["state", "micro"]] = seg.groupby("station")[["state", "micro"]].ffill()
        seg["dur"] = seg.groupby("station")["ts"].shift(-1).fillna(end_us) - seg["ts"]
        seg = seg[seg["dur"] > 0].sort_values("ts")
        seg = pd.merge_asof(seg, periods, left_on="ts", right_on="p_start")
        seg = seg[seg["ts"] < seg["p_end"]]
        seg = pd.merge_asof(seg, windows, left_on="ts", right_on="w_start")
        in_win = seg["ts"] < seg["w_end"].fillna(-1)
        busy = seg[~in_win]
        t = busy.pivot_table(
            index=["station", "period"], columns="state", values="dur", aggfunc="sum", fill_value=0
        )
        t = t.reindex(columns=range(len(StationState)), fill_value=0)
        t["micro"] = busy[busy["micro"].astype(bool)].groupby(["station", "period"])["dur"].sum()
        out.append(t.fillna(0))
    t = pd.concat(out)
    full = pd.MultiIndex.from_product([range(n_st), periods["period"]], names=["station", "period"])
    t = t.reindex(full, fill_value=0)
    wlen = (
        (windows["w_end"] - windows["w_start"])
        .groupby(np.searchsorted(cal.start_us, windows["w_start"], side="right") - 1)
        .sum()
    )
    res = pd.DataFrame(index=full)
    per = periods.set_index("period")
    res["pot_s"] = np.tile((per["p_end"] - per["p_start"]).to_numpy(), n_st) / S
    w = wlen.reindex(per.index, fill_value=0).to_numpy()
    res["pdot_s"] = (np.tile(w, n_st) + t[PLAN].to_numpy()) / S
    res["pbt_s"] = res["pot_s"] - res["pdot_s"]
    res["apt_s"] = t[RUN].to_numpy() / S
    res["setup_s"] = t[SETUP].to_numpy() / S
    res["delay_s"] = t[IDLE].to_numpy() / S
    res["down_s"] = t[DOWN].to_numpy() / S
    res["micro_stop_s"] = t["micro"].to_numpy() / S
    cdf = pd.DataFrame(
        {"station": counts.station, "ts": counts.ts_us, "good": counts.good, "scrap": counts.scrap}
    ).sort_values("ts")
    cdf = pd.merge_asof(cdf, periods, left_on="ts", right_on="p_start")
    cdf = cdf[cdf["ts"] < cdf["p_end"]]
    cs = cdf.groupby(["station", "period"])[["good", "scrap"]].sum().reindex(full, fill_value=0)
    res[["good", "scrap"]] = cs.astype("float64")
    res["day"] = np.tile(per["day"].to_numpy(), n_st)
    shifts = _ratios(res)
    days = res.drop(columns=["availability", "effectiveness", "quality", "oee"]).reset_index()
    days = _ratios(days.groupby(["station", "day"])[COLS[:10]].sum())
    return shifts, days


def pandas_sampled_oee(
    log: StateLog, counts: CountLog, cal, stations: int, start_us: int, end_us: int
) -> pd.DataFrame:
    """The naive reading: one row per station-second, state forward-filled."""
    frames = []
    grid = np.arange(start_us, end_us, S)
    gridx = pd.DataFrame({"ts": grid})
    periods = pd.DataFrame({"p_start": cal.start_us, "p_end": cal.end_us}).reset_index(
        names="period"
    )
    windows = pd.DataFrame({"w_start": cal.window_start_us, "w_end": cal.window_end_us})
    for i in range(stations):
        sel = log.station == i
        ev = pd.DataFrame({"ts": log.ts_us[sel], "state": log.state[sel]})
        ev["micro"] = ev["state"].isin([DOWN, IDLE]) & (
            (ev["ts"].shift(-1).fillna(end_us) - ev["ts"]) < MICRO_S * S
        )
        sec = pd.merge_asof(gridx, ev, on="ts")
        sec = pd.merge_asof(sec, periods, left_on="ts", right_on="p_start")
        sec = sec[sec["ts"] < sec["p_end"]]
        sec = pd.merge_asof(sec, windows, left_on="ts", right_on="w_start")
        sec = sec[~(sec["ts"] < sec["w_end"].fillna(-1))]
        g = sec.groupby(["period", "state"]).size().unstack(fill_value=0)
        g = g.reindex(columns=range(len(StationState)), fill_value=0)
        g["micro_stop_s"] = sec[sec["micro"]].groupby("period").size()
        g["station"] = i
        frames.append(g.fillna(0).reset_index())
    return pd.concat(frames)


# ------------------------------------------------------------------------------- main


def compare(ours: pd.DataFrame, theirs: pd.DataFrame, label: str) -> float:
    worst = 0.0
    for col in COLS:
        a, b = ours[col].to_numpy(float), theirs[col].to_numpy(float)
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.where(both_nan, 0.0, np.abs(a - b))
        if np.isnan(diff).any() or diff.max(initial=0) > 1e-9:
            raise AssertionError(f"{label}.{col} differs: max {np.nanmax(diff)}")
        worst = max(worst, float(diff.max(initial=0)))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="20 stations x 30 days")
    ap.add_argument("--stations", type=int)
    ap.add_argument("--days", type=int)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "factory.json"))
    ap.add_argument(
        "--section", choices=("all", "oee", "opcua"), default="all", help="what to measure"
    )
    args = ap.parse_args()
    opcua: dict[str, object] | None = None
    if args.section in ("all", "opcua"):
        from factory_opcua import run as run_opcua  # bench/ is on sys.path as the script dir

        opcua = run_opcua(args.quick)
    if args.section == "opcua":
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"benchmark": "factory.opcua", "opcua": opcua}, indent=2) + "\n")
        print(f"wrote {out}")
        return
    n_st = args.stations or (20 if args.quick else 200)
    days = args.days or (30 if args.quick else 365)

    t0 = _time.perf_counter()
    stations, calendar, log, counts, start_us, end_us = make_data(n_st, days)
    gen_s = _time.perf_counter() - t0
    print(__doc__)
    print(
        f"data: {n_st} stations x {days} days = {n_st * days * 86_400:,} station-seconds; "
        f"{len(log.ts_us):,} state events; {len(counts.ts_us):,} count rows "
        f"(generated in {gen_s:.1f} s)"
    )

    t0 = _time.perf_counter()
    report = compute_oee(stations, calendar, log, counts, start_us, end_us)
    ours_s = _time.perf_counter() - t0
    cal = calendar.periods(start_us, end_us)

    t0 = _time.perf_counter()
    pd_shifts, pd_days = pandas_oee(log, counts, cal, start_us, end_us)
    pandas_s = _time.perf_counter() - t0

    ours_shifts = report.shifts.to_pandas()
    ours_days = report.days.to_pandas()
    worst = max(
        compare(ours_shifts, pd_shifts.reset_index(drop=True), "shift"),
        compare(ours_days, pd_days.reset_index(drop=True), "day"),
    )

    # Small slice of the naive 1 s sampled reading, checked against ours.
    s_st, s_days = min(2, n_st), min(3, days)
    s_end = start_us + s_days * 86_400 * S
    sub = StateLog(
        log.stations[:s_st],
        log.reasons,
        *(a[log.station < s_st] for a in (log.station, log.ts_us, log.state, log.reason)),
    )
    t0 = _time.perf_counter()
    sampled = pandas_sampled_oee(
        sub, counts, calendar.periods(start_us, s_end), s_st, start_us, s_end
    )
    sampled_s = _time.perf_counter() - t0
    small = compute_oee(stations[:s_st], calendar, sub, None, start_us, s_end).shifts.to_pandas()
    assert np.array_equal(small["apt_s"].to_numpy(), sampled[RUN].to_numpy(float))
    assert np.array_equal(small["down_s"].to_numpy(), sampled[DOWN].to_numpy(float))
    assert np.array_equal(small["micro_stop_s"].to_numpy(), sampled["micro_stop_s"].to_numpy(float))
    sampled_per_station_day = sampled_s / (s_st * s_days)

    speedup = pandas_s / ours_s
    rows = [
        ("ironbridge.analytics.oee (events, numpy)", ours_s, 1.0),
        ("pandas, event-based (baseline)", pandas_s, speedup),
        (
            "pandas, 1 s sampled (extrapolated from slice)",
            sampled_per_station_day * n_st * days,
            sampled_per_station_day * n_st * days / ours_s,
        ),
    ]
    print(f"\n{'implementation':<48} {'time s':>10} {'vs ours':>10}")
    for name, secs, ratio in rows:
        print(f"{name:<48} {secs:>10.2f} {ratio:>9.1f}x")
    print(
        f"\nshift rows {report.shifts.num_rows:,}, day rows {report.days.num_rows:,}; "
        f"max abs difference vs pandas {worst:.2e} (tolerance 1e-9)"
    )
    print(f"1 s sampled slice ({s_st} stations x {s_days} days) took {sampled_s:.2f} s and agrees")
    print(f"speedup {speedup:.1f}x (target >= 5x): {'PASS' if speedup >= 5 else 'MISS'}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "factory.oee",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "python": sys.version.split()[0],
                    "platform": platform.platform(),
                    "numpy": np.__version__,
                    "pandas": pd.__version__,
                },
                "quick": bool(args.quick),
                "stations": n_st,
                "days": days,
                "state_events": len(log.ts_us),
                "count_rows": len(counts.ts_us),
                "shift_rows": report.shifts.num_rows,
                "day_rows": report.days.num_rows,
                "ironbridge_s": ours_s,
                "pandas_event_s": pandas_s,
                "speedup": speedup,
                "target_speedup": 5.0,
                "max_abs_diff": worst,
                "pandas_sampled_slice": {
                    "stations": s_st,
                    "days": s_days,
                    "seconds": sampled_s,
                    "extrapolated_full_s": sampled_per_station_day * n_st * days,
                },
                "opcua": opcua,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
