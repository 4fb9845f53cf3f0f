"""Edge agent sources against real peers: an asyncua OPC UA server and a pymodbus server,
collected by a real agent (uplink cut) whose local rule raises an alarm offline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncua import Server, ua
from plant_helpers import until
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from harness import free_port
from ironbridge.codec.modbus import encode, parse_register_spec
from ironbridge.edge.agent import EdgeAgent
from ironbridge.edge.config import EdgeConfig, RuleConfig, SourceConfig, UplinkConfig
from ironbridge.edge.sources import Points, connector_source

pytestmark = pytest.mark.integration


async def _opcua_server(port: int) -> tuple[Server, object]:
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/edge/")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    ns = await server.register_namespace("urn:edge-test")
    m1 = await server.nodes.objects.add_object(ua.NodeId("M1", ns), f"{ns}:M1")
    temp = await m1.add_variable(ua.NodeId("M1.temp", ns), f"{ns}:temp", 20.0)
    await server.start()
    return server, temp


async def _collect(source: AsyncIterator[Points], want: int) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {}
    async for names, _ts, values in source:
        for n, v in zip(names, values, strict=True):
            got.setdefault(n, []).append(float(v or 0.0))
        if sum(len(v) for v in got.values()) >= want:
            break
    await source.aclose()  # type: ignore[attr-defined]
    return got


async def test_opcua_source_feeds_agent_and_local_rule_fires_offline(tmp_path: Path) -> None:
    port = free_port()
    server, temp = await _opcua_server(port)
    source = SourceConfig(
        kind="opcua",
        connector={
            "url": f"opc.tcp://127.0.0.1:{port}/edge/",
            "publishing_interval_ms": 50,
            "nodes": [{"node": "ns=2;s=M1.temp", "measurement": "temp", "scale": 2.0}],
        },
    )
    cfg = EdgeConfig(
        node_id="gw-opc",
        buffer_path=str(tmp_path / "buf.db"),
        uplink=UplinkConfig(port=free_port(), username="gw-opc", password="x"),
        sources=[source],
        rules=[RuleConfig(name="hot", metric="temp", op=">", threshold=100)],
    )
    agent = EdgeAgent(cfg)
    agent.link_enabled = False  # offline the whole time
    stop = asyncio.Event()
    run = asyncio.create_task(agent.run(stop))
    try:
        await until(lambda: agent.stats.collected >= 1, 30, "first OPC UA value")
        await temp.write_value(60.0)  # type: ignore[attr-defined]
        await until(lambda: agent.stats.alarms == 1, 30, "local alarm")
        stats = agent.buffer.stats()
        assert stats.events == 1
        assert stats.points >= 2
        status = agent.status()
        assert status["health"] == "ok"
        assert status["link"] == "down"
        assert json.loads(str(status["sources"])) == [{"kind": "opcua", "state": "running"}]
    finally:
        stop.set()
        await run
        await server.stop()


async def test_opcua_source_values_are_scaled() -> None:
    port = free_port()
    server, _temp = await _opcua_server(port)
    try:
        cfg = SourceConfig(
            kind="opcua",
            connector={
                "url": f"opc.tcp://127.0.0.1:{port}/edge/",
                "publishing_interval_ms": 50,
                "nodes": [{"node": "ns=2;s=M1.temp", "measurement": "temp", "scale": 2.0}],
            },
        )
        got = await asyncio.wait_for(_collect(connector_source(cfg), 1), 30)
        assert got == {"temp": [40.0]}
    finally:
        await server.stop()


async def test_modbus_source_reads_the_register_map() -> None:
    port = free_port()
    device = SimDevice(
        id=1,
        simdata=(
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=16, values=False, datatype=DataType.BITS)],
            [SimData(0, count=20, values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=20, values=0, datatype=DataType.REGISTERS)],
        ),
    )
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    registers = [
        {"measurement": "temp", "address": 0, "dtype": "int16", "scale": 0.1},
        {"measurement": "count", "address": 1, "dtype": "uint32"},
    ]
    try:
        for raw, value in zip(registers, (-12.3, 70_000), strict=True):
            spec = parse_register_spec(raw)
            await server.context.async_setValues(1, 16, spec.address, encode(value, spec))
        cfg = SourceConfig(
            kind="modbus",
            connector={
                "host": "127.0.0.1",
                "port": port,
                "scan_interval_s": 0.05,
                "devices": [{"registers": registers}],
            },
        )
        got = await asyncio.wait_for(_collect(connector_source(cfg), 4), 30)
        assert got["temp"][0] == pytest.approx(-12.3)
        assert got["count"][0] == 70_000
    finally:
        await server.shutdown()
