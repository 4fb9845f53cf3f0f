"""The industrial-chain pages of the console in headless Chromium against a real platform."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import shot as _shot
from browser_kit import signed_in_page

from harness import PlatformProcess
from ironbridge.chain import demo_chain, write_chain_csv

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("chain_console")) / "data").start()
    csv_dir = Path(tmp_path_factory.mktemp("chain_console_csv"))
    write_chain_csv(demo_chain(), csv_dir)
    files = {
        f: (f"{f}.csv", (csv_dir / f"{f}.csv").read_bytes(), "text/csv")
        for f in ("components", "enterprises", "links")
    }
    r = p.client().post("/api/v1/chains/nev/import", files=files)
    assert r.status_code == 201, r.text
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture
def page(browser: Any, platform: PlatformProcess) -> Iterator[Any]:
    with signed_in_page(browser, platform.url) as pg:
        yield pg


def test_chain_pages_list_dashboard_network_map_what_if_and_risk(
    page: Any, platform: PlatformProcess
) -> None:
    page.goto(platform.url + "/chains")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    row = page.locator("#chains-body tr", has_text="nev")
    assert row.count() == 1
    assert "141" in row.inner_text()
    _shot(page, "chains")
    page.goto(platform.url + "/chains/nev?tenant_id=root")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    assert page.inner_text("#k-region") == "Shandong"
    weak = page.locator("#weak-body tr").all_inner_texts()[:3]
    assert {w.split("\t")[1] for w in weak} == {
        "power semiconductor chips",
        "battery management system",
        "cathode material",
    }
    assert page.locator("#c-hhi canvas").count() == 1
    _shot(page, "chain-dashboard")
    page.click("[data-tab='network']")
    page.wait_for_function("document.querySelector('#n-count').textContent.length > 0")
    assert page.locator("#c-network canvas").count() == 1
    net = platform.client().get("/api/v1/chains/nev/network", params={"component": "power_chip"})
    want = f"{len(net.json()['nodes'])} firms · {len(net.json()['edges'])} links"
    page.select_option("#n-component", "power_chip")
    page.wait_for_function(f"document.querySelector('#n-count').textContent === {want!r}")
    _shot(page, "chain-network")
    page.click("[data-tab='map']")
    page.wait_for_selector("#c-map canvas")
    _shot(page, "chain-map")
    page.click("[data-tab='whatif']")
    page.wait_for_function("document.querySelectorAll('#w-firms option').length > 100")
    page.fill("#w-firm", "POWER-CHIP-01")
    page.click("#whatif-form button[type='submit']")
    page.wait_for_selector("#w-summary:not([hidden])")
    assert page.inner_text("#w-products") == "3"
    assert page.locator("#w-products-body tr").count() == 3
    assert "no other maker" in page.inner_text("#w-alt-body")
    _shot(page, "chain-whatif")
    page.click("[data-tab='risk']")
    page.wait_for_selector("#risk-body tr")
    assert page.locator("#risk-body tr").count() > 50
