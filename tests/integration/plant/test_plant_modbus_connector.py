"""Modbus connector against a real pymodbus server: register map decoding (types, word
order, scale/offset, coils), a refused read, device loss reported once and recovery."""

from __future__ import annotations

import asyncio
import logging

import pytest
from plant_helpers import Recorder, until
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from harness import free_port
from ironbridge.codec.modbus import encode, parse_register_spec
from ironbridge.connect.config import parse_config
from ironbridge.connect.link import Backoff, LinkState
from ironbridge.connect.modbus import ModbusConnector, check_connection
from ironbridge.model import InvalidInput

pytestmark = pytest.mark.integration

REGISTERS = [
    {"measurement": "temp", "address": 0, "dtype": "int16", "scale": 0.1},
    {"measurement": "count", "address": 1, "dtype": "uint32", "word_order": "little"},
    {"measurement": "flow", "address": 10, "dtype": "float32", "table": "input"},
    {"measurement": "pressure", "address": 12, "dtype": "uint16", "table": "input",
     "scale": 0.01, "offset": -1.0},
    {"measurement": "running", "address": 3, "table": "coil", "dtype": "bool"},
]  # fmt: skip


class Plc:
    """A pymodbus server holding the values of REGISTERS."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.server: ModbusTcpServer | None = None

    async def start(self) -> None:
        device = SimDevice(
            id=1,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=20, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=20, values=0, datatype=DataType.REGISTERS)],
            ),
        )
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)

    async def set(self, measurement: str, value: float) -> None:
        assert self.server is not None
        raw = next(r for r in REGISTERS if r["measurement"] == measurement)
        spec = parse_register_spec(raw)
        fc = {"holding": 16, "input": 4, "coil": 15}[spec.table.value]
        await self.server.context.async_setValues(1, fc, spec.address, encode(value, spec))

    async def stop(self) -> None:
        assert self.server is not None
        await self.server.shutdown()
        self.server = None


def _config(port: int, registers: list[dict[str, object]] = REGISTERS) -> dict[str, object]:
    return {
        "kind": "modbus",
        "host": "127.0.0.1",
        "port": port,
        "scan_interval_s": 0.05,
        "timeout_s": 0.5,
        "devices": [{"device": "plc-1", "asset": "pump-1", "registers": registers}],
    }


async def _fill(plc: Plc) -> None:
    for name, value in (("temp", -12.3), ("count", 70_000), ("flow", 1.5),
                        ("pressure", 2.5), ("running", 1)):  # fmt: skip
        await plc.set(name, value)


async def test_map_decoded_and_refused_read_named() -> None:
    plc = Plc(free_port())
    await plc.start()
    try:
        await _fill(plc)
        result = await check_connection(parse_config(_config(plc.port)))  # type: ignore[arg-type]
        got = result["values"]["plc-1"]
        assert got["temp"] == pytest.approx(-12.3)
        assert got["count"] == 70_000
        assert got["flow"] == pytest.approx(1.5)
        assert got["pressure"] == pytest.approx(2.5)
        assert got["running"] == 1.0
        assert result["reads"] == 3  # holding 0-2 coalesced; input 10-12; coil 3
        beyond = [{"measurement": "x", "address": 500, "dtype": "uint16"}]
        with pytest.raises(InvalidInput) as err:
            await check_connection(parse_config(_config(plc.port, beyond)))  # type: ignore[arg-type]
        assert err.value.field == "devices[0].registers"
    finally:
        await plc.stop()
    with pytest.raises(InvalidInput) as err:
        await check_connection(parse_config(_config(plc.port)))  # type: ignore[arg-type]
    assert err.value.field == "host"


async def test_poll_loss_reported_once_and_recovery(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ironbridge.connect")
    plc = Plc(free_port())
    await plc.start()
    await _fill(plc)
    rec = Recorder()
    connector = ModbusConnector(
        parse_config(_config(plc.port)),  # type: ignore[arg-type]
        rec,
        name="t",
        backoff=Backoff(initial_s=0.05, max_s=0.2),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop))
    try:
        await until(lambda: 70_000 in rec.values("ib.v1.plc-1.telemetry", "count"), what="count")
        assert all(doc.get("asset") == "pump-1" for _, doc in rec.messages)
        await plc.stop()
        await until(lambda: connector.link.state is LinkState.LOST, what="lost")
        await until(lambda: connector.link.failures >= 3, what="retries")
        lost = [r for r in caplog.records if r.getMessage().endswith("retrying with backoff")]
        assert len(lost) == 1

        await plc.start()
        await plc.set("count", 70_001)
        await until(lambda: 70_001 in rec.values("ib.v1.plc-1.telemetry", "count"), what="after")
        assert connector.link.recoveries == 1
        assert [r.getMessage().endswith("recovered") for r in caplog.records].count(True) == 1
    finally:
        stop.set()
        await task
        if plc.server is not None:
            await plc.stop()


async def test_unpublished_samples_kept_while_bus_away() -> None:
    plc = Plc(free_port())
    await plc.start()
    await _fill(plc)
    rec = Recorder()
    rec.fail = True
    connector = ModbusConnector(parse_config(_config(plc.port)), rec)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop))
    try:
        await until(lambda: connector.scans >= 3 and connector.batcher.stats.failures >= 1)
        rec.fail = False
        await until(lambda: connector.batcher.stats.published >= 15)
        assert rec.values("ib.v1.plc-1.telemetry", "count")[:3] == [70_000] * 3
    finally:
        stop.set()
        await task
        await plc.stop()
