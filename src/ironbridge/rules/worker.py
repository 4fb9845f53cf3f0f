"""The rules worker: a durable consumer of normalised batches feeding the rule engine."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ironbridge.ingest import InboundMessage, MessageSource, device_of, ipc_to_batch
from ironbridge.model import Event, IronbridgeError, NotFound, now_us
from ironbridge.rules.alarms import Alarm, AlarmAction
from ironbridge.rules.definitions import Rule
from ironbridge.rules.engine import RuleEngine, SeriesInfo, Transition
from ironbridge.rules.notify import Notifier
from ironbridge.rules.store import AlarmStore
from ironbridge.store import Registry

_LOGGER = logging.getLogger(__name__)

RULES_CONSUMER = "rules"
EVENTS_CONSUMER = "rules-events"


@dataclass
class RulesStats:
    """Counters shown by ``GET /api/v1/rules/stats``."""

    points: int = 0
    batches: int = 0
    transitions: int = 0
    events: int = 0
    skipped_redelivered: int = 0
    last_batch_ms: float = 0.0
    lag_ms: list[float] = field(default_factory=list)


class RulesWorker:
    """Consumes ``ib.norm.points``, evaluates rules, writes alarms, notifies.

    The engine state is saved with the last stream sequence it includes at most every
    ``snapshot_s`` seconds, and messages are acknowledged only after that save, so a
    restart resumes from a consistent state (redelivered messages at or below the saved
    sequence are skipped; alarm writes are idempotent by timestamp).
    """

    def __init__(
        self,
        *,
        source: MessageSource,
        store: AlarmStore,
        registry: Registry,
        notifier: Notifier | None = None,
        events: MessageSource | None = None,
        consumer: str = RULES_CONSUMER,
        fetch_batch: int = 500,
        fetch_timeout_s: float = 0.2,
        snapshot_s: float = 1.0,
        housekeeping_s: float = 0.5,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self._source = source
        self._events = events
        self._store = store
        self._registry = registry
        self._notifier = notifier
        self._consumer = consumer
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout_s
        self._snapshot_s = snapshot_s
        self._housekeeping_s = housekeeping_s
        self._clock = clock
        self.engine = RuleEngine()
        self.stats = RulesStats()
        self._rules: dict[str, Rule] = {}
        self._rules_version: tuple[int, int] = (-1, -1)
        self._assets: dict[str, tuple[str, str, str]] = {}
        self._applied = 0
        self._held: list[InboundMessage] = []
        self._max_seq = 0
        self._lock = asyncio.Lock()
        #: called with every alarm that changed (after it is stored): alarm actions such
        #: as opening a work order are wired here by the composition root
        self.alarm_hooks: list[Callable[[Alarm, AlarmAction], Awaitable[None]]] = []

    # -- start and loop ----------------------------------------------------------------
    async def start(self) -> None:
        """Load rules and the saved state."""
        seq, state = await asyncio.to_thread(self._store.load_state, self._consumer)
        self._applied = self._max_seq = seq
        self.engine.restore(state)
        await self._reload_rules(force=True)
        _LOGGER.info("rules worker %s starting after sequence %s", self._consumer, seq)

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set."""
        await self.start()
        events_task = None
        if self._events is not None:
            events_task = asyncio.create_task(self._run_events(stop), name="rules-events")
        last_snap = last_house = time.monotonic()
        try:
            while not stop.is_set():
                msgs = await self._source.fetch(self._fetch_batch, self._fetch_timeout)
                if msgs:
                    await self.process(msgs)
                now = time.monotonic()
                if now - last_house >= self._housekeeping_s:
                    last_house = now
                    await self.housekeeping()
                if self._held and now - last_snap >= self._snapshot_s:
                    last_snap = now
                    await self.checkpoint()
            await self.checkpoint()
        finally:
            if events_task is not None:
                await asyncio.gather(events_task, return_exceptions=True)

    async def process(self, msgs: Sequence[InboundMessage]) -> list[tuple[Alarm, AlarmAction]]:
        """Evaluate one fetch of normalised batches and write the alarms they cause."""
        started = time.perf_counter()
        batches = []
        for m in msgs:
            if m.stream_seq <= self._applied:
                self.stats.skipped_redelivered += 1
                continue
            self._max_seq = max(self._max_seq, m.stream_seq)
            batches.append(ipc_to_batch(m.data))
        self._held.extend(msgs)
        changed: list[tuple[Alarm, AlarmAction]] = []
        async with self._lock:
            for batch in batches:
                await self._learn_series(batch.series)
                transitions = self.engine.process(batch, self._clock())
                self.stats.points += len(batch)
                changed += await self._write(transitions)
        self.stats.batches += 1
        self.stats.last_batch_ms = (time.perf_counter() - started) * 1000
        return changed

    async def checkpoint(self) -> None:
        """Save the engine state and acknowledge what it includes."""
        if not self._held:
            return
        async with self._lock:
            state = self.engine.snapshot()
            seq = self._max_seq
        await asyncio.to_thread(self._store.save_state, self._consumer, seq, state)
        held, self._held = self._held, []
        self._applied = seq
        await self._source.ack_all(held)

    async def housekeeping(self) -> None:
        """Timers: rule changes, on/off delays, no-data, shelving expiry, escalation."""
        now = self._clock()
        await self._reload_rules()
        async with self._lock:
            await self._write(self.engine.tick(now))
        await asyncio.to_thread(self._store.expire_shelves, now)
        await self._escalate(now)

    # -- helpers -----------------------------------------------------------------------
    async def _reload_rules(self, *, force: bool = False) -> None:
        version = await asyncio.to_thread(self._store.rules_version)
        if version == self._rules_version and not force:
            return
        self._rules_version = version
        rules = await asyncio.to_thread(self._store.list_rules, None)
        async with self._lock:
            self._rules = {r.id: r for r in rules}
            self.engine.set_rules(rules, self._clock())
        _LOGGER.info("rules loaded: %d rules, %d bindings", len(rules), self.engine.bindings)

    async def _learn_series(self, series: Any) -> None:
        known = self.engine.known_series()
        unknown = sorted({int(s) for s in set(series.tolist())} - known)
        if unknown:
            infos = await asyncio.to_thread(self._resolve, unknown)
            self.engine.add_series(infos, self._clock())

    def _resolve(self, series_ids: list[int]) -> list[SeriesInfo]:
        out = []
        for ref in self._registry.series_by_id(None, series_ids):
            _, path, type_name = self._asset(ref.asset_id)
            out.append(SeriesInfo(ref.id, ref.asset_id, type_name, ref.measurement, path))
        return out

    def _asset(self, asset_id: str) -> tuple[str, str, str]:
        hit = self._assets.get(asset_id)
        if hit is None:
            asset = self._registry.get_asset(None, asset_id)
            path = self._registry.get_tenant(None, asset.tenant_id).path
            hit = self._assets[asset_id] = (asset.tenant_id, path, asset.type_name)
        return hit

    async def _write(self, transitions: list[Transition]) -> list[tuple[Alarm, AlarmAction]]:
        if not transitions:
            return []
        self.stats.transitions += len(transitions)
        changed = await asyncio.to_thread(
            self._store.apply_transitions, transitions, self._rules, self._asset
        )
        if self._notifier is not None and changed:
            subs = await asyncio.to_thread(self._store.subscriptions, None)
            for alarm, action in changed:
                event = "start" if action is AlarmAction.ACTIVATE else "clear"
                for sub in subs:
                    if self._notifier.wants(sub, alarm, event):
                        asyncio.create_task(self._notifier.send(sub, alarm, event))  # noqa: RUF006
        for alarm, action in changed:
            for hook in self.alarm_hooks:
                try:
                    await hook(alarm, action)
                except IronbridgeError as exc:
                    _LOGGER.warning("alarm action for %s failed: %s", alarm.id, exc)
        return changed

    async def _escalate(self, now: int) -> None:
        if self._notifier is None:
            return
        subs = [
            s
            for s in await asyncio.to_thread(self._store.subscriptions, None)
            if "unacknowledged" in s["events"]
        ]
        if not subs:
            return
        for alarm in await asyncio.to_thread(self._store.unacknowledged):
            due = [s for s in subs if now - alarm.activated_us >= s["unacked_after_s"] * 1e6]
            if not due:
                continue
            await asyncio.to_thread(self._store.mark_escalated, alarm.id)
            for sub in due:
                if self._notifier.wants(sub, alarm, "unacknowledged"):
                    await self._notifier.send(sub, alarm, "unacknowledged")

    async def _run_events(self, stop: asyncio.Event) -> None:
        assert self._events is not None
        while not stop.is_set():
            msgs = await self._events.fetch(200, self._fetch_timeout)
            if not msgs:
                continue
            events = []
            for m in msgs:
                events += self._decode_events(m)
            async with self._lock:
                for ev in events:
                    if not self.engine.knows_asset(ev.asset_id):
                        _, path, type_name = await asyncio.to_thread(self._asset, ev.asset_id)
                        self.engine.add_series(
                            [SeriesInfo(-1, ev.asset_id, type_name, "", path)], self._clock()
                        )
                transitions = self.engine.on_events(events, self._clock())
                await self._write(transitions)
            self.stats.events += len(events)
            await self._events.ack_all(msgs)

    def _decode_events(self, m: InboundMessage) -> list[Event]:
        """``{"ts": ms, "kind": ..., "code": ..., ...}`` or a list of them; bad ones skipped."""
        device = device_of(m.subject)
        try:
            doc = json.loads(m.data)
            route = self._registry.device_route(device or "")
        except (ValueError, IronbridgeError, NotFound):
            _LOGGER.warning("event message %s from %r dropped: unreadable", m.stream_seq, device)
            return []
        items = doc if isinstance(doc, list) else [doc]
        out = []
        for d in items:
            if not isinstance(d, dict) or not isinstance(d.get("code"), str):
                continue
            ts = int(d.get("ts", m.timestamp_us // 1000)) * 1000
            payload = {k: v for k, v in d.items() if k not in ("ts", "kind", "code", "asset")}
            asset = str(d.get("asset") or route.asset_ids[0])
            if asset not in route.asset_ids:
                continue
            out.append(
                Event(
                    asset_id=asset,
                    ts_us=ts,
                    kind=str(d.get("kind", "dtc")),
                    code=d["code"],
                    payload=payload,
                )
            )
        return out
