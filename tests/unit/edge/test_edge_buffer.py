"""Edge buffer: drain order, exactly-once bookkeeping, kill -9 safety, drop policy."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np

from ironbridge.edge.buffer import BatchKind, EdgeBuffer, EventRecord, Priority


def test_drain_order_and_ack(tmp_path: Path) -> None:
    buf = EdgeBuffer(tmp_path / "b.db")
    buf.add_points(["a", "a", "a", "b"], [3, 1, 2, 5], [3.0, 1.0, 2.0, 5.0])
    buf.add_event(EventRecord(ts=9, kind="alarm", body=b"hot"))
    buf.mark_connected()  # the link returns: what is buffered is history
    first = buf.next_batch()
    assert first is not None
    assert first.kind is BatchKind.EVENTS
    assert [e.body for e in first.events] == [b"hot"]
    again = buf.next_batch()  # unacknowledged: offered again, same id
    assert again is not None
    assert (again.msg_id, again.events) == (first.msg_id, first.events)
    buf.ack(first)
    current = buf.next_batch()
    assert current is not None
    assert current.kind is BatchKind.CURRENT
    assert sorted(zip(current.series, current.ts, strict=True)) == [("a", 3), ("b", 5)]
    buf.ack(current)
    assert buf.next_batch(history=False) is None  # history held back by the rate limit
    hist = buf.next_batch(limit=1)
    assert hist is not None
    assert hist.kind is BatchKind.HISTORY
    # a whole block, in time order, without the points already sent as current values
    assert list(zip(hist.series, hist.ts.tolist(), strict=True)) == [("a", 1), ("a", 2)]
    buf.ack(hist)
    buf.add_points(["a"], [10], [10.0])  # history still waiting...
    buf.add_points(["a"], [20], [20.0])  # ... while live data goes first
    buf.mark_connected()
    buf.add_points(["a"], [30], [30.0])
    current = buf.next_batch()
    assert current is not None
    assert (current.kind, current.ts.tolist()) == (BatchKind.CURRENT, [30])
    buf.ack(current)
    live = buf.next_batch(history=False)  # its block holds only the point already sent
    assert live is not None
    assert (live.kind, len(live)) == (BatchKind.LIVE, 0)
    buf.ack(live)
    hist = buf.next_batch()
    assert hist is not None
    assert (hist.kind, hist.ts.tolist()) == (BatchKind.HISTORY, [10, 20])
    buf.ack(hist)
    assert buf.next_batch() is None
    stats = buf.stats()
    assert (stats.points, stats.events, stats.pending_batches) == (0, 0, 0)
    buf.close()


def test_unacked_batch_survives_reopen_with_same_msg_id(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    buf = EdgeBuffer(path)
    buf.add_points(["s"] * 5, list(range(5)), [float(i) for i in range(5)])
    sent = buf.next_batch()
    assert sent is not None
    buf.close()  # "crash" before the ack
    again = EdgeBuffer(path)
    resent = again.next_batch()
    assert resent is not None
    assert (resent.msg_id, resent.kind, resent.ts.tolist()) == (sent.msg_id, sent.kind, [4])
    assert resent.msg_id.startswith(again.uuid)
    delivered: dict[str, list[int]] = {}
    batch = resent
    while batch is not None:
        delivered.setdefault(batch.msg_id, batch.ts.tolist())  # the platform dedups on msg_id
        again.ack(batch)
        batch = again.next_batch()
    assert sorted(t for ts in delivered.values() for t in ts) == [0, 1, 2, 3, 4]
    again.close()


_WRITER = """
import sys
from ironbridge.edge.buffer import EdgeBuffer, EventRecord
buf = EdgeBuffer(sys.argv[1])
i = 0
while True:
    buf.add_points(["s1", "s2"] * 50, [i * 100 + k for k in range(100)], [1.0] * 100)
    buf.add_event(EventRecord(ts=i, kind="alarm", body=b"x"))
    i += 1
    print(i, flush=True)
"""


def test_kill_9_loses_nothing_committed(tmp_path: Path) -> None:
    path = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    committed = 0
    for line in proc.stdout:
        committed = int(line)
        if committed >= 40:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # lines printed before the kill: committed too
        committed = int(line)
    proc.stdout.close()
    buf = EdgeBuffer(path)
    stats = buf.stats()
    # everything reported committed is there; at most one more loop iteration partially
    assert committed * 100 <= stats.points <= (committed + 1) * 100
    assert stats.points % 100 == 0  # a transaction is all or nothing
    assert committed <= stats.events <= committed + 1
    assert buf.next_batch() is not None
    buf.close()


def test_tiny_budget_drops_high_rate_history_never_events(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)  # random values: blocks do not compress away
    buf = EdgeBuffer(tmp_path / "t.db", budget_bytes=96 * 1024)
    dropped = 0
    for i in range(40):
        ts = list(range(i * 200, (i + 1) * 200))
        dropped += buf.add_points(["fast"] * 200, ts, rng.normal(size=200))
        dropped += buf.add_points(
            ["chatty"] * 50, ts[:50], rng.normal(size=50), priority=Priority.LOW
        )
        dropped += buf.add_points(["slow"], [i], [float(i)])
        buf.add_event(EventRecord(ts=i, kind="alarm", body=b"a" * 20))
    stats = buf.stats()
    assert dropped > 0
    assert stats.dropped_points == dropped
    assert stats.used_bytes <= stats.budget_bytes
    assert stats.events == 40  # alarms are never dropped
    drained: dict[str, list[int]] = {}
    batch = buf.next_batch()
    while batch is not None:
        for s, t in zip(batch.series, batch.ts.tolist(), strict=True):
            drained.setdefault(s, []).append(t)
        buf.ack(batch)
        batch = buf.next_batch()
    assert len(drained["slow"]) == 40  # the low-rate series kept everything
    assert max(drained["fast"]) == 40 * 200 - 1  # newest point of every series kept
    assert max(drained["chatty"]) == 39 * 200 + 49
    assert len(drained["chatty"]) < 40 * 50 / 2  # low priority went first
    assert len(drained["fast"]) < 40 * 200
    assert sum(len(v) for v in drained.values()) + dropped == 40 * 251
    buf.close()


def test_columnar_block_round_trip_keeps_nulls_and_order(tmp_path: Path) -> None:
    buf = EdgeBuffer(tmp_path / "c.db")
    buf.add_points(["x", "y", "x"], [5, 4, 3], [1.5, None, 2.5])
    cur = buf.next_batch()
    assert cur is not None
    assert sorted(zip(cur.series, cur.ts.tolist(), strict=True)) == [("x", 5), ("y", 4)]
    assert np.isnan(cur.values[list(cur.series).index("y")])
    buf.ack(cur)
    hist = buf.next_batch()
    assert hist is not None
    assert list(zip(hist.series, hist.ts.tolist(), hist.values.tolist(), strict=True)) == [
        ("x", 3, 2.5)
    ]
    buf.close()


def test_a_point_in_flight_is_not_sent_again_as_a_current_value(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    buf = EdgeBuffer(path)
    buf.add_points(["a", "b"], [1, 1], [1.0, 1.0])
    first = buf.next_batch()  # current values a@1, b@1
    assert first is not None
    buf.ack(first)
    buf.add_points(["a"], [2], [2.0])
    live = buf.next_batch()  # live block a@2, sent but not acknowledged: link lost
    assert live is not None
    assert live.ts.tolist() == [2]
    buf.mark_connected()
    again = buf.next_batch()  # the unacknowledged batch first
    assert again is not None
    assert again.msg_id == live.msg_id
    buf.ack(again)
    assert buf.next_batch() is None  # no current value a@2 a second time
    buf.add_points(["a"], [3], [3.0])
    buf.close()
    reopened = EdgeBuffer(path)  # after a restart too
    current = reopened.next_batch()
    assert current is not None
    assert (current.kind, current.ts.tolist()) == (BatchKind.CURRENT, [3])
    rest = reopened.next_batch(in_flight=[current.id])  # its block, without that point
    assert rest is not None
    assert len(rest) == 0
    reopened.close()
