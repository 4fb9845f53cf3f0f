# ruff: noqa: ASYNC220  -- a benchmark driver: blocking process calls are the point
"""Edge agent benchmark: outage, kill -9 during the outage, link restored, backlog drained.

A synthetic source feeds the agent (a real ``python -m ironbridge edge`` process) at
``--rate`` points/s while the uplink is cut (nothing listens on the broker port). Half way
through the outage the agent is killed with SIGKILL and started again on the same buffer.
Then the link is restored (a nats-server with its MQTT listener starts on that port) and a
receiver, acting as the Sparkplug host (ironbridge's own ``HostTracker``), counts what
arrives while the agent keeps collecting live data.

Reported: points collected (committed in the buffer), delivered (unique), duplicates,
per-series time order of the history backfill, time to drain the backlog, disk bytes per
buffered point, the agent's peak RSS, and when the alarm raised during the outage arrived.
The baseline is the same agent's drain throughput with no outage (measured in the run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nats

from ironbridge.codec.sparkplug import HostTracker, decode_payload, parse_topic

ROOT = Path(__file__).resolve().parent
NATS = str(Path(sys.executable).parent / "nats-server")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(work: Path, mqtt_port: int, rate: float, threshold: float) -> Path:
    path = work / "edge.toml"
    path.write_text(
        f"""
node_id = "bench-gw"
group = "bench"
buffer_path = "{work / "buffer.db"}"
disk_budget_mb = 4000
backfill_points_per_s = {rate * 3}
batch_points = 5000
[uplink]
host = "127.0.0.1"
port = {mqtt_port}
username = "bench-gw"
password = "unused"
ack_timeout_s = 5
[[sources]]
kind = "synthetic"
rate = {rate}
series = 10
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
        tr, tw = await asyncio.open_connection("127.0.0.1", self.target_port)
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


def _buffer_points(db: Path) -> tuple[int, int]:
    import sqlite3

    con = sqlite3.connect(str(db))
    try:
        n = con.execute("SELECT count(*) FROM points").fetchone()[0]
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
        return int(n), int((pages - free) * size)
    finally:
        con.close()


class Receiver:
    """Counts Sparkplug points and events arriving over the broker."""

    def __init__(self) -> None:
        self.tracker = HostTracker()
        self.seen: set[tuple[str, int]] = set()
        self.duplicates = 0
        self.last_hist: dict[str, int] = {}
        self.order_violations = 0
        self.first_kind: str | None = None
        self.first_at: float | None = None
        self.alarm_at: float | None = None
        self.messages = 0

    async def on_msg(self, msg: Any) -> None:
        now = time.monotonic()
        subject = msg.subject
        if subject.startswith("ib.v1."):
            kind = "events"
            if any(d.get("code") == "ramp_high" for d in json.loads(msg.data)):
                self.alarm_at = self.alarm_at or now
        else:
            topic = parse_topic("/".join(t.replace("//", ".") for t in subject.split(".")))
            kind = str(topic.type)
            result = self.tracker.handle(topic, decode_payload(msg.data), 0)
            for m in result.metrics:
                key = (m.name, m.timestamp)
                if key in self.seen:
                    self.duplicates += 1
                    continue
                self.seen.add(key)
                if m.historical:
                    if m.timestamp < self.last_hist.get(m.name, -1):
                        self.order_violations += 1
                    self.last_hist[m.name] = m.timestamp
        if kind not in ("NBIRTH", "NDEATH") and self.first_kind is None:
            self.first_kind, self.first_at = kind, now
        self.messages += 1


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    mqtt_port, nats_port, link_port = _port(), _port(), _port()
    outage = args.outage_s
    threshold = args.rate * outage * 0.125  # the ramp crosses it a quarter into each run
    config = _config(work, link_port, args.rate, threshold)
    log = work / "agent.log"
    conf = work / "nats.conf"
    conf.write_text(
        f'port: {nats_port}\nserver_name: "bench"\njetstream {{ store_dir: "{work}" }}\n'
        f"mqtt {{ port: {mqtt_port} }}\n"
    )
    server = subprocess.Popen(
        [NATS, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    receiver = Receiver()
    nc = None
    for _ in range(200):
        try:
            nc = await nats.connect(f"nats://127.0.0.1:{nats_port}", allow_reconnect=False)
            break
        except Exception:
            await asyncio.sleep(0.05)
    assert nc is not None
    await nc.subscribe("spBv1//0.>", cb=receiver.on_msg)
    await nc.subscribe("ib.v1.>", cb=receiver.on_msg)
    link = Link(link_port, mqtt_port)
    t_start = time.monotonic()
    agent = _agent(config, log)
    peak_kb = 0
    while time.monotonic() - t_start < outage / 2:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        await asyncio.sleep(0.5)
    peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
    os.kill(agent.pid, signal.SIGKILL)
    agent.wait()
    after_kill, _ = _buffer_points(work / "buffer.db")
    agent = _agent(config, log)
    while time.monotonic() - t_start < outage:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        await asyncio.sleep(0.5)
    backlog, used = _buffer_points(work / "buffer.db")
    await link.restore()
    t_link = time.monotonic()
    drained_at = None
    deadline = t_link + args.drain_timeout_s
    while time.monotonic() < deadline:
        peak_kb = max(peak_kb, _rss_peak_kb(agent.pid))
        if len(receiver.seen) >= backlog:
            left, _ = _buffer_points(work / "buffer.db")
            if left < args.rate:  # only live data (< 1 s of it) left in the buffer
                drained_at = time.monotonic()
                break
        await asyncio.sleep(0.2)
    agent.send_signal(signal.SIGTERM)
    agent.wait(timeout=60)
    await asyncio.sleep(0.5)
    await nc.drain()
    if link.server is not None:
        link.server.close()
    server.terminate()
    server.wait()
    remaining, _ = _buffer_points(work / "buffer.db")
    delivered = len(receiver.seen)
    collected = delivered + remaining
    return {
        "rate_points_per_s": args.rate,
        "outage_s": outage,
        "points_in_buffer_after_kill": after_kill,
        "backlog_points_at_link_restore": backlog,
        "points_collected": collected,
        "points_delivered_unique": delivered,
        "points_left_in_buffer_at_stop": remaining,
        "duplicates_received": receiver.duplicates,
        "history_order_violations": receiver.order_violations,
        "drain_s": None if drained_at is None else round(drained_at - t_link, 2),
        "drain_points_per_s": None
        if drained_at is None
        else round(backlog / max(drained_at - t_link, 1e-9)),
        "disk_bytes_per_buffered_point": round(used / max(backlog, 1), 1),
        "agent_peak_rss_mb": round(peak_kb / 1024, 1),
        "first_message_after_link": receiver.first_kind,
        "alarm_delay_after_link_s": None
        if receiver.alarm_at is None
        else round(receiver.alarm_at - t_link, 3),
        "alarm_was_first_message": receiver.first_kind == "events",
        "work_dir": str(work),
    }


def main() -> None:
    """Parse arguments, run, print a table, write bench/results/edge.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20 s outage instead of 30 min")
    parser.add_argument("--rate", type=float, default=50_000.0)
    parser.add_argument("--outage-s", type=float, default=1800.0)
    parser.add_argument("--drain-timeout-s", type=float, default=3600.0)
    args = parser.parse_args()
    if args.quick:
        args.outage_s, args.drain_timeout_s = min(args.outage_s, 20.0), 300.0
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:40s} {value}")
    out = ROOT / "results" / "edge.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
