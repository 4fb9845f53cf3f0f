"""TCP load test of the GB/T 32960 and JT/T 808 endpoints (``bench/vehicles.py --load``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from ironbridge.analytics.battery import BatteryWatch
from ironbridge.app import Platform
from ironbridge.codec import gbt32960 as gb
from ironbridge.connect.gbt32960_server import Gbt32960Server
from ironbridge.connect.jt808_server import Jt808Server
from ironbridge.connect.vehicles import VehicleIdentity
from ironbridge.settings import NatsSettings, Settings
from ironbridge.sim.vehicles import (
    Jt808Truck,
    NevBus,
    TcpFleetStats,
    nev_vin,
    run_tcp_fleet,
    truck_phone,
)
from ironbridge.vehicles import RegistryVehicleDirectory, provision_demo_vehicles

RESULTS = Path(__file__).parent / "results" / "vehicles_load.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class PooledDirectory:
    """Maps every simulated VIN / phone onto one of a pool of provisioned vehicles."""

    def __init__(self, inner: RegistryVehicleDirectory, buses: int, trucks: int) -> None:
        self._inner = inner
        self._vins = [nev_vin(i) for i in range(1, buses + 1)]
        self._phones = [truck_phone(i) for i in range(1, trucks + 1)]

    async def resolve(
        self, protocol: str, key: str, info: Mapping[str, str]
    ) -> VehicleIdentity | None:
        pool = self._vins if protocol == "gbt32960" else self._phones
        return await self._inner.resolve(protocol, pool[zlib.crc32(key.encode()) % len(pool)], info)


def _pct(values: list[int], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) / 1000 if values else float("nan")


async def _baseline(host: str, port: int, n: int) -> list[int]:
    """Heartbeat round trips of one idle logged-in session."""
    bus = NevBus(0)
    reader, writer = await asyncio.open_connection(host, port)
    out: list[int] = []
    buf = b""

    async def ask(frame: bytes) -> None:
        nonlocal buf
        writer.write(frame)
        await writer.drain()
        while True:
            got, buf, _ = gb.split_stream(buf)
            if got:
                buf = b"".join(got[1:]) + buf
                return
            buf += await reader.read(65536)

    await ask(bus.login_frame(1))
    hb = gb.encode_message(gb.Command.HEARTBEAT, gb.Empty(), vin=bus.vin)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await ask(hb)
        out.append((time.perf_counter_ns() - t0) // 1000)
    writer.close()
    await writer.wait_closed()
    return out


async def _client(cfg: dict[str, Any]) -> dict[str, Any]:
    base = await _baseline(cfg["host"], cfg["gb_port"], 300)
    half = cfg["sessions"] // 2
    stop = asyncio.Event()
    stats = TcpFleetStats()
    loop = asyncio.get_running_loop()
    loop.call_later(cfg["duration"], stop.set)
    started = time.monotonic()
    await run_tcp_fleet(
        host=cfg["host"],
        gbt32960_port=cfg["gb_port"],
        jt808_port=cfg["jt_port"],
        buses=[NevBus(i) for i in range(1, half + 1)],
        trucks=[Jt808Truck(i) for i in range(1, cfg["sessions"] - half + 1)],
        stop=stop,
        period_s=10.0,
        burst_every_s=cfg["burst_every_s"],
        burst_len_s=cfg["burst_len_s"],
        stats=stats,
    )
    return {
        "elapsed_s": time.monotonic() - started,
        "frames": stats.frames,
        "answered": stats.answered,
        "errors": stats.errors,
        "refused": stats.refused,
        "logins": stats.logged_in,
        "p50_ms": _pct(stats.latencies_us, 50),
        "p99_ms": _pct(stats.latencies_us, 99),
        "max_ms": _pct(stats.latencies_us, 100),
        "baseline_p50_ms": _pct(base, 50),
        "baseline_p99_ms": _pct(base, 99),
    }


def client_main(cfg_path: str) -> None:
    """Entry of the load-generator child process."""
    cfg = json.loads(Path(cfg_path).read_text())
    result = asyncio.run(_client(cfg))
    Path(cfg["out"]).write_text(json.dumps(result))


async def _server(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    sessions = args.sessions or (200 if args.quick else 10_000)
    duration = args.duration or (40.0 if args.quick else 300.0)
    pool = args.pool or (10 if args.quick else 100)
    settings = Settings(
        data_dir=tmp / "data",
        http_port=_free_port(),
        admin_password=SecretStr("bench-admin-password"),
        nats=NatsSettings(port=_free_port(), mqtt_port=_free_port(), monitor_port=_free_port()),
        log_level="WARNING",
    )
    stop = asyncio.Event()
    async with Platform(settings).running(stop) as p:
        assert p.registry is not None
        assert p.bus is not None
        t0 = time.perf_counter()
        await asyncio.to_thread(provision_demo_vehicles, p.registry, pool // 2, pool - pool // 2)
        provision_s = time.perf_counter() - t0
        directory = PooledDirectory(
            RegistryVehicleDirectory(p.registry), pool // 2, pool - pool // 2
        )
        gbs = Gbt32960Server(directory, p.bus, port=0, observers=(BatteryWatch(),))
        jts = Jt808Server(directory, p.bus, secret=b"bench", port=0)
        await gbs.start()
        await jts.start()
        before = await p.ingest_stats()
        rss0 = _rss_mb()
        cfg = {
            "host": "127.0.0.1",
            "gb_port": gbs.port,
            "jt_port": jts.port,
            "sessions": sessions,
            "duration": duration,
            "burst_every_s": 120.0,
            "burst_len_s": 10.0,
            "out": str(tmp / "client.json"),
        }
        (tmp / "client-config.json").write_text(json.dumps(cfg))
        child = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, polled below
            [
                sys.executable,
                str(Path(__file__).parent / "vehicles.py"),
                "--load-client",
                str(tmp / "client-config.json"),
            ]
        )
        peak_rss, peak_sessions, rss_at_full = rss0, 0, None
        lags: list[int] = []

        async def loop_lag() -> None:
            while True:
                t = time.perf_counter_ns()
                await asyncio.sleep(0.05)
                lags.append((time.perf_counter_ns() - t) // 1000 - 50_000)

        lag_task = asyncio.create_task(loop_lag(), name="bench-loop-lag")
        while child.poll() is None:
            await asyncio.sleep(1.0)
            open_now = gbs.stats.sessions_open + jts.stats.sessions_open
            rss = _rss_mb()
            peak_rss = max(peak_rss, rss)
            peak_sessions = max(peak_sessions, open_now)
            if open_now >= sessions and rss_at_full is None:
                await asyncio.sleep(15.0)  # sessions logged in and reporting
                rss_at_full = _rss_mb()
        client = json.loads(Path(cfg["out"]).read_text())  # noqa: ASYNC240
        lag_task.cancel()
        server_lat = gbs.stats.latencies_us + jts.stats.latencies_us
        published = gbs.stats.published + jts.stats.published
        drained_at = time.monotonic()
        ingest: dict[str, Any] = {}
        while time.monotonic() - drained_at < 300:
            ingest = await p.ingest_stats()
            if ingest.get("backlog", 1) == 0 and ingest.get("unacked", 1) == 0:
                break
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - drained_at
        await gbs.close()
        await jts.close()
        stop.set()
    committed = ingest.get("messages", 0) - before.get("messages", 0)
    frames_s = client["answered"] / client["elapsed_s"]
    return {
        "benchmark": "vehicles_load",
        "quick": args.quick,
        "sessions": sessions,
        "duration_s": duration,
        "pool_vehicles": pool,
        "provision_s": provision_s,
        "peak_sessions_open": peak_sessions,
        "frames_sent": client["frames"],
        "frames_answered": client["answered"],
        "frames_per_s": frames_s,
        "server_frames": gbs.stats.frames + jts.stats.frames,
        "server_malformed": gbs.stats.malformed + jts.stats.malformed,
        "publish_errors": gbs.stats.publish_errors + jts.stats.publish_errors,
        "messages_published": published,
        "messages_committed": committed,
        "messages_rejected": ingest.get("rejected", 0) - before.get("rejected", 0),
        "drain_after_end_s": drain_s,
        "client_errors": client["errors"],
        "p50_ms": client["p50_ms"],
        "p99_ms": client["p99_ms"],
        "max_ms": client["max_ms"],
        "server_p50_ms": _pct(server_lat, 50),
        "server_p99_ms": _pct(server_lat, 99),
        "server_loop_lag_p99_ms": _pct(lags, 99),
        "server_loop_lag_max_ms": _pct(lags, 100),
        "baseline_idle_heartbeat_p50_ms": client["baseline_p50_ms"],
        "baseline_idle_heartbeat_p99_ms": client["baseline_p99_ms"],
        "p99_ratio_to_baseline": client["p99_ms"] / client["baseline_p99_ms"],
        "rss_before_mb": rss0,
        "rss_full_mb": rss_at_full,
        "rss_peak_mb": peak_rss,
        "kib_per_session": None
        if rss_at_full is None
        else (rss_at_full - rss0) * 1024 / max(1, sessions),
        "cpus": os.cpu_count(),
    }


def load_test(args: argparse.Namespace) -> None:
    """Run the load test and print / write its table."""
    with tempfile.TemporaryDirectory(prefix="ib-vehicles-load-") as tmp:
        result = asyncio.run(_server(args, Path(tmp)))
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown:>14}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"wrote {RESULTS}")
