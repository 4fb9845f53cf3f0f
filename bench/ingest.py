"""Ingest benchmark: store append and end-to-end MQTT / HTTP ingest through a real platform.

Run: .venv/bin/python bench/ingest.py [--quick] [--points N] [--http-points N]

Reports, in one run:
* store append rate vs a raw DuckDB Arrow insert of the same rows (bench/store_append.py);
* end-to-end MQTT: D devices publish QoS 1 columnar batches of 100 points (10 samples x
  10 measurements) from P publisher processes until N points are in; sustained points/s
  from the first publish to the last point committed; then the DuckDB file is opened and
  the rows are counted (nothing lost: count == N; nothing doubled: distinct (series, ts)
  == N);
* the same over HTTP (POST /api/v1/telemetry with device Basic auth, keep-alive);
* baselines measured in the same run: the raw DuckDB Arrow insert rate of the same kind
  of rows (the ceiling of the store) — end-to-end rates are also shown as a share of it.
  bench/bus_throughput.py measures the bare backbone (NATS MQTT -> JetStream -> fetch).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import store_append
from harness import PlatformProcess, wait_for

RESULTS = Path(__file__).parent / "results" / "ingest.json"
MEASUREMENTS = [f"m{i}" for i in range(10)]
SAMPLES = 10  # per message: 10 samples x 10 measurements = 100 points
BENCH_TYPE = {
    "name": "bench_machine",
    "version": 1,
    "measurements": [{"name": m, "unit": "", "min": -1e9, "max": 1e9} for m in MEASUREMENTS],
}
T0_MS = 1_735_689_600_000  # 2025-01-01


def payload(device_index: int, msg: int) -> bytes:
    base = T0_MS + msg * SAMPLES * 1000
    ts = [base + k * 1000 for k in range(SAMPLES)]
    values = {
        m: [float(device_index + msg + k + j) for k in range(SAMPLES)]
        for j, m in enumerate(MEASUREMENTS)
    }
    return orjson.dumps({"ts": ts, "values": values})


def _mqtt_publisher(
    port: int, creds: list[tuple[int, str, str]], msgs_per_device: int, go: Any, out: Any
) -> None:
    import paho.mqtt.client as mqtt

    clients = []
    for index, device_id, credential in creds:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=device_id)
        c.username_pw_set(device_id, credential)
        c.max_inflight_messages_set(200)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        clients.append((index, device_id, c))
    go.wait()
    infos = []
    for msg in range(msgs_per_device):
        for index, device_id, c in clients:
            infos.append(c.publish(f"ib/v1/{device_id}/telemetry", payload(index, msg), qos=1))
        if len(infos) > 4000:
            infos[-4000].wait_for_publish(60)
    acked = 0
    for info in infos:
        info.wait_for_publish(120)
        acked += int(info.is_published())
    for _, _, c in clients:
        c.disconnect()
        c.loop_stop()
    out.put(acked)


async def _http_publisher(url: str, creds: list[tuple[int, str, str]], msgs_per_device: int) -> int:
    ok = 0
    limits = httpx.Limits(max_connections=len(creds))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60.0) as client:

        async def one(index: int, device_id: str, credential: str) -> int:
            auth = "Basic " + base64.b64encode(f"{device_id}:{credential}".encode()).decode()
            n = 0
            for msg in range(msgs_per_device):
                body = payload(index, msg)
                for attempt in range(5):
                    try:
                        r = await client.post(
                            "/api/v1/telemetry", content=body, headers={"Authorization": auth}
                        )
                        break
                    except httpx.TransportError:
                        # a dropped keep-alive connection: send again (the store keeps one
                        # value per series and timestamp, so a resend cannot double a point)
                        if attempt == 4:
                            raise
                n += int(r.status_code == 202)
            return n

        counts = await asyncio.gather(*(one(*c) for c in creds))
        ok = sum(counts)
    return ok


def _provision(p: PlatformProcess, prefix: str, devices: int) -> list[tuple[int, str, str]]:
    api = p.client()
    r = api.post("/api/v1/asset-types", json=BENCH_TYPE)
    assert r.status_code in (201, 409), r.text
    out = []
    for i in range(devices):
        dev = f"{prefix}-{i:04d}"
        r = api.post("/api/v1/assets", json={"id": dev, "type_name": "bench_machine"})
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/devices", json={"id": dev, "asset_ids": [dev]})
        assert r.status_code == 201, r.text
        out.append((i, dev, r.json()["credential"]))
    return out


def _stats(p: PlatformProcess) -> dict[str, Any]:
    return dict(p.client().get("/api/v1/ingest/stats").json())


def _count_rows(data_dir: Path, prefix_series: tuple[int, int]) -> tuple[int, int]:
    con = duckdb.connect(str(data_dir / "telemetry.duckdb"), read_only=True)
    lo, hi = prefix_series
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (series, ts)) FROM points WHERE series BETWEEN ? AND ?",
        [lo, hi],
    ).fetchall()[0]
    con.close()
    return int(total), int(distinct)


def _series_range(p: PlatformProcess, devices: list[tuple[int, str, str]]) -> tuple[int, int]:
    api = p.client()
    ids: list[int] = []
    for _, dev, _ in (devices[0], devices[-1]):
        r = api.get("/api/v1/telemetry/latest", params={"asset": dev})
        assert r.status_code == 200
    # series ids are dense per asset creation order; read them from the registry file
    import sqlite3

    con = sqlite3.connect(p.data_dir / "registry.sqlite3")
    names = [d for _, d, _ in devices]
    marks = ",".join("?" * len(names))
    ids = [
        row[0] for row in con.execute(f"SELECT id FROM series WHERE asset_id IN ({marks})", names)
    ]
    con.close()
    return min(ids), max(ids)


def run_mqtt(workdir: Path, points: int, devices: int, publishers: int) -> dict[str, Any]:
    msgs_per_device = max(1, points // (devices * 100))
    total = msgs_per_device * devices * 100
    p = PlatformProcess(workdir / "mqtt").start()
    try:
        creds = _provision(p, "mq", devices)
        base = _stats(p).get("points", 0)
        ctx = mp.get_context("spawn")
        go, out = ctx.Event(), ctx.Queue()
        chunks = [creds[i::publishers] for i in range(publishers)]
        procs = [
            ctx.Process(target=_mqtt_publisher, args=(p.mqtt_port, c, msgs_per_device, go, out))
            for c in chunks
        ]
        for pr in procs:
            pr.start()
        time.sleep(2.0)  # let every client connect before the clock starts
        t0 = time.perf_counter()
        go.set()
        wait_for(
            lambda: _stats(p).get("points", 0) - base >= total,
            timeout=max(600.0, total / 20_000),
            interval=0.2,
            what=f"{total} points",
        )
        elapsed = time.perf_counter() - t0
        acked_msgs = sum(out.get(timeout=120) for _ in procs)
        for pr in procs:
            pr.join(timeout=60)
        series = _series_range(p, creds)
    finally:
        p.stop()
    stored, distinct = _count_rows(p.data_dir, series)
    return {
        "path": "MQTT QoS 1 -> platform -> DuckDB",
        "devices": devices,
        "publishers": publishers,
        "points": total,
        "acked_points": acked_msgs * 100,
        "stored": stored,
        "distinct": distinct,
        "seconds": elapsed,
        "points_per_s": total / elapsed,
        "lost": total - distinct,
        "doubled": stored - distinct,
    }


def run_http(workdir: Path, points: int, devices: int) -> dict[str, Any]:
    msgs_per_device = max(1, points // (devices * 100))
    total = msgs_per_device * devices * 100
    p = PlatformProcess(workdir / "http").start()
    try:
        creds = _provision(p, "ht", devices)
        base = _stats(p).get("points", 0)
        t0 = time.perf_counter()
        ok = asyncio.run(_http_publisher(p.url, creds, msgs_per_device))
        wait_for(
            lambda: _stats(p).get("points", 0) - base >= total,
            timeout=600,
            interval=0.2,
            what=f"{total} HTTP points",
        )
        elapsed = time.perf_counter() - t0
        series = _series_range(p, creds)
    finally:
        p.stop()
    stored, distinct = _count_rows(p.data_dir, series)
    return {
        "path": "HTTP POST -> platform -> DuckDB",
        "devices": devices,
        "points": total,
        "accepted_points": ok * 100,
        "stored": stored,
        "distinct": distinct,
        "seconds": elapsed,
        "points_per_s": total / elapsed,
        "lost": total - distinct,
        "doubled": stored - distinct,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--points", type=int, default=20_000_000, help="MQTT points")
    ap.add_argument("--http-points", type=int, default=2_000_000, help="HTTP points")
    ap.add_argument("--devices", type=int, default=40)
    ap.add_argument("--publishers", type=int, default=2)
    ap.add_argument("--store-points", type=int, default=5_000_000)
    args = ap.parse_args()
    if args.quick:
        args.points, args.http_points, args.store_points = 1_000_000, 200_000, 1_000_000
    import tempfile

    results: dict[str, Any] = {"quick": args.quick}
    results["store_append"] = store_append.run(args.store_points)
    with tempfile.TemporaryDirectory(prefix="ib-bench-ingest-") as tmp:
        results["mqtt"] = run_mqtt(Path(tmp), args.points, args.devices, args.publishers)
        results["http"] = run_http(Path(tmp), args.http_points, args.devices)
    rows = [
        ("store append (points/s)", results["store_append"]),
        ("MQTT end to end", results["mqtt"]),
        ("HTTP end to end", results["http"]),
    ]
    print(json.dumps(results, indent=2, default=str))
    print()
    print(f"{'path':<28} {'points':>12} {'seconds':>9} {'points/s':>12} {'lost':>6} {'doubled':>8}")
    for name, r in rows[1:]:
        print(
            f"{name:<28} {r['points']:>12,} {r['seconds']:>9.1f} "
            f"{r['points_per_s']:>12,.0f} {r['lost']:>6} {r['doubled']:>8}"
        )
    sa = results["store_append"]
    print(
        f"store append {sa['store_points_per_s']:,} points/s vs raw DuckDB insert "
        f"{sa['raw_points_per_s']:,} points/s: {sa['store_vs_raw']:.0%} (target 30 %)"
    )
    for name, r in rows[1:]:
        print(f"{name}: {r['points_per_s'] / sa['raw_points_per_s']:.1%} of the raw insert rate")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
