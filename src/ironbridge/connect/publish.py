"""Batching of connector samples into columnar telemetry messages on the backbone.

A connector hands every value it reads to a :class:`SampleBatcher`; the batcher groups
them per (device, asset) and publishes one columnar telemetry JSON message
(``{"ts": [...], "values": {...}, "asset": ...}``) per group to
``ib.v1.<device-id>.telemetry`` -- the same path MQTT devices use -- so ingest
validates and stores connector data like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from ironbridge.model import IronbridgeError, now_us

_LOGGER = logging.getLogger(__name__)


class Publisher(Protocol):
    """Publishes to a JetStream stream and waits for its acknowledgement (``Bus``)."""

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Publish and return the stream sequence assigned to the message."""
        ...


@dataclass(slots=True)
class _Group:
    ts: list[int] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass(slots=True)
class PublishStats:
    """Counters of a batcher.

    Attributes:
        samples: values accepted by :meth:`SampleBatcher.add`.
        published: values published and acknowledged by JetStream.
        messages: messages published.
        dropped: values dropped because the buffer was full while the bus was away.
        failures: failed publish attempts.
    """

    samples: int = 0
    published: int = 0
    messages: int = 0
    dropped: int = 0
    failures: int = 0


def columnar_payload(
    ts: list[int], names: list[str], values: list[float], asset: str | None
) -> bytes:
    """Encode samples ``(ts_ms, measurement, value)`` as one columnar telemetry batch.

    Rows are the distinct timestamps in order; a measurement without a value at a row
    holds ``null`` (ingest skips it).
    """
    rows = sorted(set(ts))
    index = {t: i for i, t in enumerate(rows)}
    columns: dict[str, list[float | None]] = {}
    for t, name, value in zip(ts, names, values, strict=True):
        col = columns.get(name)
        if col is None:
            col = columns[name] = [None] * len(rows)
        col[index[t]] = value
    doc: dict[str, object] = {"ts": rows, "values": columns}
    if asset is not None:
        doc["asset"] = asset
    return orjson.dumps(doc)


class SampleBatcher:
    """Collects samples and publishes them in batches.

    Args:
        publisher: the bus.
        max_samples: publish as soon as this many samples wait.
        max_buffer: most samples kept while the bus is unreachable (oldest dropped).
    """

    def __init__(
        self, publisher: Publisher, *, max_samples: int = 5_000, max_buffer: int = 1_000_000
    ) -> None:
        self._publisher = publisher
        self._groups: dict[tuple[str, str | None], _Group] = {}
        self._pending = 0
        self.max_samples = max_samples
        self.max_buffer = max_buffer
        self.stats = PublishStats()
        self.full = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        """Samples waiting to be published."""
        return self._pending

    def add(
        self, device: str, asset: str | None, measurement: str, ts_ms: int, value: float
    ) -> None:
        """Queue one sample (never blocks; sets :attr:`full` when a batch is ready)."""
        group = self._groups.get((device, asset))
        if group is None:
            group = self._groups[(device, asset)] = _Group()
        group.ts.append(ts_ms)
        group.names.append(measurement)
        group.values.append(value)
        self._pending += 1
        self.stats.samples += 1
        if self._pending >= self.max_samples:
            self.full.set()

    async def flush(self) -> int:
        """Publish everything queued; return the samples published.

        A group whose publish fails stays queued (bounded by ``max_buffer``).

        Raises:
            IronbridgeError: the bus refused or timed out (after re-queueing).
        """
        async with self._lock:
            self.full.clear()
            groups, self._groups, self._pending = self._groups, {}, 0
            done = 0
            error: IronbridgeError | None = None
            for (device, asset), group in groups.items():
                if error is None:
                    payload = columnar_payload(group.ts, group.names, group.values, asset)
                    try:
                        await self._publisher.publish(
                            f"ib.v1.{device}.telemetry",
                            payload,
                            headers={"Ib-Received-Us": str(now_us())},
                        )
                    except IronbridgeError as exc:
                        error = exc
                        self.stats.failures += 1
                    else:
                        done += len(group.ts)
                        self.stats.published += len(group.ts)
                        self.stats.messages += 1
                        continue
                self._requeue(device, asset, group)
            if error is not None:
                raise error
            return done

    def _requeue(self, device: str, asset: str | None, group: _Group) -> None:
        room = self.max_buffer - self._pending
        if room <= 0:
            self.stats.dropped += len(group.ts)
            return
        if len(group.ts) > room:
            cut = len(group.ts) - room
            self.stats.dropped += cut
            group = _Group(group.ts[cut:], group.names[cut:], group.values[cut:])
        current = self._groups.setdefault((device, asset), _Group())
        current.ts[:0] = group.ts
        current.names[:0] = group.names
        current.values[:0] = group.values
        self._pending += len(group.ts)

    async def run(self, stop: asyncio.Event, interval_s: float = 0.5) -> None:
        """Flush every ``interval_s`` (or as soon as a batch is full) until ``stop``."""
        while not stop.is_set():
            waiter = asyncio.ensure_future(self.full.wait())
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {waiter, stopper}, timeout=interval_s, return_when="FIRST_COMPLETED"
                )
            finally:
                waiter.cancel()
                stopper.cancel()
            if self._pending:
                try:
                    await self.flush()
                except IronbridgeError as exc:
                    _LOGGER.debug("connector publish failed, kept for retry: %s", exc)
                    await asyncio.sleep(min(interval_s, 1.0))
        if self._pending:
            try:
                await self.flush()
            except IronbridgeError as exc:
                _LOGGER.warning(
                    "connector stopped with %d unpublished samples: %s", self._pending, exc
                )


__all__ = ["PublishStats", "Publisher", "SampleBatcher", "columnar_payload"]
