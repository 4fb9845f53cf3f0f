"""The ingest pipeline: validate, normalise and commit device telemetry exactly once."""

from ironbridge.ingest.events import to_events
from ironbridge.ingest.ports import InboundMessage, MessageSource, Publisher
from ironbridge.ingest.routes import ASSET_SOURCE_PREFIX, RouteCache, asset_source, platform_routes
from ironbridge.ingest.validate import to_points
from ironbridge.ingest.worker import (
    DEAD_LETTER_PREFIX,
    NORMALISED_SUBJECT,
    IngestStats,
    IngestWorker,
    batch_to_ipc,
    device_of,
    ipc_to_batch,
    published_mark,
    resume_after,
)

__all__ = [
    "ASSET_SOURCE_PREFIX",
    "DEAD_LETTER_PREFIX",
    "NORMALISED_SUBJECT",
    "InboundMessage",
    "IngestStats",
    "IngestWorker",
    "MessageSource",
    "Publisher",
    "RouteCache",
    "asset_source",
    "batch_to_ipc",
    "device_of",
    "ipc_to_batch",
    "platform_routes",
    "published_mark",
    "resume_after",
    "to_events",
    "to_points",
]
