"""The rules worker rides through transient bus and store errors.

A JetStream fetch or ack that times out and an alarm store that is busy for a while
must neither end the worker nor lose or double an alarm: each failing step is retried
with backoff, and messages are acknowledged only after the state including them is saved.
Real SQLite alarm store behind a wrapper that fails the first calls; the bus is a fake.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from ironbridge.ingest import batch_to_ipc
from ironbridge.model import SeriesRef, TransientError
from ironbridge.model.retry import backoff_delay, retry_transient
from ironbridge.rules import AlarmStore, RulesWorker, parse_rule
from ironbridge.rules.tables import metadata
from ironbridge.store import PointBatch

S = 1_000_000


@dataclass(frozen=True)
class Msg:
    stream_seq: int
    data: bytes
    subject: str = "ib.norm.points"
    headers: Mapping[str, str] | None = None
    timestamp_us: int = 0


class FlakySource:
    """Delivers the messages once; fetches and the first ack time out a few times."""

    def __init__(self, msgs: list[Msg], fetch_failures: int, ack_failures: int) -> None:
        self.queue = list(msgs)
        self.fetch_failures = fetch_failures
        self.ack_failures = ack_failures
        self.acked: list[int] = []
        self.all_acked = asyncio.Event()
        self._total = len(msgs)

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        await asyncio.sleep(0)
        if self.fetch_failures > 0:
            self.fetch_failures -= 1
            raise TransientError("fetch ib.norm.points: TimeoutError")
        out, self.queue = self.queue[:batch], self.queue[batch:]
        return out

    async def ack_all(self, messages: Sequence[Msg]) -> None:
        if self.ack_failures > 0:
            self.ack_failures -= 1
            raise TransientError("ack: TimeoutError")
        self.acked += [m.stream_seq for m in messages]
        if len(self.acked) >= self._total:
            self.all_acked.set()


class FlakyAlarms:
    """The real alarm store, busy for the first writes of alarms and of the state."""

    def __init__(self, store: AlarmStore, write_failures: int, save_failures: int) -> None:
        self._store = store
        self.write_failures = write_failures
        self.save_failures = save_failures
        self.saved_before_ack: list[int] = []

    def apply_transitions(self, *args: Any) -> Any:
        if self.write_failures > 0:
            self.write_failures -= 1
            raise TransientError("registry database unavailable: database is locked")
        return self._store.apply_transitions(*args)

    def save_state(self, consumer: str, seq: int, state: Mapping[str, Any]) -> None:
        if self.save_failures > 0:
            self.save_failures -= 1
            raise TransientError("registry database unavailable: database is locked")
        self._store.save_state(consumer, seq, state)
        self.saved_before_ack.append(seq)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


class OneAsset:
    def series_by_id(self, who: object, ids: Sequence[int]) -> list[SeriesRef]:
        return [SeriesRef(id=i, asset_id="pump-1", measurement="temp") for i in ids]


def _points(seq: int, values: list[float]) -> Msg:
    n = len(values)
    batch = PointBatch(
        np.full(n, 1, np.int64),
        (np.arange(n, dtype=np.int64) + seq * 10) * S,
        np.asarray(values, np.float64),
    )
    return Msg(stream_seq=seq, data=batch_to_ipc(batch))


def test_transient_errors_are_retried_and_every_alarm_written_once(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    metadata.create_all(engine)
    real = AlarmStore(engine)
    rule = parse_rule(
        {
            "id": "hot",
            "name": "Hot",
            "kind": "threshold",
            "asset_type": "pump",
            "severity": "major",
            "params": {"measurement": "temp", "limit": 100},
        },
        tenant_id="root",
        tenant_path="/root/",
    )
    real.put_rule(None, rule, create=True)
    store = FlakyAlarms(real, write_failures=3, save_failures=2)
    source = FlakySource(
        [_points(1, [90.0, 95.0]), _points(2, [120.0, 130.0]), _points(3, [80.0])],
        fetch_failures=3,
        ack_failures=2,
    )
    worker = RulesWorker(
        source=source,
        store=store,  # type: ignore[arg-type]
        registry=OneAsset(),  # type: ignore[arg-type]
        snapshot_s=0.0,
        housekeeping_s=3600.0,
        clock=lambda: 40 * S,
    )
    worker._asset = lambda a: ("root", "/root/", "pump")  # type: ignore[method-assign]

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        acked = asyncio.ensure_future(source.all_acked.wait())
        await asyncio.wait({task, acked}, timeout=20.0, return_when=asyncio.FIRST_COMPLETED)
        assert not task.done(), task.exception()
        assert source.acked == [1, 2, 3]
        stop.set()
        await task

    asyncio.run(run())
    assert (source.fetch_failures, source.ack_failures) == (0, 0)
    assert (store.write_failures, store.save_failures) == (0, 0)
    assert store.saved_before_ack[-1] == 3  # nothing acknowledged beyond the saved state
    alarms = real.list_alarms(None, open_only=False)
    # raised by message 2, cleared by message 3: one alarm, not lost, not doubled
    assert [(a.rule_id, a.asset_id) for a in alarms] == [("hot", "pump-1")]
    assert alarms[0].active is False
    assert real.load_state("rules")[0] == 3


def test_retry_transient_gives_up_only_when_stopping() -> None:
    calls = 0
    slept: list[float] = []

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 5:
            raise TransientError("timeout")
        return "ok"

    async def no_sleep(s: float) -> None:
        slept.append(s)

    assert asyncio.run(retry_transient(flaky, "step", sleep=no_sleep)) == "ok"
    assert calls == 5
    assert len(slept) == 4
    assert all(0.05 <= d <= 0.1 * 2**i for i, d in enumerate(slept))

    async def stopping() -> None:
        stop = asyncio.Event()
        stop.set()
        await retry_transient(flaky, "step", stop=stop, sleep=no_sleep)

    calls = 0
    with pytest.raises(TransientError):
        asyncio.run(stopping())
    assert calls == 1
    assert max(backoff_delay(a, 0.1, 5.0) for a in range(40)) <= 5.0
