"""Storage ports (telemetry store, registry) and their adapters."""

from ironbridge.store.points import PointBatch
from ironbridge.store.ports import (
    Agg,
    Checkpoint,
    DeviceCredential,
    DeviceRoute,
    Registry,
    TelemetryStore,
)

__all__ = [
    "Agg",
    "Checkpoint",
    "DeviceCredential",
    "DeviceRoute",
    "PointBatch",
    "Registry",
    "TelemetryStore",
]
