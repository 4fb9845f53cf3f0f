"""OPC UA connector against a real in-process asyncua server: browse, test, subscribe,
server loss reported once, recovery after a restart."""

from __future__ import annotations

import asyncio
import logging

import pytest
from asyncua import Server, ua
from plant_helpers import Recorder, until

from harness import free_port
from ironbridge.connect.config import parse_config
from ironbridge.connect.link import Backoff, LinkState
from ironbridge.connect.opcua import OpcUaConnector, browse, check_connection, variables_under
from ironbridge.model import InvalidInput

pytestmark = pytest.mark.integration


class Machine:
    """A tiny OPC UA server: Objects/Line/M1 with temperature and count."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"opc.tcp://127.0.0.1:{port}/test/"
        self.server: Server | None = None
        self.temp: object = None

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace("urn:test")
        line = await server.nodes.objects.add_folder(ua.NodeId("Line", ns), f"{ns}:Line")
        m1 = await line.add_object(ua.NodeId("M1", ns), f"{ns}:M1")
        self.temp = await m1.add_variable(ua.NodeId("M1.temp", ns), f"{ns}:temp", 20.0)
        await m1.add_variable(ua.NodeId("M1.count", ns), f"{ns}:count", 0)
        await m1.add_variable(ua.NodeId("M1.name", ns), f"{ns}:name", "press")
        await server.start()
        self.server = server

    async def stop(self) -> None:
        assert self.server is not None
        await self.server.stop()
        self.server = None

    async def write(self, value: float) -> None:
        await self.temp.write_value(value)  # type: ignore[attr-defined]


def _config(url: str) -> dict[str, object]:
    return {
        "kind": "opcua",
        "url": url,
        "publishing_interval_ms": 50,
        "nodes": [
            {"node": "ns=2;s=M1.temp", "device": "m1", "measurement": "temp", "scale": 2.0},
            {"node": "ns=2;s=M1.name", "device": "m1", "measurement": "label"},
        ],
    }


async def test_browse_folder_and_check_connection() -> None:
    machine = Machine(free_port())
    await machine.start()
    try:
        config = parse_config(_config(machine.url))
        top = {e.display_name: e for e in await browse(config)}
        assert top["Line"].node_class == "Object"
        assert top["Line"].has_children
        children = await browse(config, "ns=2;s=M1")
        assert {(e.node_id, e.data_type) for e in children} == {
            ("ns=2;s=M1.temp", "Double"),
            ("ns=2;s=M1.count", "Int64"),
            ("ns=2;s=M1.name", "String"),
        }
        folder = await variables_under(config, "ns=2;s=Line")
        assert sorted(e.node_id for e in folder) == [
            "ns=2;s=M1.count",
            "ns=2;s=M1.name",
            "ns=2;s=M1.temp",
        ]
        assert (await check_connection(config))["server_state"] == "Running"
        bad = parse_config({**_config(machine.url), "nodes": [
            {"node": "ns=2;s=M1", "device": "m1", "measurement": "x"}
        ]})  # fmt: skip
        with pytest.raises(InvalidInput) as err:
            await check_connection(bad)
        assert err.value.field == "nodes[0].node"
        assert "not a variable" in err.value.reason
    finally:
        await machine.stop()
    with pytest.raises(InvalidInput) as err:
        await check_connection(config)
    assert err.value.field == "url"


async def test_subscription_loss_reported_once_and_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="ironbridge.connect")
    machine = Machine(free_port())
    await machine.start()
    rec = Recorder()
    connector = OpcUaConnector(
        parse_config(_config(machine.url)),  # type: ignore[arg-type]
        rec,
        name="t",
        watchdog_s=0.1,
        backoff=Backoff(initial_s=0.05, max_s=0.2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop))
    try:
        await until(lambda: connector.link.state is LinkState.CONNECTED, what="connected")
        await machine.write(21.5)
        await until(lambda: 43.0 in rec.values("ib.v1.m1.telemetry", "temp"), what="21.5*2")
        assert connector.skipped >= 1  # the string node is not a number: skipped, counted

        await machine.stop()
        await until(lambda: connector.link.state is LinkState.LOST, what="lost")
        await until(lambda: connector.link.failures >= 3, what="retries")
        lost = [r for r in caplog.records if r.getMessage().endswith("retrying with backoff")]
        assert len(lost) == 1
        assert connector.link.losses == 1

        await machine.start()
        await until(lambda: connector.link.recoveries == 1, what="recovered")
        await machine.write(30.0)
        await until(lambda: 60.0 in rec.values("ib.v1.m1.telemetry", "temp"), what="after")
        recovered = [r for r in caplog.records if r.getMessage().endswith("recovered")]
        assert len(recovered) == 1
    finally:
        stop.set()
        await task
        if machine.server is not None:
            await machine.stop()
    assert connector.link.state is LinkState.STOPPED
