"""The after-sales pages of the console in headless Chromium against a real platform.

The data goes through the platform as a user's would: trucks and their devices, meter
readings over HTTP ingest, stations, technicians, stock and a maintenance plan through
/api/v1; the platform's own due scan opens the maintenance order. The board is moved
through a transition in the page and followed over SSE.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from browser_kit import shot as _shot
from browser_kit import signed_in_page

from harness import PlatformProcess, basic, wait_for
from ironbridge.aftersales.scenario import plan_documents
from ironbridge.sim import builtin_asset_type_texts

pytestmark = [pytest.mark.browser, pytest.mark.integration]


#: truck -> (city, engine hours, odometer, lat, lon, hours at the last oil service)
TRUCKS = {
    "truck-e1": ("Jinan", 1000.0, 50_000.0, 36.70, 117.00, 490.0),  # 10 h past: due
    "truck-e2": ("Jinan", 3000.0, 150_000.0, 36.60, 117.20, 2900.0),
    "truck-e3": ("Tai'an", 800.0, 40_000.0, 36.25, 117.10, 700.0),
    "truck-e4": ("Zibo", 1500.0, 80_000.0, 36.80, 118.00, 1400.0),
}
STATIONS = {
    "st-jinan": ("Jinan", 36.651, 117.120),
    "st-taian": ("Tai'an", 36.200, 117.088),
    "st-zibo": ("Zibo", 36.813, 118.055),
}


def _ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, r.text
    return r.json() if r.content else None


def _seed(api: httpx.Client, url: str) -> dict[str, int]:
    for name, text in builtin_asset_type_texts().items():
        if name.startswith("heavy_truck"):
            r = api.post("/api/v1/asset-types", content=text, headers={"Content-Type": "text/yaml"})
            assert r.status_code in (201, 409), r.text
    for truck, (city, hours, km, lat, lon, _) in TRUCKS.items():
        _ok(
            api.post(
                "/api/v1/assets",
                json={
                    "id": truck,
                    "type_name": "heavy_truck",
                    "attributes": {"vin": f"VIN{truck[-2:]}", "model": "SX4250", "city": city},
                },
            )
        )
        cred = _ok(api.post("/api/v1/devices", json={"id": f"dev-{truck}", "asset_ids": [truck]}))
        values = {"engine_hours": hours, "odometer": km, "latitude": lat, "longitude": lon}
        r = httpx.post(
            f"{url}/api/v1/telemetry",
            content=orjson.dumps({"values": values}),
            headers=basic(f"dev-{truck}", cred["credential"]),
        )
        assert r.status_code == 202, r.text
    for truck in TRUCKS:
        wait_for(
            lambda t=truck: (
                len(api.get("/api/v1/telemetry/latest", params={"asset": t}).json()["values"]) == 4
            ),
            what=f"the meters of {truck} to be stored",
        )
    _ok(
        api.post(
            "/api/v1/service-stations",
            json={"id": "wh-central", "name": "Central warehouse", "region": "Jinan",
                  "lat": 36.70, "lon": 117.05, "is_warehouse": True},
        )
    )  # fmt: skip
    for sid, (city, lat, lon) in STATIONS.items():
        _ok(
            api.post(
                "/api/v1/service-stations",
                json={"id": sid, "name": f"{city} station", "region": city, "lat": lat, "lon": lon},
            )
        )
        for k, skills in enumerate((["engine", "electrical"], ["engine", "hydraulics"])):
            _ok(
                api.post(
                    "/api/v1/technicians",
                    json={"id": f"{sid[3:]}-{k + 1}", "name": f"{city} technician {k + 1}",
                          "station_id": sid, "skills": skills, "lat": lat, "lon": lon,
                          "shift_start_h": 0, "shift_end_h": 24},
                )
            )  # fmt: skip
    for part in ("P-OIL-15W40-20L", "P-OF-001", "P-FF-002"):
        _ok(api.post("/api/v1/parts", json={"part_no": part, "name": part}))
        for sid in (*STATIONS, "wh-central"):
            body = {"on_hand": 1 if sid == "st-taian" else 8, "reorder_point": 2, "reorder_qty": 6}
            _ok(api.put(f"/api/v1/parts/stock/{sid}/{part}", json=body))
    # The service history first: with the plan, the due scan (every second) would find a
    # truck without one due from commissioning.
    for truck, (_, _, km, _, _, last_h) in TRUCKS.items():
        for interval in ("oil-service", "major-service"):
            body = {"interval": interval, "hours": last_h, "km": km - 1000}
            _ok(api.post(f"/api/v1/assets/{truck}/services", json=body))
    truck_plan = next(p for p in plan_documents() if p["asset_type"] == "heavy_truck")
    _ok(api.put("/api/v1/maintenance-plans/heavy_truck", json=truck_plan))
    # Opened by the platform's periodic due scan (every second in this test).
    due = wait_for(
        lambda: [w for w in _ok(api.get("/api/v1/work-orders")) if w["source"] == "maintenance"],
        what="the due scan to open the maintenance order",
    )
    assert [w["asset_id"] for w in due] == ["truck-e1"]
    alarm = _ok(
        api.post(
            "/api/v1/work-orders/from-alarm",
            json={"alarm_id": 41, "asset_id": "truck-e2", "severity": "critical",
                  "message": "coolant temperature high", "skill": "engine"},
        )
    )  # fmt: skip
    pred = _ok(
        api.post(
            "/api/v1/work-orders/from-prediction",
            json={"asset_id": "truck-e4", "model": "heavy_truck/v1", "rul_h": 3, "skill": "engine"},
        )
    )
    manual = _ok(
        api.post(
            "/api/v1/work-orders",
            json={"asset_id": "truck-e3", "title": "Cab heater fails", "priority": "P2",
                  "skill": "electrical", "duration_min": 45},
        )
    )  # fmt: skip
    # truck-e2 runs 20 engine hours while the orders are open (MTBF's operating hours).
    cred = _ok(api.post("/api/v1/devices/dev-truck-e2/rotate-credential"))["credential"]
    for hours in (3010.0, 3030.0):
        r = httpx.post(
            f"{url}/api/v1/telemetry",
            content=orjson.dumps({"values": {"engine_hours": hours}}),
            headers=basic("dev-truck-e2", cred),
        )
        assert r.status_code == 202, r.text
        wait_for(
            lambda h=hours: any(
                v["measurement"] == "engine_hours" and v["value"] == h
                for v in api.get("/api/v1/telemetry/latest", params={"asset": "truck-e2"}).json()[
                    "values"
                ]
            ),
            what="truck-e2's engine hours to be stored",
        )
    # The alarm order is worked through to completion by API (KPIs have something to show).
    wo = alarm["id"]
    body = {"to": "assigned", "technician_id": "jinan-1"}
    _ok(api.post(f"/api/v1/work-orders/{wo}/transition", json=body))
    for state in ("en_route", "on_site", "in_progress"):
        _ok(api.post(f"/api/v1/work-orders/{wo}/transition", json={"to": state}))
    _ok(api.post(f"/api/v1/work-orders/{wo}/parts", json={"part_no": "P-OF-001", "qty": 1}))
    _ok(api.post(f"/api/v1/work-orders/{wo}/labour", json={"hours": 1.5}))
    _ok(api.post(f"/api/v1/work-orders/{wo}/transition", json={"to": "completed"}))
    return {
        "maintenance": due[0]["id"],
        "alarm": wo,
        "prediction": pred["id"],
        "manual": manual["id"],
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("aftersales_console")) / "data",
        extra_env={"IRONBRIDGE_AFTERSALES__DUE_SCAN_S": "1"},
    ).start()
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture(scope="module")
def orders(platform: PlatformProcess) -> dict[str, int]:
    return _seed(platform.client(), platform.url)


@pytest.fixture(scope="module")
def page(browser: Any, platform: PlatformProcess, orders: dict[str, int]) -> Iterator[Any]:
    """One signed-in page for the module (no script error on any page)."""
    with signed_in_page(browser, platform.url, viewport={"width": 1440, "height": 900}) as pg:
        yield pg


def _open(pg: Any, url: str) -> None:
    pg.goto(url)
    pg.wait_for_selector("body[data-ready='1']", timeout=30_000)


def test_board_moves_a_work_order_through_its_lifecycle(
    page: Any, platform: PlatformProcess, orders: dict[str, int]
) -> None:
    api = platform.client()
    _open(page, platform.url + "/service")
    assert page.locator("[data-nav='service'][aria-current='page']").count() == 1
    manual = orders["manual"]
    card = f"[data-cards='new'] [data-wo='{manual}']"
    page.wait_for_selector(card)
    assert page.locator("[data-cards='completed'] [data-wo]").count() == 1
    assert page.inner_text("[data-n='new']") == "3"  # maintenance, prediction, manual
    assert "P0" not in page.inner_text("[data-col='new']")  # the P0 alarm one is completed
    assert re.fullmatch(r"Response 23h [0-5]\dm", page.inner_text(f"{card} .sla"))  # P2: 24 h
    _shot(page, "service-board")
    page.click(card)
    page.wait_for_selector("#wo-dialog[open]")
    assert "Cab heater fails" in page.inner_text("#wo-title")
    moves = page.locator("#wo-moves [data-to]").all_inner_texts()
    assert moves == ["→ Assigned", "→ Cancelled", "→ On hold"]
    page.select_option("#wo-tech", "taian-1")
    page.fill("#wo-note", "nearest electrician")
    page.click("#wo-moves [data-to='assigned']")
    page.wait_for_selector("#wo-dialog[data-state='assigned']")
    page.click("#wo-moves [data-to='en_route']")
    page.wait_for_selector("#wo-dialog[data-state='en_route']")
    events = page.inner_text("#wo-events")
    assert "New → Assigned · Tai'an technician 1 · nearest electrician" in events
    assert "Assigned → En route" in events
    page.fill("#wo-line-text", "heater fuse blown")
    page.click("#wo-line button[type='submit']")
    page.wait_for_function("document.querySelector('#wo-lines').innerText.includes('fuse')")
    page.click("#wo-dialog [data-close]")
    # The board follows over SSE: the card is now in the en-route column.
    page.wait_for_selector(f"[data-cards='en_route'] [data-wo='{manual}']", timeout=20_000)
    wo = api.get(f"/api/v1/work-orders/{manual}").json()
    assert wo["state"] == "en_route"
    assert (wo["technician_id"], wo["station_id"]) == ("taian-1", "st-taian")
    assert [ln["text"] for ln in wo["lines"]] == ["heater fuse blown"]


def test_technicians_map_and_schedule(
    page: Any, platform: PlatformProcess, orders: dict[str, int]
) -> None:
    platform.client().post(
        f"/api/v1/work-orders/{orders['prediction']}/transition",
        json={"to": "assigned", "technician_id": "zibo-1"},
    )
    _open(page, platform.url + "/service/technicians")
    assert page.locator("#t-body tr").count() == 6
    page.wait_for_function(
        "document.querySelector(\"#t-body tr[data-tech='zibo-1']\").innerText.includes('Assigned')"
    )
    assert page.locator("#t-map .leaflet-overlay-pane canvas, #t-map path").count() >= 1
    assert "6 technicians" in page.inner_text("#t-count")
    _shot(page, "service-technicians")
    page.select_option("#t-station", "st-zibo")
    assert page.locator("#t-body tr").count() == 2


def test_parts_stock_reorder_and_forecast(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/service/parts")
    assert page.locator("#p-stock tr").count() == 12  # 3 parts x (3 stations + warehouse)
    # Tai'an holds 1 of each (reorder point 2); the alarm order took one filter in Jinan.
    assert page.inner_text("#pk-low") == "3"
    assert page.inner_text("#pk-reserved") == "1"
    forecast = page.inner_text("#p-forecast")
    assert "P-OIL-15W40-20L" in forecast
    assert page.locator("#p-chart canvas").count() == 1
    _shot(page, "service-parts")
    page.check("#p-low")
    assert page.locator("#p-stock tr.low").count() == 3


def test_maintenance_due_list_and_machine_detail(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/service/due")
    assert page.inner_text("#dk-due") == "1"
    first = page.locator("#d-body tr").first.inner_text()
    assert "truck-e1" in first
    assert "Due" in first
    assert page.text_content("#d-asset-title") == "truck-e1"
    assert "1,000 h" in page.inner_text("#d-usage")
    assert page.locator("#d-items tr").count() == 2
    _shot(page, "service-due")
    page.click("#d-body tr[data-asset='truck-e3']")
    page.wait_for_function("document.querySelector('#d-asset-title').textContent === 'truck-e3'")


def test_kpis_by_region(page: Any, platform: PlatformProcess) -> None:
    _open(page, platform.url + "/service/kpis")
    assert page.inner_text("#k-orders") == "4"
    assert page.inner_text("#k-ftf") == "100 %"  # one completed order, one visit
    assert page.inner_text("#k-fill") == "100 %"
    # truck-e2 ran 20 h between its readings since the first order / 3 corrective orders
    assert page.inner_text("#k-mtbf") == "6.7"
    jinan = page.locator("#k-body tr", has_text="Jinan").inner_text().split("\t")
    assert jinan[4] == "20"  # one corrective order in Jinan (the other is maintenance)
    rows = page.locator("#k-body tr").all_inner_texts()
    assert sorted(r.split("\t")[0] for r in rows) == ["Jinan", "Tai'an", "Zibo"]
    assert page.locator("#k-chart canvas").count() == 1
    _shot(page, "service-kpis")
    page.select_option("#k-by", "station")
    page.wait_for_function("document.querySelector('#k-body').innerText.includes('st-jinan')")
    page.goto(platform.url + "/lang/zh?next=/service")
    page.wait_for_selector("body[data-ready='1']")
    assert page.inner_text("h1") == "售后服务 / 工单看板"
    assert page.inner_text("[data-col='new'] h2 span") == "新建"
    page.goto(platform.url + "/lang/en?next=/service")
