"""Operator approval of a third-party Sparkplug B edge node (pysparkplug payloads) on a
real platform run with the ``approve`` policy: pending and dropped until approved, then
its device mapped to an asset and stored after the rebirth the platform asks for."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import Device, PlatformProcess, provision, require, wait_for

pytestmark = pytest.mark.integration

require(
    importlib.util.find_spec("pysparkplug") is not None,
    "pysparkplug",
    "pip install --no-deps pysparkplug==0.6.1",
)

import pysparkplug as spb  # noqa: E402

NODE = "spb-third"


@pytest.fixture(scope="module")
def approving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("spb-approve")) / "data",
        extra_env={"IRONBRIDGE_EDGE__POLICY": "approve"},
    ).start()
    yield p
    assert p.stop() == 0, p.log()


def _raw(api: httpx.Client, asset: str, measurement: str) -> dict[int, float]:
    r = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": asset, "measurement": measurement, "start": 0, "end": "now+1h"},
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return dict(zip(series[0]["ts"], series[0]["value"], strict=True)) if series else {}


def _births(dev: Device, t: int, bd: int) -> None:
    dt = spb.DataType
    birth = spb.NBirth(
        timestamp=t,
        seq=0,
        metrics=(
            spb.Metric(timestamp=t, name="bdSeq", datatype=dt.INT64, value=bd),
            spb.Metric(timestamp=t, name="Node Control/Rebirth", datatype=dt.BOOLEAN, value=False),
        ),
    )
    assert dev.publish(birth.encode(include_dtypes=True), topic=f"spBv1.0/yard/NBIRTH/{NODE}")
    dbirth = spb.DBirth(
        timestamp=t,
        seq=1,
        metrics=(
            spb.Metric(timestamp=t, name="temperature", alias=1, datatype=dt.DOUBLE, value=30.0),
        ),
    )
    assert dev.publish(
        dbirth.encode(include_dtypes=True), topic=f"spBv1.0/yard/DBIRTH/{NODE}/crane"
    )


def test_pending_node_is_dropped_until_approved(approving: PlatformProcess) -> None:
    api = approving.client()
    provision(api, "spb-tmp-a", asset_id="crane-7")  # the asset type and an asset
    r = api.post("/api/v1/devices", json={"id": NODE, "asset_ids": ["crane-7"]})
    assert r.status_code == 201, r.text
    dev = Device(approving.mqtt_port, NODE, str(r.json()["credential"]))
    commands: list[Any] = []
    dev.client.on_message = lambda c, u, msg: commands.append(spb.NCmd.decode(msg.payload))
    assert dev.connect()
    dev.client.subscribe(f"spBv1.0/yard/NCMD/{NODE}", qos=0)
    t0 = int(time.time() * 1000) - 60_000
    _births(dev, t0, 0)

    def state() -> str | None:
        r = api.get("/api/v1/edge/agents", params={"state": "pending"})
        assert r.status_code == 200, r.text
        found = [a for a in r.json()["agents"] if a["node_id"] == NODE]
        return found[0]["state"] if found else None

    wait_for(lambda: state() == "pending", 30, what="the node pending")

    def dropped() -> dict[str, Any] | None:
        # the NBIRTH makes the node pending; the DBIRTH's value, dropped, may come later
        view: dict[str, Any] = api.get(f"/api/v1/edge/agents/{NODE}").json()
        return view if view["dropped_points"] >= 1 else None

    view = wait_for(dropped, 30, what="the DBIRTH's value dropped")
    assert view["kind"] == "sparkplug"
    assert view["devices"] == ["crane"]
    assert view["dropped_points"] >= 1
    assert api.get("/api/v1/edge/agents", params={"state": "bogus"}).status_code == 422
    assert _raw(api, "crane-7", "temperature") == {}  # nothing stored while pending

    r = api.post(f"/api/v1/edge/agents/{NODE}/approve", json={"assets": {"crane": "nope"}})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "assets.crane"
    r = api.post(f"/api/v1/edge/agents/{NODE}/approve", json={"assets": {"crane": "crane-7"}})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "approved"
    assert r.json()["assets"] == {"crane": "crane-7"}
    # the platform asks the node to rebirth; it does, and its device maps to crane-7
    wait_for(lambda: commands, 20, what="NCMD rebirth")
    assert [(m.name, m.value) for m in commands[-1].metrics] == [("Node Control/Rebirth", True)]
    _births(dev, t0 + 1000, 1)
    wait_for(lambda: _raw(api, "crane-7", "temperature"), 30, what="stored after approval")
    assert _raw(api, "crane-7", "temperature") == {t0 + 1000: 30.0}  # not the pending one
    dev.close()
