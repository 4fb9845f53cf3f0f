"""What the vehicle TCP endpoints share: the vehicle directory port and the bus sink.

A server decodes frames with a pure codec, answers the terminal, and publishes what it
decoded into JetStream exactly like any other device: measurements as the columnar
telemetry JSON on ``ib.v1.<device-id>.telemetry`` and events as
``{"events": [...]}`` on ``ib.v1.<device-id>.events``; the ingest worker validates and
stores both. The terminal is answered only after JetStream acknowledged the data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Protocol

import orjson

from ironbridge.model import AssetType, Event, parse_asset_type

__all__ = [
    "SESSION_EVENT_KIND",
    "EndpointStats",
    "FrameObserver",
    "RawPublisher",
    "UnknownVehiclePolicy",
    "VehicleDirectory",
    "VehicleIdentity",
    "VehicleSink",
    "log_now",
    "vehicle_asset_types",
]

_LOGGER = logging.getLogger(__name__)

#: event kind of logins, logouts, registrations and authentications
SESSION_EVENT_KIND = "vehicle_session"


class UnknownVehiclePolicy(StrEnum):
    """What an endpoint does with a VIN or terminal the registry does not know."""

    #: refuse the login / registration
    REJECT = "reject"
    #: create the asset with ``status: pending`` and its device, and refuse until an
    #: operator sets the asset's ``status`` attribute to ``active``
    PENDING = "pending"


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleIdentity:
    """Where a vehicle's data goes.

    Attributes:
        device_id: the publishing identity (``nev-<VIN>``, ``jt808-<phone>``).
        asset_id: the vehicle's asset.
        measurements: names the asset type declares (others are dropped and counted).
    """

    device_id: str
    asset_id: str
    measurements: frozenset[str]


class VehicleDirectory(Protocol):
    """Finds the asset of a vehicle (implemented over the registry by the composition root)."""

    async def resolve(
        self, protocol: str, key: str, info: Mapping[str, str]
    ) -> VehicleIdentity | None:
        """Return the identity of an active vehicle, or None (unknown, pending, revoked).

        Args:
            protocol: ``gbt32960`` (key = VIN) or ``jt808`` (key = terminal phone).
            key: the vehicle's key on that protocol.
            info: what the terminal told about itself (ICCID, plate, model, ...), used
                when the unknown-vehicle policy registers it as pending.
        """
        ...


class RawPublisher(Protocol):
    """Publishes into JetStream and waits for the ack (``ironbridge.bus.Bus`` fits)."""

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Publish and return the stream sequence."""
        ...


class FrameObserver(Protocol):
    """Looks at each decoded sample of a vehicle and may add events (battery watch)."""

    def observe(
        self, asset_id: str, ts_us: int, values: Mapping[str, float | None]
    ) -> Sequence[Event]:
        """Return events derived from this sample (may keep per-asset state)."""
        ...


@dataclass(slots=True)
class EndpointStats:
    """Counters of one endpoint."""

    sessions_open: int = 0
    sessions_total: int = 0
    frames: int = 0
    answered: int = 0
    malformed: int = 0
    rejected: int = 0
    published: int = 0
    dropped_measurements: int = 0
    publish_errors: int = 0
    idle_closed: int = 0
    #: connections closed at once because ``max_sessions`` were open
    refused_full: int = 0
    #: JT/T 808 subpackaged messages joined, and 0x8003 requests sent for missing packets
    reassembled: int = 0
    retransmission_requests: int = 0
    latencies_us: list[int] = field(default_factory=list)

    def note_latency(self, us: int) -> None:
        """Record a frame-in to answer-out latency (bounded reservoir)."""
        if len(self.latencies_us) < 200_000:
            self.latencies_us.append(us)


def _event_json(e: Event) -> dict[str, Any]:
    return {"ts": e.ts_us // 1000, "kind": e.kind, "code": e.code, "payload": e.payload}


class VehicleSink:
    """Turns decoded samples and events into raw bus messages of the vehicle's device."""

    def __init__(
        self,
        publisher: RawPublisher,
        stats: EndpointStats,
        observers: Sequence[FrameObserver] = (),
    ) -> None:
        self._publisher = publisher
        self._stats = stats
        self._observers = tuple(observers)

    async def publish(
        self,
        who: VehicleIdentity,
        samples: Sequence[tuple[int, Mapping[str, float | None]]],
        events: Sequence[Event] = (),
        *,
        msg_id: str | None = None,
    ) -> None:
        """Publish samples ``(ts_us, values)`` (None values omitted) and events.

        Raises:
            IronbridgeError: the bus did not acknowledge (the caller answers an error).
        """
        all_events = list(events)
        ts_ms: list[int] = []
        columns: dict[str, list[float | None]] = {}
        if len(samples) == 1:
            # the common case (one real-time frame, one location): comprehensions, not a
            # per-value loop; a GB/T 32960 frame of a 96-cell pack carries ~230 values
            ts_us, values = samples[0]
            for obs in self._observers:
                all_events.extend(obs.observe(who.asset_id, ts_us, values))
            ts_ms.append(ts_us // 1000)
            known = who.measurements
            present = {k: v for k, v in values.items() if v is not None}
            columns = {k: [v] for k, v in present.items() if k in known}
            self._stats.dropped_measurements += len(present) - len(columns)
            samples = ()
        for i, (ts_us, values) in enumerate(samples):
            for obs in self._observers:
                all_events.extend(obs.observe(who.asset_id, ts_us, values))
            ts_ms.append(ts_us // 1000)
            for name, value in values.items():
                if value is None:
                    continue
                if name not in who.measurements:
                    self._stats.dropped_measurements += 1
                    continue
                col = columns.get(name)
                if col is None:
                    col = columns[name] = [None] * i
                col.append(value)
            for col in columns.values():
                if len(col) < i + 1:
                    col.append(None)
        if columns:
            body = orjson.dumps({"ts": ts_ms, "values": columns})
            await self._publisher.publish(
                f"ib.v1.{who.device_id}.telemetry",
                body,
                msg_id=None if msg_id is None else msg_id + "-t",
            )
            self._stats.published += 1
        if all_events:
            body = orjson.dumps({"events": [_event_json(e) for e in all_events]})
            await self._publisher.publish(
                f"ib.v1.{who.device_id}.events",
                body,
                msg_id=None if msg_id is None else msg_id + "-e",
            )
            self._stats.published += 1


@cache
def vehicle_asset_types() -> tuple[AssetType, ...]:
    """The asset types of the vehicle endpoints: ``nev_bus`` and ``jt808_truck``."""
    import yaml

    out = []
    folder = resources.files("ironbridge.connect") / "assettypes"
    for name in ("nev_bus.yaml", "jt808_truck.yaml"):
        out.append(parse_asset_type(yaml.safe_load((folder / name).read_text("utf-8"))))
    return tuple(out)


def log_now(count: int) -> bool:
    """True on the 1st, 2nd, 4th, 8th... occurrence: log a recurring failure sparsely."""
    return count > 0 and count & (count - 1) == 0
