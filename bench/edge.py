# ruff: noqa: ASYNC220, ASYNC240  -- a benchmark driver: blocking process and file calls are the point
"""Edge agent benchmark: outage, kill -9 during the outage, link restored, backlog drained.

A synthetic source feeds the agent (a real ``python -m ironbridge edge`` process) at
``--rate`` points/s over ``--series`` series while the uplink is cut (a TCP proxy on the
agent's broker port that refuses connections). Half way through the outage the agent is
killed with SIGKILL and started again on the same buffer. Then the link is restored (the
proxy forwards to a nats-server MQTT listener) and the agent drains its backlog while it
keeps collecting live data. Once the backlog is drained the agent is told to stop
collecting (SIGUSR1) and to forward what is left; then it is stopped.

A receiver subscribed on the NATS side records every Sparkplug and event message as it
arrives (raw, to a file). After the run the payloads are decoded with pysparkplug's
protobuf classes (an independent decoder) into numpy columns, and the figures are checked
on them: points collected (the agent's committed-point counter) = points delivered, each
(series, timestamp) exactly once, history in time order per series.

Reported: points collected and delivered, duplicates, history order violations, the
backlog at link restore, time to drain it, disk bytes per buffered point, the agent's
peak RSS (both processes), and when the alarm raised during the outage arrived (and
whether it was the first message after the link returned).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats
import numpy as np
import numpy.typing as npt

from procstat import cpu_seconds

ROOT = Path(__file__).resolve().parent
NATS = str(Path(sys.executable).parent / "nats-server")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(work: Path, mqtt_port: int, args: argparse.Namespace, threshold: float) -> Path:
    path = work / "edge.toml"
    path.write_text(
        f"""
node_id = "bench-gw"
group = "bench"
buffer_path = "{work / "buffer.db"}"
disk_budget_mb = {args.disk_budget_mb}
backfill_points_per_s = {args.rate * 4}
batch_points = {args.batch_points}
[uplink]
host = "127.0.0.1"
port = {mqtt_port}
username = "bench-gw"
password = "unused"
ack_timeout_s = 10
reconnect_max_s = 2
[[sources]]
kind = "synthetic"
rate = {args.rate}
series = {args.series}
[[rules]]
name = "ramp_high"
metric = "sim_0"
op = ">"
threshold = {threshold}
"""
    )
    return path


class Link:
    """A TCP proxy on the agent's uplink port: closed = the link is cut."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.server: asyncio.Server | None = None

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            w.close()

    async def _client(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the broker is already gone (end of the run): drop this client
            w.close()
            return
        await asyncio.gather(self._pipe(r, tw), self._pipe(tr, w))

    async def restore(self) -> None:
        """Open the link."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.listen_port)


def _agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "ironbridge", "edge", "--config", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _rss_peak_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _buffer(db: Path) -> dict[str, int]:
    import sqlite3

    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        pages, free, size = (
            q("PRAGMA page_count"),
            q("PRAGMA freelist_count"),
            q("PRAGMA page_size"),
        )
        return {
            "points": int(q("SELECT coalesce(sum(n), 0) FROM blocks WHERE copy = 0"))
            - int(q("SELECT count(*) FROM skips")),
            "events": int(q("SELECT count(*) FROM events")),
            "pending": int(q("SELECT count(*) FROM batches")),
            "collected": int(q("SELECT coalesce(max(value), 0) FROM meta WHERE key='collected'")),
            "dropped": int(q("SELECT coalesce(max(value), 0) FROM meta WHERE key='dropped'")),
            "used_bytes": int((pages - free) * size),
        }
    finally:
        con.close()


class Capture:
    """Appends every message (arrival time, subject, payload) to a file, nothing more."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("wb")
        self.messages = 0

    async def on_msg(self, msg: Any) -> None:
        subject = msg.subject.encode()
        head = struct.pack("<dII", time.time(), len(subject), len(msg.data))
        self.file.write(head + subject + msg.data)
        self.messages += 1

    def close(self) -> None:
        self.file.close()


def _records(path: Path) -> Any:
    with path.open("rb") as f:
        while head := f.read(16):
            at, ns, nd = struct.unpack("<dII", head)
            yield at, f.read(ns).decode(), f.read(nd)


def verify(capture: Path, t_link: float) -> dict[str, Any]:
    """Decode the captured messages (pysparkplug's protobuf) into numpy columns; check them.

    Exactly once is checked on the (series, timestamp) key over every delivered point
    (sorted with numpy, 180 M points in about a minute); time order on the historical
    points per series, in the order they arrived.
    """
    from pysparkplug._protobuf import sparkplug_b_pb2 as pb

    ids: dict[str, int] = {}  # series name -> dense id; -1 for the agent's own status metrics
    lookup = np.full(1, -1, dtype=np.int64)  # alias -> id for the current NBIRTH
    first: tuple[float, str] | None = None
    alarms: list[float] = []
    series_parts: list[npt.NDArray[np.int64]] = []
    ts_parts: list[npt.NDArray[np.int64]] = []
    hist_parts: list[npt.NDArray[np.bool_]] = []
    for at, subject, data in _records(capture):
        if subject.startswith("ib.v1."):
            kind = "events"
            alarms.extend(at for d in json.loads(data) if d.get("code") == "ramp_high")
        else:
            kind = subject.split(".")[2]
            payload = pb.Payload()
            payload.ParseFromString(data)
            if kind == "NBIRTH":
                named = [(m.alias, m.name) for m in payload.metrics if m.HasField("alias")]
                lookup = np.full(max(a for a, _ in named) + 1, -1, dtype=np.int64)
                for alias, name in named:
                    if not name.startswith("Edge Status/"):
                        lookup[alias] = ids.setdefault(name, len(ids))
            elif kind == "NDATA":
                metrics = payload.metrics
                series = lookup[np.fromiter((m.alias for m in metrics), np.int64, len(metrics))]
                keep = series >= 0
                series_parts.append(series[keep])
                ts = np.fromiter((m.timestamp for m in metrics), np.int64, len(metrics))
                ts_parts.append(ts[keep])
                hist = np.fromiter((m.is_historical for m in metrics), np.bool_, len(metrics))
                hist_parts.append(hist[keep])
        if first is None and at >= t_link and kind not in ("NBIRTH", "NDEATH", "STATE"):
            first = (at, kind)
    series = np.concatenate(series_parts) if series_parts else np.zeros(0, np.int64)
    ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, np.int64)
    hist = np.concatenate(hist_parts) if hist_parts else np.zeros(0, np.bool_)
    del series_parts, ts_parts, hist_parts
    delivered = int(series.size)
    t0 = int(ts.min(initial=0))
    key = (series << 42) | (ts - t0)  # ms timestamps span < 2**42 ms (139 years)
    key.sort()
    unique = int(np.count_nonzero(np.diff(key) != 0)) + 1 if delivered else 0
    del key
    h_series, h_ts = series[hist], ts[hist]
    order = np.argsort(h_series, kind="stable")  # arrival order kept within each series
    s_sorted, t_sorted = h_series[order], h_ts[order]
    same = s_sorted[1:] == s_sorted[:-1]
    violations = int(np.count_nonzero(same & (t_sorted[1:] <= t_sorted[:-1])))
    after = [a for a in alarms if a >= t_link]
    return {
        "points_delivered": delivered,
        "points_delivered_unique": unique,
        "duplicates_received": delivered - unique,
        "history_order_violations": violations,
        "alarms_received": len(alarms),
        "first_message_after_link": None if first is None else first[1],
        "alarm_delay_after_link_s": round(after[0] - t_link, 3) if after else None,
        "alarm_was_first_message": first is not None and first[1] == "events",
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-edge-"))
    work.mkdir(parents=True, exist_ok=True)
    mqtt_port, nats_port, link_port = _port(), _port(), _port()
    outage = args.outage_min * 60.0
    threshold = args.rate * min(outage / 2, 60) * 0.25  # crossed early in each agent run
    config = _config(work, link_port, args, threshold)
    log = work / "agent.log"
    conf = work / "nats.conf"
    conf.write_text(
        f'port: {nats_port}\nserver_name: "bench"\njetstream {{ store_dir: "{work}" }}\n'
        f"mqtt {{ port: {mqtt_port} }}\nmax_payload: 8MB\n"
    )
    server = subprocess.Popen(
        [NATS, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    capture = Capture(work / "capture.bin")
    nc = None
    for _ in range(200):
        try:
            nc = await nats.connect(
                f"nats://127.0.0.1:{nats_port}",
                allow_reconnect=False,
                pending_size=1 << 30,
            )
            break
        except Exception:
            await asyncio.sleep(0.05)
    assert nc is not None
    await nc.subscribe(
        "spBv1//0.>", cb=capture.on_msg, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30
    )
    await nc.subscribe(
        "ib.v1.>", cb=capture.on_msg, pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30
    )
    link = Link(link_port, mqtt_port)
    load_start = os.getloadavg()
    t_start = time.monotonic()
    agent = _agent(config, log)
    peaks: list[int] = []
    peak_kb = 0
    while time.monotonic() - t_start < outage / 2:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        await asyncio.sleep(0.5)
    peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
    peaks.append(peak_kb)
    cpu = cpu_seconds(agent.pid)
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    at_kill = _buffer(work / "buffer.db")
    agent = _agent(config, log)
    peak_kb = 0
    while time.monotonic() - t_start < outage:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        await asyncio.sleep(0.5)
    at_link = _buffer(work / "buffer.db")
    backlog = at_link["points"]
    load_outage = os.getloadavg()
    await link.restore()
    t_link_wall, t_link = time.time(), time.monotonic()
    drained_at = None
    deadline = t_link + args.drain_timeout_min * 60
    while time.monotonic() < deadline:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        state = _buffer(work / "buffer.db")
        if state["points"] < args.rate and state["events"] == 0:  # < 1 s of live data left
            drained_at = time.monotonic()
            break
        await asyncio.sleep(0.5)
    load_drain = os.getloadavg()
    agent.send_signal(signal.SIGUSR1)  # stop collecting, forward the rest
    while time.monotonic() < deadline + 120:
        state = _buffer(work / "buffer.db")
        if state["points"] == 0 and state["events"] == 0 and state["pending"] == 0:
            break
        await asyncio.sleep(0.5)
    peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
    peaks.append(peak_kb)
    cpu += cpu_seconds(agent.pid)
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=60)
    await asyncio.sleep(1.0)
    await nc.drain()
    capture.close()
    if link.server is not None:
        link.server.close()
    server.terminate()
    server.wait()
    final = _buffer(work / "buffer.db")
    checked = verify(work / "capture.bin", t_link_wall)
    collected = final["collected"]
    return {
        "rate_points_per_s": args.rate,
        "series": args.series,
        "outage_min": args.outage_min,
        "points_in_buffer_after_kill": at_kill["points"],
        "backlog_points_at_link_restore": backlog,
        "points_collected": collected,
        **checked,
        "collected_equals_delivered": collected == checked["points_delivered_unique"]
        and checked["duplicates_received"] == 0,
        "points_dropped_by_budget": final["dropped"],
        "points_left_in_buffer_at_stop": final["points"],
        "drain_s": None if drained_at is None else round(drained_at - t_link, 1),
        "drain_backlog_points_per_s": None
        if drained_at is None
        else round(backlog / max(drained_at - t_link, 1e-9)),
        "disk_bytes_per_buffered_point": round(at_link["used_bytes"] / max(backlog, 1), 2),
        "agent_peak_rss_mb": [round(kb / 1024, 1) for kb in peaks],
        "agent_cpu_s": round(cpu, 1),
        "agent_cpu_us_per_point_collected_and_sent": round(1e6 * cpu / max(collected, 1), 2),
        "load_avg_1_5_15_start": [round(x, 1) for x in load_start],
        "load_avg_end_of_outage": [round(x, 1) for x in load_outage],
        "load_avg_end_of_drain": [round(x, 1) for x in load_drain],
        "work_dir": str(work),
    }


def main() -> None:
    """Parse arguments, run, print a table, write bench/results/edge.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50_000.0, help="points/s")
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--outage-min", type=float, default=30.0)
    parser.add_argument("--drain-timeout-min", type=float, default=60.0)
    parser.add_argument("--batch-points", type=int, default=10_000)
    parser.add_argument("--disk-budget-mb", type=float, default=20_000.0)
    parser.add_argument("--work-dir", default="", help="default: a new temporary directory")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:40s} {value}")
    out = ROOT / "results" / "edge.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
