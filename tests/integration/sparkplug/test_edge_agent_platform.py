"""The edge agent against the real platform: offline buffering, local alarm, drain order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from harness import PlatformProcess, wait_for
from ironbridge.edge.agent import EdgeAgent
from ironbridge.edge.buffer import Batch
from ironbridge.edge.config import EdgeConfig, RuleConfig, UplinkConfig
from ironbridge.edge.sources import Points

pytestmark = pytest.mark.integration

EDGE_TYPE = """
name: edge_sim
version: 1
measurements:
  - {name: sim_0, unit: "1", min: 0, max: 10000}
  - {name: sim_1, unit: "1", min: 0, max: 10000}
"""


def _raw(api: httpx.Client, asset: str, measurement: str) -> dict[int, float]:
    r = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": asset, "measurement": measurement, "start": 0, "end": "now+1h"},
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return dict(zip(series[0]["ts"], series[0]["value"], strict=True)) if series else {}


async def test_offline_alarm_then_drain_in_order(platform: PlatformProcess, tmp_path: Path) -> None:
    api = platform.client()
    r = api.post("/api/v1/asset-types", content=EDGE_TYPE, headers={"Content-Type": "text/yaml"})
    assert r.status_code in (201, 409), r.text
    r = api.post("/api/v1/assets", json={"id": "gw-7-asset", "type_name": "edge_sim"})
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": "gw-7", "asset_ids": ["gw-7-asset"]})
    assert r.status_code == 201, r.text
    cfg = EdgeConfig(
        node_id="gw-7",
        buffer_path=str(tmp_path / "buf.db"),
        batch_points=100,
        uplink=UplinkConfig(
            port=platform.mqtt_port, username="gw-7", password=r.json()["credential"]
        ),
        rules=[RuleConfig(name="sim0_high", metric="sim_0", op=">", threshold=900)],
    )
    t0 = int(time.time() * 1000) - 600_000
    n = 500
    chunks: asyncio.Queue[Points] = asyncio.Queue()

    async def source() -> AsyncIterator[Points]:
        while True:
            yield await chunks.get()

    agent = EdgeAgent(cfg, sources=[source])
    agent.link_enabled = False  # the uplink is cut
    sent: list[Batch] = []
    real_send = agent.uplink.send_many

    def recording_send(batches: list[Batch]) -> int:
        done = real_send(batches)
        sent.extend(batches[:done])
        return done

    agent.uplink.send_many = recording_send  # type: ignore[method-assign]
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    for i in range(n):
        value = 950.0 if i == 300 else float(i % 800)
        await chunks.put((["sim_0", "sim_1"], [t0 + i * 10] * 2, [value, float(i)]))
    await asyncio.to_thread(wait_for, lambda: agent.stats.collected == 2 * n, 20, 0.02, "collected")
    assert agent.stats.alarms == 2  # raised at i=300, cleared at i=301, while offline
    status = agent.status()
    assert status["link"] == "down"
    assert status["buffer_points"] == 2 * n
    assert status["buffer_events"] == 2

    agent.link_enabled = True  # the link returns
    await asyncio.to_thread(wait_for, lambda: agent.buffer.stats().points == 0, 30, 0.02, "drained")
    assert sent[0].kind == "events"  # the alarm is the first message delivered
    assert sent[1].kind == "current"
    assert all(b.kind == "history" for b in sent[2:])
    history_ts = [t for b in sent[2:] for t in b.ts]
    assert history_ts == sorted(history_ts)  # backfill in time order
    stop.set()
    await run

    def stored() -> bool:
        return (
            len(_raw(api, "gw-7-asset", "sim_0")) == n
            and len(_raw(api, "gw-7-asset", "sim_1")) == n
        )

    await asyncio.to_thread(wait_for, stored, 30, 0.2, "all points stored")
    sim1 = _raw(api, "gw-7-asset", "sim_1")
    assert sorted(sim1.values()) == [float(i) for i in range(n)]  # each exactly once
