"""The edge agent: collect from local sources, run local rules, buffer, forward.

Every value is committed to the on-disk buffer before anything else; the forwarder
drains the buffer over the uplink (alarms and events, then current values, then history
in time order at ``backfill_points_per_s``), acknowledging a batch only after the broker
acknowledged it. Local rules run on collection, so alarms are raised (and buffered)
while the uplink is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ironbridge.edge.buffer import BatchKind, BufferStats, EdgeBuffer
from ironbridge.edge.config import EdgeConfig
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
    ) -> None:
        """Open the buffer; nothing runs until :meth:`run`."""
        self.cfg = cfg
        self.buffer = EdgeBuffer(cfg.buffer_path, budget_bytes=int(cfg.disk_budget_mb * 1e6))
        bd = self.buffer.get_meta("bdSeq")
        self.uplink = SparkplugUplink(
            cfg.uplink, group=cfg.group, node=cfg.node_id, bd_seq=int(bd) if bd else -1
        )
        self.rules = LocalRules(cfg.rules)
        self.sources = sources if sources is not None else [make_source(s) for s in cfg.sources]
        self.stats = AgentStats()
        self.link_enabled = True

    def status(self) -> dict[str, object]:
        """Health: link state, buffer depth, counters."""
        b: BufferStats = self.buffer.stats()
        return {
            "node_id": self.cfg.node_id,
            "link": "up" if self.uplink.connected else "down",
            "buffer_points": b.points,
            "buffer_events": b.events,
            "buffer_bytes": b.used_bytes,
            "dropped_points": b.dropped_points,
            "collected": self.stats.collected,
            "delivered": self.stats.delivered,
            "alarms": self.stats.alarms,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Collect and forward until ``stop`` is set; then close the uplink and buffer."""
        tasks = [
            asyncio.create_task(self._collect(src), name=f"edge-source-{i}")
            for i, src in enumerate(self.sources)
        ]
        tasks.append(asyncio.create_task(self._forward(stop), name="edge-forwarder"))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await asyncio.to_thread(self.uplink.close)
            self.buffer.close()

    def ingest(self, chunk: Points) -> None:
        """Commit one chunk of collected points and the alarms its values raise."""
        series, ts, values = chunk
        for s, t, v in zip(series, ts, values, strict=True):
            for event in self.rules.evaluate(s, t, v):
                self.buffer.add_event(event)
                self.stats.alarms += 1
                _LOGGER.warning("local alarm: %s", event.body.decode())
        self.buffer.add_points(series, ts, values)
        self.stats.collected += len(series)

    async def _collect(self, source: Callable[[], AsyncIterator[Points]]) -> None:
        async for chunk in source():
            await asyncio.to_thread(self.ingest, chunk)

    async def _forward(self, stop: asyncio.Event) -> None:
        rate = self.cfg.backfill_points_per_s
        tokens = float(self.cfg.batch_points)
        last = time.monotonic()
        backoff = 0.5
        while not stop.is_set():
            now = time.monotonic()
            tokens = min(tokens + (now - last) * rate, max(rate, self.cfg.batch_points))
            last = now
            if not self.link_enabled:
                if self.uplink.connected:
                    await asyncio.to_thread(self.uplink.close)
                await asyncio.sleep(0.1)
                continue
            if not self.uplink.connected:
                try:
                    names = await asyncio.to_thread(self.buffer.series_names)
                    bd = await asyncio.to_thread(self.uplink.connect, names)
                    await asyncio.to_thread(self.buffer.set_meta, "bdSeq", str(bd))
                    backoff = 0.5
                except UplinkDown as exc:
                    _LOGGER.info("uplink down: %s; retry in %.1f s", exc, backoff)
                    await asyncio.sleep(backoff * (0.5 + random.random()))  # noqa: S311
                    backoff = min(backoff * 2, 30.0)
                    continue
            batch = await asyncio.to_thread(
                self.buffer.next_batch, self.cfg.batch_points, history=tokens >= 1
            )
            if batch is None:
                await asyncio.sleep(0.05)
                continue
            try:
                await asyncio.to_thread(self.uplink.send, batch)
            except UplinkDown as exc:
                _LOGGER.info("batch %d not acknowledged: %s", batch.id, exc)
                continue
            await asyncio.to_thread(self.buffer.ack, batch)
            self.stats.batches += 1
            if batch.kind is BatchKind.EVENTS:
                self.stats.events_delivered += len(batch.events)
            else:
                self.stats.delivered += len(batch.ts)
            if batch.kind is BatchKind.HISTORY:
                tokens -= len(batch.ts)
