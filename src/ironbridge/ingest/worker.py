"""The ingest worker: raw device messages in, validated columnar points committed out.

Per batch: fetch from the durable consumer, decode and validate every message,
dead-letter the rejects (with their reason), commit the accepted points together with
the highest stream sequence of the batch (one store transaction), publish the
normalised batch for rules and live views, then acknowledge. A message at or below the
committed sequence was already applied before a crash or restart: it is acknowledged
without being stored again, so redelivery never doubles a point.

The normalised batches are published after the commit, so a crash between the two
would leave the rules without a batch the store holds. The worker therefore records
how far batches were published (checkpoint ``<consumer>/published``) in the next
commit's transaction, or on its own when the stream goes idle or the worker stops:
after a restart the consumer resumes at that mark (:func:`resume_after`), and the
messages between it and the applied sequence are decoded again and their batch
published again, not stored again. The batch keeps its message ids, so when it had in
fact got out (the crash came after the publish), JetStream's duplicate window drops
the copy.
"""

from __future__ import annotations

import asyncio
import io
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ironbridge.codec import decode_telemetry
from ironbridge.ingest.batch import Item, to_points_many
from ironbridge.ingest.events import to_events
from ironbridge.ingest.ports import InboundMessage, MessageSource, Publisher
from ironbridge.ingest.routes import RouteCache
from ironbridge.ingest.validate import to_points
from ironbridge.model import Event, InvalidInput, TransientError, now_us
from ironbridge.store import Checkpoint, PointBatch, TelemetryStore

_LOGGER = logging.getLogger(__name__)

#: subject prefix of normalised point batches (Arrow IPC: series, ts, value)
NORMALISED_SUBJECT = "ib.norm.points"
#: subject prefix of dead letters: ``ib.dead.<device-id>``
DEAD_LETTER_PREFIX = "ib.dead"
#: NATS' default max payload is 1 MiB; keep each normalised message well below it.
_NORM_CHUNK_POINTS = 30_000
#: how long a publish is retried through transient bus errors before the worker gives up
#: (the batch stays unacknowledged, so giving up loses nothing: it is redelivered)
_PUBLISH_RETRY_S = 120.0
#: consecutive failed fetches retried before the worker gives up its consumer
_FETCH_RETRIES = 6
#: suffix of the checkpoint that records how far normalised batches were published
PUBLISHED_MARK = "/published"


def published_mark(consumer: str) -> str:
    """Return the name of ``consumer``'s published-through checkpoint."""
    return consumer + PUBLISHED_MARK


def resume_after(store: TelemetryStore, consumer: str) -> tuple[int, int]:
    """Return (applied, published): where ``consumer`` stands in its stream.

    The consumer should deliver from ``published + 1``: messages up to ``applied``
    are committed but their normalised batch may not have been published. A store
    without a mark (written before marks existed) counts as published up to applied.
    """
    applied = store.checkpoint(consumer)
    published = store.checkpoint(published_mark(consumer))
    if published == 0 or published > applied:
        published = applied
    return applied, published


def device_of(subject: str) -> str:
    """Return the device id of a ``ib.v1.<device>.<kind>`` subject (``""`` if malformed)."""
    parts = subject.split(".")
    return parts[2] if len(parts) >= 4 and parts[0] == "ib" and parts[1] == "v1" else ""


def received_us(msg: InboundMessage) -> int:
    """When the platform received a message: the HTTP endpoint's stamp, else the stream's."""
    headers = msg.headers
    stamp = headers.get("Ib-Received-Us") if headers else None
    return int(stamp) if stamp and stamp.isdigit() else msg.timestamp_us


@dataclass(slots=True)
class IngestStats:
    """Counters of one worker, for the terminal, metrics and the API."""

    messages: int = 0
    points: int = 0
    rejected: int = 0
    skipped_redelivered: int = 0
    #: normalised batches published again after a restart (committed, not published)
    republished: int = 0
    events: int = 0
    batches: int = 0
    #: publishes retried after a transient bus error (dead letters, normalised batches)
    publish_retries: int = 0
    #: fetches that failed with a transient bus error and were asked again
    fetch_retries: int = 0
    last_commit_s: float = 0.0
    _window: list[tuple[float, int]] = field(default_factory=list)

    def record(self, points: int) -> None:
        """Note a commit of ``points`` points (for the rate)."""
        t = time.monotonic()
        self._window.append((t, self.points))
        while self._window and self._window[0][0] < t - 5.0:
            self._window.pop(0)

    def rate(self) -> float:
        """Points per second over the last few seconds (0 once commits stop for 5 s)."""
        if len(self._window) < 2 or time.monotonic() - self._window[-1][0] > 5.0:
            return 0.0
        (t0, p0), (t1, p1) = self._window[0], self._window[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0


#: Arrow IPC with LZ4-compressed buffers: series ids and timestamps come in runs and
#: steps, so a batch shrinks about 4x (measured: 0.02 s of CPU per million points to
#: compress). JetStream then stores and replicates far fewer bytes.
_IPC_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


def batch_to_ipc(batch: PointBatch) -> bytes:
    """Serialise a point batch as an Arrow IPC stream (series, ts, value), LZ4 buffers.

    Any Arrow reader reads it (:func:`ipc_to_batch`, ``pyarrow.ipc.open_stream``).
    """
    table = pa.table(
        {
            "series": pa.array(batch.series, pa.int64()),
            "ts": pa.array(batch.ts, pa.int64()),
            "value": pa.array(batch.value, pa.float64()),
        }
    )
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC_OPTIONS) as writer:
        writer.write_table(table)
    return sink.getvalue()


def ipc_to_batch(payload: bytes) -> PointBatch:
    """Inverse of :func:`batch_to_ipc`."""
    table = pa.ipc.open_stream(payload).read_all()
    return PointBatch(
        table["series"].to_numpy().astype(np.int64, copy=False),
        table["ts"].to_numpy().astype(np.int64, copy=False),
        table["value"].to_numpy().astype(np.float64, copy=False),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why one message was dead-lettered."""

    message: InboundMessage
    device_id: str
    field: str
    reason: str


class IngestWorker:
    """Consumes raw telemetry and commits it to the telemetry store exactly once."""

    def __init__(
        self,
        *,
        source: MessageSource,
        publisher: Publisher,
        store: TelemetryStore,
        routes: RouteCache,
        consumer: str = "ingest",
        fetch_batch: int = 2000,
        fetch_timeout_s: float = 0.25,
        publish_normalised: bool = True,
        normalised_subject: str = NORMALISED_SUBJECT,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._source = source
        self._publisher = publisher
        self._store = store
        self._routes = routes
        self._consumer = consumer
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout_s
        self._publish_normalised = publish_normalised
        self._normalised_subject = normalised_subject
        self._clock = clock
        # DuckDB is single-writer: every append runs on this one thread.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-store-writer")
        self._applied = -1
        #: highest sequence whose normalised batch is published
        self._published = -1
        #: the published mark as the store holds it
        self._marked = -1
        #: points of committed-but-unpublished messages read again after a restart
        self._replay: list[PointBatch] = []
        self.stats = IngestStats()

    async def _load_position(self) -> None:
        loop = asyncio.get_running_loop()
        self._applied, self._published = await loop.run_in_executor(
            self._writer, resume_after, self._store, self._consumer
        )
        if not self._publish_normalised:
            self._published = self._applied
        # the store's own value (0 when missing): the first commit then writes the mark
        self._marked = await loop.run_in_executor(
            self._writer, self._store.checkpoint, published_mark(self._consumer)
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until ``stop`` is set, then finish the batch in hand."""
        await self._load_position()
        _LOGGER.info("ingest worker %s starting after sequence %s", self._consumer, self._applied)
        if self._published < self._applied:
            _LOGGER.warning(
                "ingest worker %s: normalised batch of sequences %d-%d not published before"
                " the last stop; publishing it again",
                self._consumer,
                self._published + 1,
                self._applied,
            )
        pending: asyncio.Task[None] | None = None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    msgs = await self._source.fetch(self._fetch_batch, self._fetch_timeout)
                except TransientError as exc:
                    # The bus is slow or reconnecting: nothing was taken, so ask again. A
                    # consumer that stays unavailable (its stream leader died) is left to
                    # the owner, which recreates it at the checkpoint.
                    failures += 1
                    if failures > _FETCH_RETRIES:
                        raise
                    _LOGGER.warning("fetch failed, retrying: %s", exc)
                    self.stats.fetch_retries += 1
                    await asyncio.sleep(0.5)
                    continue
                failures = 0
                if not msgs:
                    # idle: record how far batches are published (a commit would carry it)
                    if pending is not None:
                        await pending
                        pending = None
                    await self._mark_published()
                    continue
                prepared = await self._prepare(msgs)
                # One commit in flight at a time: decode the next batch while the store
                # writes this one; commits stay in sequence order on the writer thread.
                if pending is not None:
                    await pending
                pending = asyncio.create_task(self._commit(*prepared), name="ingest-commit")
            if pending is not None:
                await pending
            await self._mark_published()
        finally:
            self._writer.shutdown(wait=True)

    async def process(self, msgs: Sequence[InboundMessage]) -> None:
        """Process one batch to the end (validate, commit, publish, ack)."""
        if self._applied < 0:
            await self._load_position()
        await self._commit(*(await self._prepare(msgs)))

    async def _prepare(
        self, msgs: Sequence[InboundMessage]
    ) -> tuple[Sequence[InboundMessage], PointBatch, list[Rejection], int, list[Event]]:
        now = self._clock()
        events: list[Event] = []
        rejections: list[Rejection] = []
        items: list[Item] = []
        sources: list[tuple[InboundMessage, str]] = []
        max_seq = 0
        for msg in msgs:
            seq = msg.stream_seq
            if seq <= self._applied:
                if seq > self._published:
                    await self._replay_message(msg, now)
                else:
                    self.stats.skipped_redelivered += 1
                continue
            max_seq = max(max_seq, seq)
            device_id = device_of(msg.subject)
            route = await self._routes.aget(device_id) if device_id else None
            if route is None:
                rejections.append(
                    Rejection(
                        message=msg,
                        device_id=device_id or "unknown",
                        field="device",
                        reason=f"unknown device {device_id!r}",
                    )
                )
                continue
            try:
                if msg.subject.endswith(".events"):
                    events.extend(to_events(msg.data, route, received_us(msg), now))
                    continue
                items.append((decode_telemetry(msg.data), route, received_us(msg)))
            except InvalidInput as exc:
                rejections.append(
                    Rejection(message=msg, device_id=device_id, field=exc.field, reason=exc.reason)
                )
                continue
            sources.append((msg, device_id))
        # every message's samples validated together (one numpy pass per measurement set)
        batch, errors = to_points_many(items, now)
        for i, error in errors.items():
            msg, device_id = sources[i]
            rejections.append(
                Rejection(message=msg, device_id=device_id, field=error.field, reason=error.reason)
            )
        rejections.sort(key=lambda r: r.message.stream_seq)
        return msgs, batch, rejections, max_seq, events

    async def _replay_message(self, msg: InboundMessage, now: int) -> None:
        """Decode a committed message whose normalised batch was not published."""
        device_id = device_of(msg.subject)
        route = await self._routes.aget(device_id) if device_id else None
        if route is None or msg.subject.endswith(".events"):
            return  # dead-lettered before the commit; events are not in the batch
        try:
            points = to_points(decode_telemetry(msg.data), route, received_us(msg), now)
        except InvalidInput:
            return  # dead-lettered before the commit
        self._replay.append(points)

    async def _republish(self, msgs: Sequence[InboundMessage]) -> None:
        """Publish the batch of the committed-but-unpublished range once it is all read."""
        if not any(m.stream_seq >= self._applied for m in msgs):
            return  # the range ends at the applied sequence: not all read yet
        batch = PointBatch.concat(self._replay)
        self._replay = []
        if len(batch):
            await self._publish_batch(batch, self._applied)
        self._published = self._applied
        self.stats.republished += 1

    async def _commit(
        self,
        msgs: Sequence[InboundMessage],
        batch: PointBatch,
        rejections: list[Rejection],
        max_seq: int,
        events: Sequence[Event] = (),
    ) -> None:
        # Dead letters first: once the checkpoint passes their sequence they would not
        # be seen again. Their msg id makes a republish after a crash a no-op.
        for r in rejections:
            await self._publish(
                f"{DEAD_LETTER_PREFIX}.{r.device_id}",
                r.message.data,
                headers={
                    "Ib-Field": r.field,
                    "Ib-Reason": r.reason,
                    "Ib-Subject": r.message.subject,
                    "Ib-Seq": str(r.message.stream_seq),
                    "Ib-Received-Us": str(received_us(r.message)),
                },
                msg_id=f"dl-{r.message.stream_seq}",
            )
        if self._published < self._applied:
            await self._republish(msgs)
        if max_seq > self._applied:
            started = time.perf_counter()
            loop = asyncio.get_running_loop()
            marks = [Checkpoint(consumer=self._consumer, seq=max_seq)]
            marked = self._published
            if marked > self._marked:
                # the earlier batches' publish finished before this commit began
                marks.append(Checkpoint(consumer=published_mark(self._consumer), seq=marked))
            await loop.run_in_executor(
                self._writer, lambda: self._store.append(batch, events, marks)
            )
            self._marked = max(self._marked, marked)
            self.stats.last_commit_s = time.perf_counter() - started
            self._applied = max_seq
            self.stats.batches += 1
            self.stats.points += len(batch)
            self.stats.events += len(events)
            self.stats.messages += len(msgs)
            self.stats.rejected += len(rejections)
            self.stats.record(len(batch))
            if self._publish_normalised and len(batch):
                await self._publish_batch(batch, max_seq)
            self._published = max_seq
        await self._source.ack_all(msgs)

    async def _mark_published(self) -> None:
        """Record how far batches are published, if the store's mark is behind.

        A transaction of its own (about 4 ms of DuckDB CPU), so it is written only when
        no commit follows to carry it: when the stream is idle and when the worker stops.
        """
        seq = self._published
        if seq <= self._marked or not self._publish_normalised:
            return
        mark = Checkpoint(consumer=published_mark(self._consumer), seq=seq)
        empty = PointBatch.empty()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, lambda: self._store.append(empty, (), mark))
        self._marked = seq

    async def _publish_batch(self, batch: PointBatch, max_seq: int) -> None:
        n = len(batch)
        for i, start in enumerate(range(0, n, _NORM_CHUNK_POINTS)):
            end = min(n, start + _NORM_CHUNK_POINTS)
            chunk = PointBatch(batch.series[start:end], batch.ts[start:end], batch.value[start:end])
            await self._publish(
                self._normalised_subject, batch_to_ipc(chunk), msg_id=f"norm-{max_seq}-{i}"
            )

    async def _publish(
        self, subject: str, data: bytes, *, msg_id: str, headers: dict[str, str] | None = None
    ) -> None:
        """Publish, retrying transient bus errors (a slow or restarting JetStream).

        A timeout under load must not stop the pipeline; the msg id makes a retry after
        a publish that did land a no-op. Gives up after ``_PUBLISH_RETRY_S``.
        """
        delay = 0.05
        deadline = time.monotonic() + _PUBLISH_RETRY_S
        failing = False
        while True:
            try:
                await self._publisher.publish(subject, data, headers=headers, msg_id=msg_id)
            except TransientError as exc:
                if time.monotonic() >= deadline:
                    raise
                if not failing:
                    _LOGGER.warning("publish to %s failing, retrying: %s", subject, exc)
                    failing = True
                self.stats.publish_retries += 1
                await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter
                delay = min(delay * 2, 2.0)
                continue
            if failing:
                _LOGGER.info("publish to %s recovered", subject)
            return
