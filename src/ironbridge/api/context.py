"""Everything the API needs from the running platform, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ironbridge.aftersales import Aftersales
from ironbridge.analytics.sites import SiteRepository
from ironbridge.chain import ChainRepository
from ironbridge.connect.manager import ConnectorManager
from ironbridge.ingest import Publisher, RouteCache
from ironbridge.predict.service import PredictService
from ironbridge.rules import AlarmStore
from ironbridge.store import Registry, TelemetryStore


class DeadLetterReader(Protocol):
    """Reads the newest dead letters (implemented over the dead-letter stream)."""

    async def newest(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """Return up to ``limit`` dead letters, newest first.

        Each has ``seq``, ``device_id``, ``field``, ``reason``, ``subject``,
        ``received_us`` and ``payload`` (bytes).
        """
        ...


async def _nothing() -> None:
    return None


@dataclass(kw_only=True)
class ApiContext:
    """The services behind the HTTP API."""

    registry: Registry
    store: TelemetryStore
    publisher: Publisher
    routes: RouteCache
    secret_key: bytes
    dead_letters: DeadLetterReader | None = None
    #: called after a device is created, revoked, rotated or deleted
    on_devices_changed: Callable[[], Awaitable[None]] = _nothing
    #: ingest counters and backbone state for ``GET /api/v1/ingest/stats``
    ingest_stats: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
    #: where devices connect, for the examples shown with a new credential
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    public_url: str = "http://127.0.0.1:8080"
    session_ttl_s: int = 12 * 3600
    extra: dict[str, Any] = field(default_factory=dict)
    #: predictive maintenance (train, deploy, score); None when not running
    predict: PredictService | None = None
    #: industrial chains (``/api/v1/chains``); None when not configured
    chains: ChainRepository | None = None
    #: rules and alarms (``/api/v1/rules``, ``/api/v1/alarms``); None when not running
    alarm_store: AlarmStore | None = None
    #: rules worker counters for ``GET /api/v1/rules-stats``
    rules_stats: Callable[[], Awaitable[Mapping[str, Any]]] | None = None
    #: saved OPC UA / Modbus connectors and their runner; None when not running
    connectors: ConnectorManager | None = None
    #: plant sites for OEE and SPC (``/api/v1/plant``); None when not configured
    plant_sites: SiteRepository | None = None
    #: after-sales service (``/api/v1/work-orders`` ...); None when not running
    aftersales: Aftersales | None = None
