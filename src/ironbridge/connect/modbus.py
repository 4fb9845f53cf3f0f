"""Modbus TCP connector on pymodbus: poll register maps at a scan rate and publish.

Each scan runs the coalesced reads of :func:`ironbridge.codec.modbus.plan_reads`,
decodes every entry (type, byte/word order, scale, offset) with the pure codec and
hands the values, stamped with the scan time, to the batcher. A device that stops
answering is reported once, retried with jittered backoff (a fresh TCP connection each
time) and reported once more when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from ironbridge.codec.modbus import ReadBlock, Table, plan_reads
from ironbridge.connect.config import ModbusConfig
from ironbridge.connect.link import Backoff, Link, pause
from ironbridge.connect.publish import Publisher, SampleBatcher
from ironbridge.model import InvalidInput, IronbridgeError, PermanentError, TransientError

_LOGGER = logging.getLogger(__name__)


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except IronbridgeError:
        raise
    except (ModbusException, OSError, TimeoutError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class _Plan:
    device: str
    asset: str | None
    block: ReadBlock


def _plans(config: ModbusConfig) -> list[_Plan]:
    out = []
    for dev in config.devices:
        for block in plan_reads(dev.specs(), max_gap=config.max_gap):
            out.append(_Plan(dev.device, dev.asset, block))
    return out


async def _read(client: AsyncModbusTcpClient, block: ReadBlock) -> list[int]:
    """One read request; exception responses are permanent (bad address/function)."""
    kw: dict[str, Any] = {"count": block.count, "device_id": block.unit_id}
    with _mapped(f"read {block.table.value} {block.start}+{block.count}"):
        if block.table is Table.HOLDING:
            rr = await client.read_holding_registers(block.start, **kw)
        elif block.table is Table.INPUT:
            rr = await client.read_input_registers(block.start, **kw)
        elif block.table is Table.COIL:
            rr = await client.read_coils(block.start, **kw)
        else:
            rr = await client.read_discrete_inputs(block.start, **kw)
    if rr.isError():
        raise PermanentError(
            f"unit {block.unit_id} refused reading {block.table.value} "
            f"{block.start}..{block.start + block.count - 1}: {rr}"
        )
    if block.table.is_bit:
        return [int(b) for b in rr.bits[: block.count]]
    return list(rr.registers)


async def _connect(config: ModbusConfig) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(
        config.host,
        port=config.port,
        timeout=config.timeout_s,
        retries=0,
        reconnect_delay=0,
    )
    with _mapped(f"connect to {config.host}:{config.port}"):
        ok = await client.connect()
    if not ok:
        client.close()
        raise TransientError(f"cannot connect to Modbus TCP {config.host}:{config.port}")
    return client


async def check_connection(config: ModbusConfig) -> dict[str, Any]:
    """Connect and run one full scan of the map.

    Returns:
        ``{"reads": n, "values": {device: {measurement: value}}}``.

    Raises:
        InvalidInput: field ``host`` when the device cannot be reached, or
            ``devices[i].registers`` when the device refuses a read.
    """
    plans = _plans(config)
    try:
        client = await _connect(config)
    except TransientError as exc:
        raise InvalidInput("host", str(exc)) from None
    values: dict[str, dict[str, float]] = {}
    try:
        for plan in plans:
            try:
                regs = await _read(client, plan.block)
            except PermanentError as exc:
                i = next(i for i, d in enumerate(config.devices) if d.device == plan.device)
                raise InvalidInput(f"devices[{i}].registers", str(exc)) from None
            except TransientError as exc:
                raise InvalidInput("host", str(exc)) from None
            values.setdefault(plan.device, {}).update(plan.block.decode(regs))
    finally:
        client.close()
    return {"reads": len(plans), "values": values}


class ModbusConnector:
    """Polls one Modbus TCP endpoint through its register maps and publishes the values.

    Args:
        config: endpoint, scan rate and register maps.
        publisher: the bus (``Bus``) or any :class:`~ironbridge.connect.publish.Publisher`.
        name: name used in log lines and status.
        backoff: reconnect policy.
    """

    def __init__(
        self,
        config: ModbusConfig,
        publisher: Publisher,
        *,
        name: str = "modbus",
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.plans = _plans(config)
        self.batcher = SampleBatcher(publisher)
        self.link = Link(f"modbus connector {name} ({config.host}:{config.port})", backoff)
        self.scans = 0
        self.read_errors = 0

    def status(self) -> dict[str, Any]:
        """Link state and counters."""
        s = self.batcher.stats
        return {
            **self.link.status(),
            "scans": self.scans,
            "reads_per_scan": len(self.plans),
            "read_errors": self.read_errors,
            "published": s.published,
            "pending": self.batcher.pending,
            "dropped": s.dropped,
        }

    async def scan(self, client: AsyncModbusTcpClient) -> int:
        """Run every read once and queue the decoded values; return the values read.

        A read the device refuses (exception response) is skipped and counted; a
        transport failure aborts the scan.

        Raises:
            TransientError: the connection failed.
        """
        ts_ms = int(time.time() * 1000)
        n = 0
        for plan in self.plans:
            try:
                regs = await _read(client, plan.block)
            except PermanentError as exc:
                self.read_errors += 1
                _LOGGER.debug("%s: %s", self.link.name, exc)
                continue
            for name, value in plan.block.decode(regs).items():
                self.batcher.add(plan.device, plan.asset, name, ts_ms, value)
                n += 1
        self.scans += 1
        return n

    async def run(self, stop: asyncio.Event) -> None:
        """Poll at the scan rate until ``stop`` is set; reconnect on loss."""
        flusher = asyncio.create_task(
            self.batcher.run(stop, interval_s=min(1.0, self.config.scan_interval_s)),
            name="modbus-flush",
        )
        loop = asyncio.get_running_loop()
        try:
            while not stop.is_set():
                client: AsyncModbusTcpClient | None = None
                try:
                    client = await _connect(self.config)
                    await self.scan(client)
                    self.link.up()
                    next_at = loop.time() + self.config.scan_interval_s
                    while not await pause(stop, max(0.0, next_at - loop.time())):
                        next_at += self.config.scan_interval_s
                        if next_at < loop.time():  # fell behind: skip, do not burst
                            next_at = loop.time() + self.config.scan_interval_s
                        await self.scan(client)
                except IronbridgeError as exc:
                    if await pause(stop, self.link.down(exc)):
                        break
                finally:
                    if client is not None:
                        client.close()
        finally:
            self.link.stopped()
            await flusher


__all__ = ["ModbusConnector", "check_connection"]
