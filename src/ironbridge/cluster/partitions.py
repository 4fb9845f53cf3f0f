"""Partitioning of the raw stream between ingest workers, and the leases that assign it.

The exactly-once design commits "highest stream sequence applied" per consumer, which
is only correct for a single reader per consumer. To scale out, ``IB_RAW`` stores every
message under a partition token computed by the server from the device id
(``ib.v1.<dev>.<kind>`` is stored as ``ib.v1.<dev>.<p>.<kind>``, a JetStream stream
subject transform with ``{{partition(P,1)}}``). Partition ``p`` has its own durable
consumer and checkpoint (``ingest-p<p>``); a worker reads a partition only while it
holds that partition's lease, a key in a JetStream key-value bucket that expires when
not renewed. A device always lands in the same partition, so its points keep their
order and two workers never write the same series.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    StorageType,
    SubjectTransform,
)
from nats.js.kv import KeyValue

from ironbridge.bus import STREAM_RAW, Bus, PullConsumer
from ironbridge.model import IronbridgeError, PermanentError, TransientError

_LOGGER = logging.getLogger(__name__)

#: the raw subjects the transform applies to (``ib.v1.<device>.<kind>``)
PARTITION_SOURCE = "ib.v1.*.*"
#: key-value bucket of partition leases and worker heartbeats
LEASE_BUCKET = "ib_ingest_leases"
#: the same for rules workers (their own bucket: a process may run both roles)
RULES_LEASE_BUCKET = "ib_rules_leases"
#: subject prefix of normalised batches in cluster mode: ``ib.norm.points.<partition>``
NORM_PARTITION_PREFIX = "ib.norm.points"


def partition_dest(partitions: int) -> str:
    """Return the transform's destination: the partition token before the kind."""
    return f"ib.v1.{{{{wildcard(1)}}}}.{{{{partition({int(partitions)},1)}}}}.{{{{wildcard(2)}}}}"


def partition_filter(partition: int) -> str:
    """Return the filter subject of one partition (telemetry and events)."""
    return f"ib.v1.*.{int(partition)}.*"


def partition_consumer(partition: int) -> str:
    """Return the durable consumer name (and checkpoint name) of one partition."""
    return f"ingest-p{int(partition)}"


def norm_subject(partition: int) -> str:
    """Return the subject the ingest of one partition publishes normalised batches on.

    The rules worker holding the same partition reads it: a device (and so its
    assets) lands in one partition, so one rules worker sees all of an asset's points.
    """
    return f"{NORM_PARTITION_PREFIX}.{int(partition)}"


def events_filter(partition: int) -> str:
    """Return the filter of one partition's device events in ``IB_RAW``."""
    return f"ib.v1.*.{int(partition)}.events"


def rules_consumer(partition: int) -> str:
    """Return the consumer name (and engine-state key) of one rules partition."""
    return f"rules-p{int(partition)}"


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    try:
        yield
    except IronbridgeError:
        raise
    except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError) as exc:
        raise TransientError(f"{what}: {exc!r}") from exc
    except nats.errors.Error as exc:
        raise PermanentError(f"{what}: {exc!r}") from exc


async def ensure_partitioned_stream(js: JetStreamContext, partitions: int) -> None:
    """Give ``IB_RAW`` the partitioning subject transform (idempotent).

    Messages stored before the transform keep their 4-token subjects and match no
    partition filter: switch a stream to partitions while it is empty (a new cluster).

    Raises:
        PermanentError: the stream is already partitioned with another count.
    """
    if partitions < 1:
        raise PermanentError("ingest.partitions must be at least 1")
    want = partition_dest(partitions)
    with _mapped("partition IB_RAW"):
        info = await js.stream_info(STREAM_RAW)
        cfg = info.config
        have = cfg.subject_transform
        if have is not None and have.src == PARTITION_SOURCE and have.dest == want:
            return
        if have is not None and have.dest != want:
            raise PermanentError(
                f"IB_RAW is partitioned as {have.dest!r}; cannot change to {partitions} partitions"
            )
        cfg.subject_transform = SubjectTransform(src=PARTITION_SOURCE, dest=want)
        await js.update_stream(cfg)
    _LOGGER.info("IB_RAW partitioned into %d partitions", partitions)


@dataclass(slots=True)
class Lease:
    """A partition this worker holds, with the revision to renew it from."""

    partition: int
    revision: int


class LeaseTable:
    """Partition leases and worker heartbeats in one JetStream key-value bucket.

    Keys ``p<k>`` hold the owning worker's id; keys ``w.<id>`` are heartbeats. Every
    entry expires ``ttl_s`` after its last write, so a dead worker's leases free
    themselves and a live one renews them with a compare-and-set on the revision.
    """

    def __init__(
        self,
        js: JetStreamContext,
        worker_id: str,
        *,
        ttl_s: float,
        replicas: int = 1,
        bucket: str = LEASE_BUCKET,
    ) -> None:
        """Bind to the bucket (created by :meth:`open`)."""
        self._js = js
        self._bucket = bucket
        self.worker_id = worker_id
        self._ttl = float(ttl_s)
        self._replicas = int(replicas)
        self._kv: KeyValue | None = None

    async def open(self) -> None:
        """Create the bucket if missing and bind to it."""
        with _mapped("lease bucket"):
            try:
                self._kv = await self._js.key_value(self._bucket)
            except nats.js.errors.BucketNotFoundError:
                self._kv = await self._js.create_key_value(
                    KeyValueConfig(
                        bucket=self._bucket,
                        history=1,
                        ttl=self._ttl,
                        storage=StorageType.FILE,
                        replicas=self._replicas,
                    )
                )

    @property
    def kv(self) -> KeyValue:
        """The bound bucket."""
        if self._kv is None:
            raise PermanentError("lease table is not open")
        return self._kv

    async def heartbeat(self) -> None:
        """Tell the others this worker is alive."""
        with _mapped("heartbeat"):
            await self.kv.put(f"w.{self.worker_id}", b"1")

    async def leave(self) -> None:
        """Remove this worker's heartbeat (a clean exit)."""
        with contextlib.suppress(IronbridgeError), _mapped("leave"):
            await self.kv.delete(f"w.{self.worker_id}")

    async def snapshot(self) -> tuple[int, dict[int, str]]:
        """Return (number of live workers, partition -> owner)."""
        with _mapped("lease snapshot"):
            try:
                keys = await self.kv.keys()
            except nats.js.errors.NoKeysError:
                keys = []
            workers = sum(1 for k in keys if k.startswith("w."))
            owners: dict[int, str] = {}
            for key in keys:
                if key.startswith("p") and key[1:].isdigit():
                    with contextlib.suppress(nats.js.errors.KeyNotFoundError):
                        entry = await self.kv.get(key)
                        if entry.value:
                            owners[int(key[1:])] = entry.value.decode()
        return max(workers, 1), owners

    async def claim(self, partition: int) -> Lease | None:
        """Take a free partition; ``None`` if another worker holds it."""
        with _mapped("claim"):
            try:
                rev = await self.kv.create(f"p{partition}", self.worker_id.encode())
            except nats.js.errors.KeyWrongLastSequenceError:
                # Ours already when an earlier claim timed out after it was applied.
                own = await self._own_revision(partition)
                return None if own is None else Lease(partition=partition, revision=own)
        return Lease(partition=partition, revision=rev)

    async def renew(self, lease: Lease) -> bool:
        """Extend a lease; False if it was lost (expired and taken, or deleted)."""
        with _mapped("renew"):
            try:
                lease.revision = await self.kv.update(
                    f"p{lease.partition}", self.worker_id.encode(), last=lease.revision
                )
            except nats.js.errors.KeyNotFoundError:
                return False
            except nats.js.errors.KeyWrongLastSequenceError:
                # A renewal that timed out during a stream leader election may still have
                # been applied: the lease is then ours at a newer revision, not lost.
                own = await self._own_revision(lease.partition)
                if own is None:
                    return False
                lease.revision = own
        return True

    async def _own_revision(self, partition: int) -> int | None:
        """Return the revision of partition ``partition``'s lease if this worker holds it."""
        try:
            entry = await self.kv.get(f"p{partition}")
        except nats.js.errors.KeyNotFoundError:
            return None
        if entry.value != self.worker_id.encode() or entry.revision is None:
            return None
        return int(entry.revision)

    @contextlib.asynccontextmanager
    async def kept(self, lease: Lease) -> AsyncIterator[Lease]:
        """Renew ``lease`` every TTL/3 while the body runs.

        Starting a partition (reading its checkpoint, creating its consumer while the
        stream elects a leader) can take longer than the TTL; the renewal loop only sees
        partitions once they run, so without this a slow start lets its own lease lapse.
        """

        async def renew() -> None:
            while True:
                await asyncio.sleep(self._ttl / 3)
                with contextlib.suppress(IronbridgeError):
                    if not await self.renew(lease):
                        return

        task = asyncio.create_task(renew(), name=f"lease-p{lease.partition}-start")
        try:
            yield lease
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def release(self, lease: Lease) -> None:
        """Give a partition up (only if still ours)."""
        ours = contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError)
        with contextlib.suppress(IronbridgeError), _mapped("release"), ours:
            await self.kv.delete(f"p{lease.partition}", last=lease.revision)


async def partition_pull_consumer(
    bus: Bus, partition: int, *, start_seq: int, max_ack_pending: int
) -> PullConsumer:
    """Create a fresh consumer for partition ``partition`` that delivers from ``start_seq``.

    Every claim gets a consumer of its own name (``ingest-p<k>-<random>``) and deletes
    the partition's earlier ones: a previous owner that lost its lease but still has a
    fetch in flight then pulls from a consumer that no longer exists, instead of taking
    messages from the new owner's consumer (which would leave a gap the new owner's
    checkpoint later skips). Consumers are single-replica and in memory: their state is
    worth nothing (the store's checkpoint is the truth), and such a consumer is created
    in milliseconds where a replicated one needs a Raft election. An abandoned one is
    removed by the server after ``inactive_threshold``.
    """
    return await fresh_pull_consumer(
        bus,
        STREAM_RAW,
        partition_consumer(partition),
        partition_filter(partition),
        start_seq=start_seq,
        max_ack_pending=max_ack_pending,
        cumulative_ack=True,
    )


async def fresh_pull_consumer(
    bus: Bus,
    stream: str,
    base: str,
    filter_subject: str,
    *,
    start_seq: int,
    max_ack_pending: int,
    cumulative_ack: bool = False,
) -> PullConsumer:
    """Create consumer ``<base>-<random>`` of ``stream`` from ``start_seq``; delete older ones.

    See :func:`partition_pull_consumer` for why every claim gets a consumer of its own.
    ``cumulative_ack``: one ack covers every message delivered before it (AckAll), for
    a consumer that finishes its messages in order; a batch is then acked by one ack.
    """
    name = f"{base}-{secrets.token_hex(4)}"
    js = bus.client.jetstream()
    config = ConsumerConfig(
        durable_name=name,
        ack_policy=AckPolicy.ALL if cumulative_ack else AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=max(1, int(start_seq)),
        ack_wait=30.0,
        max_ack_pending=max_ack_pending,
        filter_subject=filter_subject,
        num_replicas=1,
        mem_storage=True,
        inactive_threshold=120.0,
    )
    with _mapped(f"consumer {stream}/{name}"):
        for info in await js.consumers_info(stream):
            old = info.name or ""
            if old == base or old.startswith(base + "-"):
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await js.delete_consumer(stream, old)
        await js.add_consumer(stream, config)
        sub = await js.pull_subscribe_bind(
            durable=name, stream=stream, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
    return PullConsumer(bus, stream, name, sub, cumulative_ack=cumulative_ack)
