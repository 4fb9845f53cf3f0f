"""Subject names of the backbone and the helpers that build and parse them."""

from __future__ import annotations

from ironbridge.model.errors import InvalidInput
from ironbridge.model.ids import check_id

#: raw messages as devices and connectors send them (MQTT ``ib/v1/<dev>/telemetry``)
STREAM_RAW = "IB_RAW"
#: normalised point batches, published by ingest after the store commit
STREAM_NORM = "IB_NORM"
#: rejected messages with their reason
STREAM_DEAD = "IB_DEAD"

RAW_SUBJECTS = ("ib.v1.*.telemetry", "ib.v1.*.events")
NORM_SUBJECTS = ("ib.norm.>",)
DEAD_SUBJECTS = ("ib.dead.>",)

_PREFIX = "ib.v1."


def telemetry_subject(device_id: str) -> str:
    """Return the subject of a device's telemetry (MQTT ``ib/v1/<id>/telemetry``)."""
    return f"{_PREFIX}{check_id(device_id, 'device_id')}.telemetry"


def events_subject(device_id: str) -> str:
    """Return the subject of a device's events (MQTT ``ib/v1/<id>/events``)."""
    return f"{_PREFIX}{check_id(device_id, 'device_id')}.events"


def device_subjects(device_id: str) -> str:
    """Return the wildcard covering every subject of one device (``ib.v1.<id>.>``)."""
    return f"{_PREFIX}{check_id(device_id, 'device_id')}.>"


def telemetry_topic(device_id: str) -> str:
    """Return the MQTT topic a device publishes telemetry on."""
    return f"ib/v1/{check_id(device_id, 'device_id')}/telemetry"


def norm_subject(tenant_id: str) -> str:
    """Return the subject of a tenant's normalised batches (``ib.norm.<tenant>``)."""
    return f"ib.norm.{check_id(tenant_id, 'tenant_id')}"


def dead_subject(source: str) -> str:
    """Return the dead-letter subject for messages from ``source`` (a device id)."""
    return f"ib.dead.{check_id(source, 'source')}"


def device_id_from_subject(subject: str) -> str:
    """Return the device id in ``ib.v1.<device-id>.<kind>...``.

    Raises:
        InvalidInput: the subject is not a device subject.
    """
    tokens = subject.split(".")
    if len(tokens) < 4 or tokens[0] != "ib" or tokens[1] != "v1" or not tokens[2]:
        raise InvalidInput("subject", f"{subject!r} is not ib.v1.<device-id>.<kind>")
    return tokens[2]
