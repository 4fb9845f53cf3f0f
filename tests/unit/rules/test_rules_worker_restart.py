"""The rules worker across a restart, on a real SQLite registry; the bus is faked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ironbridge.ingest import batch_to_ipc
from ironbridge.model import Asset, parse_asset_type
from ironbridge.rules import AlarmState, AlarmStore, RulesWorker, parse_rule
from ironbridge.store.points import PointBatch
from ironbridge.store.sql import SqlRegistry, ensure_root

S = 1_000_000
T0 = 1_795_000_000 * S


@dataclass
class Msg:
    subject: str
    data: bytes
    stream_seq: int
    headers: None = None
    timestamp_us: int = T0


@dataclass
class FakeSource:
    """What a durable JetStream consumer would deliver and be told (acks)."""

    pending: list[Msg] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)

    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        out, self.pending = self.pending[:batch], self.pending[batch:]
        return out

    async def ack_all(self, messages: Sequence[Msg]) -> None:
        self.acked.extend(m.stream_seq for m in messages)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _points(seq: int, series: int, *pts: tuple[float, float]) -> Msg:
    batch = PointBatch(
        np.full(len(pts), series, np.int64),
        np.array([T0 + int(t * S) for t, _ in pts], np.int64),
        np.array([v for _, v in pts], np.float64),
    )
    return Msg(subject="ib.norm.points", data=batch_to_ipc(batch), stream_seq=seq)


def _setup(tmp_path: Path) -> tuple[SqlRegistry, AlarmStore, Clock, int]:
    registry = SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    ensure_root(registry)
    machine = {"name": "machine", "measurements": [{"name": "temp", "min": -50, "max": 500}]}
    registry.put_asset_type(None, "root", parse_asset_type(machine))
    for asset_id in ("m1", "m2"):
        registry.create_asset(
            None, Asset(id=asset_id, tenant_id="root", type_name="machine", name=asset_id)
        )
    clock = Clock()
    store = AlarmStore(registry.engine, clock)
    for d in (
        {"id": "hot", "on_delay_s": 30, "params": {"measurement": "temp", "limit": 100}},
        {"id": "silent", "kind": "no_data", "params": {"timeout_s": 60}},
    ):
        rule = parse_rule(
            {"kind": "threshold", "asset_type": "machine", **d},
            tenant_id="root",
            tenant_path="/root/",
        )
        store.put_rule(None, rule, create=True)
    [sid] = [s.id for s in registry.series_of(None, ["m1"]) if s.measurement == "temp"]
    return registry, store, clock, sid


async def test_rules_restart_in_the_middle_of_an_on_delay(tmp_path: Path) -> None:
    registry, store, clock, sid = _setup(tmp_path)
    source = FakeSource()
    first = RulesWorker(source=source, store=store, registry=registry, clock=clock)
    await first.start()
    clock.now = T0 + 10 * S
    await first.process([_points(1, sid, (0, 101.0), (10, 105.0))])
    await first.housekeeping()
    await first.checkpoint()
    assert source.acked == [1]
    assert store.list_alarms(None) == []
    # the process stops here; a new one starts from the saved state and hears nothing
    # more from the machine: the on-delay still fires 30 s after the condition began
    second = RulesWorker(source=FakeSource(), store=store, registry=registry, clock=clock)
    await second.start()
    clock.now = T0 + 29 * S
    await second.housekeeping()
    assert store.list_alarms(None) == []
    clock.now = T0 + 31 * S
    await second.housekeeping()
    [alarm] = store.list_alarms(None)
    assert (alarm.asset_id, alarm.rule_id) == ("m1", "hot")
    assert alarm.state is AlarmState.UNACKNOWLEDGED
    assert alarm.activated_us == T0 + 30 * S
    # and the no-data timer kept running across the restart too
    clock.now = T0 + 71 * S
    await second.housekeeping()
    assert {(a.asset_id, a.rule_id) for a in store.list_alarms(None)} == {
        ("m1", "hot"),
        ("m1", "silent"),
    }


async def test_rules_redelivered_messages_after_restart_are_not_counted_twice(
    tmp_path: Path,
) -> None:
    registry, store, clock, sid = _setup(tmp_path)
    source = FakeSource()
    first = RulesWorker(source=source, store=store, registry=registry, clock=clock)
    await first.start()
    await first.process([_points(1, sid, (0, 101.0)), _points(2, sid, (1, 90.0))])
    await first.checkpoint()
    # message 3 was processed but the process died before its checkpoint
    await first.process([_points(3, sid, (2, 120.0))])
    second = RulesWorker(source=FakeSource(), store=store, registry=registry, clock=clock)
    await second.start()
    await second.process([_points(2, sid, (1, 90.0)), _points(3, sid, (2, 120.0))])
    assert second.stats.skipped_redelivered == 1
    assert second.stats.points == 1
