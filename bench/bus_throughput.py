"""Backbone ceiling: paho MQTT QoS 1 -> nats-server MQTT -> JetStream -> nats-py fetch.

Publishers run in their own processes (as devices would); the consumer fetches batches
of 1000 and acks them fire-and-forget. Baseline in the same run: the consumer side alone
(nats-py core publish straight into the stream, then fetch + ack), i.e. what fetching
costs without MQTT in front.

    .venv/bin/python bench/bus_throughput.py [--quick] [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import bcrypt
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ironbridge.bus import STREAM_RAW, Bus, EmbeddedNatsServer, telemetry_topic

POINTS_PER_MSG = 100
RESULTS = Path(__file__).parent / "results" / "bus_throughput.json"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _payload(i: int) -> bytes:
    # 10 timestamps x 10 measurements = 100 points, ThingsBoard-style list form
    base = 1_700_000_000_000 + i * 10
    return orjson.dumps(
        [{"ts": base + k, "values": {f"m{j}": 0.5 * j + k for j in range(10)}} for k in range(10)]
    )


def _publisher(port: int, device: str, n: int, ready: Any, go: Any, out: Any) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv311)
    client.username_pw_set(device, "pw")
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    acked = 0
    done = threading.Event()
    connected = threading.Event()

    def on_connect(*_: Any) -> None:
        connected.set()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            done.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    connected.wait(10)
    payloads = [_payload(i) for i in range(n)]
    topic = telemetry_topic(device)
    ready.set()
    go.wait()
    t0 = time.perf_counter()
    for p in payloads:
        client.publish(topic, p, qos=1)
    done.wait(300)
    out.put((device, acked, time.perf_counter() - t0))
    client.disconnect()
    client.loop_stop()


async def _consume(bus: Bus, durable: str, subject: str, total: int) -> tuple[int, float]:
    consumer = await bus.pull_consumer(STREAM_RAW, durable, filter_subject=subject)
    got = 0
    first: float | None = None
    while got < total:
        msgs = await consumer.fetch(1000, timeout=2.0)
        if not msgs:
            if first is not None:
                break
            continue
        if first is None:
            first = time.perf_counter()
        got += len(msgs)
        await consumer.ack_all(msgs)
    await consumer.close()
    return got, time.perf_counter() - (first or time.perf_counter())


async def _baseline(bus: Bus, n: int) -> dict[str, float]:
    subject = "ib.v1.bench-base.telemetry"
    payload = _payload(0)
    t0 = time.perf_counter()
    for _ in range(n):
        await bus.client.publish(subject, payload)
    await bus.client.flush()
    got, elapsed = await _consume(bus, "bench-base", subject, n)
    return {
        "messages": got,
        "fetch_ack_msg_per_s": got / max(elapsed, 1e-9),
        "total_s": time.perf_counter() - t0,
    }


async def _mqtt_run(server: EmbeddedNatsServer, bus: Bus, pubs: int, n: int) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    ready = [ctx.Event() for _ in range(pubs)]
    go = ctx.Event()
    out = ctx.Queue()
    devices = [f"bench-{pubs}-{k}" for k in range(pubs)]
    procs = [
        ctx.Process(target=_publisher, args=(server.mqtt_port, d, n, r, go, out))
        for d, r in zip(devices, ready, strict=True)
    ]
    for p in procs:
        p.start()
    for r in ready:
        await asyncio.to_thread(r.wait, 60)
    durable = f"bench-mqtt-{pubs}"
    consumer_task = asyncio.create_task(_consume_filtered(bus, durable, devices, pubs * n))
    t0 = time.perf_counter()
    go.set()
    results = [await asyncio.to_thread(out.get, True, 600) for _ in procs]
    publish_s = max(r[2] for r in results)
    got, _ = await consumer_task
    end_to_end = time.perf_counter() - t0
    for p in procs:
        p.join(10)
    total = pubs * n
    return {
        "publishers": pubs,
        "messages": got,
        "publish_msg_per_s": total / publish_s,
        "end_to_end_msg_per_s": got / end_to_end,
        "end_to_end_points_per_s": got * POINTS_PER_MSG / end_to_end,
    }


async def _consume_filtered(
    bus: Bus, durable: str, devices: list[str], total: int
) -> tuple[int, float]:
    # one consumer over the whole raw stream, counting only this run's devices
    consumer = await bus.pull_consumer(STREAM_RAW, durable, filter_subject="ib.v1.*.telemetry")
    wanted = {f"ib.v1.{d}.telemetry" for d in devices}
    got = 0
    idle = 0
    t0 = time.perf_counter()
    while got < total and idle < 10:
        msgs = await consumer.fetch(1000, timeout=1.0)
        if not msgs:
            idle += 1 if got else 0
            continue
        idle = 0
        got += sum(1 for m in msgs if m.subject in wanted)
        await consumer.ack_all(msgs)
    await consumer.close()
    await bus.delete_consumer(STREAM_RAW, durable)
    return got, time.perf_counter() - t0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small run (seconds)")
    parser.add_argument("--messages", type=int, help="messages per publisher")
    args = parser.parse_args()
    n = args.messages or (2000 if args.quick else 20000)
    pw_hash = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()

    class Cred:
        def __init__(self, device_id: str) -> None:
            self.device_id = device_id
            self.credential_hash = pw_hash

    creds = [Cred(f"bench-{p}-{k}") for p in (1, 2) for k in range(p)]
    port, mqtt_port, monitor_port = _free_ports(3)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNatsServer(
            Path(tmp) / "nats",
            port=port,
            mqtt_port=mqtt_port,
            monitor_port=monitor_port,
            devices=creds,
        )
        async with (
            server,
            Bus.connect(
                server.client_url, user=server.internal_user, password=server.internal_password
            ) as bus,
        ):
            await bus.ensure_streams(raw_max_bytes=4 * 1024**3)
            baseline = await _baseline(bus, n)
            runs = [await _mqtt_run(server, bus, pubs, n) for pubs in (1, 2)]

    base = baseline["fetch_ack_msg_per_s"]
    print(f"backbone throughput, {n} messages per publisher, {POINTS_PER_MSG} points/message")
    print(f"{'case':<34}{'msg/s':>12}{'points/s':>14}{'vs baseline':>13}")
    label = "baseline: fetch(1000)+ack only"
    print(f"{label:<34}{base:>12,.0f}{base * POINTS_PER_MSG:>14,.0f}{1.0:>13.2f}")
    for r in runs:
        e2e = r["end_to_end_msg_per_s"]
        label = f"MQTT QoS1 x{r['publishers']} -> JS -> fetch"
        print(f"{label:<34}{e2e:>12,.0f}{e2e * POINTS_PER_MSG:>14,.0f}{e2e / base:>13.2f}")
        print(f"{'  publish side (PUBACKed)':<34}{r['publish_msg_per_s']:>12,.0f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "messages_per_publisher": n,
                "points_per_message": POINTS_PER_MSG,
                "baseline": baseline,
                "mqtt": runs,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    asyncio.run(main())
