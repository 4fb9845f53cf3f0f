"""Cluster mode under failures: a longer version of the integration failure tests.

On this machine: a 3-node nats-server cluster (JetStream R3), a PostgreSQL server of
the bench's own (initdb in a temp dir on a free port: the machine's shared PostgreSQL
is never restarted), two ``ironbridge worker ingest`` processes, and devices publishing
at a steady rate the whole time. One after the other, each followed by ``--phase-s``
seconds of steady publishing:

1. ``kill -9`` of the IB_RAW stream leader (the node is started again afterwards);
2. ``kill -9`` of an ingest worker (a fresh worker joins afterwards);
3. PostgreSQL restart (``pg_ctl restart -m fast``);
4. PostgreSQL crash (``pg_ctl stop -m immediate``, then start: crash recovery).

For each: the longest gap between two acknowledged publishes (the devices' outage),
the longest time any series went without a store commit (the worst device's ingest
outage), and the time from the failure (or from the server being back) until every
series had been committed again. At the end, the exactly-once check: the stored
(series, ts) keys equal the acknowledged ones, no row twice, and the 1-minute roll-up
counts every point once.

Run: .venv/bin/python bench/cluster_failures.py [--quick] [--phase-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "integration" / "cluster")]

from cluster_testkit import (  # noqa: E402
    CommitMonitor,
    NatsCluster,
    Publisher,
    WorkerProcess,
    private_postgres,
    provision,
    stored,
    worker_env,
)

from ironbridge.bus import STREAM_RAW, Bus  # noqa: E402

RESULTS = HERE / "results" / "cluster_failures.json"


def wait_until(cond: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except Exception:  # a peer restarting: try again
            pass
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"load_average_start": os.getloadavg(), "failures": []}
    with tempfile.TemporaryDirectory() as tmp, private_postgres() as pg:
        root = Path(tmp)
        cluster = NatsCluster(root / "nats").start()
        workers: list[WorkerProcess] = []
        try:
            url = pg.create_database()
            series = provision(url.replace("postgresql://", "postgresql+psycopg://"), args.devices)
            env = worker_env(cluster, url)
            env["IRONBRIDGE_LOG_LEVEL"] = "WARNING"
            workers = [WorkerProcess(root, f"w{i}", env).start() for i in (1, 2)]
            for w in workers:
                await asyncio.to_thread(w.wait_ready, 60.0)
            async with Bus.connect(cluster.urls, name="devices") as bus:
                pub = Publisher(bus, series)
                stop = asyncio.Event()
                with CommitMonitor(url) as monitor:
                    publishing = asyncio.create_task(pub.run_until(stop))
                    await asyncio.to_thread(wait_until, lambda: stored(url)[1] > 0, 60, "ingest")
                    await asyncio.sleep(args.phase_s / 2)  # steady state before the first

                    async def phase(name: str, fail: Callable[[], Awaitable[float | None]]) -> None:
                        pub.longest_gap_s = 0.0
                        t_fail = time.monotonic()
                        back = await fail()
                        t_back = t_fail + (back or 0.0)
                        await asyncio.sleep(args.phase_s)  # steady publishing after it
                        first = monitor.all_resumed_after(t_back)
                        row = {
                            "failure": name,
                            "publish_gap_s": round(pub.longest_gap_s, 2),
                            "commit_pause_s": round(monitor.longest_pause(t_fail), 2),
                            "all_series_resumed_after_s": None
                            if first is None
                            else round(first - t_back, 2),
                            "peer_down_s": None if back is None else round(back, 2),
                        }
                        out["failures"].append(row)
                        print(row, flush=True)

                    async def kill_leader() -> float | None:
                        info = await bus.client.jetstream().stream_info(STREAM_RAW)
                        assert info.cluster is not None
                        assert info.cluster.leader
                        node = cluster.node(info.cluster.leader)
                        node.kill()
                        # restart the node once a new leader is elected
                        await asyncio.sleep(5.0)
                        node.start()
                        return None

                    async def kill_worker() -> float | None:
                        workers[0].kill()
                        return None

                    async def restart_pg() -> float | None:
                        return await asyncio.to_thread(pg.restart, "fast")

                    async def crash_pg() -> float | None:
                        return await asyncio.to_thread(pg.restart, "immediate")

                    await phase("kill -9 IB_RAW stream leader", kill_leader)
                    await phase("kill -9 ingest worker", kill_worker)
                    joined = WorkerProcess(root, "w3", env).start()
                    workers.append(joined)
                    await asyncio.to_thread(joined.wait_ready, 60.0)
                    await phase("PostgreSQL restart (fast)", restart_pg)
                    await phase("PostgreSQL crash (immediate) + start", crash_pg)
                    stop.set()
                    await publishing
                    await asyncio.to_thread(
                        wait_until, lambda: pub.acked <= stored(url)[0], 120, "catch-up"
                    )
                keys, n, rolled = stored(url)
                out["acked_points"] = len(pub.acked)
                out["stored_rows"] = n
                out["missing"] = len(pub.acked - keys)
                out["extra"] = len(keys - pub.acked)
                out["duplicates"] = n - len(keys)
                out["rollup_count"] = rolled
                out["exactly_once"] = keys == pub.acked and n == len(keys) and rolled == n
        finally:
            for w in workers:
                w.kill()
            cluster.stop()
    out["load_average_end"] = os.getloadavg()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="8 s phases")
    ap.add_argument("--phase-s", type=float, default=20.0)
    ap.add_argument("--devices", type=int, default=8)
    args = ap.parse_args()
    if args.quick:
        args.phase_s = 8.0
    result = asyncio.run(main_async(args))
    print(f"\n{'failure':<40} {'publish gap':>11} {'series pause':>12} {'resumed':>10}")
    for r in result["failures"]:
        first = r["all_series_resumed_after_s"]
        first = "-" if first is None else f"{first} s"
        print(
            f"{r['failure']:<40} {r['publish_gap_s']:>9} s {r['commit_pause_s']:>10} s {first:>10}"
        )
    print(
        f"\n{result['acked_points']} acked, {result['stored_rows']} stored,"
        f" missing {result['missing']}, extra {result['extra']},"
        f" duplicates {result['duplicates']}, roll-up count {result['rollup_count']}:"
        f" exactly once = {result['exactly_once']}"
    )
    print(f"load average: start {result['load_average_start']}, end {result['load_average_end']}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
