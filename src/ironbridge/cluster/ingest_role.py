"""``ironbridge worker ingest``: a process that ingests the partitions it holds leases on.

Any number of these run against one NATS cluster and one PostgreSQL. Each keeps about
``ceil(partitions / live workers)`` partitions: it claims free ones, sheds extras when
workers join, and takes over a dead worker's partitions when their leases expire,
restarting each from its committed checkpoint (so nothing is lost or doubled).
Shutdown is graceful: every partition finishes the batch in hand (commit, ack), its
lease is released for the others at once, then the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ironbridge.bus import Bus, PullConsumer
from ironbridge.cluster.health import HealthServer, render_metrics
from ironbridge.cluster.partitions import (
    Lease,
    LeaseTable,
    ensure_partitioned_stream,
    norm_subject,
    partition_consumer,
    partition_pull_consumer,
)
from ironbridge.cluster.stores import ensure_streams_patiently, open_telemetry_store
from ironbridge.cluster.supervisor import PartitionSupervisor
from ironbridge.ingest import (
    IngestWorker,
    RouteCache,
    batch_to_ipc,
    platform_routes,
    resume_after,
)
from ironbridge.model import IronbridgeError
from ironbridge.predict.service import PREDICTION_MEASUREMENTS
from ironbridge.settings import Settings
from ironbridge.store import PointBatch, TelemetryStore
from ironbridge.store.sql import SqlRegistry

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Running:
    lease: Lease
    worker: IngestWorker
    consumer: PullConsumer
    stop: asyncio.Event
    task: asyncio.Task[None]


@dataclass(slots=True)
class _Totals:
    points: int = 0
    messages: int = 0
    rejected: int = 0
    batches: int = 0
    takeovers: int = 0
    commit_s: dict[int, float] = field(default_factory=dict)


def default_worker_id() -> str:
    """Return ``<host>-<pid>``: unique per process, readable in the lease bucket."""
    return f"{socket.gethostname()}-{os.getpid()}".replace(".", "-")


class IngestRole(PartitionSupervisor):
    """The partition supervisor of one ingest worker process."""

    kind = "ingest"

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: TelemetryStore,
        routes: RouteCache,
        worker_id: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wire the role; :meth:`run` does the work."""
        self._s = settings
        self._bus = bus
        self._store = store
        self._routes = routes
        self.worker_id = worker_id
        self._clock = clock
        ing = settings.ingest
        ttl = float(ing.lease_ttl_s)
        super().__init__(
            LeaseTable(
                bus.client.jetstream(), worker_id, ttl_s=ttl, replicas=settings.nats.replicas
            ),
            ttl,
            int(ing.partitions),
        )
        self.running: dict[int, _Running] = {}
        self.totals = _Totals()

    async def _prepare(self) -> None:
        await ensure_partitioned_stream(self._bus.client.jetstream(), self._partitions)
        # pyarrow imports pandas on its first array (about 1.3 s here): pay it before
        # the worker says it is ready, not in the first batch it publishes.
        await asyncio.to_thread(batch_to_ipc, PointBatch.empty())

    async def _start(self, lease: Lease) -> None:
        k = lease.partition
        name = partition_consumer(k)
        ing = self._s.ingest
        try:
            applied, published = await asyncio.to_thread(resume_after, self._store, name)
            consumer = await partition_pull_consumer(
                self._bus, k, start_seq=published + 1, max_ack_pending=ing.max_ack_pending
            )
        except IronbridgeError:
            await self.leases.release(lease)
            raise
        worker = IngestWorker(
            source=consumer,
            publisher=self._bus,
            store=self._store,
            routes=self._routes,
            consumer=name,
            fetch_batch=ing.fetch_batch,
            fetch_timeout_s=ing.fetch_timeout_s,
            normalised_subject=norm_subject(k),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop), name=f"ingest-p{k}")
        self.running[k] = _Running(lease, worker, consumer, stop, task)
        self.totals.takeovers += 1
        _LOGGER.info("partition %d claimed by %s after sequence %d", k, self.worker_id, applied)

    async def _drop(self, k: int) -> None:
        await self._retire(k, release=False)

    async def _retire(self, k: int, *, release: bool = True) -> None:
        r = self.running.pop(k, None)
        if r is None:  # retired concurrently (renewal lost it while a round shed it)
            return
        r.stop.set()
        # drain: the worker finishes the batch in hand (commit, ack) before returning
        await asyncio.gather(r.task, return_exceptions=True)
        st = r.worker.stats
        self.totals.points += st.points
        self.totals.messages += st.messages
        self.totals.rejected += st.rejected
        self.totals.batches += st.batches
        with contextlib.suppress(IronbridgeError):
            await r.consumer.close()
        if release:
            await self.leases.release(r.lease)

    # -- observability -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Totals over the partitions held now and before."""
        t = self.totals
        live = [r.worker.stats for r in self.running.values()]
        return {
            "worker_id": self.worker_id,
            "partitions": sorted(self.running),
            "points": t.points + sum(s.points for s in live),
            "messages": t.messages + sum(s.messages for s in live),
            "rejected": t.rejected + sum(s.rejected for s in live),
            "batches": t.batches + sum(s.batches for s in live),
            "points_per_s": sum(s.rate() for s in live),
        }

    async def metrics(self) -> str:
        """Prometheus text: ingest rate and totals, lag per consumer, store latency."""
        st = self.stats()
        samples: list[tuple[str, str, str, dict[str, str], float]] = [
            ("ib_ingest_points_total", "counter", "points committed", {}, st["points"]),
            ("ib_ingest_messages_total", "counter", "messages processed", {}, st["messages"]),
            (
                "ib_ingest_dead_letters_total",
                "counter",
                "messages dead-lettered",
                {},
                st["rejected"],
            ),
            ("ib_ingest_batches_total", "counter", "store commits", {}, st["batches"]),
            ("ib_ingest_points_per_second", "gauge", "recent ingest rate", {}, st["points_per_s"]),
            (
                "ib_ingest_partitions_owned",
                "gauge",
                "partitions held",
                {},
                len(st["partitions"]),
            ),
            (
                "ib_ingest_partition_restarts_total",
                "counter",
                "partitions stopped by store errors",
                {},
                self.restarts,
            ),
        ]
        for k, r in sorted(self.running.items()):
            labels = {"consumer": partition_consumer(k)}
            samples.append(
                (
                    "ib_store_commit_seconds",
                    "gauge",
                    "duration of the last store commit",
                    labels,
                    r.worker.stats.last_commit_s,
                )
            )
            with contextlib.suppress(IronbridgeError):
                info = await r.consumer.info()
                samples.append(
                    (
                        "ib_ingest_consumer_pending",
                        "gauge",
                        "messages not yet delivered (lag)",
                        labels,
                        info.num_pending,
                    )
                )
                samples.append(
                    (
                        "ib_ingest_consumer_ack_pending",
                        "gauge",
                        "messages delivered, not yet acked",
                        labels,
                        info.num_ack_pending,
                    )
                )
        return render_metrics(samples)


async def run_ingest_worker(
    settings: Settings, stop: asyncio.Event, worker_id: str | None = None
) -> None:
    """Run one ingest worker process until ``stop`` is set (SIGTERM/Ctrl-C)."""
    s = settings
    wid = worker_id or s.ingest.worker_id or default_worker_id()
    data = s.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        registry = SqlRegistry.open(s.registry_database_url)
        stack.callback(registry.close)
        # one connection per partition this worker may hold, plus the checkpoint reads
        pool = s.ingest.partitions + 2
        store = await asyncio.to_thread(
            lambda: open_telemetry_store(s.telemetry, data, pool_size=pool)
        )
        stack.callback(store.close)
        bus = await stack.enter_async_context(
            Bus.connect(
                s.nats.url,
                user=s.nats.user,
                password=s.nats.password.get_secret_value(),
                name=f"ironbridge-ingest-{wid}",
            )
        )
        await ensure_streams_patiently(bus, s.nats.replicas)
        role = IngestRole(
            s,
            bus,
            store,
            RouteCache(platform_routes(registry, computed=PREDICTION_MEASUREMENTS)),
            wid,
        )

        async def ready() -> tuple[bool, str]:
            if not bus.is_connected:
                return False, "not connected to NATS"
            if not role.ready:
                return False, "starting"
            return True, f"ready; partitions {sorted(role.running)}"

        health = HealthServer(s.ingest.metrics_host, s.ingest.metrics_port, ready, role.metrics)
        await health.start()
        stack.push_async_callback(health.stop)
        _LOGGER.info("ingest worker %s running", wid)
        await role.run(stop)
        _LOGGER.info("ingest worker %s stopped: %s", wid, role.stats())
