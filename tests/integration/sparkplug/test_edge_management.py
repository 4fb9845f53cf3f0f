"""Managing a real edge agent from the real platform: status in /api/v1/edge/agents,
configuration versions pushed over Sparkplug NCMD, applied (sources restarted, rules
replaced), acknowledged, refused with the field named, rolled back, kept across restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import PlatformProcess, wait_for
from ironbridge.edge.agent import EdgeAgent
from ironbridge.edge.config import EdgeConfig, RuleConfig, UplinkConfig
from ironbridge.edge.sources import Points

pytestmark = pytest.mark.integration

EDGE_TYPE = """
name: edge_mgmt
version: 1
measurements:
  - {name: level, unit: "1", min: 0, max: 10000}
"""


def _agent(api: httpx.Client, node: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/edge/agents/{node}")
    return r.json() if r.status_code == 200 else {}


async def test_agent_status_config_push_and_rollback(
    platform: PlatformProcess, tmp_path: Path
) -> None:
    api = platform.client()
    r = api.post("/api/v1/asset-types", content=EDGE_TYPE, headers={"Content-Type": "text/yaml"})
    assert r.status_code in (201, 409), r.text
    assert (
        api.post("/api/v1/assets", json={"id": "tank-9", "type_name": "edge_mgmt"}).status_code
        == 201
    )
    r = api.post("/api/v1/devices", json={"id": "gw-9", "asset_ids": ["tank-9"]})
    assert r.status_code == 201, r.text
    cfg = EdgeConfig(
        node_id="gw-9",
        group="site9",
        buffer_path=str(tmp_path / "buf.db"),
        uplink=UplinkConfig(
            port=platform.mqtt_port, username="gw-9", password=r.json()["credential"]
        ),
        rules=[RuleConfig(name="old", metric="level", op=">", threshold=1)],
    )
    starts: list[float] = []
    t0 = int(time.time() * 1000)

    async def source() -> AsyncIterator[Points]:
        starts.append(time.monotonic())  # every (re)start of the sources
        yield (["level"], [t0 + len(starts)], [float(len(starts))])
        await asyncio.Event().wait()

    agent = EdgeAgent(cfg, sources=[source], status_interval_s=0.5)
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:

        def reported(key: str, value: object) -> bool:
            return _agent(api, "gw-9").get("status", {}).get(key) == value

        await asyncio.to_thread(wait_for, lambda: reported("health", "ok"), 30, 0.1, "status")
        view = _agent(api, "gw-9")
        assert view["kind"] == "agent"
        assert view["state"] == "approved"
        assert view["online"]
        assert view["group_id"] == "site9"
        assert view["status"]["config_version"] == 0
        assert view["status"]["buffer_points"] >= 0
        assert view["status"]["budget_bytes"] > 0
        listing = api.get("/api/v1/edge/agents").json()
        assert listing["policy"] == "auto"
        assert "gw-9" in [a["node_id"] for a in listing["agents"]]

        bad = {"rules": [{"name": "x", "metric": "level", "op": "!=", "threshold": 1}]}
        r = api.post("/api/v1/edge/agents/gw-9/configs", json={"config": bad})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "config.rules.0.op"

        v1 = {"rules": [{"name": "high", "metric": "level", "op": ">", "threshold": 50}]}
        r = api.post("/api/v1/edge/agents/gw-9/configs", json={"config": v1, "comment": "v1"})
        assert r.status_code == 201, r.text
        assert r.json()["version"] == 1
        assert r.json()["sent"] is True
        await asyncio.to_thread(wait_for, lambda: reported("config_version", 1), 30, 0.1, "v1")
        assert [x.name for x in agent.rules.rules] == ["high"]
        assert len(starts) == 2  # the sources were restarted

        v2 = {"rules": [{"name": "low", "metric": "level", "op": "<", "threshold": 5}]}
        r = api.post("/api/v1/edge/agents/gw-9/configs", json={"config": v2})
        assert r.status_code == 201
        assert r.json()["version"] == 2
        await asyncio.to_thread(wait_for, lambda: reported("config_version", 2), 30, 0.1, "v2")

        r = api.post("/api/v1/edge/agents/gw-9/rollback", json={"version": 7})
        assert r.status_code == 422
        assert r.json()["field"] == "version"
        r = api.post("/api/v1/edge/agents/gw-9/rollback", json={"version": 1})
        assert r.status_code == 200, r.text
        await asyncio.to_thread(
            wait_for, lambda: reported("config_version", 1), 30, 0.1, "rollback"
        )
        assert [x.name for x in agent.rules.rules] == ["high"]
        configs = api.get("/api/v1/edge/agents/gw-9/configs").json()
        assert [v["version"] for v in configs["versions"]] == [2, 1]
        assert configs["desired_version"] == configs["reported_version"] == 1
        assert _agent(api, "gw-9")["in_sync"] is True
    finally:
        stop.set()
        await run
    await asyncio.to_thread(
        wait_for, lambda: _agent(api, "gw-9")["online"] is False, 30, 0.1, "NDEATH on stop"
    )
    again = EdgeAgent(cfg, sources=[])  # the applied version survives a restart
    assert again.config_version == 1
    assert [x.name for x in again.rules.rules] == ["high"]
    again.buffer.close()
    assert api.get("/api/v1/edge/agents/nope").status_code == 404
