"""The plant pages of the console in headless Chromium against `ironbridge demo` with its
simulated stamping line, body shop and rework station (OPC UA, Modbus and events, a day
of history)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import shot as _shot
from browser_kit import sign_in, signed_in_page

from harness import PlatformProcess, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]

DEMO = ("demo", "--trucks", "0", "--excavators", "0", "--gensets", "0",
        "--nev-buses", "0", "--jt808-trucks", "0")  # fmt: skip
H_US = 3_600_000_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("plant_console")) / "data", command=DEMO)
    p.start(timeout=120)
    api = p.client()

    def plant_running() -> bool:
        r = api.get("/api/v1/plant/live", params={"site": "plant-sim"})
        if r.status_code != 200:
            return False
        states = [s["state"] for ln in r.json()["lines"] for s in ln["stations"]]
        return len(states) == 7 and "unknown" not in states

    wait_for(plant_running, timeout=120, interval=1, what="the demo plant's stations")
    yield p
    assert p.stop() == 0, p.log()


def _login(browser: Any, platform: PlatformProcess, **context: Any) -> tuple[Any, Any, list[str]]:
    return sign_in(browser, platform.url, **context)


@pytest.fixture
def page(browser: Any, platform: PlatformProcess) -> Iterator[Any]:
    with signed_in_page(browser, platform.url) as pg:
        yield pg


def _pct(text: str) -> float:
    return float(text.replace("%", "").replace(",", "").strip()) / 100


def _ready(pg: Any) -> None:
    pg.wait_for_selector("body[data-ready='1']", timeout=30_000)


def test_line_view_shows_live_states_counts_and_oee(page: Any, platform: PlatformProcess) -> None:
    page.goto(platform.url + "/plant")
    _ready(page)
    stations = page.locator(".station")
    assert stations.count() == 7
    assert page.locator(".line-card").count() == 3  # stamping (OPC UA), body shop (Modbus),
    # final (the rework station reports by MQTT-style events, as an MES would)
    for s in stations.all():
        assert s.get_attribute("data-state") in {
            "running", "idle", "down", "setup", "planned_stop"}  # fmt: skip
    view = platform.client().get("/api/v1/plant/live", params={"site": "plant-sim"}).json()
    stamping = next(ln for ln in view["lines"] if ln["id"] == "stamping")
    shown = _pct(page.inner_text("[data-line='stamping'] .line-kpis [data-k='oee']"))
    assert 0.2 < stamping["oee"] < 1
    assert shown == pytest.approx(stamping["oee"], abs=0.02)  # live: may move a little
    press = page.locator("[data-station='press-01'] [data-k='parts']").inner_text()
    good = int(press.split("/")[0].replace(",", ""))
    api_good = next(s for s in stamping["stations"] if s["id"] == "press-01")["good"]
    # counts run since the shift began (a shift may have just started): real, and the API's
    assert good > 0
    assert abs(good - api_good) <= 5
    rework = page.locator("[data-station='rework-01'] [data-k='parts']").inner_text()
    assert int(rework.split("/")[0].replace(",", "")) > 0  # parts counted from events
    assert page.get_attribute("#live-state", "data-state") == "open"  # the SSE feed
    _shot(page, "plant-line")
    # keyboard: tab to the first station and open its OEE
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('station')"):
            break
    else:
        pytest.fail("no station card is reachable with the keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/plant/oee\?.*station=press-01"))
    _ready(page)
    assert page.input_value("#f-station") == "press-01"


def test_oee_dashboard_matches_the_api(page: Any, platform: PlatformProcess) -> None:
    page.goto(platform.url + "/plant/oee?site=plant-sim&period=shift&range=24h")
    _ready(page)
    api = platform.client()
    now = int(time.time() * 1e6)
    report = api.get("/api/v1/plant/oee", params={"site": "plant-sim", "start": "now-24h"}).json()
    done = [r for r in report["lines"]
            if r["end_us"] - r["start_us"] == 8 * H_US and r["end_us"] < now]  # fmt: skip
    assert done, "a full shift of history"
    row = done[-1]
    again = api.get("/api/v1/plant/oee", params={
        "site": "plant-sim", "line": row["line"], "start": row["start_us"] // 1000,
        "end": row["end_us"] // 1000}).json()["lines"][0]  # fmt: skip
    assert again["oee"] == pytest.approx(row["oee"])  # a finished shift does not move
    cells = [
        r.split("\t")
        for r in page.locator("#lines-body tr", has_text=row["line"]).all_inner_texts()
    ]
    shown = [c for c in cells if c[1].startswith(row["shift"] + " ")]
    assert any(_pct(c[2]) == pytest.approx(row["oee"], abs=0.0006) for c in shown), (shown, row)
    assert _pct(page.inner_text("#k-oee")) > 0.2
    assert page.locator("#stations-body tr").count() >= 6 * 3
    reasons = page.locator("#pareto-body tr").all_inner_texts()
    assert reasons
    assert {r.split("\t")[0] for r in reasons} <= {"jam", "sensor_fault"}
    assert page.locator("#c-pareto canvas").count() == 1
    assert page.locator("#c-timeline canvas").count() == 1
    assert "Running" in page.inner_text("#timeline-sum")
    _shot(page, "plant-oee")


def test_spc_chart_marks_violations_and_the_alarm(page: Any, platform: PlatformProcess) -> None:
    api = platform.client()

    def spc_alarm() -> list[dict[str, Any]]:
        rows = api.get("/api/v1/alarms", params={"asset_id": "inspect-01"}).json()
        return [a for a in rows if a["rule_id"] == "spc-inspect-01-gap"]

    (alarm,) = wait_for(spc_alarm, timeout=60, interval=1, what="the SPC alarm of the gap")
    assert "I-MR panel_gap" in alarm["message"]
    page.goto(platform.url + "/plant/spc")
    _ready(page)
    assert page.input_value("#f-rule") == "spc-inspect-01-gap"
    rule = api.get("/api/v1/rules/spc-inspect-01-gap").json()["params"]
    limits = api.get("/api/v1/plant/spc", params={
        "asset": "inspect-01", "measurement": "panel_gap", "chart": "i-mr",
        "reference_start": rule["reference_start"], "reference_end": rule["reference_end"],
        "start": "now-1h"}).json()["limits"]  # fmt: skip
    assert float(page.inner_text("#k-center")) == pytest.approx(limits["center"], rel=1e-4)
    assert float(page.inner_text("#k-ucl")) == pytest.approx(limits["ucl"], rel=1e-4)
    assert float(page.inner_text("#k-lcl")) == pytest.approx(limits["lcl"], rel=1e-4)
    assert int(page.inner_text("#k-points").replace(",", "")) > 100
    assert int(page.inner_text("#k-violations").replace(",", "")) > 0
    assert int(page.inner_text("#k-alarms")) >= 1
    assert re.search(r"N[1-8]", page.inner_text("#violations-body"))
    assert page.locator("#c-location canvas").count() == 1
    _shot(page, "plant-spc")
    page.select_option("#f-chart", "xbar-s")
    page.click("#spc-bar button[type='submit']")
    page.wait_for_function("document.querySelector('#spc-title').textContent.startsWith('X̄-S')")
    page.goto(platform.url + "/alarms")
    _ready(page)
    page.wait_for_selector("text=Door panel gap")


def test_tablet_width_and_chinese(browser: Any, platform: PlatformProcess) -> None:
    ctx, pg, errors = _login(
        browser, platform, viewport={"width": 820, "height": 1180}, locale="zh-CN"
    )
    try:
        for path in ("/plant", "/plant/oee", "/plant/spc"):
            pg.goto(platform.url + "/lang/zh?next=" + path)
            _ready(pg)
            overflow = pg.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 1, f"{path} scrolls sideways at tablet width by {overflow}px"
        assert "产线视图" in pg.inner_text("nav.side")
    finally:
        ctx.close()
    assert not errors, errors
