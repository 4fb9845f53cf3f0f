"""Runs the saved connectors inside the platform process: one task per connector."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ironbridge.connect.config import ModbusConfig, OpcUaConfig
from ironbridge.connect.modbus import ModbusConnector
from ironbridge.connect.opcua import OpcUaConnector
from ironbridge.connect.publish import Publisher
from ironbridge.connect.tables import ConnectorRepository
from ironbridge.model.retry import retry_transient

_LOGGER = logging.getLogger(__name__)

Connector = OpcUaConnector | ModbusConnector


def make_connector(
    name: str, config: OpcUaConfig | ModbusConfig, publisher: Publisher
) -> Connector:
    """Build the connector a configuration describes."""
    if isinstance(config, OpcUaConfig):
        return OpcUaConnector(config, publisher, name=name)
    return ModbusConnector(config, publisher, name=name)


class ConnectorManager:
    """Starts every enabled saved connector and those added later; stops removed ones.

    Args:
        repository: saved configurations.
        publisher: the bus, with the platform's internal credentials.
    """

    def __init__(self, repository: ConnectorRepository, publisher: Publisher) -> None:
        self.repository = repository
        self._publisher = publisher
        self._running: dict[str, tuple[Connector, asyncio.Event, asyncio.Task[None]]] = {}

    def start(self, connector_id: str, config: OpcUaConfig | ModbusConfig) -> None:
        """Start (or restart) one connector."""
        self._stop_nowait(connector_id)
        connector = make_connector(connector_id, config, self._publisher)
        stop = asyncio.Event()
        task = asyncio.create_task(connector.run(stop), name=f"connector-{connector_id}")
        self._running[connector_id] = (connector, stop, task)

    def _stop_nowait(self, connector_id: str) -> asyncio.Task[None] | None:
        entry = self._running.pop(connector_id, None)
        if entry is None:
            return None
        entry[1].set()
        return entry[2]

    async def stop(self, connector_id: str) -> None:
        """Stop one connector and wait for it to flush."""
        task = self._stop_nowait(connector_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def status(self, connector_id: str) -> dict[str, Any] | None:
        """Link state and counters of a running connector, ``None`` if not running."""
        entry = self._running.get(connector_id)
        return None if entry is None else entry[0].status()

    async def run(self, stop: asyncio.Event) -> None:
        """Start the saved connectors, then stop them all when ``stop`` is set."""
        saved = await retry_transient(  # a busy registry delays the start, it does not end it
            lambda: asyncio.to_thread(self.repository.list, None),
            "connectors: load saved",
            stop=stop,
            logger=_LOGGER,
        )
        for s in saved:
            if s.enabled:
                self.start(s.id, s.config)
        if saved:
            _LOGGER.info("started %d saved connectors", sum(s.enabled for s in saved))
        await stop.wait()
        tasks = [t for t in (self._stop_nowait(i) for i in list(self._running)) if t]
        await asyncio.gather(*tasks, return_exceptions=True)


__all__ = ["Connector", "ConnectorManager", "make_connector"]
