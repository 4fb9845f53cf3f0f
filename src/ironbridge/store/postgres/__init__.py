"""PostgreSQL adapter of the telemetry store (cluster mode: many writers, partitioned)."""

from ironbridge.store.postgres.store import PostgresTelemetryStore

__all__ = ["PostgresTelemetryStore"]
