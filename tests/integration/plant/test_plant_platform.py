"""Through a real platform process: a Modbus connector saved over the API (tested first,
422 naming the field), its data in the store; OEE, Pareto, timeline and SPC endpoints
against a hand-computed case."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from harness import PlatformProcess, basic, free_port, wait_for
from ironbridge.sim.plant import ASSET_TYPE_YAML

pytestmark = pytest.mark.integration

T0_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
H_MS = 3_600_000


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("plant")) / "data").start()
    api = p.client()
    r = api.post(
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


class ThreadedPlc:
    """A pymodbus server on its own event loop thread (the test itself is synchronous)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: Any = None

    def _call(self, coro: Any) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout=10)

    async def _start(self) -> None:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        regs = [SimData(0, count=20, values=0, datatype=DataType.REGISTERS)]
        bits = [SimData(0, count=16, values=False, datatype=DataType.BITS)]
        device = SimDevice(id=1, simdata=(bits, bits, regs, regs))
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)
        # state 0 (running) at 0, good_count uint32 = 42 at 2..3, scrap 0 at 4..5
        await self.server.context.async_setValues(1, 16, 0, [0, 0, 0, 42, 0, 0])

    def start(self) -> ThreadedPlc:
        self._call(self._start())
        return self

    def close(self) -> None:
        self._call(self.server.shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


def test_modbus_connector_saved_after_test_and_data_stored(platform: PlatformProcess) -> None:
    api = platform.client()
    _station(api, "mb-st-1")
    registers = [
        {"measurement": "state", "address": 0},
        {"measurement": "reason", "address": 1},
        {"measurement": "good_count", "address": 2, "dtype": "uint32"},
        {"measurement": "scrap_count", "address": 4, "dtype": "uint32"},
    ]
    config = {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": free_port(),
        "timeout_s": 0.5,
        "scan_interval_s": 0.2,
        "devices": [{"device": "mb-st-1", "registers": registers}],
    }
    r = api.post("/api/v1/connectors", json={"id": "mb-1", "config": config})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "config.host"
    bad_device = {**config, "devices": [{"device": "nobody", "registers": registers}]}
    r = api.post("/api/v1/connectors", json={"id": "mb-1", "config": bad_device})
    assert r.status_code == 422
    assert r.json()["field"] == "config.devices[0].device"
    bad_type = {**config, "devices": [{"device": "mb-st-1", "registers": [
        {"measurement": "state", "address": 0, "dtype": "int12"}]}]}  # fmt: skip
    r = api.post("/api/v1/connectors", json={"id": "mb-1", "config": bad_type})
    assert r.status_code == 422
    assert r.json()["field"] == "config.devices[0].registers[0].dtype"

    plc = ThreadedPlc().start()
    try:
        config["port"] = plc.port
        r = api.post("/api/v1/connectors", json={"id": "mb-1", "config": config})
        assert r.status_code == 201, r.text
        assert r.json()["test"]["values"]["mb-st-1"]["good_count"] == 42

        def stored() -> bool:
            r = api.get("/api/v1/telemetry/latest", params={"asset": "mb-st-1"})
            rows = r.json() if r.status_code == 200 else []
            text = orjson.dumps(rows).decode()
            return "good_count" in text and "42" in text

        wait_for(stored, timeout=20, what="connector data in the store")
        r = api.get("/api/v1/connectors/mb-1")
        assert r.json()["status"]["state"] == "connected"
        assert r.json()["status"]["published"] > 0
        assert api.delete("/api/v1/connectors/mb-1").status_code == 204
        assert api.get("/api/v1/connectors/mb-1").status_code == 404
    finally:
        plc.close()


def _post(platform: PlatformProcess, device: str, cred: str, doc: dict[str, Any]) -> None:
    r = httpx.post(f"{platform.url}/api/v1/telemetry", content=orjson.dumps(doc),
                   headers=basic(device, cred))  # fmt: skip
    assert r.status_code == 202, r.text


def test_oee_pareto_timeline_spc_hand_computed(platform: PlatformProcess) -> None:
    api = platform.client()
    cred = _station(api, "oee-st-1")
    site = {
        "id": "oee-site",
        "reason_codes": {"1": "jam"},
        "calendar": {
            "timezone": "UTC",
            "shifts": [{"name": "early", "start": "00:00", "end": "08:00"}],
        },
        "lines": [{"id": "l1", "stations": [{"id": "oee-st-1", "ideal_cycle_s": 6}]}],
    }  # fmt: skip
    r = api.post("/api/v1/plant/sites", json=site)
    assert r.status_code == 201, r.text
    bad = {**site, "id": "bad", "lines": [{"id": "l1", "stations": [{"id": "x"}]}]}
    r = api.post("/api/v1/plant/sites", json=bad)
    assert r.status_code == 422
    assert r.json()["field"] == "lines[0].stations[0].ideal_cycle_s"
    # running 00-02, down (jam) 02-03, running 03-08; 3000 good + 100 scrap by 07:00
    _post(platform, "oee-st-1", cred, {
        "ts": [T0_MS, T0_MS + 2 * H_MS, T0_MS + 3 * H_MS, T0_MS + 7 * H_MS],
        "values": {"state": [0, 2, 0, None], "reason": [0, 1, 0, None],
                   "good_count": [0, None, None, 3000], "scrap_count": [0, None, None, 100]},
    })  # fmt: skip
    # panel gap: 60 in-control samples from 00:00 (reference), then one far out at 05:00
    gap = [4.0 + 0.01 * ((i * 7) % 5 - 2) for i in range(60)]
    ts = [T0_MS + i * 60_000 for i in range(60)] + [T0_MS + 5 * H_MS]
    _post(platform, "oee-st-1", cred, {"ts": ts, "values": {"panel_gap": [*gap, 4.5]}})
    window = {"site": "oee-site", "start": "2026-01-05T00:00:00Z", "end": "2026-01-05T08:00:00Z"}

    def oee() -> dict[str, Any] | None:
        row = api.get("/api/v1/plant/oee", params=window).json()["stations"][0]
        return row if row["good"] == 3000 and row["pbt_s"] == 28800 else None

    row = wait_for(oee, timeout=20, what="OEE over the stored data")
    assert row["apt_s"] == pytest.approx(25200)
    assert row["down_s"] == pytest.approx(3600)
    assert row["availability"] == pytest.approx(0.875)
    assert row["effectiveness"] == pytest.approx(3100 * 6 / 25200)
    assert row["quality"] == pytest.approx(3000 / 3100)
    assert row["oee"] == pytest.approx(0.625)
    line = api.get("/api/v1/plant/oee", params=window).json()["lines"][0]
    assert line["line"] == "l1"
    assert line["oee"] == pytest.approx(0.625)
    day = api.get("/api/v1/plant/oee", params={**window, "period": "day"}).json()["stations"][0]
    assert day["day"] == "2026-01-05"

    pareto = api.get("/api/v1/plant/pareto", params=window).json()["reasons"]
    assert pareto == [{"reason": "jam", "duration_s": 3600.0, "count": 1, "share": 1.0,
                       "cumulative_share": 1.0}]  # fmt: skip
    tl = api.get("/api/v1/plant/timeline", params={**window, "station": "oee-st-1"}).json()
    assert [(i["state"], i["reason"]) for i in tl["intervals"]] == [
        ("running", None), ("down", "jam"), ("running", None)]  # fmt: skip

    spc_params = {
        "asset": "oee-st-1", "measurement": "panel_gap", "chart": "i-mr",
        "reference_start": "2026-01-05T00:00:00Z", "reference_end": "2026-01-05T01:00:00Z",
        "start": "2026-01-05T00:00:00Z", "end": "2026-01-05T08:00:00Z"}  # fmt: skip

    def spc_stored() -> dict[str, Any] | None:
        # the panel-gap batch is a separate message: it may land after the OEE batch
        r = api.get("/api/v1/plant/spc", params=spc_params)
        body: dict[str, Any] = r.json()
        return body if r.status_code == 200 and len(body.get("points", [])) == 61 else None

    spc = wait_for(spc_stored, timeout=20, what="all 61 panel-gap samples in the SPC chart")
    assert spc["limits"]["reference_samples"] == 60
    assert spc["limits"]["center"] == pytest.approx(sum(gap) / 60)
    assert len(spc["points"]) == 61
    assert spc["alarms"][-1]["index"] == 60
    assert 1 in spc["alarms"][-1]["rules"]
    assert spc["violations"]["1"] == [60]  # beyond 3 sigma: only the outlier


class ThreadedPlant:
    """The plant simulator's OPC UA server on its own event loop thread."""

    def __init__(self) -> None:
        from ironbridge.sim.plant import PlantSimulator

        self.port = free_port()
        self.sim = PlantSimulator()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stop = asyncio.Event()
        self.url = ""

    def start(self) -> ThreadedPlant:
        started: Future[str] = Future()

        async def serve() -> None:
            async with self.sim.opcua_server(self.port) as url:
                started.set_result(url)
                await self.sim.run(self.stop)

        self.serving = asyncio.run_coroutine_threadsafe(serve(), self.loop)
        self.url = started.result(timeout=60)
        return self

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.serving.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def test_opcua_browse_and_connector_through_the_api(platform: PlatformProcess) -> None:
    api = platform.client()
    _station(api, "press-01")
    plant = ThreadedPlant().start()
    try:
        r = api.post("/api/v1/connectors/opcua/browse", json={"url": plant.url})
        assert r.status_code == 200, r.text
        assert "Plant" in [e["display_name"] for e in r.json()]
        r = api.post(
            "/api/v1/connectors/opcua/browse",
            json={"url": plant.url, "node": "ns=2;s=stamping", "folder": True},
        )
        found = {e["node_id"] for e in r.json()}
        assert {"ns=2;s=press-01.state", "ns=2;s=press-03.press_force"} <= found
        nodes = [{"node": "ns=2;s=press-01.state", "device": "press-01", "measurement": "state"},
                 {"node": "ns=2;s=press-01.press_force", "device": "press-01",
                  "measurement": "press_force"}]  # fmt: skip
        config = {"kind": "opcua", "url": plant.url, "publishing_interval_ms": 100, "nodes": nodes}
        missing = {**config, "nodes": [{**nodes[0], "node": "ns=2;s=nope"}]}
        r = api.post("/api/v1/connectors", json={"id": "ua-1", "config": missing})
        assert r.status_code == 422
        assert r.json()["field"] == "config.nodes[0].node"
        r = api.post("/api/v1/connectors", json={"id": "ua-1", "config": config})
        assert r.status_code == 201, r.text

        def stored() -> bool:
            r = api.get("/api/v1/telemetry/latest", params={"asset": "press-01"})
            return "press_force" in r.text

        wait_for(stored, timeout=30, what="OPC UA data in the store")
        r = api.get("/api/v1/connectors/ua-1/browse", params={"node": "ns=2;s=press-01"})
        assert len(r.json()) == 5
        assert api.delete("/api/v1/connectors/ua-1").status_code == 204
    finally:
        plant.close()
