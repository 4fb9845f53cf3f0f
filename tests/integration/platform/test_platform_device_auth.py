"""Device authentication on the MQTT endpoint, revocation, and tenant isolation in the API."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from harness import Device, PlatformProcess, basic, provision, wait_for

pytestmark = pytest.mark.integration


def test_anonymous_and_wrong_credentials_are_refused(platform: PlatformProcess) -> None:
    api = platform.client()
    provision(api, "auth-dev-1")
    assert not Device(platform.mqtt_port, "auth-dev-1", None).connect()
    assert not Device(platform.mqtt_port, "auth-dev-1", "not-the-credential").connect()
    assert not Device(platform.mqtt_port, "no-such-device", "whatever").connect()


def test_a_device_cannot_publish_for_another(platform: PlatformProcess) -> None:
    api = platform.client()
    victim_asset, _ = provision(api, "victim-dev")
    _, credential = provision(api, "mallory-dev")
    mallory = Device(platform.mqtt_port, "mallory-dev", credential)
    assert mallory.connect()
    t0 = int(time.time() * 1000) - 5000
    mallory.publish(
        orjson.dumps({"ts": t0, "values": {"temperature": 99.0}}),
        topic="ib/v1/victim-dev/telemetry",
        timeout=3,
    )
    # A later, allowed message is stored: once it is, the forged one would have been too.
    if mallory.disconnects:
        assert mallory.connect()
    assert mallory.publish(orjson.dumps({"ts": t0, "values": {"temperature": 1.0}}))
    mallory.close()
    wait_for(
        lambda: api.get("/api/v1/telemetry/latest", params={"asset": "asset-mallory-dev"}).json()[
            "values"
        ],
        what="mallory's own point",
    )
    r = api.get("/api/v1/telemetry/latest", params={"asset": victim_asset})
    assert r.json()["values"] == []


def test_revoking_a_device_cuts_it_off_at_once(platform: PlatformProcess) -> None:
    api = platform.client()
    _, credential = provision(api, "revoke-dev")
    dev = Device(platform.mqtt_port, "revoke-dev", credential)
    assert dev.connect()
    assert dev.publish(orjson.dumps({"values": {"temperature": 5.0}}))
    r = api.post("/api/v1/devices/revoke-dev/revoke")
    assert r.status_code == 200
    assert r.json()["revoked"] is True
    wait_for(lambda: dev.disconnects >= 1, timeout=10, what="the broker to drop the revoked device")
    dev.client.loop_stop()
    again = Device(platform.mqtt_port, "revoke-dev", credential)
    assert not again.connect()
    r = httpx.post(
        f"{platform.url}/api/v1/telemetry",
        content=b'{"temperature": 1}',
        headers=basic("revoke-dev", credential),
    )
    assert r.status_code == 401


def test_rotating_a_credential_retires_the_old_one(platform: PlatformProcess) -> None:
    api = platform.client()
    _, old = provision(api, "rotate-dev")
    r = api.post("/api/v1/devices/rotate-dev/rotate-credential")
    assert r.status_code == 200
    new = r.json()["credential"]
    assert "mosquitto_pub" in r.json()["examples"]["mosquitto_pub"]
    assert not Device(platform.mqtt_port, "rotate-dev", old).connect()
    assert Device(platform.mqtt_port, "rotate-dev", new).connect()


def test_tenants_see_their_subtree_only(platform: PlatformProcess) -> None:
    root = platform.client()
    provision(root, "root-dev", "root-asset")
    r = root.post(
        "/api/v1/tenants", json={"id": "dealer-a", "name": "Dealer A", "parent_id": "root"}
    )
    assert r.status_code == 201, r.text
    r = root.post(
        "/api/v1/users",
        json={
            "username": "dealer-op",
            "password": "dealer-password",
            "role": "operator",
            "tenant_id": "dealer-a",
        },
    )
    assert r.status_code == 201, r.text
    dealer = platform.client(platform.login("dealer-op", "dealer-password"))
    r = dealer.post(
        "/api/v1/assets",
        json={"id": "dealer-asset", "type_name": "test_sensor", "attributes": {"serial": "D1"}},
    )
    assert r.status_code == 201, r.text
    assert r.json()["tenant_id"] == "dealer-a"
    assert [a["id"] for a in dealer.get("/api/v1/assets").json()] == ["dealer-asset"]
    assert dealer.get("/api/v1/assets/root-asset").status_code == 404
    r = dealer.get("/api/v1/telemetry/latest", params={"asset": "root-asset"})
    assert r.status_code == 404
    assert "dealer-asset" in [a["id"] for a in root.get("/api/v1/assets").json()]
    # an operator cannot create users; a viewer cannot create assets
    r = dealer.post(
        "/api/v1/users", json={"username": "x-user", "password": "password-x", "role": "viewer"}
    )
    assert r.status_code == 403
