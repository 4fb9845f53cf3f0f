"""The rules worker: a durable consumer of normalised batches feeding the rule engine."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ironbridge.ingest import InboundMessage, MessageSource, RouteCache, device_of, ipc_to_batch
from ironbridge.model import Event, IronbridgeError, NotFound, TransientError, now_us
from ironbridge.model.retry import backoff_delay, retry_transient
from ironbridge.rules.alarms import HIDDEN, RELEASES, Alarm, AlarmAction, AlarmState
from ironbridge.rules.definitions import Rule, RuleKind
from ironbridge.rules.engine import RuleEngine, SeriesInfo, Transition
from ironbridge.rules.notify import Notifier
from ironbridge.rules.spc import SpcWatcher
from ironbridge.rules.store import AlarmStore
from ironbridge.store import DeviceRoute, Registry

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

RULES_CONSUMER = "rules"
EVENTS_CONSUMER = "rules-events"
#: how long an asset's attributes (maintenance state) are cached for suppression by design
_ATTRIBUTES_TTL_S = 2.0


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
        escalation: bool = True,
        clock: Callable[[], int] = now_us,
        spc: SpcWatcher | None = None,
    ) -> None:
        self._source = source
        self._spc = spc
        self._spc_due = 0.0
        self._events = events
        self._store = store
        self._registry = registry
        self._notifier = notifier
        self._consumer = consumer
        self._fetch_batch = fetch_batch
        self._fetch_timeout = fetch_timeout_s
        self._snapshot_s = snapshot_s
        self._housekeeping_s = housekeeping_s
        #: cluster mode runs one worker per partition: one of them escalates (global)
        self._escalation = escalation
        self._clock = clock
        self.engine = RuleEngine()
        self.stats = RulesStats()
        self._rules: dict[str, Rule] = {}
        self._rules_version: tuple[int, int] = (-1, -1)
        self._assets: dict[str, tuple[str, str, str]] = {}
        self._attrs: dict[str, tuple[float, Mapping[str, Any]]] = {}
        # event messages name their device: route them as ingest does, through a cache and
        # off the loop (an uncached route costs two queries and an asset-type parse; a
        # fleet of 10 000 vehicles logging in stalled the loop on it)
        self._routes = RouteCache(lambda device: registry.device_route(device), ttl_s=30.0)
        self._applied = 0
        self._held: list[InboundMessage] = []
        self._max_seq = 0
        self._lock = asyncio.Lock()
        #: set by :meth:`run`: a failing store or bus step is retried until it is set
        self._stop: asyncio.Event | None = None
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
        await self._bind_restored(state)
        _LOGGER.info("rules worker %s starting after sequence %s", self._consumer, seq)

    async def run(self, stop: asyncio.Event) -> None:
        """Process until ``stop`` is set."""
        self._stop = stop
        await retry_transient(self.start, "rules worker start", stop=stop, logger=_LOGGER)
        events_task = None
        if self._events is not None:
            events_task = asyncio.create_task(self._run_events(stop), name="rules-events")
        last_snap = last_house = time.monotonic()
        failures = 0
        try:
            while not stop.is_set():
                try:
                    # Nothing here is acknowledged before the state including it is
                    # saved, and the steps that must not be skipped retry in place
                    # (_step): a transient error only delays the loop.
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
                except TransientError as exc:
                    if stop.is_set():
                        break
                    if failures == 0:
                        _LOGGER.warning("rules worker: %s; retrying with backoff", exc)
                    await asyncio.sleep(backoff_delay(failures))
                    failures += 1
                    continue
                if failures:
                    _LOGGER.info("rules worker recovered after %d retries", failures)
                    failures = 0
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
        await self._step("save state", self._store.save_state, self._consumer, seq, state)
        held, self._held = self._held, []
        self._applied = seq
        await retry_transient(
            lambda: self._source.ack_all(held), "rules: ack", stop=self._stop, logger=_LOGGER
        )

    async def housekeeping(self) -> None:
        """Timers: rule changes, delays, no-data, shelving, design suppression, escalation."""
        now = self._clock()
        await self._reload_rules()
        async with self._lock:
            await self._write(self.engine.tick(now))
        await self.check_spc()
        expired = await asyncio.to_thread(self._store.expire_shelves, now)
        await self._announce([(a, AlarmAction.SHELVE_EXPIRED) for a in expired])
        await self._announce(
            await asyncio.to_thread(
                self._store.apply_design_suppression, self._rules, self._attributes, now
            )
        )
        if self._escalation:
            await self._escalate(now)

    async def check_spc(self, *, force: bool = False) -> list[tuple[Alarm, AlarmAction]]:
        """Re-plot the SPC rules' charts (every ``spc.interval_s``) and write their alarms."""
        if self._spc is None or (not force and time.monotonic() < self._spc_due):
            return []
        self._spc_due = time.monotonic() + self._spc.interval_s
        spc_rules = [r for r in self._rules.values() if r.kind is RuleKind.SPC]
        if not spc_rules:
            return []
        transitions = await asyncio.to_thread(self._spc.evaluate, spc_rules)
        async with self._lock:
            return await self._write(transitions)

    # -- helpers -----------------------------------------------------------------------
    async def _step(self, what: str, fn: Callable[..., _T], *args: Any) -> _T:
        """Run the blocking ``fn(*args)`` in a thread, retrying transient store errors."""
        return await retry_transient(
            lambda: asyncio.to_thread(fn, *args), f"rules: {what}", stop=self._stop, logger=_LOGGER
        )

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

    async def _bind_restored(self, state: dict[str, Any]) -> None:
        """Bind the assets of a loaded state now rather than at their next point.

        Its timers (on-delays, no-data) then run even if the asset stays quiet (a
        partition taken over from a worker that died, in cluster mode).
        """
        infos = []
        for asset_id in sorted({str(k[0]) for k in state.get("keys", [])}):
            try:
                _, path, type_name = await asyncio.to_thread(self._asset, asset_id)
            except NotFound:
                continue
            infos.append(SeriesInfo(-1, asset_id, type_name, "", path))
        async with self._lock:
            self.engine.add_series(infos, self._clock())

    async def _learn_series(self, series: Any) -> None:
        unknown = self.engine.unknown_series(series)
        if unknown:
            infos = await self._step("resolve series", self._resolve, unknown)
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

    def _attributes(self, asset_id: str) -> Mapping[str, Any]:
        """The asset's attributes (cached briefly); runs in a worker thread."""
        now = time.monotonic()
        hit = self._attrs.get(asset_id)
        if hit is None or now - hit[0] > _ATTRIBUTES_TTL_S:
            try:
                attrs: Mapping[str, Any] = self._registry.get_asset(None, asset_id).attributes
            except NotFound:
                attrs = {}
            hit = self._attrs[asset_id] = (now, attrs)
        return hit[1]

    async def _write(self, transitions: list[Transition]) -> list[tuple[Alarm, AlarmAction]]:
        if not transitions:
            return []
        self.stats.transitions += len(transitions)
        # The engine has moved on: these transitions must be stored, not skipped.
        changed = await self._step(
            "write alarms",
            self._store.apply_transitions,
            transitions,
            self._rules,
            self._asset,
            self._attributes,
        )
        await self._announce(changed)
        return changed

    async def _announce(self, changed: list[tuple[Alarm, AlarmAction]]) -> None:
        """Notify and run alarm hooks for changes an operator sees.

        Hidden alarms (shelved, suppressed, out of service) announce nothing; one handed
        back to the operator while active is announced as a start.
        """
        shown: list[tuple[Alarm, AlarmAction]] = []
        for alarm, action in changed:
            if alarm.state in HIDDEN:
                continue
            if action in RELEASES:
                if alarm.state is not AlarmState.UNACKNOWLEDGED:
                    continue
                action = AlarmAction.ACTIVATE
            shown.append((alarm, action))
        if not shown:
            return
        if self._notifier is not None:
            subs = await asyncio.to_thread(self._store.subscriptions, None)
            for alarm, action in shown:
                event = "start" if action is AlarmAction.ACTIVATE else "clear"
                for sub in subs:
                    if self._notifier.wants(sub, alarm, event):
                        asyncio.create_task(self._notifier.send(sub, alarm, event))  # noqa: RUF006
        for alarm, action in shown:
            for hook in self.alarm_hooks:
                try:
                    await hook(alarm, action)
                except IronbridgeError as exc:
                    _LOGGER.warning("alarm action for %s failed: %s", alarm.id, exc)

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
            if not await asyncio.to_thread(self._store.claim_escalation, alarm.id):
                continue  # another process escalates this one
            for sub in due:
                if self._notifier.wants(sub, alarm, "unacknowledged"):
                    await self._notifier.send(sub, alarm, "unacknowledged")

    async def _run_events(self, stop: asyncio.Event) -> None:
        assert self._events is not None
        failures = 0
        while not stop.is_set():
            try:
                msgs = await self._events.fetch(200, self._fetch_timeout)
            except TransientError as exc:
                if failures == 0:
                    _LOGGER.warning("rules events: fetch failing, retrying: %s", exc)
                await asyncio.sleep(backoff_delay(failures))
                failures += 1
                continue
            failures = 0
            if not msgs:
                continue
            events = []
            for m in msgs:
                events += self._decode_events(m, await self._route(m))
            async with self._lock:
                for ev in events:
                    if not self.engine.knows_asset(ev.asset_id):
                        _, path, type_name = await self._step(
                            "resolve asset", self._asset, ev.asset_id
                        )
                        self.engine.add_series(
                            [SeriesInfo(-1, ev.asset_id, type_name, "", path)], self._clock()
                        )
                transitions = self.engine.on_events(events, self._clock())
                await self._write(transitions)
            self.stats.events += len(events)
            await retry_transient(
                functools.partial(self._events.ack_all, msgs),
                "rules events: ack",
                stop=stop,
                logger=_LOGGER,
            )

    async def _route(self, m: InboundMessage) -> DeviceRoute | None:
        device = device_of(m.subject) or ""
        try:
            # a busy registry is retried, not taken for an unknown device
            return await retry_transient(
                lambda: self._routes.aget(device),
                "rules events: route",
                stop=self._stop,
                logger=_LOGGER,
            )
        except IronbridgeError:
            return None

    def _decode_events(self, m: InboundMessage, route: DeviceRoute | None) -> list[Event]:
        """``{"ts": ms, "kind": ..., "code": ..., ...}`` or a list of them; bad ones skipped."""
        device = device_of(m.subject)
        try:
            doc = json.loads(m.data)
        except ValueError:
            doc = None
        if doc is None or route is None:
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
