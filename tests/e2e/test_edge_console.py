"""The edge agents page in headless Chromium against a real platform (approve policy)
and a real edge agent: pending until approved in the page, then a configuration version
pushed from the page, applied and reported by the agent, shown live (SSE)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import shot, signed_in_page

from harness import PlatformProcess, provision
from ironbridge.edge.agent import EdgeAgent
from ironbridge.edge.config import EdgeConfig, UplinkConfig

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("edge_console")) / "data",
        extra_env={"IRONBRIDGE_EDGE__POLICY": "approve"},
    ).start()
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture
def agent(platform: PlatformProcess, tmp_path: Path) -> Iterator[EdgeAgent]:
    _, credential = provision(platform.client(), "gw-web")
    cfg = EdgeConfig(
        node_id="gw-web",
        group="yard",
        buffer_path=str(tmp_path / "buf.db"),
        uplink=UplinkConfig(port=platform.mqtt_port, username="gw-web", password=credential),
    )
    edge = EdgeAgent(cfg, sources=[], status_interval_s=0.5)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(target=loop.run_until_complete, args=(edge.run(stop),))
    thread.start()
    yield edge
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


@pytest.fixture
def page(browser: Any, platform: PlatformProcess) -> Iterator[Any]:
    with signed_in_page(browser, platform.url, viewport={"width": 1400, "height": 900}) as pg:
        yield pg


def _shot(pg: Any, name: str) -> None:
    shot(pg, name, full_page=True)


def test_approve_then_push_a_configuration(
    page: Any, platform: PlatformProcess, agent: EdgeAgent
) -> None:
    page.goto(platform.url + "/edge")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert "wait for an operator" in page.text_content("#edge-policy")
    row = page.locator("#edge-body tr", has_text="gw-web")
    row.locator("text=pending").wait_for(timeout=30_000)  # pushed by the SSE feed
    _shot(page, "edge-pending")
    row.locator("button[data-approve]").click()
    row.locator("text=approved").wait_for(timeout=30_000)
    row.locator("text=ok").wait_for(timeout=30_000)  # the agent's reported health
    row.locator("button[data-manage]").click()
    page.wait_for_selector("#edge-detail:not([hidden])")
    page.fill(
        "#edge-config", '{"rules": [{"name": "hot", "metric": "t", "op": ">", "threshold": 9}]}'
    )
    page.fill("#edge-comment", "first rule")
    page.click("#edge-push button[type=submit]")
    page.locator("#edge-result", has_text="Stored as version 1").wait_for(timeout=20_000)
    page.locator("#edge-versions tr", has_text="first rule").wait_for()
    row.locator("text=runs 1 / desired 1").wait_for(timeout=30_000)
    assert [r.name for r in agent.rules.rules] == ["hot"]
    page.fill(
        "#edge-config", '{"rules": [{"name": "x", "metric": "t", "op": "?", "threshold": 1}]}'
    )
    page.click("#edge-push button[type=submit]")
    page.locator("#edge-result.error", has_text="config.rules.0.op").wait_for(timeout=20_000)
    _shot(page, "edge-configured")
