"""Cluster-mode ingest: 1, 2 and 4 ingest worker processes vs raw PostgreSQL binary COPY.

On this machine: a 3-node nats-server cluster on loopback (JetStream R3), the local
PostgreSQL, a registry of ``--devices`` devices. For each worker count the raw stream
is filled with the same backlog (messages of ``--per-message`` points), then N
``ironbridge worker ingest`` processes drain it; the sustained rate is points over the
time from the first to the last stored point. The baseline, measured in the same run,
is a raw binary COPY of the same rows into an unindexed table in the same batch size.
Then the query latencies of the core query benchmark's shapes on PostgreSQL next to
DuckDB (same points loaded into both).

Run: .venv/bin/python bench/cluster.py [--quick] [--no-queries] [--workers 1,2,4] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "integration" / "cluster")]

from cluster_testkit import NatsCluster, WorkerProcess, pg_database, provision  # noqa: E402

from ironbridge.bus import STREAM_RAW, Bus  # noqa: E402
from ironbridge.cluster import ensure_partitioned_stream  # noqa: E402
from ironbridge.cluster.partitions import LEASE_BUCKET  # noqa: E402
from ironbridge.model import now_us  # noqa: E402
from ironbridge.store import Agg, PointBatch  # noqa: E402
from ironbridge.store.duckdb import DuckDBTelemetryStore  # noqa: E402
from ironbridge.store.postgres import PostgresTelemetryStore  # noqa: E402
from ironbridge.store.postgres.store import encode_copy  # noqa: E402
from procstat import cpu_seconds  # noqa: E402

RESULTS = HERE / "results" / "cluster.json"
PARTITIONS = 8
S = 1_000_000


def backlog(series: dict[str, int], messages: int, per_message: int) -> list[tuple[str, bytes]]:
    """``messages`` telemetry messages spread over the devices, ``per_message`` points each."""
    t0 = now_us() // 1000 - 6 * 3_600_000
    devs = list(series)
    out = []
    for i in range(messages):
        dev = devs[i % len(devs)]
        r = i // len(devs)
        base = t0 + r * per_message * 10
        ts = list(range(base, base + per_message * 10, 10))
        vals = (np.sin(np.arange(per_message) + i) * 50).round(3).tolist()
        body = orjson.dumps({"ts": ts, "values": {"temperature": vals}})
        out.append((f"ib.v1.{dev}.telemetry", body))
    return out


async def fill(urls: str, msgs: list[tuple[str, bytes]]) -> None:
    async with Bus.connect(urls, name="bench-fill") as bus:
        js = bus.client.jetstream()
        await bus.ensure_streams(replicas=3)
        with __import__("contextlib").suppress(Exception):
            await js.delete_key_value(LEASE_BUCKET)
        await js.purge_stream(STREAM_RAW)
        for name in [f"ingest-p{k}" for k in range(PARTITIONS)]:
            with __import__("contextlib").suppress(Exception):
                await js.delete_consumer(STREAM_RAW, name)
        await ensure_partitioned_stream(js, PARTITIONS)
        window = 500
        for i in range(0, len(msgs), window):
            futs = [await js.publish_async(s, b) for s, b in msgs[i : i + window]]
            await asyncio.gather(*futs)
        # A publish is acknowledged once two of three replicas hold it: let the third
        # catch up, so its replication is not counted in the workers' time and CPU.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            info = await js.stream_info(STREAM_RAW)
            peers = info.cluster.replicas if info.cluster and info.cluster.replicas else []
            if all(p.current and not p.lag for p in peers):
                break
            await asyncio.sleep(0.2)


def count(url: str) -> int:
    with psycopg.connect(url) as conn:
        try:
            # the blocks' point counts: counting the points themselves (the tm_points
            # view) would unnest every block ten times a second beside the workers
            row = conn.execute("SELECT coalesce(sum(n), 0) FROM tm_blocks").fetchone()
            return int(row[0])  # type: ignore[index]
        except psycopg.errors.UndefinedTable:  # no worker has opened the store yet
            return 0


def run_workers(
    root: Path,
    env: dict[str, str],
    n: int,
    total: int,
    url: str,
    cluster: NatsCluster,
    profile: bool = False,
) -> tuple[float, dict[str, float]]:
    """Start ``n`` workers on the filled stream; return (points/s, CPU seconds by role).

    The clock and the CPU counters start when the first worker reports ready (it holds
    its place in the lease table and is about to claim partitions); its start-up
    (imports, connecting, the short settle that lets workers started together see each
    other) is not counted, everything after is. The rate is the whole backlog over that time, so
    it includes the workers sharing the partitions out: workers started together first
    see only themselves, and hand partitions over in the next lease rounds. (Timing
    from the first stored point instead overstated the rate on a quiet machine, where
    one partition's commits can land in a burst after most of the work was done.)
    """
    workers = [WorkerProcess(root, f"b{n}-w{i}", env).start() for i in range(n)]
    spies: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 120
        while not _any_ready(workers):
            if time.monotonic() > deadline:
                raise RuntimeError("no worker became ready")
            time.sleep(0.02)
        first_t = time.monotonic()
        first_c = count(url)
        cpu0 = cpu_by_role(workers, cluster, url)
        if profile:
            spies = [start_profiler(w) for w in workers]
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            c = count(url)
            now = time.monotonic()
            if c >= total:
                cpu1 = cpu_by_role(workers, cluster, url)
                cpu = {k: round(cpu1[k] - cpu0.get(k, 0.0), 2) for k in cpu1}
                cpu["wall_s"] = round(now - first_t, 2)
                cpu["stored_before_start"] = first_c
                return (total - first_c) / max(now - first_t, 1e-3), cpu
            time.sleep(0.1)
        raise RuntimeError("ingest did not finish")
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        for w in workers:
            w.stop()


def _any_ready(workers: list[WorkerProcess]) -> bool:
    """True once a worker answers its readiness probe with 200 (not listening yet: no)."""
    for w in workers:
        try:
            if w.get("/readyz").status_code == 200:
                return True
        except httpx.HTTPError:
            continue
    return False


def cpu_by_role(workers: list[WorkerProcess], cluster: NatsCluster, url: str) -> dict[str, float]:
    out = {"workers_cpu_s": 0.0, "nats_cpu_s": 0.0, "postgres_cpu_s": 0.0}
    with psycopg.connect(url, autocommit=True) as conn:
        pids = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    for (pid,) in pids:  # the workers' backends (same machine: /proc is readable)
        out["postgres_cpu_s"] += cpu_seconds(int(pid))
    for w in workers:
        if w.proc is not None:
            out["workers_cpu_s"] += cpu_seconds(w.proc.pid)
    for node in cluster.nodes:
        if node.proc is not None:
            out["nats_cpu_s"] += cpu_seconds(node.proc.pid)
    return out


def start_profiler(w: WorkerProcess) -> subprocess.Popen[bytes]:
    """py-spy (``pip install py-spy`` in the venv; not a dependency) on one worker."""
    spy = Path(sys.executable).parent / "py-spy"
    out = Path(tempfile.gettempdir()) / f"ironbridge-cluster-profile-{w.worker_id}.txt"
    print(f"profiling {w.worker_id} into {out}", flush=True)
    assert w.proc is not None
    pid = str(w.proc.pid)
    return subprocess.Popen(
        [str(spy), "record", "-p", pid, "--nonblocking", "-r", "100", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def raw_copy_rate(
    url: str, rows: tuple[np.ndarray, np.ndarray, np.ndarray], batch: int, keyed: bool = False
) -> tuple[float, float]:
    """Binary COPY of the rows from one connection, ``batch`` rows a transaction.

    ``keyed=False``: into an unindexed, unpartitioned table (the storage floor).
    ``keyed=True``: into a table of a row per point with a primary key (series, ts):
    what a store of one row per point pays for its per-series index (ironbridge's own
    layout before its block rows).

    Returns:
        (points/s, CPU seconds of the client and its PostgreSQL backend).
    """
    s, t, v = rows
    table = "bench_keyed" if keyed else "bench_raw"
    key = ", PRIMARY KEY (series, ts)" if keyed else ""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (series bigint, ts bigint, value float8{key})")
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
        cpu0 = cpu_seconds(int(backend)) + time.process_time()
        started = time.perf_counter()
        for i in range(0, s.shape[0], batch):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as cp,
            ):
                cp.write(encode_copy(s[i : i + batch], t[i : i + batch], v[i : i + batch]))
        rate = s.shape[0] / (time.perf_counter() - started)
        return rate, cpu_seconds(int(backend)) + time.process_time() - cpu0


def query_latencies(pg_url: str, points: int, repeat: int) -> list[dict[str, Any]]:
    """The core query shapes on PostgreSQL and DuckDB, on the same points."""
    series = 200
    per = points // series
    end = 1_767_225_600 * S
    step = 10 * S
    ts = end - per * step + np.arange(per, dtype=np.int64) * step
    with tempfile.TemporaryDirectory() as tmp:
        duck = DuckDBTelemetryStore(Path(tmp) / "t.duckdb")
        pg = PostgresTelemetryStore(pg_url)
        rng = np.random.default_rng(1)
        chunk = 50_000 // series + 1
        for lo in range(0, per, chunk):
            t = ts[lo : lo + chunk]
            batch = PointBatch(
                np.repeat(np.arange(series, dtype=np.int64), t.shape[0]),
                np.tile(t, series),
                rng.normal(size=t.shape[0] * series),
            )
            duck.append(batch)
            pg.append(batch)
        span = (int(ts[0]), int(end))
        day = (int(end) - 86_400 * S, int(end))
        cases = {
            "latest of 200 series": lambda s: s.latest(list(range(series))),
            "raw: 1 series, 1 day": lambda s: s.raw([0], *day),
            "1 h buckets, 1 series, whole span": lambda s: s.aggregate(
                [0], *span, 3_600 * S, [Agg.AVG, Agg.MAX]
            ),
            "1 day buckets, 200 series, whole span": lambda s: s.aggregate(
                list(range(series)), *span, 86_400 * S, [Agg.AVG]
            ),
            "M4 2000 points, 1 series, whole span": lambda s: s.downsample(0, *span, 2000),
        }
        out = []
        for name, q in cases.items():
            row: dict[str, Any] = {"query": name}
            for label, store in (("duckdb_ms", duck), ("postgresql_ms", pg)):
                q(store)
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    q(store)
                    times.append((time.perf_counter() - t0) * 1000)
                row[label] = round(statistics.median(times), 2)
            out.append(row)
        duck.close()
        pg.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--per-message", type=int, default=100)
    ap.add_argument("--messages", type=int, default=0)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--no-queries", action="store_true", help="skip the query latencies")
    ap.add_argument(
        "--profile", action="store_true", help="py-spy each worker (pip install py-spy)"
    )
    args = ap.parse_args()
    messages = args.messages or (2_000 if args.quick else 100_000)
    counts = [int(x) for x in args.workers.split(",")]
    result: dict[str, Any] = {
        "messages": messages,
        "per_message": args.per_message,
        "load_average_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cluster = NatsCluster(root / "nats").start()
        try:
            with pg_database() as reg_url:
                series = provision(
                    reg_url.replace("postgresql://", "postgresql+psycopg://"), args.devices
                )
                msgs = backlog(series, messages, args.per_message)
                total = messages * args.per_message
                rows = []
                for n in counts:
                    with pg_database() as tele_url:
                        asyncio.run(fill(cluster.urls, msgs))
                        env = {
                            "IRONBRIDGE_TELEMETRY": tele_url,
                            "IRONBRIDGE_REGISTRY_URL": reg_url.replace(
                                "postgresql://", "postgresql+psycopg://"
                            ),
                            "IRONBRIDGE_NATS__EMBEDDED": "false",
                            "IRONBRIDGE_NATS__URL": cluster.urls,
                            "IRONBRIDGE_NATS__REPLICAS": "3",
                            "IRONBRIDGE_INGEST__PARTITIONS": str(PARTITIONS),
                            "IRONBRIDGE_LOG_LEVEL": "WARNING",
                        }
                        rate, cpu = run_workers(
                            root, env, n, total, tele_url, cluster, args.profile
                        )
                        rows.append({"workers": n, "points_per_s": round(rate), **cpu})
                        print(f"{n} worker(s): {rate:,.0f} points/s; {cpu}", flush=True)
                # baseline: the same rows by raw binary COPY, same batch size as ingest's fetch
                with pg_database() as raw_url:
                    sid = np.array([series[s.split(".")[2]] for s, _ in msgs], np.int64)
                    docs = [orjson.loads(b) for _, b in msgs]
                    s_all = np.repeat(sid, args.per_message)
                    t_all = np.concatenate([np.asarray(d["ts"], np.int64) * 1000 for d in docs])
                    v_all = np.concatenate([np.asarray(d["values"]["temperature"]) for d in docs])
                    copy_rate, copy_cpu = raw_copy_rate(
                        raw_url, (s_all, t_all, v_all), 2000 * args.per_message // 10
                    )
                with pg_database() as keyed_url:
                    keyed_rate, keyed_cpu = raw_copy_rate(
                        keyed_url, (s_all, t_all, v_all), 2000 * args.per_message // 10, True
                    )
                millions = total / 1e6
                result["raw_copy_cpu_s_per_m"] = round(copy_cpu / millions, 2)
                result["keyed_copy_cpu_s_per_m"] = round(keyed_cpu / millions, 2)
                for r in rows:
                    r["vs_raw_copy"] = round(r["points_per_s"] / copy_rate, 3)
                    r["vs_keyed_copy"] = round(r["points_per_s"] / keyed_rate, 3)
                    spent = r["workers_cpu_s"] + r["nats_cpu_s"] + r["postgres_cpu_s"]
                    r["cpu_s_per_m"] = round(spent / millions, 2)
                result["ingest"] = rows
                result["raw_copy_points_per_s"] = round(copy_rate)
                result["keyed_copy_points_per_s"] = round(keyed_rate)
                result["load_average"] = os.getloadavg()
            result["queries"] = []
            if not args.no_queries:
                with pg_database() as q_url:
                    result["queries"] = query_latencies(
                        q_url, 400_000 if args.quick else 4_000_000, 3 if args.quick else 7
                    )
        finally:
            cluster.stop()
    print(f"\nraw PostgreSQL binary COPY: {result['raw_copy_points_per_s']:,} points/s")
    keyed = result["keyed_copy_points_per_s"]
    print(f"same COPY, a row per point keyed (series, ts): {keyed:,} points/s")
    print(
        f"CPU s per million points: raw COPY {result['raw_copy_cpu_s_per_m']},"
        f" keyed COPY {result['keyed_copy_cpu_s_per_m']} (client + backend)"
    )
    print(f"load average: start {result['load_average_start']}, end {result['load_average']}")
    print(f"{'workers':>8} {'points/s':>12} {'vs COPY':>8} {'vs keyed':>9} {'CPU s/M':>8}")
    for r in result["ingest"]:
        print(
            f"{r['workers']:>8} {r['points_per_s']:>12,} {r['vs_raw_copy']:>8.1%}"
            f" {r['vs_keyed_copy']:>9.1%} {r['cpu_s_per_m']:>8}"
        )
    print(f"\n{'query':<40} {'DuckDB ms':>10} {'PostgreSQL ms':>14}")
    for q in result["queries"]:
        print(f"{q['query']:<40} {q['duckdb_ms']:>10} {q['postgresql_ms']:>14}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
