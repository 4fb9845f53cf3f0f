"""Rules benchmark: 1 000 assets, 5 000 active (asset, rule) bindings, 200 000 points/s.

Run: ``.venv/bin/python bench/rules.py [--quick] [--no-live]``

Reports, in one run, with the machine's 1-minute load average next to each figure:

* **engine** (in process): 1 000 assets of 5 asset types, 5 rules of different kinds on
  each type (threshold with deadband and on/off delay, rate of change, expression over
  two measurements, geofence, no-data; per-asset overrides on 10 % of the assets), so
  5 000 bindings, fed a stream of 200 000 points/s (5 000 series at 40 Hz) in 0.1 s
  batches with the 0.5 s timer tick: sustained points/s (wall and CPU), batch time
  p50/p99, the count check (every point evaluated), peak RSS; the baseline is a plain
  numpy threshold pass over the same arrays (one limit per series, compare, count);
* **live** (a real platform subprocess: embedded NATS, rules worker, API): the same
  assets and rules created over the API, normalised batches published over JetStream on
  ``ib.norm.points`` at 200 000 points/s into the running rules worker; meanwhile a probe
  rule is raised and cleared again and again and the latency from publish to the
  alarm's change visible in ``GET /api/v1/alarms`` is measured (p50/p99, target p99 <
  1 s); the worker's own point counter must equal the points published (nothing
  skipped, nothing counted twice); the platform's peak RSS.

Results go to bench/results/rules.json (rules-quick.json with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from ironbridge.rules import RuleEngine, SeriesInfo, parse_rule
from ironbridge.store.points import PointBatch

RATE = 200_000
ASSETS = 1000
TYPES = 5
MEAS = ("temp", "rpm", "oil", "latitude", "longitude")
BATCH_S = 0.1
US = 1_000_000
POLYGON = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]]


def load() -> float:
    """The 1-minute load average (2 shared cores: above 2 means queued work)."""
    return round(os.getloadavg()[0], 2)


def rule_defs() -> list[dict[str, Any]]:
    """Five rules of five kinds per asset type; overrides on every tenth asset."""
    out: list[dict[str, Any]] = []
    for k in range(TYPES):
        t = f"bench_t{k}"
        assets = [f"b{a:04d}" for a in range(k, ASSETS, TYPES)]
        out += [
            {
                "id": f"hot-{k}",
                "kind": "threshold",
                "asset_type": t,
                "severity": "major",
                "on_delay_s": 2,
                "off_delay_s": 1,
                "params": {"measurement": "temp", "limit": 100 + k, "deadband": 3},
                "overrides": {a: {"limit": 105 + k} for a in assets[::10]},
            },
            {
                "id": f"roc-{k}",
                "kind": "rate_of_change",
                "asset_type": t,
                "severity": "minor",
                "params": {"measurement": "temp", "limit_per_s": 900 + 10 * k, "direction": "rise"},
            },
            {
                "id": f"oil-{k}",
                "kind": "expression",
                "asset_type": t,
                "severity": "critical",
                "params": {"expression": f"rpm > 500 && oil < {100 - k}"},
            },
            {
                "id": f"geo-{k}",
                "kind": "geofence",
                "asset_type": t,
                "severity": "warning",
                "params": {"polygon": POLYGON},
            },
            {
                "id": f"off-{k}",
                "kind": "no_data",
                "asset_type": t,
                "severity": "major",
                "params": {"timeout_s": 60},
            },
        ]
    return out


def _levels() -> tuple[np.ndarray, np.ndarray]:
    """Per-series level and noise: most assets normal, a few in each fault, some flapping."""
    a = np.arange(ASSETS)
    temp = np.where(a % 50 == 0, 104.0, 85.0)  # 2 % overheating
    temp_sd = np.where(a % 97 == 1, 6.0, 1.0)  # 1 % around the limit: chattering
    temp = np.where(a % 97 == 1, 100.0, temp)
    oil = np.where(a % 37 == 0, 80.0, 150.0)  # 3 % low oil pressure while running
    lat = np.where(a % 41 == 0, 12.0, 5.0)  # 2 % outside the geofence
    level = np.stack([temp, np.full(ASSETS, 800.0), oil, lat, np.full(ASSETS, 5.0)], 1)
    sd = np.stack(
        [temp_sd, np.full(ASSETS, 20.0), np.full(ASSETS, 3.0)] + [np.full(ASSETS, 0.01)] * 2, 1
    )
    return level.ravel(), sd.ravel()


LEVEL, NOISE = _levels()


def values_for(series: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Readings of series ``5 * asset + measurement`` around their level."""
    return LEVEL[series] + rng.standard_normal(len(series)) * NOISE[series]


def make_batches(n: int, seed: int = 1) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``n`` consecutive 0.1 s batches of (series, µs offset in the batch, value).

    Every series samples at 40 Hz (every 25 ms) with its own phase, as a device's sensor
    does, so consecutive readings of a series are 25 ms apart (rate of change sees the
    real slope); the batch is in time order.
    """
    rng = np.random.default_rng(seed)
    n_series = ASSETS * 5
    period = int(US * n_series / RATE)  # 25 000 µs
    per_batch = int(BATCH_S * US) // period  # 4 samples of each series
    phase = rng.integers(0, period, n_series)
    series = np.tile(np.arange(n_series, dtype=np.int64), per_batch)
    offset = np.repeat(np.arange(per_batch, dtype=np.int64) * period, n_series) + phase[series]
    order = np.argsort(offset, kind="stable")
    series, offset = series[order], offset[order]
    return [(series, offset, values_for(series, rng)) for _ in range(n)]


# -- engine, in process -----------------------------------------------------------------


def engine_phase(seconds: float) -> dict[str, Any]:
    rules = [parse_rule(d, tenant_id="root", tenant_path="/") for d in rule_defs()]
    eng = RuleEngine()
    eng.set_rules(rules, 0)
    eng.add_series(
        [
            SeriesInfo(a * 5 + j, f"b{a:04d}", f"bench_t{a % TYPES}", m, "/")
            for a in range(ASSETS)
            for j, m in enumerate(MEAS)
        ],
        0,
    )
    pool = make_batches(50)
    size = len(pool[0][0])
    n_batches = int(seconds / BATCH_S)
    load_before = load()
    times = []
    transitions = 0
    fed = 0
    c0, w0 = time.process_time(), time.perf_counter()
    for k in range(n_batches):
        series, offset, value = pool[k % len(pool)]
        ts = k * int(BATCH_S * US) + offset + 1
        t = time.perf_counter()
        transitions += len(eng.process(PointBatch(series, ts, value), int(ts[-1])))
        if k % 5 == 4:
            transitions += len(eng.tick(int(ts[-1])))
        times.append(time.perf_counter() - t)
        fed += size
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    # baseline: one limit per series, compare, count, over the same arrays
    limits = np.where(np.arange(ASSETS * 5) % 5 == 0, 100.0, np.inf)
    b0 = time.perf_counter()
    hits = 0
    for k in range(n_batches):
        series, _, value = pool[k % len(pool)]
        hits += int(np.count_nonzero(value > limits[series]))
    base = time.perf_counter() - b0
    ms = np.array(times) * 1000
    return {
        "assets": ASSETS,
        "rules": len(rules),
        "bindings": eng.bindings,
        "stream_points_per_s": RATE,
        "points_fed": fed,
        "points_evaluated": eng.points_evaluated,
        "skipped": fed - eng.points_evaluated,
        "transitions": transitions,
        "points_per_s_wall": round(fed / wall),
        "points_per_s_cpu": round(fed / cpu),
        "headroom_x": round(fed / wall / RATE, 2),
        "batch_ms_p50": round(float(np.percentile(ms, 50)), 2),
        "batch_ms_p99": round(float(np.percentile(ms, 99)), 2),
        "baseline_numpy_points_per_s": round(fed / base),
        "engine_vs_baseline_x": round(wall / base, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_1min": [load_before, load()],
    }


# -- live: a platform subprocess, over the bus --------------------------------------------


def _provision(api: Any) -> None:
    types = [
        {
            "name": f"bench_t{k}",
            "version": 1,
            "measurements": [{"name": m, "unit": "", "min": -1e9, "max": 1e9} for m in MEAS],
        }
        for k in range(TYPES)
    ]
    types.append(
        {
            "name": "bench_probe",
            "version": 1,
            "measurements": [{"name": "probe", "unit": "", "min": -1e9, "max": 1e9}],
        }
    )
    assets = [
        {"id": f"b{a:04d}", "type_name": f"bench_t{a % TYPES}", "name": f"b{a:04d}"}
        for a in range(ASSETS)
    ]
    assets.append({"id": "probe", "type_name": "bench_probe", "name": "probe"})
    doc = json.dumps({"asset_types": types, "assets": assets})
    r = api.post(
        "/api/v1/registry/import",
        content=doc,
        headers={"Content-Type": "application/yaml"},
        timeout=600,  # 1 000 assets and 5 000 series in one transaction
    )
    assert r.status_code == 200, r.text
    defs = [*rule_defs()]
    defs.append(
        {
            "id": "probe",
            "kind": "threshold",
            "asset_id": "probe",
            "severity": "minor",  # no work order per probe cycle
            "params": {"measurement": "probe", "limit": 0.5},
        }
    )
    for d in defs:
        r = api.post("/api/v1/rules", json=d)
        assert r.status_code == 201, r.text


def _series_ids(data_dir: Path) -> tuple[np.ndarray, int]:
    con = sqlite3.connect(data_dir / "registry.sqlite3")
    rows = con.execute("SELECT id, asset_id, measurement FROM series").fetchall()
    con.close()
    ids = np.zeros(ASSETS * 5, np.int64)
    probe = -1
    for sid, asset, meas in rows:
        if asset == "probe":
            probe = sid
        elif asset.startswith("b") and meas in MEAS:
            ids[int(asset[1:]) * 5 + MEAS.index(meas)] = sid
    assert probe > 0
    assert ids.all()
    return ids, probe


async def _live(p: Any, seconds: float, rate: int) -> dict[str, Any]:
    import httpx
    import nats

    from ironbridge.ingest.worker import batch_to_ipc

    secret = next(p.data_dir.rglob("internal.secret")).read_text().strip()
    nc = await nats.connect(f"nats://127.0.0.1:{p.nats_port}", user="ib-internal", password=secret)
    js = nc.jetstream(timeout=10)
    sync_api = p.client()
    api = httpx.AsyncClient(base_url=p.url, headers=dict(sync_api.headers), timeout=10)
    ids, probe_sid = _series_ids(p.data_dir)
    published = 0

    async def send(series: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        nonlocal published
        await js.publish("ib.norm.points", batch_to_ipc(PointBatch(series, ts, value)))
        published += len(series)

    async def stats() -> dict[str, Any]:
        return dict((await api.get("/api/v1/rules-stats")).json())

    # warm-up: every series once, until the worker has bound all 5 001 (asset, rule) pairs
    now = int(time.time() * US)
    # (at the series' normal levels: zeros would put every asset outside its geofence)
    await send(ids, np.full(len(ids), now, np.int64), LEVEL.copy())
    await send(np.array([probe_sid]), np.array([now]), np.array([0.0]))
    t_end = time.monotonic() + 120
    while (await stats())["bindings"] < ASSETS * 5 + 1:
        assert time.monotonic() < t_end, "the rules worker did not bind every rule"
        await asyncio.sleep(0.2)

    pool = make_batches(20, seed=2)
    size = len(pool[0][0])
    chunk = 4000  # points per message: 50 messages/s at 200 000 points/s
    interval = chunk / rate
    stretch = RATE // rate if rate < RATE else 1  # a lower rate: sensors sample slower
    stop = asyncio.Event()
    load_points = 0
    lag_s: list[float] = []

    async def loader() -> None:
        nonlocal load_points
        start = time.monotonic()
        t_data = int(time.time() * US)
        k = 0
        while not stop.is_set():
            due = start + k * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                lag_s.append(-delay)
            kb, lo = divmod(k * chunk, size)
            series, offset, value = pool[kb % len(pool)]
            s, v = ids[series[lo : lo + chunk]], value[lo : lo + chunk]
            # data time runs at the offered rate from the loader's start
            ts = t_data + int(kb * BATCH_S * US * stretch) + offset[lo : lo + chunk] * stretch
            await send(s, ts, v)
            load_points += len(s)
            k += 1

    latencies: dict[str, list[float]] = {"raise": [], "clear": []}

    async def probe() -> None:
        """Raise, clear and acknowledge the probe alarm in a loop; time each change."""
        while not stop.is_set():
            for high in (True, False):
                ts = int(time.time() * US)
                t0 = time.perf_counter()
                await send(np.array([probe_sid]), np.array([ts]), np.array([1.0 if high else 0.0]))
                while True:
                    got = (await api.get("/api/v1/alarms", params={"rule_id": "probe"})).json()
                    a = got[0] if got else None
                    if a is not None and (
                        (high and a["active"] and a["activated_us"] == ts)
                        or (not high and not a["active"])
                    ):
                        break
                    if time.perf_counter() - t0 > 30:
                        st = await stats()
                        raise AssertionError(
                            f"the probe alarm did not change within 30 s: published "
                            f"{published}, worker counted {st['points']}"
                        )
                    await asyncio.sleep(0.02)  # 50 polls/s: the API shares the worker's CPU
                latencies["raise" if high else "clear"].append(time.perf_counter() - t0)
            r = await api.post(f"/api/v1/alarms/{a['id']}/acknowledge", json={})
            assert r.status_code == 200, r.text

    st0 = await stats()
    load_before = load()
    w0 = time.monotonic()
    tasks = [asyncio.create_task(loader()), asyncio.create_task(probe())]
    samples = []
    while time.monotonic() - w0 < seconds:
        await asyncio.sleep(1.0)
        samples.append((round(time.monotonic() - w0, 1), (await stats())["points"], published))
        print("live: s, worker points, published:", *samples[-1], file=sys.stderr)
    stop.set()
    await asyncio.gather(*tasks)
    t_pub = time.monotonic() - w0
    load_during = load()
    deadline = time.monotonic() + 120
    while True:
        st = await stats()
        if st["points"] >= published or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    t_done = time.monotonic() - w0
    await asyncio.sleep(1.0)  # anything counted twice would show up now
    st = await stats()
    processed = st["points"] - st0["points"]
    sent = load_points + sum(len(v) for v in latencies.values())
    await api.aclose()
    await nc.close()
    all_lat = np.array(latencies["raise"] + latencies["clear"]) * 1000
    return {
        "published_points": published,
        "worker_points": st["points"],
        "skipped": published - st["points"],
        "skipped_redelivered": st["skipped_redelivered"],
        "worker_transitions": st["transitions"],
        "open_alarms": len((sync_api.get("/api/v1/alarms", params={"limit": 10000})).json()),
        "target_points_per_s": rate,
        "load_points_per_s_offered": round(load_points / t_pub),
        "publisher_late_max_ms": round(max(lag_s, default=0.0) * 1000, 1),
        "worker_points_per_s": round(processed / t_done),
        # slopes over the load window (1 s samples): what was offered, what was evaluated
        "offered_points_per_s_window": _slope(samples, 2),
        "worker_points_per_s_window": _slope(samples, 1),
        "worker_behind_max_points": max((p - w for _, w, p in samples), default=0),
        "samples_s_worker_published": samples,
        "catch_up_after_publish_s": round(t_done - t_pub, 2),
        "probe_samples": len(all_lat),
        "alarm_latency_ms_p50": round(float(np.percentile(all_lat, 50)), 1),
        "alarm_latency_ms_p99": round(float(np.percentile(all_lat, 99)), 1),
        "alarm_latency_ms_max": round(float(all_lat.max()), 1),
        "raise_latency_ms_p50": round(float(np.median(latencies["raise"])) * 1000, 1),
        "sent_during_load": sent,
        "load_1min": [load_before, load_during],
    }


def _slope(samples: list[tuple[float, int, int]], col: int) -> int:
    if len(samples) < 2:
        return 0
    (t0, *a), (t1, *b) = samples[0], samples[-1]
    return round((b[col - 1] - a[col - 1]) / (t1 - t0))


def live_phase(seconds: float, rate: int) -> dict[str, Any]:
    from harness import PlatformProcess

    with tempfile.TemporaryDirectory(prefix="bench-rules-") as tmp:
        for attempt in range(3):  # free ports are picked before the child binds them
            try:
                p = PlatformProcess(Path(tmp) / f"data{attempt}").start(timeout=120)
                break
            except AssertionError as exc:
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
        try:
            _provision(p.client())
            out = asyncio.run(_live(p, seconds, rate))
            assert p.proc is not None
            status = Path(f"/proc/{p.proc.pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            out["platform_peak_rss_mb"] = round(int(hwm.split()[1]) / 1024)
        except BaseException:
            kept = Path(tempfile.gettempdir()) / "bench-rules-platform.log"
            kept.write_text(p.log())
            print(f"the platform's log is kept in {kept}", file=sys.stderr)
            raise
        finally:
            p.stop()
    return out


def _engine_rows(eng: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("engine: bindings (assets x rules)",
         f"{eng['bindings']} ({eng['assets']} x 5 of {eng['rules']} rules)"),
        ("engine: points/s wall (cpu)",
         f"{eng['points_per_s_wall']:,} ({eng['points_per_s_cpu']:,})"),
        ("engine: headroom over 200 000/s (wall)", f"{eng['headroom_x']}x"),
        ("engine: 20 000-point batch p50/p99 ms", f"{eng['batch_ms_p50']} / {eng['batch_ms_p99']}"),
        ("engine: skipped (fed - evaluated)", f"{eng['skipped']} of {eng['points_fed']:,}"),
        ("baseline: numpy threshold points/s",
         f"{eng['baseline_numpy_points_per_s']:,} (engine {eng['engine_vs_baseline_x']}x slower)"),
        ("engine: peak RSS MB", eng["peak_rss_mb"]),
    ]  # fmt: skip


def _live_rows(lv: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("live: offered / evaluated points/s",
         f"{lv['offered_points_per_s_window']:,} / {lv['worker_points_per_s_window']:,}"),
        ("live: worker behind at most (points)", f"{lv['worker_behind_max_points']:,}"),
        ("live: catch-up after publishing s", lv["catch_up_after_publish_s"]),
        ("live: alarm latency p50/p99 ms",
         f"{lv['alarm_latency_ms_p50']} / {lv['alarm_latency_ms_p99']} (n={lv['probe_samples']})"),
        ("live: skipped (published - counted)",
         f"{lv['skipped']} of {lv['published_points']:,}"),
        ("live: platform peak RSS MB", lv["platform_peak_rss_mb"]),
    ]  # fmt: skip


def _print(rows: list[tuple[str, Any]], load_1min: list[float]) -> None:
    for name, value in rows:
        print(f"{name:42} {value!s:46} {load_1min}", flush=True)


def main() -> None:
    """Run the benchmark, print a table and write the JSON results."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 s engine run, 8 s live run")
    ap.add_argument("--no-live", action="store_true", help="skip the platform part")
    ap.add_argument("--rate", type=int, default=RATE, help="live points/s (default 200 000)")
    args = ap.parse_args()
    out = Path(__file__).parent / "results" / ("rules-quick.json" if args.quick else "rules.json")
    out.parent.mkdir(exist_ok=True)
    uptime = Path("/proc/loadavg").read_text().split()[:3]
    print(f"{os.cpu_count()} cpus, load average (1, 5, 15 min) at start: {' '.join(uptime)}")
    res: dict[str, Any] = {"quick": args.quick, "cpus": os.cpu_count(), "loadavg_start": uptime}
    res["engine"] = eng = engine_phase(3 if args.quick else 20)
    print(f"{'figure':42} {'value':46} load 1-min (before, after)")
    _print(_engine_rows(eng), eng["load_1min"])
    out.write_text(json.dumps(res, indent=2) + "\n")
    if not args.no_live:
        res["live"] = lv = live_phase(8 if args.quick else 30, args.rate)
        _print(_live_rows(lv), lv["load_1min"])
        out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
