"""Through a real platform process: a station reporting by MQTT events (OEE worked
example and the live line view), and an SPC rule whose violation raises an alarm."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness import Device, PlatformProcess, basic, wait_for
from ironbridge.sim.plant import ASSET_TYPE_YAML

pytestmark = pytest.mark.integration

T0_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
H_MS = 3_600_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("plant_ev")) / "data").start()
    r = p.client().post(
        "/api/v1/asset-types", content=ASSET_TYPE_YAML, headers={"Content-Type": "text/yaml"}
    )
    assert r.status_code in (201, 409), r.text
    yield p
    assert p.stop() == 0, p.log()


def _station(api: httpx.Client, station: str) -> str:
    r = api.post("/api/v1/assets", json={"id": station, "type_name": "plant_station"})
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": station, "asset_ids": [station]})
    assert r.status_code == 201, r.text
    return str(r.json()["credential"])


def _events(platform: PlatformProcess, device: str, cred: str, events: list[Any]) -> None:
    dev = Device(platform.mqtt_port, device, cred)
    assert dev.connect()
    try:
        assert dev.publish(orjson.dumps({"events": events}), topic=f"ib/v1/{device}/events")
    finally:
        dev.close()


def _site(site_id: str, station: str, shift: dict[str, str]) -> dict[str, Any]:
    return {
        "id": site_id,
        "reason_codes": {"1": "jam"},
        "calendar": {"timezone": "UTC", "shifts": [shift]},
        "lines": [{"id": "cell", "stations": [
            {"id": station, "ideal_cycle_s": 6, "state_from": "event", "counts_from": "event"}]}],
    }  # fmt: skip


def test_oee_from_state_and_part_events(platform: PlatformProcess) -> None:
    api = platform.client()
    cred = _station(api, "ev-st-1")
    site = _site("ev-site", "ev-st-1", {"name": "early", "start": "00:00", "end": "08:00"})
    r = api.post("/api/v1/plant/sites", json=site)
    assert r.status_code == 201, r.text
    stations = r.json()["lines"][0]["stations"]
    assert (stations[0]["state_from"], stations[0]["counts_from"]) == ("event", "event")
    # running 00-02, down (jam) 02-03, running 03-08; 3000 good + 100 scrap by 07:00
    _events(platform, "ev-st-1", cred, [
        {"ts": T0_MS, "kind": "station_state", "code": "running"},
        {"ts": T0_MS + 2 * H_MS, "kind": "station_state", "code": "down", "payload": {"reason": 1}},
        {"ts": T0_MS + 3 * H_MS, "kind": "station_state", "code": "running"},
        {"ts": T0_MS + 6 * H_MS, "kind": "part", "code": "good", "payload": {"count": 3000}},
        {"ts": T0_MS + 7 * H_MS, "kind": "part", "code": "scrap", "payload": {"count": 100}},
    ])  # fmt: skip
    window = {"site": "ev-site", "start": "2026-01-05T00:00:00Z", "end": "2026-01-05T08:00:00Z"}

    def oee() -> dict[str, Any] | None:
        row = api.get("/api/v1/plant/oee", params=window).json()["stations"][0]
        return row if row["good"] == 3000 and row["scrap"] == 100 else None

    row = wait_for(oee, timeout=20, what="OEE over the stored events")
    assert row["apt_s"] == pytest.approx(25200)
    assert row["down_s"] == pytest.approx(3600)
    assert row["oee"] == pytest.approx(0.625)
    pareto = api.get("/api/v1/plant/pareto", params=window).json()["reasons"]
    assert [(p["reason"], p["duration_s"]) for p in pareto] == [("jam", 3600.0)]


def test_live_line_view_shows_current_state_and_shift_counts(platform: PlatformProcess) -> None:
    api = platform.client()
    cred = _station(api, "ev-st-2")
    site = _site("ev-live", "ev-st-2", {"name": "day", "start": "00:00", "end": "00:00"})
    assert api.post("/api/v1/plant/sites", json=site).status_code == 201
    now = int(time.time() * 1000)
    _events(platform, "ev-st-2", cred, [
        {"ts": now - 90_000, "kind": "station_state", "code": "running"},
        {"ts": now - 60_000, "kind": "part", "code": "good", "payload": {"count": 4}},
        {"ts": now - 50_000, "kind": "part", "code": "scrap"},
        {"ts": now - 40_000, "kind": "station_state", "code": "down", "payload": {"reason": 1}},
    ])  # fmt: skip

    def view() -> dict[str, Any] | None:
        v = api.get("/api/v1/plant/live", params={"site": "ev-live"}).json()
        st = v["lines"][0]["stations"][0]
        return v if st["state"] == "down" and st["good"] == 4 else None

    v = wait_for(view, timeout=20, what="the line view to show the events")
    st = v["lines"][0]["stations"][0]
    assert v["shift"] == "day"
    assert st["reason"] == "jam"
    assert st["since_us"] == (now - 40_000) * 1000
    assert st["scrap"] == 1
    assert 0 < st["availability"] < 1
    assert v["lines"][0]["good"] == 4
    with httpx.stream(
        "GET",
        f"{platform.url}/api/v1/plant/live/stream",
        params={"site": "ev-live"},
        headers={"Authorization": f"Bearer {platform.login()}"},
        timeout=30,
    ) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
    assert orjson.loads(first[5:])["lines"][0]["stations"][0]["state"] == "down"
    r = api.get("/api/v1/plant/live", params={"site": "nowhere"})
    assert r.status_code == 404


def test_spc_rule_violation_raises_one_alarm(platform: PlatformProcess) -> None:
    api = platform.client()
    cred = _station(api, "ev-gap-1")
    now = int(time.time() * 1000)
    start = now - 2 * H_MS
    gap = [4.0 + 0.01 * ((i * 7) % 5 - 2) for i in range(60)]
    ts = [start + i * 60_000 for i in range(60)]
    doc = {"ts": ts, "values": {"panel_gap": gap}}
    r = httpx.post(f"{platform.url}/api/v1/telemetry", content=orjson.dumps(doc),
                   headers=basic("ev-gap-1", cred))  # fmt: skip
    assert r.status_code == 202, r.text
    rule = {
        "id": "gap-spc", "name": "Door gap", "kind": "spc", "asset_id": "ev-gap-1",
        "severity": "minor",
        "params": {"measurement": "panel_gap", "chart": "i-mr", "rules": [1, 5],
                   "reference_start": start, "reference_end": start + H_MS},
    }  # fmt: skip
    r = api.post("/api/v1/rules", json={**rule, "asset_id": None, "asset_type": "plant_station"})
    assert r.status_code == 422
    assert r.json()["field"] == "asset_id"
    r = api.post("/api/v1/rules", json=rule)
    assert r.status_code == 201, r.text
    doc = {"ts": [now - 5_000], "values": {"panel_gap": [4.5]}}
    r = httpx.post(f"{platform.url}/api/v1/telemetry", content=orjson.dumps(doc),
                   headers=basic("ev-gap-1", cred))  # fmt: skip
    assert r.status_code == 202, r.text

    def alarms() -> list[dict[str, Any]] | None:
        rows = api.get("/api/v1/alarms", params={"asset_id": "ev-gap-1"}).json()
        return rows or None

    (alarm,) = wait_for(alarms, timeout=30, what="the SPC alarm")
    assert alarm["rule_id"] == "gap-spc"
    assert alarm["state"] == "unacknowledged"
    assert alarm["severity"] == "minor"
    assert "rule 1" in alarm["message"]
    assert alarm["value"] == pytest.approx(4.5)
