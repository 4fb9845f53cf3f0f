"""A third-party Sparkplug B encoder (pysparkplug) publishing to the real platform.

pysparkplug builds every payload (its protobuf classes are generated from the Eclipse
Tahu ``sparkplug_b.proto``); paho-mqtt 2 carries them (pysparkplug's own client wrapper
needs paho-mqtt 1). The platform, as host application, stores the values and asks for a
rebirth, which pysparkplug decodes.
"""

from __future__ import annotations

import importlib.util
import time
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


def _raw(api: httpx.Client, asset: str, measurement: str) -> dict[int, float]:
    r = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": asset, "measurement": measurement, "start": 0, "end": "now+1h"},
    )
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    return dict(zip(series[0]["ts"], series[0]["value"], strict=True)) if series else {}


def test_pysparkplug_node_and_device_are_stored_and_gap_asks_rebirth(
    platform: PlatformProcess,
) -> None:
    api = platform.client()
    node = "spb-node-1"
    node_asset, _ = provision(api, "spb-tmp", asset_id="press-1")  # creates the asset type
    r = api.post(
        "/api/v1/assets",
        json={"id": "gw-asset", "type_name": "test_sensor", "attributes": {"serial": node}},
    )
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": node, "asset_ids": ["gw-asset", "press-1"]})
    assert r.status_code == 201, r.text
    dev = Device(platform.mqtt_port, node, str(r.json()["credential"]))
    commands: list[Any] = []
    dev.client.on_message = lambda c, u, msg: commands.append(msg)
    assert dev.connect()
    dev.client.subscribe(f"spBv1.0/plant/NCMD/{node}", qos=0)
    t0 = int(time.time() * 1000) - 10_000
    dt = spb.DataType
    birth = spb.NBirth(
        timestamp=t0,
        seq=0,
        metrics=(
            spb.Metric(timestamp=t0, name="bdSeq", datatype=dt.INT64, value=0),
            spb.Metric(timestamp=t0, name="Node Control/Rebirth", datatype=dt.BOOLEAN, value=False),
            spb.Metric(timestamp=t0, name="temperature", alias=1, datatype=dt.DOUBLE, value=20.5),
        ),
    )
    assert dev.publish(birth.encode(include_dtypes=True), topic=f"spBv1.0/plant/NBIRTH/{node}")
    ndata = spb.NData(
        timestamp=t0 + 1000,
        seq=1,
        metrics=(
            spb.Metric(timestamp=t0 + 1000, name=None, alias=1, datatype=dt.DOUBLE, value=21.5),
        ),
    )
    assert dev.publish(ndata.encode(), topic=f"spBv1.0/plant/NDATA/{node}")
    dbirth = spb.DBirth(
        timestamp=t0 + 2000,
        seq=2,
        metrics=(
            spb.Metric(
                timestamp=t0 + 2000, name="temperature", alias=2, datatype=dt.INT32, value=-3
            ),
        ),
    )
    assert dev.publish(
        dbirth.encode(include_dtypes=True), topic=f"spBv1.0/plant/DBIRTH/{node}/press-1"
    )
    ddata = spb.DData(
        timestamp=t0 + 3000,
        seq=3,
        metrics=(spb.Metric(timestamp=t0 + 3000, name=None, alias=2, datatype=dt.INT32, value=25),),
    )
    assert dev.publish(ddata.encode(), topic=f"spBv1.0/plant/DDATA/{node}/press-1")

    api_points = lambda: (_raw(api, "gw-asset", "temperature"), _raw(api, "press-1", "temperature"))  # noqa: E731
    wait_for(lambda: len(api_points()[0]) == 2 and len(api_points()[1]) == 2, 30, what="points")
    temps, pressures = api_points()
    assert sorted(temps.values()) == [20.5, 21.5]
    assert sorted(pressures.values()) == [-3.0, 25.0]  # a signed INT32 survives
    assert commands == []  # no gap so far: no rebirth request

    gap = spb.NData(
        timestamp=t0 + 4000,
        seq=9,  # 4..8 missing
        metrics=(
            spb.Metric(timestamp=t0 + 4000, name=None, alias=1, datatype=dt.DOUBLE, value=22.0),
        ),
    )
    assert dev.publish(gap.encode(), topic=f"spBv1.0/plant/NDATA/{node}")
    wait_for(lambda: commands, 20, what="NCMD rebirth")
    cmd = spb.NCmd.decode(commands[0].payload)
    assert [(m.name, m.value) for m in cmd.metrics] == [("Node Control/Rebirth", True)]
    dev.close()
    assert node_asset == "press-1"
