"""Device events through ingest: validation, and stored with the points in one commit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest

from ironbridge.ingest import IngestWorker, RouteCache, to_events
from ironbridge.model import Event, InvalidInput, parse_asset_type
from ironbridge.store import Checkpoint, DeviceRoute, PointBatch

TYPE = parse_asset_type({"name": "bus", "measurements": [{"name": "soc"}]})
ROUTE = DeviceRoute(
    device_id="nev-1",
    tenant_id="root",
    revoked=False,
    asset_ids=("bus-1", "bus-2"),
    types={"bus-1": TYPE, "bus-2": TYPE},
    series={"bus-1": {"soc": 1}, "bus-2": {"soc": 2}},
)
NOW = 1_700_000_000_000_000


def test_events_decode_with_defaults() -> None:
    body = (
        b'{"events": [{"ts": 1700000000000, "kind": "j1939_dtc", "code": "SPN110-FMI0",'
        b' "payload": {"state": "opened"}}, {"kind": "k", "code": "c", "asset": "bus-2"}]}'
    )
    ev = to_events(body, ROUTE, NOW - 5, NOW)
    assert ev[0] == Event(
        asset_id="bus-1",
        ts_us=NOW,
        kind="j1939_dtc",
        code="SPN110-FMI0",
        payload={"state": "opened"},
    )
    assert (ev[1].asset_id, ev[1].ts_us, ev[1].payload) == ("bus-2", NOW - 5, {})


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"nope", ""),
        (b'{"x": 1}', "events"),
        (b'{"events": [1]}', "events[0]"),
        (b'{"events": [{"kind": "k", "code": "c", "asset": "other"}]}', "events[0].asset"),
        (b'{"events": [{"kind": "", "code": "c"}]}', "events[0].kind"),
        (b'{"events": [{"kind": "k", "code": "c", "ts": 5}]}', "events[0].ts"),
        (b'{"events": [{"kind": "k", "code": "c", "ts": "soon"}]}', "events[0].ts"),
        (b'{"events": [{"kind": "k", "code": "c", "payload": []}]}', "events[0].payload"),
    ],
)
def test_bad_events_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        to_events(body, ROUTE, NOW, NOW)
    assert err.value.field == field


@dataclass
class Msg:
    subject: str
    data: bytes
    stream_seq: int
    headers: Mapping[str, str] | None = None
    timestamp_us: int = NOW


class Source:
    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        return []

    async def ack_all(self, messages: Sequence[object]) -> None:
        self.acked = len(messages)


class Pub:
    def __init__(self) -> None:
        self.subjects: list[str] = []

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.subjects.append(subject)
        return 1


class Store:
    def __init__(self) -> None:
        self.calls: list[tuple[int, list[Event], object]] = []

    def append(
        self, points: PointBatch, events: Sequence[Event] = (), checkpoint: object = None
    ) -> int:
        self.calls.append((len(points), list(events), checkpoint))
        return len(points)

    def checkpoint(self, consumer: str) -> int:
        return 0


async def test_worker_commits_events_and_points_together_and_dead_letters_bad_events() -> None:
    store, pub = Store(), Pub()
    worker = IngestWorker(
        source=Source(),  # type: ignore[arg-type]
        publisher=pub,
        store=store,  # type: ignore[arg-type]
        routes=RouteCache(lambda d: ROUTE),
        clock=lambda: NOW,
    )
    await worker.process(
        [
            Msg("ib.v1.nev-1.telemetry", b'{"ts": 1700000000000, "values": {"soc": 50}}', 1),
            Msg(
                "ib.v1.nev-1.events",
                b'{"events": [{"ts": 1700000000000, "kind": "k", "code": "c"}]}',
                2,
            ),
            Msg("ib.v1.nev-1.events", b'{"events": [{"kind": "k"}]}', 3),
        ]
    )
    assert len(store.calls) == 1
    n_points, events, cp = store.calls[0]
    assert n_points == 1
    assert [e.code for e in events] == ["c"]
    assert cp == [Checkpoint(consumer="ingest", seq=3)]
    assert "ib.dead.nev-1" in pub.subjects
    assert worker.stats.events == 1
