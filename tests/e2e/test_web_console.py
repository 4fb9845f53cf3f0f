"""End-to-end tests of the console in headless Chromium against a real platform process.

Chromium is the Debian package and Playwright drives it (no browser download). Each test
reads data that really went through the platform: MQTT -> JetStream -> ingest -> DuckDB
-> /api/v1 -> the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_kit import shot as save_shot

from harness import ADMIN_PASSWORD, Device, PlatformProcess, provision, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("console")) / "data").start()
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture(scope="module")
def sensor(platform: PlatformProcess) -> Iterator[Device]:
    api = platform.client()
    asset_id, credential = provision(api, "web-dev-1", "web-asset-1")
    dev = Device(platform.mqtt_port, "web-dev-1", credential)
    assert dev.connect()
    assert dev.publish(json.dumps({"values": {"temperature": 21.5, "pressure": 101.0}}).encode())
    wait_for(
        lambda: api.get("/api/v1/telemetry/latest", params={"asset": asset_id}).json()["values"],
        what="the first reading to be stored",
    )
    yield dev
    dev.close()


@pytest.fixture(scope="module")
def session(browser: Any, platform: PlatformProcess, sensor: Device) -> Iterator[Any]:
    """A browser context signed in through the login form (its cookie is the session)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en-US")
    pg = context.new_page()
    pg.goto(platform.url + "/")
    assert "/login" in pg.url, "an anonymous visitor is sent to the login page"
    pg.fill("#username", "admin")
    pg.fill("#password", ADMIN_PASSWORD)
    pg.click("#login-submit")
    pg.wait_for_url(platform.url + "/")
    pg.close()
    yield context
    context.close()


@pytest.fixture
def page(session: Any) -> Iterator[Any]:
    pg = session.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    pg.close()
    assert not errors, errors


def _open(pg: Any, url: str, shot: str | None = None) -> None:
    pg.goto(url)
    pg.wait_for_selector("body[data-ready='1']", timeout=20_000)
    if shot:
        save_shot(pg, shot)


def test_login_rejects_a_wrong_password(browser: Any, platform: PlatformProcess) -> None:
    pg = browser.new_page()
    pg.goto(platform.url + "/login")
    pg.fill("#username", "admin")
    pg.fill("#password", "not-the-password")
    pg.click("#login-submit")
    pg.wait_for_selector("#login-error:not([hidden])")
    assert "/login" in pg.url
    pg.close()


def test_overview_counts_the_fleet_from_the_api(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/", "overview")
    api = platform.client()
    total = len(api.get("/api/v1/assets").json())
    assert page.inner_text("#k-total") == str(total)
    assert page.inner_text("#k-online") == "1"  # the sensor published moments ago
    assert page.locator("#c-types canvas").count() == 1


def test_every_page_opens_with_data(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/assets", "assets")
    assert page.locator("#assets-body tr", has_text="web-asset-1").count() == 1
    _open(page, platform.url + "/asset-types", "asset-types")
    assert "test_sensor" in page.inner_text("#types")
    _open(page, platform.url + "/devices", "devices")
    assert page.locator("#devices-body tr", has_text="web-dev-1").count() == 1
    _open(page, platform.url + "/map", "map")
    assert page.locator("#map path.leaflet-interactive, #map canvas").count() >= 1
    _open(page, platform.url + "/alarms", "alarms")
    _open(page, platform.url + "/ingest", "ingest")
    assert page.inner_text("#i-points") not in ("", "–")


def test_a_value_published_over_mqtt_appears_live_on_the_asset_page(
    page: Any, platform: PlatformProcess, sensor: Device
) -> None:
    _open(page, platform.url + "/assets/web-asset-1", "asset")
    assert page.locator("#charts canvas").count() >= 2  # temperature and pressure charts
    assert "web-dev-1" in page.inner_text("#attrs")  # the serial attribute
    # The page is already open: the new value must arrive over the SSE feed.
    assert sensor.publish(json.dumps({"values": {"temperature": 87.25}}).encode())
    tile = page.locator(".lv[data-measurement='temperature'] b")
    tile.filter(has_text="87.25").wait_for(timeout=20_000)


def test_create_a_device_and_copy_its_credential(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/devices")
    page.click("#new-device")
    page.fill("#dev-id", "web-new-dev")
    page.select_option("#dev-asset", "web-asset-1")
    page.click("#dev-create")
    page.wait_for_selector("#device-created:not([hidden])")
    credential = page.inner_text("#created-cred")
    assert len(credential) >= 16
    mqtt = page.inner_text("#ex-mqtt")
    assert mqtt.startswith("mosquitto_pub")
    assert credential in mqtt
    assert "curl" in page.inner_text("#ex-curl")
    # The credential shown works: the device connects with it.
    dev = Device(platform.mqtt_port, "web-new-dev", credential)
    assert wait_for(dev.connect, what="the new device to be accepted")
    dev.close()


def test_dead_letters_show_their_reason(
    page: Any, platform: PlatformProcess, sensor: Device
) -> None:
    assert sensor.publish(json.dumps({"values": {"temperature": 999}}).encode())
    api = platform.client()
    wait_for(
        lambda: api.get("/api/v1/ingest/dead-letters").json()["dead_letters"],
        what="the reject to be dead-lettered",
    )
    _open(page, platform.url + "/ingest")
    row = page.locator("#dead-body tr", has_text="web-dev-1").first
    assert "temperature" in row.inner_text()


def test_switch_language_to_chinese_and_back(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/assets")
    page.click("[data-lang-switch='zh']")
    page.wait_for_selector("body[data-lang='zh'][data-ready='1']")
    assert page.inner_text("[data-nav='overview']") == "总览"
    assert page.inner_text("main thead").split()[0] == "编号"
    assert page.url.endswith("/assets")  # stays on the same page
    page.click("[data-lang-switch='en']")
    page.wait_for_selector("body[data-lang='en'][data-ready='1']")
    assert page.inner_text("[data-nav='overview']") == "Overview"


def test_work_an_alarm_raised_by_a_rule(
    page: Any, platform: PlatformProcess, sensor: Device
) -> None:
    api = platform.client()
    rule = {
        "id": "web-too-hot",
        "kind": "threshold",
        "severity": "critical",
        "asset_id": "web-asset-1",
        "params": {"measurement": "pressure", "op": ">", "limit": 500},
        "message": "pressure too high",
    }
    assert api.post("/api/v1/rules", json=rule).status_code == 201

    def raised() -> list[dict[str, Any]]:
        # the rules worker loads new rules within its housekeeping period: keep sending
        assert sensor.publish(json.dumps({"values": {"pressure": 900.0}}).encode())
        rows = api.get("/api/v1/alarms", params={"asset_id": "web-asset-1"}).json()
        return [a for a in rows if a["rule_id"] == "web-too-hot"]

    alarm = wait_for(raised, interval=0.5, what="the rule to raise an alarm")[0]
    _open(page, platform.url + "/", "overview")
    assert page.inner_text("#k-alarms") == "1"
    _open(page, platform.url + "/alarms", "alarms")
    row = page.locator(f"tr[data-alarm='{alarm['id']}']")
    assert "web-asset-1" in row.inner_text()
    row.locator("button[data-act='acknowledge']").click()
    row.locator("button[data-act='acknowledge'][disabled]").wait_for()
    assert api.get(f"/api/v1/alarms/{alarm['id']}").json()["state"] == "acknowledged"
    page.once("dialog", lambda d: d.accept("checked on site"))
    row.locator("button[data-act='comment']").click()
    wait_for(
        lambda: any(
            h.get("comment") == "checked on site"
            for h in api.get(f"/api/v1/alarms/{alarm['id']}/history").json()
        ),
        what="the comment in the alarm history",
    )
    row.locator("button[data-act='shelve']").click()
    wait_for(
        lambda: api.get(f"/api/v1/alarms/{alarm['id']}").json()["state"] == "shelved",
        what="the alarm to be shelved",
    )
