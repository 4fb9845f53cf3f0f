"""OPC UA ingest benchmark: data-change notifications per second from 5 000 monitored items.

Setup: an asyncua server in its own process holds N Double variables and rewrites all
of them as fast as it can. Against the same server, in the same run:

* baseline: a bare asyncua client with one subscription on the N nodes (iterator mode,
  100 ms publishing interval) that only counts notifications;
* ironbridge: ``OpcUaConnector`` with the same subscription, mapping the N nodes to
  100 measurements x N/100 devices, batching and publishing columnar telemetry into
  JetStream (``IB_RAW`` on an embedded nats-server), counting only values that
  JetStream acknowledged.

The rate is over a fixed window after a warm-up. A ratio near 1 means the connector
keeps up with what the server delivers; below 1, the connector is the bottleneck.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SERVE_FLAG = "--serve-opcua"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _serve(port: int, n: int) -> None:
    from asyncua import ua
    from asyncua.server.server import Server

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/bench/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:ironbridge:bench")
    folder = await server.nodes.objects.add_folder(f"ns={ns};s=Bench", f"{ns}:Bench")
    nodes = []
    for i in range(n):
        if i % 100 == 0:  # 100 variables per machine: one folder of 5 000 is quadratic to build
            machine = await folder.add_object(f"ns={ns};s=m{i // 100}", f"{ns}:m{i // 100}")
        var = await machine.add_variable(f"ns={ns};s=v{i}", f"{ns}:v{i}", 0.0)
        nodes.append(var.nodeid)
    running = asyncio.Event()

    async def control() -> None:
        # stdin commands: "go" starts the writer, "pause" stops it (while clients subscribe)
        loop = asyncio.get_running_loop()
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            running.set() if line.strip() == "go" else running.clear()

    async with server:
        control_task = asyncio.create_task(control())
        print("READY", flush=True)
        k = 0
        while not control_task.done():
            await running.wait()
            k += 1
            for i, nid in enumerate(nodes):
                await server.write_attribute_value(
                    nid, ua.DataValue(ua.Variant(float(k * 10_000 + i), ua.VariantType.Double))
                )
                if i % 250 == 249:  # let the server answer publish requests in between
                    await asyncio.sleep(0)
            await asyncio.sleep(0.01)


def _node_ids(n: int) -> list[str]:
    return [f"ns=2;s=v{i}" for i in range(n)]


async def _baseline(url: str, n: int, warmup_s: float, window_s: float, go: Any) -> float:
    from asyncua.client.client import Client
    from asyncua.common.subscription import DataChangeEvent, OverflowPolicy

    client = Client(url, timeout=60, watchdog_intervall=30)
    await client.connect()
    try:
        sub = await client.create_subscription(
            100, None, queue_maxsize=200_000, overflow=OverflowPolicy.WARN
        )
        nodes = [client.get_node(x) for x in _node_ids(n)]
        for lo in range(0, n, 1000):
            await sub.subscribe_data_change(
                nodes[lo : lo + 1000], queuesize=10, sampling_interval=0
            )
        go()
        count = 0

        async def consume() -> None:
            nonlocal count
            while True:  # the same call the connector makes: no per-event timeout
                if isinstance(await sub.next_event(), DataChangeEvent):
                    count += 1

        task = asyncio.create_task(consume())
        await asyncio.sleep(warmup_s)
        c0 = count
        await asyncio.sleep(window_s)
        c1 = count
        task.cancel()
        return (c1 - c0) / window_s
    finally:
        await client.disconnect()


async def _connector(
    url: str, n: int, warmup_s: float, window_s: float, go: Any
) -> dict[str, float]:
    from ironbridge.bus import Bus, EmbeddedNatsServer
    from ironbridge.connect.config import parse_config
    from ironbridge.connect.opcua import OpcUaConnector

    nodes = [
        {"node": nid, "device": f"bench-{i // 100:03d}", "measurement": f"m{i % 100}"}
        for i, nid in enumerate(_node_ids(n))
    ]
    config = parse_config({"kind": "opcua", "url": url, "publishing_interval_ms": 100,
                           "timeout_s": 10, "nodes": nodes})  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        nats = EmbeddedNatsServer(Path(tmp) / "nats", port=_free_port(),
                                  mqtt_port=_free_port(), monitor_port=_free_port())  # fmt: skip
        await nats.start()
        try:
            async with Bus.connect(
                nats.client_url, user=nats.internal_user, password=nats.internal_password
            ) as bus:
                await bus.ensure_streams()
                connector = OpcUaConnector(config, bus, name="bench")  # type: ignore[arg-type]
                stop = asyncio.Event()
                task = asyncio.create_task(connector.run(stop))
                for _ in range(600):  # up to 60 s to create the monitored items
                    if connector.subscribed >= n:
                        break
                    await asyncio.sleep(0.1)
                go()
                await asyncio.sleep(warmup_s)
                n0, p0 = connector.notifications, connector.batcher.stats.published
                await asyncio.sleep(window_s)
                n1, p1 = connector.notifications, connector.batcher.stats.published
                stop.set()
                await task
                raw = await bus.stream_info("IB_RAW")
                return {
                    "notifications_per_s": (n1 - n0) / window_s,
                    "published_per_s": (p1 - p0) / window_s,
                    "messages": float(raw.messages),
                    "dropped": float(connector.batcher.stats.dropped),
                }
        finally:
            await nats.stop()


def run(quick: bool) -> dict[str, Any]:
    """Run the OPC UA section; print a table and return the figures."""
    n = 5_000
    warmup_s, window_s = (3.0, 5.0) if quick else (5.0, 20.0)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, SERVE_FLAG, str(port), str(n)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )

    def command(word: str) -> None:
        assert proc.stdin is not None
        proc.stdin.write(word + "\n")
        proc.stdin.flush()

    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "READY" not in line:
            raise RuntimeError(f"OPC UA bench server did not start: {line!r}")
        url = f"opc.tcp://127.0.0.1:{port}/bench/"
        base = asyncio.run(_baseline(url, n, warmup_s, window_s, lambda: command("go")))
        command("pause")
        ours = asyncio.run(_connector(url, n, warmup_s, window_s, lambda: command("go")))
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    ratio = ours["published_per_s"] / base if base else float("nan")
    print(__doc__)
    print(f"{'client':<58} {'notifications/s':>16} {'vs baseline':>12}")
    print(f"{'asyncua client, counting only (baseline)':<58} {base:>16,.0f} {1.0:>11.2f}x")
    print(
        f"{'ironbridge OpcUaConnector, received':<58} "
        f"{ours['notifications_per_s']:>16,.0f} {ours['notifications_per_s'] / base:>11.2f}x"
    )
    print(
        f"{'ironbridge OpcUaConnector, acked by JetStream':<58} "
        f"{ours['published_per_s']:>16,.0f} {ratio:>11.2f}x"
    )
    return {
        "monitored_items": n,
        "window_s": window_s,
        "baseline_notifications_per_s": base,
        "connector_notifications_per_s": ours["notifications_per_s"],
        "connector_published_per_s": ours["published_per_s"],
        "ratio": ratio,
        "jetstream_messages": ours["messages"],
        "dropped": ours["dropped"],
    }


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == SERVE_FLAG:
        asyncio.run(_serve(int(sys.argv[2]), int(sys.argv[3])))
    else:
        import json

        result = run("--quick" in sys.argv)
        out = Path(__file__).parent / "results" / "factory_opcua.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
