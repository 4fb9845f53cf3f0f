"""MQTT and HTTP telemetry through the real embedded platform, read back through the API."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from harness import Device, PlatformProcess, basic, provision, wait_for

pytestmark = pytest.mark.integration


def _raw(api: httpx.Client, asset: str, measurement: str, start: int) -> dict[int, float]:
    r = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": asset, "measurement": measurement, "start": start, "end": "now+1h"},
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return dict(zip(series[0]["ts"], series[0]["value"], strict=True)) if series else {}


def test_all_three_payload_shapes_over_mqtt_are_stored_exactly(platform: PlatformProcess) -> None:
    api = platform.client()
    asset, credential = provision(api, "mqtt-dev-1")
    dev = Device(platform.mqtt_port, "mqtt-dev-1", credential)
    assert dev.connect()
    t0 = int(time.time() * 1000) - 60_000
    assert dev.publish(orjson.dumps({"ts": t0, "values": {"temperature": 20.5, "running": True}}))
    assert dev.publish(
        orjson.dumps(
            [
                {"ts": t0 + 1000, "values": {"temperature": 21.5}},
                {"ts": t0 + 2000, "values": {"temperature": 22.5}},
            ]
        )
    )
    assert dev.publish(
        orjson.dumps(
            {
                "ts": [t0 + 3000, t0 + 4000],
                "values": {"temperature": [23.5, 24.5], "pressure": [101.0, 102.0]},
            }
        )
    )
    dev.close()
    want = {t0 + i * 1000: 20.5 + i for i in range(5)}
    got = wait_for(
        lambda: (lambda r: r if len(r) == 5 else None)(_raw(api, asset, "temperature", t0)),
        what="5 points",
    )
    assert got == want
    assert _raw(api, asset, "pressure", t0) == {t0 + 3000: 101.0, t0 + 4000: 102.0}
    assert _raw(api, asset, "running", t0) == {t0: 1.0}

    r = api.get("/api/v1/telemetry/latest", params={"asset": asset})
    latest = {v["measurement"]: (v["ts"], v["value"]) for v in r.json()["values"]}
    assert latest["temperature"] == (t0 + 4000, 24.5)
    assert latest["pressure"] == (t0 + 4000, 102.0)

    r = api.get(
        "/api/v1/telemetry/aggregate",
        params={
            "asset": asset,
            "measurement": "temperature",
            "start": t0 - t0 % 60000,
            "end": "now+1h",
            "bucket": "1h",
            "agg": ["avg", "min", "max", "count", "first", "last"],
        },
    )
    [series] = r.json()["series"]
    assert sum(series["count"]) == 5
    assert min(series["min"]) == 20.5
    assert max(series["max"]) == 24.5

    arrow = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": asset, "measurement": "temperature", "start": t0, "end": "now+1h"},
        headers={"Accept": "application/vnd.apache.arrow.stream"},
    )
    import pyarrow as pa

    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 5
    assert sorted(table["value"].to_pylist()) == [20.5, 21.5, 22.5, 23.5, 24.5]


def test_http_ingest_accepts_good_and_names_bad_fields(platform: PlatformProcess) -> None:
    api = platform.client()
    asset, credential = provision(api, "http-dev-1")
    auth = basic("http-dev-1", credential)
    t0 = int(time.time() * 1000) - 30_000
    r = httpx.post(
        f"{platform.url}/api/v1/telemetry",
        content=orjson.dumps({"ts": t0, "values": {"temperature": 30.0}}),
        headers=auth,
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted_points"] == 1
    cases = [
        ({"ts": t0, "values": {"humidity": 1}}, "values.humidity", "unknown measurement"),
        ({"ts": t0, "values": {"temperature": "hot"}}, "values.temperature", "expected float"),
        ({"ts": t0, "values": {"temperature": 999}}, "values.temperature", "above the valid range"),
        ({"ts": 946684799000, "values": {"temperature": 1}}, "ts", "before 2000"),
        ({"ts": t0 + 3 * 86_400_000, "values": {"temperature": 1}}, "ts", "future"),
    ]
    for body, field, reason in cases:
        r = httpx.post(f"{platform.url}/api/v1/telemetry", content=orjson.dumps(body), headers=auth)
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert reason in r.json()["error"]
    r = httpx.post(f"{platform.url}/api/v1/telemetry", content=b"{", headers=auth)
    assert r.status_code == 422
    assert "JSON" in r.json()["error"]
    r = httpx.post(
        f"{platform.url}/api/v1/telemetry",
        content=b'{"temperature": 1}',
        headers=basic("http-dev-1", "wrong"),
    )
    assert r.status_code == 401
    r = httpx.post(f"{platform.url}/api/v1/telemetry", content=b'{"temperature": 1}')
    assert r.status_code == 401
    got = wait_for(lambda: _raw(api, asset, "temperature", t0), what="the HTTP point")
    assert got == {t0: 30.0}


def test_bad_mqtt_messages_go_to_dead_letters_and_the_pipe_keeps_flowing(
    platform: PlatformProcess,
) -> None:
    api = platform.client()
    asset, credential = provision(api, "dl-dev-1")
    dev = Device(platform.mqtt_port, "dl-dev-1", credential)
    assert dev.connect()
    t0 = int(time.time() * 1000) - 10_000
    bad = [
        (b"not json at all", "", "not valid JSON"),
        (
            orjson.dumps({"ts": t0, "values": {"humidity": 1}}),
            "values.humidity",
            "unknown measurement",
        ),
        (
            orjson.dumps({"ts": t0, "values": {"temperature": [1]}}),
            "values.temperature",
            "expected float",
        ),
        (
            orjson.dumps({"ts": t0, "values": {"pressure": -5}}),
            "values.pressure",
            "below the valid range",
        ),
        (orjson.dumps({"ts": 5, "values": {"pressure": 5}}), "ts", "before 2000"),
        (orjson.dumps({"ts": t0 + 10 * 86_400_000, "values": {"pressure": 5}}), "ts", "future"),
    ]
    for payload, _, _ in bad:
        assert dev.publish(payload)
    assert dev.publish(orjson.dumps({"ts": t0, "values": {"pressure": 55.0}}))
    dev.close()
    assert wait_for(lambda: _raw(api, asset, "pressure", t0), what="the good point") == {t0: 55.0}

    def mine() -> list[dict[str, object]] | None:
        r = api.get("/api/v1/ingest/dead-letters", params={"limit": 100})
        assert r.status_code == 200, r.text
        items = [d for d in r.json()["dead_letters"] if d["device_id"] == "dl-dev-1"]
        return items if len(items) >= len(bad) else None

    letters = wait_for(mine, what="six dead letters")
    by_payload = {d["payload"]: d for d in letters}
    for payload, field, reason in bad:
        d = by_payload[payload.decode()]
        assert d["field"] == field
        assert reason in str(d["reason"])
        assert d["subject"] == "ib.v1.dl-dev-1.telemetry"


def test_every_api_route_needs_authentication(platform: PlatformProcess) -> None:
    for path in (
        "/api/v1/assets",
        "/api/v1/devices",
        "/api/v1/asset-types",
        "/api/v1/ingest/dead-letters",
        "/api/v1/telemetry/latest?asset=x",
        "/api/v1/tenants",
        "/api/v1/auth/me",
    ):
        r = httpx.get(f"{platform.url}{path}")
        assert r.status_code == 401, path
        r = httpx.get(f"{platform.url}{path}", headers={"Authorization": "Bearer s.forged.token"})
        assert r.status_code == 401, path
    r = httpx.post(
        f"{platform.url}/api/v1/auth/login", json={"username": "admin", "password": "nope-nope"}
    )
    assert r.status_code == 401


def test_latest_for_a_whole_type_at_once(platform: PlatformProcess) -> None:
    api = platform.client()
    creds = [provision(api, f"fleet-dev-{i}") for i in range(3)]
    t0 = int(time.time() * 1000) - 20_000
    for i, (_, credential) in enumerate(creds):
        r = httpx.post(
            f"{platform.url}/api/v1/telemetry",
            content=orjson.dumps({"ts": t0 + i, "values": {"pressure": 100.0 + i}}),
            headers=basic(f"fleet-dev-{i}", credential),
        )
        assert r.status_code == 202, r.text

    def fleet() -> dict[str, float] | None:
        r = api.get(
            "/api/v1/telemetry/latest", params={"type": "test_sensor", "measurement": "pressure"}
        )
        assert r.status_code == 200, r.text
        got = {v["asset"]: v["value"] for v in r.json()["values"]}
        mine = {a: v for a, v in got.items() if a.startswith("asset-fleet-dev-")}
        return mine if len(mine) == 3 else None

    assert wait_for(fleet, what="three latest values") == {
        f"asset-fleet-dev-{i}": 100.0 + i for i in range(3)
    }


def test_registry_yaml_export_then_import_into_a_child_tenant(platform: PlatformProcess) -> None:
    api = platform.client()
    provision(api, "yaml-dev", "yaml-asset")
    r = api.get("/api/v1/registry/export")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/yaml")
    text = r.text
    assert "test_sensor" in text
    assert "yaml-asset" in text
    # importing the same document again changes nothing
    r = api.post("/api/v1/registry/import", content=text.encode())
    assert r.status_code == 200, r.text
    assert "yaml-asset" in r.json()["assets_unchanged"]
    # a broken document names the place of the error
    r = api.post(
        "/api/v1/registry/import",
        content=b"assets:\n  - {id: bad-asset, type_name: no_such_type}\n",
    )
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith("assets[0]")
