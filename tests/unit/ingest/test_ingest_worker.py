"""The ingest worker with a real DuckDB store; the bus is faked at its I/O seam."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
import pytest

from ironbridge.ingest import IngestWorker, RouteCache, ipc_to_batch, resume_after
from ironbridge.model import NotFound, PermanentError, TransientError, parse_asset_type
from ironbridge.store import DeviceRoute
from ironbridge.store.duckdb import DuckDBTelemetryStore

T0_MS = 1_795_000_000_000
NOW_US = (T0_MS + 60_000) * 1000
TYPE = parse_asset_type({"name": "pump", "measurements": [{"name": "flow", "min": 0, "max": 100}]})
ROUTE = DeviceRoute(
    device_id="dev-1",
    tenant_id="root",
    revoked=False,
    asset_ids=("pump-1",),
    types={"pump-1": TYPE},
    series={"pump-1": {"flow": 7}},
)


@dataclass
class Msg:
    subject: str
    data: bytes
    stream_seq: int
    headers: Mapping[str, str] | None = None
    timestamp_us: int = NOW_US


@dataclass
class FakeBus:
    """Records publishes and acks; what a real JetStream would be asked to do."""

    published: list[tuple[str, bytes, dict[str, str], str | None]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)
    store: DuckDBTelemetryStore | None = None
    count_at_ack: list[int] = field(default_factory=list)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.published.append((subject, payload, dict(headers or {}), msg_id))
        return len(self.published)

    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        return []

    async def ack_all(self, messages: Sequence[object]) -> None:
        assert self.store is not None
        self.count_at_ack.append(self.store.count())
        self.acked.extend(m.stream_seq for m in messages)  # type: ignore[attr-defined]


def lookup(device_id: str) -> DeviceRoute:
    if device_id == "dev-1":
        return ROUTE
    raise NotFound("device", device_id)


def sample(seq: int, value: float, device: str = "dev-1") -> Msg:
    body = orjson.dumps({"ts": T0_MS + seq * 1000, "values": {"flow": value}})
    return Msg(subject=f"ib.v1.{device}.telemetry", data=body, stream_seq=seq)


def worker(store: DuckDBTelemetryStore, bus: FakeBus) -> IngestWorker:
    bus.store = store
    return IngestWorker(
        source=bus,
        publisher=bus,
        store=store,
        routes=RouteCache(lookup),
        clock=lambda: NOW_US,
    )


async def test_commit_then_ack_dead_letters_and_normalised_batches() -> None:
    store = DuckDBTelemetryStore(":memory:")
    bus = FakeBus()
    w = worker(store, bus)
    await w.process(
        [sample(1, 10.0), sample(2, 500.0), sample(3, 30.0, device="ghost"), sample(4, 40.0)]
    )
    # acked only after the points were committed, and all four acked
    assert bus.count_at_ack == [2]
    assert bus.acked == [1, 2, 3, 4]
    assert store.checkpoint("ingest") == 4
    letters = {
        h["Ib-Seq"]: (s, h["Ib-Field"], h["Ib-Reason"], mid)
        for s, _, h, mid in bus.published
        if s.startswith("ib.dead.")
    }
    assert letters["2"][0] == "ib.dead.dev-1"
    assert letters["2"][1] == "values.flow"
    assert "above the valid range" in letters["2"][2]
    assert letters["2"][3] == "dl-2"
    assert letters["3"][:3] == ("ib.dead.ghost", "device", "unknown device 'ghost'")
    [norm] = [p for s, p, _, _ in bus.published if s == "ib.norm.points"]
    batch = ipc_to_batch(norm)
    assert batch.series.tolist() == [7, 7]
    assert batch.value.tolist() == [10.0, 40.0]
    store.close()


async def test_redelivered_messages_at_or_below_the_checkpoint_are_not_stored_again() -> None:
    store = DuckDBTelemetryStore(":memory:")
    bus = FakeBus()
    w = worker(store, bus)
    await w.process([sample(1, 10.0), sample(2, 20.0)])
    # a redelivery of 2 (lost ack) alongside a new message 3
    await w.process([sample(2, 99.0), sample(3, 30.0)])
    raw = store.raw([7], (T0_MS) * 1000, (T0_MS + 10_000) * 1000)
    assert raw["value"].to_pylist() == [10.0, 20.0, 30.0]
    assert w.stats.skipped_redelivered == 1
    assert bus.acked == [1, 2, 2, 3]
    # a restarted worker reads the checkpoint from the store and skips what it covers
    again = worker(store, FakeBus())
    await again.process([sample(3, 77.0), sample(4, 40.0)])
    raw = store.raw([7], (T0_MS) * 1000, (T0_MS + 10_000) * 1000)
    assert raw["value"].to_pylist() == [10.0, 20.0, 30.0, 40.0]
    store.close()


@dataclass
class FlakyBus(FakeBus):
    """Times out the first ``failures`` publishes, as a JetStream under heavy load does."""

    failures: int = 3

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise TransientError(f"publish {subject}: TimeoutError")
        return await super().publish(subject, payload, headers, msg_id)


async def test_a_publish_timeout_is_retried_and_does_not_stop_the_worker() -> None:
    store = DuckDBTelemetryStore(":memory:")
    bus = FlakyBus()
    w = worker(store, bus)
    await w.process([sample(1, 10.0), sample(2, 500.0), sample(3, 30.0)])
    assert w.stats.publish_retries == 3
    assert bus.acked == [1, 2, 3]
    subjects = [s for s, _, _, _ in bus.published]
    assert subjects == ["ib.dead.dev-1", "ib.norm.points"]
    store.close()


@dataclass
class DeadConsumer(FakeBus):
    """A consumer whose stream leader is gone: every fetch fails, a few then recover."""

    fail_fetches: int = 1_000
    #: set at the first fetch that works (the test then stops the worker)
    recovered: asyncio.Event = field(default_factory=asyncio.Event)

    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        if self.fail_fetches > 0:
            self.fail_fetches -= 1
            raise TransientError("fetch IB_RAW/ingest: JetStream unavailable")
        self.recovered.set()
        return []


async def test_a_few_failed_fetches_are_retried_then_the_consumer_is_given_up() -> None:
    store = DuckDBTelemetryStore(":memory:")
    flaky = DeadConsumer(fail_fetches=2)
    w = worker(store, flaky)
    stop = flaky.recovered
    await w.run(stop)  # recovered: ended by the stop, not by the errors
    assert w.stats.fetch_retries == 2
    dead = worker(DuckDBTelemetryStore(":memory:"), DeadConsumer())
    with pytest.raises(TransientError):
        await dead.run(asyncio.Event())  # the owner recreates the consumer at the checkpoint
    store.close()


@dataclass
class NormDown(FakeBus):
    """Takes dead letters but refuses normalised batches (the process dies there)."""

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        if subject == "ib.norm.points":
            raise PermanentError("stream", "the process was killed here")
        return await super().publish(subject, payload, headers, msg_id)


def _norm(bus: FakeBus) -> list[tuple[str | None, list[float]]]:
    return [
        (mid, ipc_to_batch(p).value.tolist())
        for s, p, _, mid in bus.published
        if s == "ib.norm.points"
    ]


async def test_a_batch_committed_but_not_published_is_published_again_not_stored_again() -> None:
    store = DuckDBTelemetryStore(":memory:")
    first = FakeBus()
    await worker(store, first).process([sample(1, 10.0)])
    assert _norm(first) == [("norm-1-0", [10.0])]
    assert resume_after(store, "ingest") == (1, 1)
    # the next batch commits, then the process dies before its normalised batch is out
    down = NormDown()
    with pytest.raises(PermanentError):
        await worker(store, down).process([sample(2, 20.0), sample(3, 500.0), sample(4, 40.0)])
    assert store.checkpoint("ingest") == 4
    assert down.acked == []  # not acknowledged either
    applied, published = resume_after(store, "ingest")
    assert (applied, published) == (4, 1)
    # the restarted consumer delivers from published + 1 (the committed range, then new)
    bus = FakeBus()
    again = worker(store, bus)
    await again.process([sample(2, 20.0), sample(3, 500.0)])  # the range, not all read yet
    assert _norm(bus) == []
    await again.process([sample(4, 40.0), sample(5, 50.0)])
    # the committed batch goes out under its original message id, then the new one
    assert _norm(bus) == [("norm-4-0", [20.0, 40.0]), ("norm-5-0", [50.0])]
    assert again.stats.republished == 1
    assert not [s for s, _, _, _ in bus.published if s.startswith("ib.dead.")]  # sent before
    assert store.count() == 5 - 1  # 1, 2, 4, 5 stored once (3 was out of range)
    assert bus.acked == [2, 3, 4, 5]
    # the mark rides the next commit: batch 4's is stored, batch 5's not yet
    assert resume_after(store, "ingest") == (5, 4)
    # so a crash now brings batch 5 out again under its id (JetStream drops the copy)
    later = FakeBus()
    await worker(store, later).process([sample(5, 50.0), sample(6, 60.0)])
    assert _norm(later) == [("norm-5-0", [50.0]), ("norm-6-0", [60.0])]
    assert store.count() == 5
    store.close()


@dataclass
class Feed(FakeBus):
    """Delivers the given fetches in turn, then idles; stops the worker after ``idle``."""

    fetches: list[list[Msg]] = field(default_factory=list)
    idle: int = 2
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        if self.fetches:
            return self.fetches.pop(0)
        self.idle -= 1
        if self.idle <= 0:
            self.stop.set()
        return []


async def test_the_published_mark_is_written_when_the_stream_goes_idle_and_at_stop() -> None:
    store = DuckDBTelemetryStore(":memory:")
    feed = Feed(fetches=[[sample(1, 10.0)], [sample(2, 20.0)]], idle=1)
    await worker(store, feed).run(feed.stop)
    assert _norm(feed) == [("norm-1-0", [10.0]), ("norm-2-0", [20.0])]
    assert resume_after(store, "ingest") == (2, 2)  # idle: nothing left to publish again
    store.close()
