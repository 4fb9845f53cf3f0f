"""The edge agent's crash-safe store-and-forward buffer (SQLite in WAL mode).

Every collected point and event is committed here before it is forwarded. Forwarding
takes *batches*: rows are assigned to a numbered batch in one transaction before they are
sent, and deleted in one transaction when the uplink acknowledges the batch. After a crash
the unacknowledged batches are sent again first, with the same message id
(``<buffer uuid>-<batch id>``), so the platform can deduplicate them; nothing committed is
lost and nothing acknowledged is sent twice.

Drain order (:meth:`EdgeBuffer.next_batch`): unacknowledged batches, then events and
alarms, then the current value of every series, then history in time order (the caller
rate-limits history so backfill does not starve live data).

Drop policy when the disk budget is reached (:meth:`EdgeBuffer.enforce_budget`): events
and alarms are never dropped, nor the newest point of a series, nor points already in a
batch. Low-priority points go first, then the points of the series with the most buffered
rows (the high-rate ones), oldest first, a tenth of that series at a time.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Batch", "BatchKind", "BufferStats", "EdgeBuffer", "EventRecord", "Priority"]

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    sent_ts INTEGER NOT NULL DEFAULT -9223372036854775808);
CREATE TABLE IF NOT EXISTS points (
    id INTEGER PRIMARY KEY, sid INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL,
    prio INTEGER NOT NULL, batch INTEGER);
CREATE INDEX IF NOT EXISTS points_drain ON points (batch, ts);
CREATE INDEX IF NOT EXISTS points_series ON points (sid, ts);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL,
    batch INTEGER);
-- AUTOINCREMENT: a batch id (hence a message id) is never reused after an ack
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL);
"""


class Priority(enum.IntEnum):
    """Point priority for the drop policy (higher survives longer)."""

    LOW = 0
    NORMAL = 1


class BatchKind(enum.StrEnum):
    """What a batch carries, in drain order."""

    EVENTS = "events"
    CURRENT = "current"
    HISTORY = "history"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """An event or alarm: a kind (``alarm``, ``event``...) and an opaque body."""

    ts: int
    kind: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Batch:
    """Rows handed to the uplink; acknowledge with :meth:`EdgeBuffer.ack`.

    Attributes:
        id: the batch number, stable across restarts until acknowledged.
        msg_id: idempotency key for the uplink (``<buffer uuid>-<id>``).
        series, ts, values: the points, columnar (empty for an events batch).
    """

    id: int
    msg_id: str
    kind: BatchKind
    series: tuple[str, ...] = ()
    ts: tuple[int, ...] = ()
    values: tuple[float | None, ...] = ()
    events: tuple[EventRecord, ...] = ()

    def __len__(self) -> int:
        """Number of points plus events."""
        return len(self.ts) + len(self.events)


@dataclass(frozen=True, slots=True, kw_only=True)
class BufferStats:
    """Depth and size of the buffer."""

    points: int
    events: int
    pending_batches: int
    used_bytes: int
    budget_bytes: int
    dropped_points: int


class EdgeBuffer:
    """SQLite (WAL) store-and-forward buffer; thread-safe, one writer at a time.

    Args:
        path: the database file.
        budget_bytes: disk budget for the used pages of the database.
        synchronous: SQLite ``synchronous`` pragma. ``NORMAL`` (default) survives a
            process crash (kill -9) in WAL mode; ``FULL`` also survives power loss.
    """

    def __init__(
        self, path: str | Path, *, budget_bytes: int = 1 << 30, synchronous: str = "NORMAL"
    ) -> None:
        """Open or create the buffer."""
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous: unknown mode {synchronous!r}")
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
        self._db.executescript(_SCHEMA)
        self._series: dict[str, int] = dict(self._db.execute("SELECT name, id FROM series"))
        row = self._db.execute("SELECT value FROM meta WHERE key='uuid'").fetchone()
        if row is None:
            self.uuid = uuid.uuid4().hex
            self._db.execute("INSERT INTO meta VALUES ('uuid', ?)", (self.uuid,))
        else:
            self.uuid = str(row[0])
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        """A value the agent keeps across restarts (e.g. the Sparkplug bdSeq)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a value durably (committed before returning)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO meta VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def series_names(self) -> list[str]:
        """Every series name ever buffered."""
        with self._lock:
            return [str(r[0]) for r in self._db.execute("SELECT name FROM series ORDER BY id")]

    def close(self) -> None:
        """Close the database (a checkpoint folds the WAL back)."""
        with self._lock:
            self._db.close()

    # -- writing ---------------------------------------------------------------------

    def _sid(self, name: str) -> int:
        sid = self._series.get(name)
        if sid is None:
            cur = self._db.execute("INSERT INTO series (name) VALUES (?)", (name,))
            sid = int(cur.lastrowid or 0)
            self._series[name] = sid
        return sid

    def add_points(
        self,
        series: Sequence[str],
        ts: Sequence[int],
        values: Sequence[float | None],
        *,
        priority: Priority = Priority.NORMAL,
    ) -> int:
        """Commit points (one transaction); return how many were dropped by the budget."""
        if not len(series) == len(ts) == len(values):
            raise ValueError("series, ts and values differ in length")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                rows = [
                    (self._sid(s), int(t), v, int(priority))
                    for s, t, v in zip(series, ts, values, strict=True)
                ]
                self._db.executemany(
                    "INSERT INTO points (sid, ts, value, prio) VALUES (?, ?, ?, ?)", rows
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._series = dict(self._db.execute("SELECT name, id FROM series"))
                raise
        return self.enforce_budget()

    def add_event(self, event: EventRecord) -> None:
        """Commit one event or alarm (never dropped)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO events (ts, kind, body) VALUES (?, ?, ?)",
                (event.ts, event.kind, event.body),
            )

    # -- budget ----------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes in the database's used pages (free pages are reused, not counted)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self._page_size

    def enforce_budget(self) -> int:
        """Apply the drop policy until the buffer fits its budget; return points dropped."""
        dropped = 0
        with self._lock:
            while self.used_bytes() > self.budget_bytes:
                n = self._drop_some()
                if n == 0:
                    _LOGGER.warning("edge buffer over budget with nothing left it may drop")
                    break
                dropped += n
            if dropped:
                self._db.execute(
                    "INSERT INTO meta VALUES ('dropped', ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = CAST(value AS INTEGER) + excluded.value",
                    (str(dropped),),
                )
        return dropped

    def _drop_some(self) -> int:
        # the newest point of each series is kept: it is the series' current value
        low = self._db.execute(
            "DELETE FROM points WHERE id IN (SELECT id FROM points p WHERE prio = 0 AND "
            "batch IS NULL AND ts < (SELECT max(ts) FROM points q WHERE q.sid = p.sid) "
            "ORDER BY ts LIMIT 1000)"
        ).rowcount
        if low:
            return int(low)
        top = self._db.execute(
            "SELECT sid, count(*) FROM points WHERE batch IS NULL GROUP BY sid "
            "ORDER BY count(*) DESC LIMIT 1"
        ).fetchone()
        if top is None:
            return 0
        sid, count = top
        n = max(1, count // 10)
        return int(
            self._db.execute(
                "DELETE FROM points WHERE id IN (SELECT id FROM points WHERE sid = ? AND "
                "batch IS NULL AND ts < (SELECT max(ts) FROM points WHERE sid = ?) "
                "ORDER BY ts LIMIT ?)",
                (sid, sid, n),
            ).rowcount
        )

    # -- draining --------------------------------------------------------------------

    def next_batch(self, limit: int = 5000, *, history: bool = True) -> Batch | None:
        """The next batch to send, in drain order; None if nothing (allowed) is left.

        Args:
            limit: most points or events in the batch.
            history: whether a history batch may be formed (the caller's rate limit).
        """
        with self._lock:
            pending = self._db.execute(
                "SELECT id, kind FROM batches ORDER BY id LIMIT 1"
            ).fetchone()
            if pending is not None:
                return self._load(int(pending[0]), BatchKind(pending[1]))
            self._db.execute("BEGIN IMMEDIATE")
            try:
                batch = self._form(limit, history)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return batch

    def _new_batch(self, kind: BatchKind) -> int:
        cur = self._db.execute("INSERT INTO batches (kind) VALUES (?)", (kind.value,))
        return int(cur.lastrowid or 0)

    def _form(self, limit: int, history: bool) -> Batch | None:
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT id FROM events WHERE batch IS NULL ORDER BY id LIMIT ?", (limit,)
            )
        ]
        if ids:
            bid = self._new_batch(BatchKind.EVENTS)
            self._db.executemany("UPDATE events SET batch=? WHERE id=?", [(bid, i) for i in ids])
            return self._load(bid, BatchKind.EVENTS)
        # current value: the newest unsent point of each series that has a point newer
        # than anything of it already sent (else its newest unsent point is history)
        ids = [
            r[0]
            for r in self._db.execute(
                "SELECT (SELECT q.id FROM points q WHERE q.sid = s.id AND q.batch IS NULL "
                "ORDER BY q.ts DESC LIMIT 1) FROM series s WHERE EXISTS (SELECT 1 FROM "
                "points q WHERE q.sid = s.id AND q.batch IS NULL AND q.ts > s.sent_ts) "
                "LIMIT ?",
                (limit,),
            )
        ]
        kind = BatchKind.CURRENT
        if not ids:
            if not history:
                return None
            bid = self._new_batch(BatchKind.HISTORY)
            marked = self._db.execute(
                "UPDATE points SET batch=? WHERE id IN (SELECT id FROM points "
                "WHERE batch IS NULL ORDER BY ts, id LIMIT ?)",
                (bid, limit),
            ).rowcount
            if not marked:
                self._db.execute("DELETE FROM batches WHERE id=?", (bid,))
                return None
            return self._load(bid, BatchKind.HISTORY)
        bid = self._new_batch(kind)
        self._db.executemany("UPDATE points SET batch=? WHERE id=?", [(bid, i) for i in ids])
        return self._load(bid, kind)

    def _load(self, bid: int, kind: BatchKind) -> Batch:
        msg_id = f"{self.uuid}-{bid}"
        if kind is BatchKind.EVENTS:
            events = tuple(
                EventRecord(ts=int(ts), kind=str(k), body=bytes(body))
                for ts, k, body in self._db.execute(
                    "SELECT ts, kind, body FROM events WHERE batch=? ORDER BY id", (bid,)
                )
            )
            return Batch(id=bid, msg_id=msg_id, kind=kind, events=events)
        rows = self._db.execute(
            "SELECT s.name, p.ts, p.value FROM points p JOIN series s ON s.id = p.sid "
            "WHERE p.batch=? ORDER BY p.ts, p.id",
            (bid,),
        ).fetchall()
        return Batch(
            id=bid,
            msg_id=msg_id,
            kind=kind,
            series=tuple(r[0] for r in rows),
            ts=tuple(int(r[1]) for r in rows),
            values=tuple(r[2] for r in rows),
        )

    def ack(self, batch: Batch) -> None:
        """The uplink acknowledged ``batch``: delete its rows (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            if batch.kind is BatchKind.EVENTS:
                self._db.execute("DELETE FROM events WHERE batch=?", (batch.id,))
            else:
                self._db.execute(
                    "UPDATE series SET sent_ts = max(sent_ts, (SELECT max(ts) FROM points "
                    "WHERE batch = ? AND sid = series.id)) WHERE id IN (SELECT sid FROM "
                    "points WHERE batch = ?)",
                    (batch.id, batch.id),
                )
                self._db.execute("DELETE FROM points WHERE batch=?", (batch.id,))
            self._db.execute("DELETE FROM batches WHERE id=?", (batch.id,))
            self._db.execute("COMMIT")

    def stats(self) -> BufferStats:
        """Current depth, size and drop count."""
        with self._lock:
            points = self._db.execute("SELECT count(*) FROM points").fetchone()[0]
            events = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
            pending = self._db.execute("SELECT count(*) FROM batches").fetchone()[0]
            dropped = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
            return BufferStats(
                points=int(points),
                events=int(events),
                pending_batches=int(pending),
                used_bytes=self.used_bytes(),
                budget_bytes=self.budget_bytes,
                dropped_points=int(dropped[0]) if dropped else 0,
            )
