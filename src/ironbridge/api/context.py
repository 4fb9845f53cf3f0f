"""Everything the API needs from the running platform, handed in by the composition root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ironbridge.ingest import Publisher, RouteCache
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
