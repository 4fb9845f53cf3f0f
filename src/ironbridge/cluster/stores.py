"""Pick the telemetry store adapter from the ``telemetry`` setting."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from ironbridge.model import InvalidInput, TransientError
from ironbridge.store import TelemetryStore

_LOGGER = logging.getLogger(__name__)


def is_postgres_url(url: str) -> bool:
    """Return True for ``postgresql://`` (or ``postgresql+psycopg://``, ``postgres://``) URLs."""
    return url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


def open_telemetry_store(telemetry: str, data_dir: Path, *, pool_size: int = 8) -> TelemetryStore:
    """Open the telemetry store the setting names.

    Args:
        telemetry: ``"duckdb"`` (a file in the data directory) or a PostgreSQL URL.
        data_dir: the data directory (embedded mode).
        pool_size: PostgreSQL connections (one per concurrent writer or query).

    Raises:
        InvalidInput: the setting names no known store.
    """
    if telemetry in ("", "duckdb"):
        from ironbridge.store.duckdb import DuckDBTelemetryStore

        return DuckDBTelemetryStore(data_dir / "telemetry.duckdb")
    if is_postgres_url(telemetry):
        from ironbridge.store.postgres import PostgresTelemetryStore

        url = telemetry.replace("postgres://", "postgresql://", 1)
        return PostgresTelemetryStore(url, pool_size=pool_size)
    raise InvalidInput("telemetry", f"must be 'duckdb' or a postgresql:// URL, got {telemetry!r}")


async def idle_until(stop: asyncio.Event) -> None:
    """Wait for ``stop``: the stand-in task of a role a process leaves out."""
    await stop.wait()


async def ensure_streams_patiently(bus: Any, replicas: int, *, timeout_s: float = 120.0) -> None:
    """``bus.ensure_streams``, retried while the cluster is not ready (meta leader election).

    A worker started together with (or just after) the NATS cluster would otherwise exit
    on the first JetStream timeout.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = 0.5
    while True:
        try:
            await bus.ensure_streams(replicas=replicas)
            return
        except TransientError as exc:
            if loop.time() + delay > deadline:
                raise
            _LOGGER.warning("streams not ready (%s); retrying in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
