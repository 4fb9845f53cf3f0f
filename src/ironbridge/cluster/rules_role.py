"""``ironbridge worker rules``: a process that evaluates the rules of the partitions it holds.

Assets are split between rules workers the way devices are split between ingest
workers, and by the same hash: the ingest of partition ``k`` publishes its normalised
batches on ``ib.norm.points.<k>``, and device events sit in ``IB_RAW`` under
``ib.v1.<device>.<k>.events``. A rules worker holding the lease of partition ``k`` (in
its own bucket, ``ib_rules_leases``) runs one :class:`~ironbridge.rules.RulesWorker`
over these two subjects, with consumer and engine-state key ``rules-p<k>``.

Hand-over: the engine state of a partition (per (asset, rule): condition, on/off delay
start, last values) is saved in the registry database (PostgreSQL in cluster mode)
with the last normalised sequence it includes, at most a second apart, before the
messages are acknowledged. Whoever claims the partition next loads it, binds its
assets at once (so a pending on-delay fires even if the asset stays quiet) and reads
on from that sequence + 1; the alarm store ignores a transition it already applied,
so replaying the few messages after the saved state does not double an alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from ironbridge.bus import STREAM_NORM, STREAM_RAW, Bus, PullConsumer
from ironbridge.cluster.health import HealthServer, render_metrics
from ironbridge.cluster.ingest_role import default_worker_id
from ironbridge.cluster.partitions import (
    RULES_LEASE_BUCKET,
    Lease,
    LeaseTable,
    events_filter,
    fresh_pull_consumer,
    norm_subject,
    rules_consumer,
)
from ironbridge.cluster.supervisor import PartitionSupervisor
from ironbridge.model import IronbridgeError
from ironbridge.rules import AlarmStore, Notifier, RulesWorker
from ironbridge.settings import Settings
from ironbridge.store import Registry

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class _Running:
    lease: Lease
    worker: RulesWorker
    consumers: tuple[PullConsumer, PullConsumer]
    stop: asyncio.Event
    task: asyncio.Task[None]


class RulesRole(PartitionSupervisor):
    """The partition supervisor of one rules worker process."""

    kind = "rules"

    def __init__(
        self,
        settings: Settings,
        bus: Bus,
        store: AlarmStore,
        registry: Registry,
        worker_id: str,
        *,
        notifier: Notifier | None = None,
        hooks: list[Any] | None = None,
    ) -> None:
        """Wire the role; :meth:`run` does the work."""
        self._s = settings
        self._bus = bus
        self._store = store
        self._registry = registry
        self._notifier = notifier
        self._hooks = list(hooks or [])
        self.worker_id = worker_id
        ttl = float(settings.ingest.lease_ttl_s)
        super().__init__(
            LeaseTable(
                bus.client.jetstream(),
                worker_id,
                ttl_s=ttl,
                replicas=settings.nats.replicas,
                bucket=RULES_LEASE_BUCKET,
            ),
            ttl,
            int(settings.ingest.partitions),
        )
        self.running: dict[int, _Running] = {}
        self.claims = 0
        self._done = {"points": 0, "transitions": 0, "events": 0}

    async def _start(self, lease: Lease) -> None:
        k = lease.partition
        name = rules_consumer(k)
        try:
            seq, _ = await asyncio.to_thread(self._store.load_state, name)
            points = await fresh_pull_consumer(
                self._bus,
                STREAM_NORM,
                name,
                norm_subject(k),
                start_seq=seq + 1,
                max_ack_pending=self._s.ingest.max_ack_pending,
            )
            events = await self._bus.pull_consumer(
                STREAM_RAW, f"rules-events-p{k}", filter_subject=events_filter(k)
            )
        except IronbridgeError:
            await self.leases.release(lease)
            raise
        worker = RulesWorker(
            source=points,
            events=events,
            store=self._store,
            registry=self._registry,
            notifier=self._notifier,
            consumer=name,
            # unacknowledged-alarm escalation is global: the API processes run it
            escalation=False,
        )
        worker.alarm_hooks.extend(self._hooks)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop), name=f"rules-p{k}")
        self.running[k] = _Running(lease, worker, (points, events), stop, task)
        self.claims += 1
        _LOGGER.info("rules partition %d claimed by %s after sequence %d", k, self.worker_id, seq)

    async def _drop(self, k: int) -> None:
        await self._retire(k, graceful=False)

    async def _retire(self, k: int, *, graceful: bool = True) -> None:
        """Stop partition ``k``: gracefully (save state, ack, release), or at once.

        A lost lease stops at once and without saving: the new owner's state must not
        be overwritten by an older one.
        """
        r = self.running.pop(k, None)
        if r is None:
            return
        r.stop.set()
        if not graceful:
            r.task.cancel()
        await asyncio.gather(r.task, return_exceptions=True)
        st = r.worker.stats
        self._done["points"] += st.points
        self._done["transitions"] += st.transitions
        self._done["events"] += st.events
        for c in r.consumers:
            with contextlib.suppress(IronbridgeError):
                await c.close()
        if graceful:
            await self.leases.release(r.lease)

    def stats(self) -> dict[str, Any]:
        """Totals over the partitions held now and before."""
        live = [r.worker.stats for r in self.running.values()]
        return {
            "worker_id": self.worker_id,
            "partitions": sorted(self.running),
            "points": self._done["points"] + sum(s.points for s in live),
            "transitions": self._done["transitions"] + sum(s.transitions for s in live),
            "events": self._done["events"] + sum(s.events for s in live),
            "bindings": sum(r.worker.engine.bindings for r in self.running.values()),
        }

    async def metrics(self) -> str:
        """Prometheus text: partitions, points evaluated, transitions, bindings."""
        st = self.stats()
        return render_metrics(
            [
                ("ib_rules_points_total", "counter", "points evaluated", {}, st["points"]),
                (
                    "ib_rules_transitions_total",
                    "counter",
                    "condition changes written",
                    {},
                    st["transitions"],
                ),
                ("ib_rules_events_total", "counter", "device events evaluated", {}, st["events"]),
                ("ib_rules_bindings", "gauge", "(asset, rule) pairs watched", {}, st["bindings"]),
                (
                    "ib_rules_partitions_owned",
                    "gauge",
                    "partitions held",
                    {},
                    len(st["partitions"]),
                ),
                ("ib_rules_partition_claims_total", "counter", "claims", {}, self.claims),
                (
                    "ib_rules_partition_restarts_total",
                    "counter",
                    "partitions stopped by errors",
                    {},
                    self.restarts,
                ),
            ]
        )


async def run_rules_worker(
    settings: Settings, stop: asyncio.Event, worker_id: str | None = None
) -> None:
    """Run one rules worker process until ``stop`` is set (SIGTERM/Ctrl-C)."""
    from ironbridge.aftersales import Aftersales
    from ironbridge.app import work_order_action
    from ironbridge.cluster.stores import ensure_streams_patiently, open_telemetry_store
    from ironbridge.store.sql import SqlRegistry

    s = settings
    wid = worker_id or s.ingest.worker_id or default_worker_id()
    data = s.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as stack:
        registry = SqlRegistry.open(s.registry_database_url)
        stack.callback(registry.close)
        telemetry = await asyncio.to_thread(
            lambda: open_telemetry_store(s.telemetry, data, pool_size=2)
        )
        stack.callback(telemetry.close)
        bus = await stack.enter_async_context(
            Bus.connect(
                s.nats.url,
                user=s.nats.user,
                password=s.nats.password.get_secret_value(),
                name=f"ironbridge-rules-{wid}",
            )
        )
        await ensure_streams_patiently(bus, s.nats.replicas)
        aftersales = Aftersales(registry.engine, registry, telemetry)
        role = RulesRole(
            s,
            bus,
            AlarmStore(registry.engine),
            registry,
            wid,
            notifier=Notifier(None),
            hooks=[work_order_action(aftersales)],
        )

        async def ready() -> tuple[bool, str]:
            if not bus.is_connected:
                return False, "not connected to NATS"
            if not role.ready:
                return False, "starting"
            return True, f"ready; rules partitions {sorted(role.running)}"

        health = HealthServer(s.ingest.metrics_host, s.ingest.metrics_port, ready, role.metrics)
        await health.start()
        stack.push_async_callback(health.stop)
        _LOGGER.info("rules worker %s running", wid)
        await role.run(stop)
        _LOGGER.info("rules worker %s stopped: %s", wid, role.stats())
