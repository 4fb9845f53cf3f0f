"""Run one connector on its own, near the machines, publishing to a NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ironbridge.bus import Bus
from ironbridge.connect.config import ModbusConfig, OpcUaConfig
from ironbridge.connect.manager import make_connector

_LOGGER = logging.getLogger(__name__)


async def run_standalone(
    config: OpcUaConfig | ModbusConfig,
    stop: asyncio.Event,
    *,
    nats_url: str,
    user: str = "",
    password: str = "",
    name: str = "connector",
    report: Callable[[dict[str, Any]], None] | None = None,
    report_every_s: float = 10.0,
) -> None:
    """Connect to NATS, run the connector until ``stop``, report its status periodically.

    Args:
        config: the connector configuration.
        stop: set to stop.
        nats_url: NATS server(s) with JetStream and the ``IB_RAW`` stream.
        user: NATS user allowed to publish ``ib.v1.*.telemetry``.
        password: its password.
        name: connection and log name.
        report: called with the status every ``report_every_s``.
        report_every_s: status period.
    """
    async with Bus.connect(nats_url, user=user, password=password, name=f"ib-{name}") as bus:
        connector = make_connector(name, config, bus)
        task = asyncio.create_task(connector.run(stop), name=f"connector-{name}")
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=report_every_s)
            if report is not None:
                report(connector.status())
        await task


__all__ = ["run_standalone"]
