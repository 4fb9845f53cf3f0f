"""A rule created over the API raises an alarm from an MQTT reading; ack and history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness import Device, PlatformProcess, provision, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("rules")) / "data").start()
    yield p
    assert p.stop() == 0, p.log()


def test_rules_alarm_from_mqtt_reading_ack_and_history(platform: PlatformProcess) -> None:
    api = platform.client()
    asset, credential = provision(api, "rules-dev-1")
    r = api.post(
        "/api/v1/rules",
        json={
            "id": "bad",
            "kind": "threshold",
            "asset_id": asset,
            "params": {"measurement": "temperature"},
        },
    )
    assert r.status_code == 422
    assert r.json()["field"] == "params.limit"
    r = api.post(
        "/api/v1/rules",
        json={
            "id": "too-hot",
            "kind": "threshold",
            "severity": "critical",
            "asset_id": asset,
            "params": {"measurement": "temperature", "limit": 80, "deadband": 2},
        },
    )
    assert r.status_code == 201, r.text
    dev = Device(platform.mqtt_port, "rules-dev-1", credential)
    assert dev.connect()
    t0 = int(time.time() * 1000)

    def alarms() -> list[dict[str, Any]] | None:
        got = api.get("/api/v1/alarms", params={"asset_id": asset}).json()
        return got or None

    # the worker loads new rules within its housekeeping period; keep publishing until it does
    def raised() -> list[dict[str, Any]] | None:
        assert dev.publish(
            orjson.dumps({"ts": int(time.time() * 1000), "values": {"temperature": 95.0}})
        )
        return alarms()

    found = wait_for(raised, timeout=20, what="an alarm")
    assert found[0]["rule_id"] == "too-hot"
    assert found[0]["state"] == "unacknowledged"
    assert found[0]["severity"] == "critical"
    assert found[0]["raised_us"] >= t0 * 1000
    alarm_id = found[0]["id"]
    # the critical alarm's action opened a work order for the asset (once)
    orders = wait_for(
        lambda: api.get("/api/v1/work-orders", params={"asset_id": asset}).json() or None,
        what="a work order opened by the alarm",
    )
    assert [(o["source"], o["source_ref"], o["priority"]) for o in orders] == [
        ("alarm", f"alarm:{alarm_id}", "P0")
    ]
    for _ in range(5):
        assert dev.publish(
            orjson.dumps({"ts": int(time.time() * 1000), "values": {"temperature": 96.0}})
        )
    r = api.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={"comment": "on it"})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "acknowledged"
    assert api.post(f"/api/v1/alarms/{alarm_id}/acknowledge", json={}).status_code == 409
    assert dev.publish(
        orjson.dumps({"ts": int(time.time() * 1000), "values": {"temperature": 20.0}})
    )
    wait_for(
        lambda: api.get(f"/api/v1/alarms/{alarm_id}").json()["closed"] or None,
        timeout=20,
        what="return to normal",
    )
    dev.close()
    trail = [
        (h["actor"], h["action"], h["to_state"])
        for h in api.get(f"/api/v1/alarms/{alarm_id}/history").json()
    ]
    assert trail == [
        ("system", "activate", "unacknowledged"),
        ("admin", "acknowledge", "acknowledged"),
        ("system", "clear", "normal"),
    ]
    assert (
        len(api.get("/api/v1/alarms", params={"asset_id": asset, "include_closed": True}).json())
        == 1
    )
