"""Rules over the API on a running platform: an alarm from an MQTT reading, ack and
history; suppression by design while the asset is in maintenance; alarm email through
the SMTP settings to a local aiosmtpd server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import orjson
import pytest

from harness import Device, PlatformProcess, free_port, provision, wait_for

pytestmark = pytest.mark.integration


class Inbox:
    """A local SMTP server (aiosmtpd) that keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.got: list[EmailMessage] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                msg = message_from_bytes(envelope.content, policy=default)
                outer.got.append(msg)  # type: ignore[arg-type]
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture(scope="module")
def inbox() -> Iterator[Inbox]:
    box = Inbox()
    box.controller.start()
    yield box
    box.controller.stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, inbox: Inbox) -> Iterator[PlatformProcess]:
    env = {
        "IRONBRIDGE_SMTP__HOST": "127.0.0.1",
        "IRONBRIDGE_SMTP__PORT": str(inbox.port),
        "IRONBRIDGE_SMTP__FROM_ADDRESS": "alarms@plant.example",
    }
    p = PlatformProcess(Path(tmp_path_factory.mktemp("rules")) / "data", env).start()
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


def test_rules_suppressed_in_maintenance_then_emailed(
    platform: PlatformProcess, inbox: Inbox
) -> None:
    api = platform.client()
    asset, credential = provision(api, "rules-dev-2")
    r = api.post(
        "/api/v1/alarm-subscriptions",
        json={"kind": "email", "target": "ops@plant.example", "events": ["start"]},
    )
    assert r.status_code == 201, r.text
    r = api.post(
        "/api/v1/rules",
        json={
            "id": "oil-low",
            "kind": "threshold",
            "asset_id": asset,
            "params": {"measurement": "temperature", "op": "<", "limit": 5},
            "suppress_when": {"asset_attribute": "operating_state"},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["suppress_when"]["values"] == ["maintenance", "out_of_operation"]
    r = api.post(
        "/api/v1/rules",
        json={
            "id": "bad-suppression",
            "kind": "threshold",
            "asset_id": asset,
            "params": {"measurement": "temperature", "limit": 5},
            "suppress_when": {"asset_attribute": "operating_state", "values": []},
        },
    )
    assert r.status_code == 422
    assert r.json()["field"] == "suppress_when.values"

    def set_state(state: str) -> None:
        body = {"attributes": {"serial": "rules-dev-2", "operating_state": state}}
        r = api.patch(f"/api/v1/assets/{asset}", json=body)
        assert r.status_code == 200, r.text

    set_state("maintenance")
    dev = Device(platform.mqtt_port, "rules-dev-2", credential)
    assert dev.connect()

    def raised() -> dict[str, Any] | None:
        reading = {"ts": int(time.time() * 1000), "values": {"temperature": 1.0}}
        assert dev.publish(orjson.dumps(reading))
        got = api.get("/api/v1/alarms", params={"asset_id": asset}).json()
        return got[0] if got else None

    alarm = wait_for(raised, timeout=20, what="a suppressed alarm")
    assert alarm["state"] == "suppressed"
    assert alarm["active"] is True
    listed = api.get("/api/v1/alarms", params={"state": "suppressed"}).json()
    assert [a["id"] for a in listed] == [alarm["id"]]
    set_state("running")
    wait_for(
        lambda: (
            api.get(f"/api/v1/alarms/{alarm['id']}").json()["state"] == "unacknowledged" or None
        ),
        timeout=20,
        what="the alarm handed back after maintenance",
    )
    mail = wait_for(
        lambda: [m for m in inbox.got if asset in str(m["Subject"])] or None,
        timeout=20,
        what="the alarm email at the local SMTP server",
    )
    dev.close()
    assert len(mail) == 1
    assert mail[0]["From"] == "alarms@plant.example"
    assert mail[0]["To"] == "ops@plant.example"
    trail = [
        (h["actor"], h["action"], h["to_state"], h["comment"])
        for h in api.get(f"/api/v1/alarms/{alarm['id']}/history").json()
    ]
    assert trail == [
        ("system", "suppress", "suppressed", "asset operating_state is maintenance"),
        ("system", "activate", "suppressed", ""),
        ("system", "unsuppress", "unacknowledged", "suppression condition ended"),
    ]
