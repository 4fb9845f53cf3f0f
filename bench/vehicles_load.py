"""TCP load test of the GB/T 32960 and JT/T 808 endpoints (``bench/vehicles.py --load``).

Processes (so that one busy event loop does not stall the others):

- this one: the platform (embedded nats-server child, ingest worker, DuckDB, registry, API);
- ``--endpoint-procs`` endpoint processes, each with both TCP servers on the same two
  ports (SO_REUSEPORT: the kernel spreads the connections), publishing to the platform's
  NATS like the in-process endpoints do;
- ``--clients`` load-generator processes, each holding its share of the sessions.

Every session is its own provisioned vehicle (``bus-NNNN`` / ``jt-truck-NNNN``), so that
after the run the stored points can be counted per frame: each answered real-time frame
stores exactly one ``soc`` point (buses) or ``speed`` point (trucks) at its own second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from procstat import cpu_seconds

RESULTS = Path(__file__).parent / "results" / "vehicles_load.json"
_BENCH = Path(__file__).parent / "vehicles.py"


def raise_nofile(need: int) -> int:
    """Raise the soft open-files limit to the hard one; fail early if that is not enough."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < need:
        raise SystemExit(
            f"need {need} open files per process, the hard limit is {hard}: "
            "raise it (ulimit -Hn) or use more --clients / --endpoint-procs"
        )
    return hard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _pct(values: Any, q: float) -> float:
    arr = np.asarray(values)
    return float(np.percentile(arr, q)) / 1000 if arr.size else float("nan")


def _split(n: int, parts: int, k: int) -> tuple[int, int]:
    """The 1-based index range [lo, hi) of part ``k`` of ``n`` items."""
    return 1 + n * k // parts, 1 + n * (k + 1) // parts


class _GcPauses:
    """Records how long each garbage collection of the older generations takes."""

    def __init__(self) -> None:
        self.pauses_us: list[int] = []
        self._t0 = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation", 0) < 1:
            return
        if phase == "start":
            self._t0 = time.perf_counter_ns()
        else:
            self.pauses_us.append((time.perf_counter_ns() - self._t0) // 1000)


class _LoopLag:
    """Samples how late a 50 ms sleep wakes up: the event loop's lag."""

    def __init__(self) -> None:
        self.lags_us: list[int] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            t = time.perf_counter_ns()
            await asyncio.sleep(0.05)
            self.lags_us.append((time.perf_counter_ns() - t) // 1000 - 50_000)

    def __enter__(self) -> _LoopLag:
        self._task = asyncio.create_task(self._run(), name="bench-loop-lag")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


# -- load generator ------------------------------------------------------------------
async def _baseline(host: str, port: int, n: int) -> list[int]:
    """Heartbeat round trips of one idle logged-in session, before the fleet connects."""
    from ironbridge.codec import gbt32960 as gb
    from ironbridge.sim.vehicles import NevBus

    bus = NevBus(1)
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
            chunk = await reader.read(65536)
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk

    await ask(bus.login_frame(1))
    hb = gb.encode_message(gb.Command.HEARTBEAT, gb.Empty(), vin=bus.vin)
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await ask(hb)
        out.append((time.perf_counter_ns() - t0) // 1000)
    # log out, so the real bus 1 session does not find a stale one
    writer.close()
    await writer.wait_closed()
    return out


async def _client(cfg: dict[str, Any]) -> dict[str, Any]:
    from ironbridge.sim.vehicles import Jt808Truck, NevBus, TcpFleetStats, run_tcp_fleet

    k, parts = cfg["client"], cfg["clients"]
    base = await _baseline(cfg["host"], cfg["gb_port"], 300) if k == 0 else []
    b_lo, b_hi = _split(cfg["buses"], parts, k)
    t_lo, t_hi = _split(cfg["trucks"], parts, k)
    stop = asyncio.Event()
    stats = TcpFleetStats()
    loop = asyncio.get_running_loop()
    loop.call_later(cfg["ramp_s"] + cfg["duration"], stop.set)
    started = time.monotonic()
    with _LoopLag() as lag:
        await run_tcp_fleet(
            host=cfg["host"],
            gbt32960_port=cfg["gb_port"],
            jt808_port=cfg["jt_port"],
            buses=[NevBus(i) for i in range(b_lo, b_hi)],
            trucks=[Jt808Truck(i) for i in range(t_lo, t_hi)],
            stop=stop,
            period_s=10.0,
            ramp_s=cfg["ramp_s"],
            burst_every_s=cfg["burst_every_s"],
            burst_len_s=cfg["burst_len_s"],
            stats=stats,
            seed=1 + k,
        )
    return {
        "elapsed_s": time.monotonic() - started,
        "frames": stats.frames,
        "answered": stats.answered,
        "errors": stats.errors,
        "refused": stats.refused,
        "logins": stats.logged_in,
        "latencies_us": stats.latencies_us,
        "baseline_us": base,
        "loop_lag_us": lag.lags_us,
        "cpu_s": _cpu_s(),
    }


def client_main(cfg_path: str) -> None:
    """Entry of a load-generator child process."""
    from ironbridge.gctune import tune_gc

    cfg = json.loads(Path(cfg_path).read_text())
    raise_nofile(cfg["fds"])
    tune_gc()
    result = asyncio.run(_client(cfg))
    Path(cfg["out"]).write_text(json.dumps(result))


# -- endpoint process ----------------------------------------------------------------
class StaticDirectory:
    """The provisioned bench vehicles, known without asking the registry.

    The identities are those :func:`ironbridge.vehicles.provision_demo_vehicles` creates
    (the platform process checks a sample of them against the registry).
    """

    def __init__(self, buses: int, trucks: int) -> None:
        from ironbridge.connect.vehicles import VehicleIdentity, vehicle_asset_types
        from ironbridge.sim.vehicles import nev_vin, truck_phone
        from ironbridge.vehicles import device_id_for

        names = {t.name: frozenset(m.name for m in t.measurements) for t in vehicle_asset_types()}
        self.known: dict[tuple[str, str], VehicleIdentity] = {}
        for i in range(1, buses + 1):
            vin = nev_vin(i)
            self.known["gbt32960", vin] = VehicleIdentity(
                device_id=device_id_for("gbt32960", vin),
                asset_id=f"bus-{i:04d}",
                measurements=names["nev_bus"],
            )
        for i in range(1, trucks + 1):
            phone = truck_phone(i)
            self.known["jt808", phone] = VehicleIdentity(
                device_id=device_id_for("jt808", phone),
                asset_id=f"jt-truck-{i:04d}",
                measurements=names["jt808_truck"],
            )

    async def resolve(self, protocol: str, key: str, info: Mapping[str, str]) -> Any:
        return self.known.get((protocol, key))


async def _endpoints(cfg: dict[str, Any]) -> dict[str, Any]:
    from ironbridge.analytics.battery import BatteryWatch
    from ironbridge.bus import Bus
    from ironbridge.connect.gbt32960_server import Gbt32960Server
    from ironbridge.connect.jt808_server import Jt808Server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    directory = StaticDirectory(cfg["buses"], cfg["trucks"])
    gc_pauses = _GcPauses()
    gc.callbacks.append(gc_pauses)
    async with Bus.connect(
        cfg["nats_url"],
        user=cfg["nats_user"],
        password=cfg["nats_password"],
        name=f"ib-bench-endpoints-{cfg['proc']}",
    ) as bus:
        gbs = Gbt32960Server(directory, bus, port=cfg["gb_port"], observers=(BatteryWatch(),))
        jts = Jt808Server(directory, bus, secret=b"bench", port=cfg["jt_port"])
        gbs.reuse_port = jts.reuse_port = True
        # the kernel's spread over processes is uneven; beyond this, refuse (terminals back off)
        gbs.max_sessions = jts.max_sessions = cfg["max_sessions"]
        await gbs.start()
        await jts.start()
        await asyncio.to_thread(Path(cfg["ready"]).write_text, "ready")
        rss0 = _rss_mb()
        peak_sessions, rss_at_peak, peak_rss = 0, rss0, rss0
        with _LoopLag() as lag:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
                open_now = gbs.stats.sessions_open + jts.stats.sessions_open
                rss = _rss_mb()
                peak_rss = max(peak_rss, rss)
                if open_now >= peak_sessions:
                    peak_sessions, rss_at_peak = open_now, rss
        await gbs.close()
        await jts.close()
    stats = {}
    for name, server in (("gbt32960", gbs), ("jt808", jts)):
        st = server.stats
        stats[name] = {
            k: getattr(st, k)
            for k in (
                "sessions_total",
                "frames",
                "answered",
                "malformed",
                "rejected",
                "published",
                "publish_errors",
                "dropped_measurements",
                "idle_closed",
                "refused_full",
            )
        }
    return {
        "stats": stats,
        "latencies_us": gbs.stats.latencies_us + jts.stats.latencies_us,
        "loop_lag_us": lag.lags_us,
        "rss0_mb": rss0,
        "rss_at_peak_mb": rss_at_peak,
        "peak_rss_mb": peak_rss,
        "peak_sessions": peak_sessions,
        "cpu_s": _cpu_s(),
        "gc_pauses_us": gc_pauses.pauses_us,
    }


def endpoints_main(cfg_path: str) -> None:
    """Entry of an endpoint child process."""
    from ironbridge.gctune import tune_gc

    cfg = json.loads(Path(cfg_path).read_text())
    raise_nofile(cfg["fds"])
    tune_gc()  # as `ironbridge` commands do
    result = asyncio.run(_endpoints(cfg))
    Path(cfg["out"]).write_text(json.dumps(result))


# -- the platform and the run --------------------------------------------------------
_STAT_KEYS = ("frames", "malformed", "published", "publish_errors", "refused_full")
_EMPTY_ENDPOINT: dict[str, Any] = {
    "stats": {p: dict.fromkeys(_STAT_KEYS, 0) for p in ("gbt32960", "jt808")},
    "latencies_us": [],
    "loop_lag_us": [],
    "rss0_mb": 0.0,
    "rss_at_peak_mb": 0.0,
    "peak_rss_mb": 0.0,
    "peak_sessions": 0,
    "cpu_s": 0.0,
    "gc_pauses_us": [],
}


def _spawn(role: str, cfg: dict[str, Any], path: Path) -> subprocess.Popen[bytes]:
    path.write_text(json.dumps(cfg))
    return subprocess.Popen([sys.executable, str(_BENCH), role, str(path)])


def _provision(registry: Any, buses: int, trucks: int) -> None:
    """Create the bench vehicles; every device gets one precomputed credential hash.

    bcrypt (cost 8, 20-160 ms per hash on this machine) for 10 000 devices would take
    longer than the test; the TCP endpoints identify vehicles by VIN / phone and never
    check a device credential.
    """
    from ironbridge.store.sql import credentials
    from ironbridge.vehicles import provision_demo_vehicles

    fixed = credentials.hash_device_credential("bench-device-credential")
    original = credentials.hash_device_credential
    credentials.hash_device_credential = lambda _c: fixed  # type: ignore[assignment]
    try:
        provision_demo_vehicles(registry, buses, trucks)
    finally:
        credentials.hash_device_credential = original  # type: ignore[assignment]


def _stored_frames(p: Any, buses: int, trucks: int, start_us: int) -> dict[str, int]:
    """Count in the store: one ``soc`` point per bus frame, one ``speed`` point per truck frame."""
    ids: dict[str, list[int]] = {}
    for proto, prefix, n, measurement in (
        ("gbt32960", "bus", buses, "soc"),
        ("jt808", "jt-truck", trucks, "speed"),
    ):
        assets = [f"{prefix}-{i:04d}" for i in range(1, n + 1)]
        refs = p.registry.series_of(None, assets)
        ids[proto] = [r.id for r in refs if r.measurement == measurement]
        assert len(ids[proto]) == n, (proto, len(ids[proto]))
    end_us = int(time.time() * 1e6) + 3_600_000_000
    return {
        proto: int(p.store.raw(series, start_us, end_us).num_rows) if series else 0
        for proto, series in ids.items()
    }


async def _server(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from ironbridge.app import Platform
    from ironbridge.settings import NatsSettings, Settings
    from ironbridge.vehicles import RegistryVehicleDirectory

    sessions = args.sessions or (400 if args.quick else 10_000)
    duration = args.duration or (60.0 if args.quick else 300.0)
    clients = args.clients or max(1, min(8, -(-sessions // 2500)))
    ramp_s = args.ramp if args.ramp is not None else max(10.0, sessions / 100)
    eprocs = args.endpoint_procs or 1
    buses = sessions // 2
    trucks = sessions - buses
    fds = sessions // min(clients, eprocs) + 512
    hard = raise_nofile(fds)
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
        assert p.server is not None
        t0 = time.perf_counter()
        await asyncio.to_thread(_provision, p.registry, buses, trucks)
        provision_s = time.perf_counter() - t0
        # the endpoint processes know the vehicles statically: check a sample against the registry
        real = RegistryVehicleDirectory(p.registry)
        static = StaticDirectory(buses, trucks)
        for key, expected in list(static.known.items())[:: max(1, sessions // 50)]:
            assert await real.resolve(key[0], key[1], {}) == expected, key
        gb_port, jt_port = _free_port(), _free_port()
        before = await p.ingest_stats()
        start_us = int(time.time() * 1e6) - 60_000_000
        common = {"buses": buses, "trucks": trucks, "fds": fds}
        endpoint_procs = []
        for k in range(eprocs):
            cfg = {
                **common,
                "proc": k,
                "max_sessions": min(3 * sessions // (2 * eprocs) + 100, (hard - 512) // 2),
                "nats_url": p.server.client_url,
                "nats_user": p.server.internal_user,
                "nats_password": p.server.internal_password,
                "gb_port": gb_port,
                "jt_port": jt_port,
                "ready": str(tmp / f"endpoints-{k}.ready"),
                "out": str(tmp / f"endpoints-{k}.json"),
            }
            endpoint_procs.append(_spawn("--load-endpoints", cfg, tmp / f"endpoints-{k}.cfg"))
        while not all((tmp / f"endpoints-{k}.ready").exists() for k in range(eprocs)):
            if any(e.poll() is not None for e in endpoint_procs):
                raise SystemExit("an endpoint process died at start")
            await asyncio.sleep(0.2)
        client_procs = []
        for k in range(clients):
            cfg = {
                **common,
                "host": "127.0.0.1",
                "gb_port": gb_port,
                "jt_port": jt_port,
                "client": k,
                "clients": clients,
                "duration": duration,
                "ramp_s": ramp_s,
                "burst_every_s": 120.0,
                "burst_len_s": 10.0,
                "out": str(tmp / f"client-{k}.json"),
            }
            client_procs.append(_spawn("--load-client", cfg, tmp / f"client-{k}.cfg"))
        with _LoopLag() as lag:
            while any(c.poll() is None for c in client_procs):  # noqa: ASYNC110 - child processes
                await asyncio.sleep(1.0)
        if any(c.returncode for c in client_procs):
            raise SystemExit("a load-generator process failed")
        for e in endpoint_procs:
            e.send_signal(signal.SIGTERM)
        while any(e.poll() is None for e in endpoint_procs):  # noqa: ASYNC110 - child processes
            await asyncio.sleep(0.2)
        ended = time.monotonic()
        ingest: dict[str, Any] = {}
        while time.monotonic() - ended < 600:
            ingest = await p.ingest_stats()
            if ingest.get("backlog", 1) == 0 and ingest.get("unacked", 1) == 0:
                break
            await asyncio.sleep(0.5)
        drain_s = time.monotonic() - ended
        stored = await asyncio.to_thread(_stored_frames, p, buses, trucks, start_us)
        platform_cpu_s = _cpu_s()
        nats_cpu_s = cpu_seconds(p.server.pid or 0)
        stop.set()
    cl = [json.loads((tmp / f"client-{k}.json").read_text()) for k in range(clients)]
    ep, endpoint_failures = [], []
    for k in range(eprocs):
        path = tmp / f"endpoints-{k}.json"
        if path.exists():
            ep.append(json.loads(path.read_text()))
        else:  # it died (e.g. out of file descriptors): report what the others saw
            endpoint_failures.append(f"endpoint process {k} exited {endpoint_procs[k].returncode}")
    if not ep:
        ep = [_EMPTY_ENDPOINT]

    def total(proto: str, key: str) -> int:
        return sum(int(e["stats"][proto][key]) for e in ep)

    answered = sum(c["answered"] for c in cl)
    elapsed = max(c["elapsed_s"] for c in cl)
    lat = np.concatenate([np.asarray(c["latencies_us"], dtype=np.int64) for c in cl])
    base = cl[0]["baseline_us"]
    srv_lat = np.concatenate([np.asarray(e["latencies_us"], dtype=np.int64) for e in ep])
    ep_lag = np.concatenate([np.asarray(e["loop_lag_us"], dtype=np.int64) for e in ep])
    gc_us = np.concatenate([np.asarray(e["gc_pauses_us"], dtype=np.int64) for e in ep])
    peak = sum(e["peak_sessions"] for e in ep)
    grow = sum(e["rss_at_peak_mb"] - e["rss0_mb"] for e in ep)
    return {
        "benchmark": "vehicles_load",
        "quick": args.quick,
        "sessions": sessions,
        "duration_s": duration,
        "ramp_s": ramp_s,
        "client_procs": clients,
        "endpoint_procs": eprocs,
        "endpoint_failures": "; ".join(endpoint_failures) or "none",
        "provision_s": provision_s,
        "peak_sessions_open": peak,
        "logins": sum(c["logins"] for c in cl),
        "frames_sent": sum(c["frames"] for c in cl),
        "frames_answered": answered,
        "frames_per_s": answered / elapsed,
        "client_errors": sum(c["errors"] for c in cl),
        "server_frames": total("gbt32960", "frames") + total("jt808", "frames"),
        "server_malformed": total("gbt32960", "malformed") + total("jt808", "malformed"),
        "publish_errors": total("gbt32960", "publish_errors") + total("jt808", "publish_errors"),
        "connections_refused_full": total("gbt32960", "refused_full")
        + total("jt808", "refused_full"),
        "messages_published": total("gbt32960", "published") + total("jt808", "published"),
        # ingest counts deliveries: redeliveries after a slow commit count again
        "messages_delivered_to_ingest": ingest.get("messages", 0) - before.get("messages", 0),
        "messages_rejected": ingest.get("rejected", 0) - before.get("rejected", 0),
        "frames_stored_gbt32960": stored["gbt32960"],
        "frames_stored_jt808": stored["jt808"],
        "frames_stored": sum(stored.values()),
        "drain_after_end_s": drain_s,
        "p50_ms": _pct(lat, 50),
        "p99_ms": _pct(lat, 99),
        "max_ms": _pct(lat, 100),
        "server_p50_ms": _pct(srv_lat, 50),
        "server_p99_ms": _pct(srv_lat, 99),
        "endpoint_loop_lag_p99_ms": _pct(ep_lag, 99),
        "endpoint_gc_pause_max_ms": _pct(gc_us, 100),
        "endpoint_gc_total_s": float(gc_us.sum()) / 1e6,
        "platform_loop_lag_p99_ms": _pct(lag.lags_us, 99),
        "client_loop_lag_p99_ms": _pct(np.concatenate([c["loop_lag_us"] for c in cl]), 99),
        "baseline_idle_heartbeat_p50_ms": _pct(base, 50),
        "baseline_idle_heartbeat_p99_ms": _pct(base, 99),
        "endpoint_rss_growth_mb": grow,
        "endpoint_peak_rss_mb": sum(e["peak_rss_mb"] for e in ep),
        "kib_per_session": grow * 1024 / max(1, peak),
        "cpu_s_endpoints": sum(e["cpu_s"] for e in ep),
        "cpu_s_clients": sum(c["cpu_s"] for c in cl),
        "cpu_s_platform": platform_cpu_s,
        "cpu_s_nats_server": nats_cpu_s,
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg()[0],
    }


def load_test(args: argparse.Namespace) -> None:
    """Run the load test and print / write its table."""
    from ironbridge.gctune import tune_gc

    tune_gc()  # the platform runs in this process, as `ironbridge run` would
    with tempfile.TemporaryDirectory(prefix="ib-vehicles-load-") as tmp:
        result = asyncio.run(_server(args, Path(tmp)))
    width = max(map(len, result))
    for key, value in result.items():
        shown = f"{value:,.2f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown:>14}")
    # each real-time frame stores one point at its own (series, second): a frame stored
    # twice would overwrite itself, so the count is exactly the frames that arrived
    ok = (
        result["endpoint_failures"] == "none"
        and result["frames_answered"] == result["frames_sent"]
        and result["frames_stored"] == result["frames_sent"]
        and result["client_errors"] == 0
    )
    print("all frames answered and stored" if ok else "NOT all frames answered and stored")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "all_answered_and_stored": ok}, indent=2))
    print(f"wrote {RESULTS}")
