"""DuckDB adapter of the telemetry store (embedded mode: one file, one writer)."""

from ironbridge.store.duckdb.store import DuckDBTelemetryStore

__all__ = ["DuckDBTelemetryStore"]
