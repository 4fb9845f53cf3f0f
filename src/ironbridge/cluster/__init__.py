"""Cluster mode: adapter choice by settings, partitioned ingest workers, health and metrics.

Part of the composition root (like ``app.py``): it reads settings and picks adapters.
"""

from ironbridge.cluster.partitions import (
    LeaseTable,
    ensure_partitioned_stream,
    partition_consumer,
    partition_filter,
)
from ironbridge.cluster.stores import idle_until, open_telemetry_store

__all__ = [
    "LeaseTable",
    "ensure_partitioned_stream",
    "idle_until",
    "open_telemetry_store",
    "partition_consumer",
    "partition_filter",
]
