"""The edge agent: collect from local sources, run local rules, buffer, forward.

Every value is committed to the on-disk buffer before anything else; the forwarder
drains the buffer over the uplink (alarms and events, then current values, then history
in time order at ``backfill_points_per_s``), acknowledging a batch only after the broker
acknowledged it. Local rules run on collection, so alarms are raised (and buffered)
while the uplink is down.

Management: the agent reports its status (``Edge Status/`` metrics, see
``codec/sparkplug/control.py``) in its NBIRTH and every ``status_interval_s``; a
configuration the platform pushes (NCMD) is validated, stored in the buffer's meta table
(so it survives restarts), and applied by restarting the sources with the new rules;
the version it runs is reported back, or the reason it refused one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ironbridge.edge.buffer import Batch, BatchKind, BufferStats, EdgeBuffer
from ironbridge.edge.config import EdgeConfig, merge_managed, parse_managed
from ironbridge.edge.rules import LocalRules
from ironbridge.edge.sources import Points, make_source
from ironbridge.edge.uplink import SparkplugUplink, UplinkDown

__all__ = ["AgentStats", "EdgeAgent"]

_LOGGER = logging.getLogger(__name__)


@dataclass(slots=True)
class AgentStats:
    """Counters of one agent run (the buffer's own counters survive restarts)."""

    collected: int = 0
    delivered: int = 0
    events_delivered: int = 0
    alarms: int = 0
    batches: int = 0
    reconnects: int = 0
    last_outage_s: float = 0.0


class EdgeAgent:
    """Runs the sources, local rules, buffer and uplink of one gateway.

    Args:
        cfg: the parsed ``edge.toml``.
        sources: override the configured sources (tests, benchmarks).
    """

    def __init__(
        self,
        cfg: EdgeConfig,
        *,
        sources: list[Callable[[], AsyncIterator[Points]]] | None = None,
        status_interval_s: float = 5.0,
    ) -> None:
        """Open the buffer; nothing runs until :meth:`run`."""
        self.buffer = EdgeBuffer(cfg.buffer_path, budget_bytes=int(cfg.disk_budget_mb * 1e6))
        self.config_version = 0  # 0: the local edge.toml as it is
        self.config_error = ""
        pushed = self.buffer.get_meta("config")
        if pushed:
            try:
                cfg = merge_managed(cfg, parse_managed(pushed))
                self.config_version = int(self.buffer.get_meta("config_version") or 0)
            except Exception as exc:  # a stored config that no longer validates
                self.config_error = f"stored configuration ignored: {exc}"
                _LOGGER.error("%s", self.config_error)
        self.cfg = cfg
        self.buffer.budget_bytes = int(cfg.disk_budget_mb * 1e6)
        bd = self.buffer.get_meta("bdSeq")
        self.uplink = SparkplugUplink(
            cfg.uplink, group=cfg.group, node=cfg.node_id, bd_seq=int(bd) if bd else -1
        )
        self.uplink.status = self.status
        self.rules = LocalRules(cfg.rules)
        self._fixed_sources = sources
        self.sources = sources if sources is not None else [make_source(s) for s in cfg.sources]
        self._source_tasks: list[asyncio.Task[None]] = []
        self._source_state: list[str] = []
        self.status_interval_s = status_interval_s
        self.stats = AgentStats()
        self.link_enabled = True

    def status(self) -> dict[str, object]:
        """Health: link state, buffer depth, counters, configuration version."""
        b: BufferStats = self.buffer.stats()
        problems = [s for s in self._source_state if s not in ("running", "finished", "paused")]
        health = "ok"
        if problems:
            health = f"degraded: source {problems[0]}"
        elif b.used_bytes > 0.9 * b.budget_bytes:
            health = "degraded: buffer near its disk budget"
        return {
            "node_id": self.cfg.node_id,
            "health": health,
            "link": "up" if self.uplink.connected else "down",
            "buffer_points": b.points,
            "buffer_events": b.events,
            "buffer_bytes": b.used_bytes,
            "budget_bytes": b.budget_bytes,
            "dropped_points": b.dropped_points,
            "collected": self.stats.collected,
            "delivered": self.stats.delivered,
            "alarms": self.stats.alarms,
            "reconnects": self.stats.reconnects,
            "last_outage_s": round(self.stats.last_outage_s, 1),
            "config_version": self.config_version,
            "config_error": self.config_error,
            "sources": json.dumps(
                [
                    {"kind": s.kind, "state": st}
                    for s, st in zip(self.cfg.sources, self._source_state, strict=False)
                ]
            ),
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Collect and forward until ``stop`` is set; then close the uplink and buffer."""
        self._start_sources()
        forwarder = asyncio.create_task(self._forward(stop), name="edge-forwarder")
        try:
            await stop.wait()
        finally:
            await self._stop_sources()
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await forwarder
            await asyncio.to_thread(self.uplink.close)
            self.buffer.close()

    def _start_sources(self) -> None:
        self._source_state = ["running"] * len(self.sources)
        self._source_tasks = [
            asyncio.create_task(self._collect(i, src), name=f"edge-source-{i}")
            for i, src in enumerate(self.sources)
        ]

    async def _stop_sources(self) -> None:
        for task in self._source_tasks:
            task.cancel()
        for task in self._source_tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._source_tasks = []

    async def pause_sources(self) -> None:
        """Stop collecting (the forwarder keeps emptying the buffer)."""
        await self._stop_sources()
        self._source_state = ["paused"] * len(self.sources)
        _LOGGER.info("sources paused: forwarding what is buffered")

    async def apply_config(self, version: int, document: str) -> bool:
        """Validate and apply a pushed configuration; restart the sources.

        The accepted document is stored in the buffer (it survives restarts). A refused
        one leaves everything running as it was and is reported in ``config_error``.
        """
        try:
            managed = parse_managed(document)
            new = merge_managed(self.cfg, managed)
            sources = (
                self._fixed_sources
                if self._fixed_sources is not None
                else [make_source(s) for s in new.sources]
            )
        except Exception as exc:
            self.config_error = f"version {version} refused: {exc}"
            _LOGGER.error("%s", self.config_error)
            return False
        await self._stop_sources()
        self.cfg = new
        self.rules = LocalRules(new.rules)
        self.buffer.budget_bytes = int(new.disk_budget_mb * 1e6)
        self.sources = sources
        await asyncio.to_thread(self.buffer.set_meta, "config", document)
        await asyncio.to_thread(self.buffer.set_meta, "config_version", str(version))
        self.config_version = version
        self.config_error = ""
        self._start_sources()
        _LOGGER.info("configuration version %d applied", version)
        return True

    def ingest(self, chunk: Points) -> None:
        """Commit one chunk of collected points and the alarms its values raise."""
        series, ts, values = chunk
        watched = self.rules.metrics
        hits = [i for i, s in enumerate(series) if s in watched] if watched else []
        for i in hits:
            for event in self.rules.evaluate(series[i], ts[i], values[i]):
                self.buffer.add_event(event)
                self.stats.alarms += 1
                _LOGGER.warning("local alarm: %s", event.body.decode())
        self.buffer.add_points(series, ts, values)
        self.stats.collected += len(series)

    async def _collect(self, index: int, source: Callable[[], AsyncIterator[Points]]) -> None:
        try:
            async for chunk in source():
                await asyncio.to_thread(self.ingest, chunk)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._source_state[index] = f"{index} failed: {exc}"
            _LOGGER.exception("edge source %d failed", index)
            return
        self._source_state[index] = "finished"

    async def _forward(self, stop: asyncio.Event) -> None:
        rate = self.cfg.backfill_points_per_s
        tokens = float(self.cfg.batch_points)
        last = time.monotonic()
        backoff = 0.5
        next_status = 0.0
        down_since: float | None = time.monotonic()
        while not stop.is_set():
            try:
                version, document = self.uplink.commands.get_nowait()
            except queue.Empty:
                pass
            else:
                await self.apply_config(version, document)
                next_status = 0.0  # acknowledge at once
            now = time.monotonic()
            tokens = min(tokens + (now - last) * rate, max(rate, self.cfg.batch_points))
            last = now
            if not self.link_enabled:
                if self.uplink.connected:
                    await asyncio.to_thread(self.uplink.close)
                await asyncio.sleep(0.1)
                continue
            if not self.uplink.connected:
                down_since = down_since or time.monotonic()
                try:
                    names = await asyncio.to_thread(self.buffer.series_names)
                    bd = await asyncio.to_thread(self.uplink.connect, names)
                    await asyncio.to_thread(self.buffer.set_meta, "bdSeq", str(bd))
                    await asyncio.to_thread(self.buffer.mark_connected)
                    backoff = 0.5
                    if self.stats.reconnects and down_since is not None:
                        self.stats.last_outage_s = time.monotonic() - down_since
                    self.stats.reconnects += 1
                    down_since = None
                    next_status = time.monotonic() + self.status_interval_s
                except UplinkDown as exc:
                    _LOGGER.info("uplink down: %s; retry in %.1f s", exc, backoff)
                    await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                    backoff = min(backoff * 2, self.cfg.uplink.reconnect_max_s)
                    continue
            if time.monotonic() >= next_status:
                try:
                    await asyncio.to_thread(self.uplink.send_status)
                except UplinkDown as exc:
                    _LOGGER.info("status not acknowledged: %s", exc)
                    down_since = down_since or time.monotonic()
                    continue
                next_status = time.monotonic() + self.status_interval_s
            batches: list[Batch] = []
            while len(batches) < self.cfg.inflight_batches:
                batch = await asyncio.to_thread(
                    self.buffer.next_batch,
                    self.cfg.batch_points,
                    history=tokens >= 1,
                    in_flight=[b.id for b in batches],
                )
                if batch is None:
                    break
                batches.append(batch)
                if batch.kind is BatchKind.HISTORY:
                    tokens -= len(batch.ts)
            if not batches:
                await asyncio.sleep(0.05)
                continue
            done = await asyncio.to_thread(self.uplink.send_many, batches)
            for batch in batches[:done]:
                await asyncio.to_thread(self.buffer.ack, batch)
                self.stats.batches += 1
                if batch.kind is BatchKind.EVENTS:
                    self.stats.events_delivered += len(batch.events)
                else:
                    self.stats.delivered += len(batch.ts)
            if done < len(batches):
                down_since = down_since or time.monotonic()
