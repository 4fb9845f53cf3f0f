"""The ingest pipeline: validate, normalise and commit device telemetry exactly once."""

from ironbridge.ingest.events import to_events
from ironbridge.ingest.ports import InboundMessage, MessageSource, Publisher
from ironbridge.ingest.routes import RouteCache
from ironbridge.ingest.validate import to_points
from ironbridge.ingest.worker import (
    DEAD_LETTER_PREFIX,
    NORMALISED_SUBJECT,
    IngestStats,
    IngestWorker,
    batch_to_ipc,
    device_of,
    ipc_to_batch,
)

__all__ = [
    "DEAD_LETTER_PREFIX",
    "NORMALISED_SUBJECT",
    "InboundMessage",
    "IngestStats",
    "IngestWorker",
    "MessageSource",
    "Publisher",
    "RouteCache",
    "batch_to_ipc",
    "device_of",
    "ipc_to_batch",
    "to_events",
    "to_points",
]
