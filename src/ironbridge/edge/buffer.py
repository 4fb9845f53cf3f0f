"""The edge agent's crash-safe store-and-forward buffer (SQLite in WAL mode), columnar.

Every collected chunk of points is committed here, as one *block* row (series ids,
timestamps and values as compressed numpy columns), before it is forwarded; events and
alarms are rows of their own. Forwarding takes *batches*: blocks (or events) are
assigned to a numbered batch in one transaction before they are sent, and deleted in
one transaction when the uplink acknowledges the batch. After a crash the
unacknowledged batch is sent again first, identical, with the same message id
(``<buffer uuid>-<batch id>``); nothing committed is lost and nothing acknowledged is
sent twice.

Drain order (:meth:`EdgeBuffer.next_batch`): the unacknowledged batch, then events and
alarms, then -- once per (re)connection, :meth:`EdgeBuffer.mark_connected` -- the current
value of every series (its newest point, if newer than anything of it already sent; a
copy is stored with the batch and the point is recorded in ``skips`` so it is not sent
again), then *live* data (blocks committed since the link came back, oldest first, not
flagged historical), then *history* (the blocks buffered before, in the order they were
committed; within a block in time order), so each series' history arrives in time order
as long as each source delivers a series in time order. The caller rate-limits history;
live data always goes first, so the backfill never starves it.

Drop policy when the disk budget is reached (:meth:`EdgeBuffer.enforce_budget`): events
and alarms are never dropped, nor the newest point of a series, nor points already in a
batch. Low-priority blocks go first (oldest first), then, among the oldest blocks, the
points of the series with the most points (the high-rate ones), a tenth of them at a
time, oldest first.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
import threading
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Batch", "BatchKind", "BufferStats", "EdgeBuffer", "EventRecord", "Priority"]

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
-- one row per committed chunk; copy = 1: the stored copy of a "current" batch
CREATE TABLE IF NOT EXISTS blocks (
    id INTEGER PRIMARY KEY, n INTEGER NOT NULL, prio INTEGER NOT NULL,
    batch INTEGER, copy INTEGER NOT NULL DEFAULT 0,
    sids BLOB NOT NULL, ts BLOB NOT NULL, vals BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS blocks_batch ON blocks (batch);
-- points already delivered as current values: the history leaves them out
CREATE TABLE IF NOT EXISTS skips (
    sid INTEGER NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (sid, ts)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL,
    batch INTEGER);
-- AUTOINCREMENT: a batch id (hence a message id) is never reused after an ack
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL);
"""

_I32 = np.dtype("<i4")
_I64 = np.dtype("<i8")
_F64 = np.dtype("<f8")
_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)


class Priority(enum.IntEnum):
    """Point priority for the drop policy (higher survives longer)."""

    LOW = 0
    NORMAL = 1


class BatchKind(enum.StrEnum):
    """What a batch carries, in drain order."""

    EVENTS = "events"
    CURRENT = "current"
    LIVE = "live"
    HISTORY = "history"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """An event or alarm: a kind (``alarm``, ``event``...) and an opaque body."""

    ts: int
    kind: str
    body: bytes


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Batch:
    """Rows handed to the uplink; acknowledge with :meth:`EdgeBuffer.ack`.

    Attributes:
        id: the batch number, stable across restarts until acknowledged.
        msg_id: idempotency key for the uplink (``<buffer uuid>-<id>``).
        sids, ts, values: the points, columnar (series id, ms, value; NaN = null).
        names: series id -> series name, for the ids in ``sids``.
        events: the events of an events batch.
    """

    id: int
    msg_id: str
    kind: BatchKind
    sids: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I)
    ts: npt.NDArray[np.int64] = field(default_factory=lambda: _EMPTY_I)
    values: npt.NDArray[np.float64] = field(default_factory=lambda: _EMPTY_F)
    names: dict[int, str] = field(default_factory=dict)
    events: tuple[EventRecord, ...] = ()

    @property
    def series(self) -> tuple[str, ...]:
        """The series name of every point (a Python tuple: for tests and small batches)."""
        return tuple(self.names[int(s)] for s in self.sids)

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
    #: points ever committed to this buffer (across restarts)
    collected_points: int = 0


def _pack(a: npt.NDArray[np.generic]) -> bytes:
    return zlib.compress(a.tobytes(), 1)


def _pack_ts(ts: npt.NDArray[np.int64]) -> bytes:
    delta = np.empty_like(ts)
    if len(ts):
        delta[0] = ts[0]
        np.subtract(ts[1:], ts[:-1], out=delta[1:])
    return _pack(delta.astype(_I64))


def _unpack_block(
    sids: bytes, ts: bytes, vals: bytes
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    s = np.frombuffer(zlib.decompress(sids), dtype=_I32).astype(np.int64)
    t = np.cumsum(np.frombuffer(zlib.decompress(ts), dtype=_I64))
    v = np.frombuffer(zlib.decompress(vals), dtype=_F64).astype(np.float64)
    return s, t, v


def _floats(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


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
        self._names: dict[int, str] = {sid: name for name, sid in self._series.items()}
        row = self._db.execute("SELECT value FROM meta WHERE key='uuid'").fetchone()
        if row is None:
            self.uuid = uuid.uuid4().hex
            self._db.execute("INSERT INTO meta VALUES ('uuid', ?)", (self.uuid,))
        else:
            self.uuid = str(row[0])
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._skips: set[tuple[int, int]] = set(self._db.execute("SELECT sid, ts FROM skips"))
        self._skip_cache: npt.NDArray[np.int64] | None = None
        #: newest committed point of each series not yet sent as current (this run)
        self._latest: dict[int, tuple[int, float]] = {}
        #: newest timestamp of each series delivered (this run)
        self._sent_ts: dict[int, int] = {}
        #: newest timestamp of each series committed (rebuilt from the newest blocks)
        self._newest: dict[int, int] = {}
        for sids, ts, vals in self._db.execute(
            "SELECT sids, ts, vals FROM blocks WHERE copy = 0 AND batch IS NULL "
            "ORDER BY id DESC LIMIT 200"
        ):
            s, t, v = _unpack_block(sids, ts, vals)
            ids, newest, last = _newest_per_series(s, t, v)
            for sid, tmax, value in zip(ids.tolist(), newest.tolist(), last, strict=True):
                if sid not in self._newest:
                    self._newest[sid] = tmax
                    self._latest[sid] = (tmax, value)
        #: blocks above this id are live data (committed since the link came back)
        self._live_after = int(
            self._db.execute("SELECT coalesce(max(id), 0) FROM blocks").fetchone()[0]
        )
        self._current_due = True

    def mark_connected(self) -> None:
        """The link came back: what is buffered now is history; send current values."""
        with self._lock:
            self._live_after = int(
                self._db.execute("SELECT coalesce(max(id), 0) FROM blocks").fetchone()[0]
            )
            self._current_due = True

    def _skip_keys(self) -> npt.NDArray[np.int64]:
        if self._skip_cache is None:
            self._skip_cache = np.sort(
                np.fromiter((sid << 42 | ts for sid, ts in self._skips), dtype=np.int64)
            )
        return self._skip_cache

    def _skipped(self, s: npt.NDArray[np.int64], t: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which points were already delivered as current values (vectorised)."""
        if not self._skips or not len(s):
            return np.zeros(len(s), dtype=bool)
        keys = self._skip_keys()
        probe = (s << 42) | t
        at = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
        return np.asarray(keys[at] == probe)

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
            self._names[sid] = name
        return sid

    def add_points(
        self,
        series: Sequence[str],
        ts: Sequence[int] | npt.NDArray[np.int64],
        values: Sequence[float | None] | npt.NDArray[np.float64],
        *,
        priority: Priority = Priority.NORMAL,
    ) -> int:
        """Commit points as one block (one transaction); return how many were dropped.

        Within the block the points are kept in time order (a stable sort), so a
        series' history is sent in time order.
        """
        if not len(series) == len(ts) == len(values):
            raise ValueError("series, ts and values differ in length")
        if not len(series):
            return 0
        t = np.asarray(ts, dtype=np.int64)
        v = values if isinstance(values, np.ndarray) else _floats(values)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                lookup = self._series
                s = np.fromiter(
                    (lookup[n] if n in lookup else self._sid(n) for n in series),
                    dtype=np.int64,
                    count=len(series),
                )
                if len(t) > 1 and np.any(t[1:] < t[:-1]):
                    order = np.argsort(t, kind="stable")
                    s, t, v = s[order], t[order], v[order]
                self._db.execute(
                    "INSERT INTO blocks (n, prio, sids, ts, vals) VALUES (?, ?, ?, ?, ?)",
                    (
                        len(s),
                        int(priority),
                        _pack(s.astype(_I32)),
                        _pack_ts(t),
                        _pack(v.astype(_F64)),
                    ),
                )
                self._db.execute(
                    "INSERT INTO meta VALUES ('collected', ?) ON CONFLICT(key) DO UPDATE "
                    "SET value = CAST(value AS INTEGER) + excluded.value",
                    (str(len(s)),),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                self._series = dict(self._db.execute("SELECT name, id FROM series"))
                self._names = {sid: name for name, sid in self._series.items()}
                raise
            sids, newest, last_value = _newest_per_series(s, t, v)
            for sid, tmax, value in zip(sids.tolist(), newest.tolist(), last_value, strict=True):
                if tmax >= self._newest.get(sid, tmax):
                    self._newest[sid] = tmax
                    self._latest[sid] = (tmax, float(value))
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
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    n = self._drop_some()
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
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

    def _rewrite(
        self,
        bid: int,
        s: npt.NDArray[np.int64],
        t: npt.NDArray[np.int64],
        v: npt.NDArray[np.float64],
        drop: npt.NDArray[np.bool_],
    ) -> int:
        """Remove the ``drop`` points of block ``bid`` (never a series' newest point)."""
        newest = np.array([self._newest.get(int(x), -1) for x in s], dtype=np.int64)
        drop = drop & (t < newest)
        n = int(drop.sum())
        if not n:
            return 0
        for sid, ts in zip(s[drop].tolist(), t[drop].tolist(), strict=True):
            if (sid, ts) in self._skips:
                self._skips.discard((sid, ts))
                self._skip_cache = None
                self._db.execute("DELETE FROM skips WHERE sid=? AND ts=?", (sid, ts))
        keep = ~drop
        if not keep.any():
            self._db.execute("DELETE FROM blocks WHERE id=?", (bid,))
        else:
            self._db.execute(
                "UPDATE blocks SET n=?, sids=?, ts=?, vals=? WHERE id=?",
                (
                    int(keep.sum()),
                    _pack(s[keep].astype(_I32)),
                    _pack_ts(t[keep]),
                    _pack(v[keep].astype(_F64)),
                    bid,
                ),
            )
        return n

    def _drop_some(self) -> int:
        rows = self._db.execute(
            "SELECT id, sids, ts, vals FROM blocks WHERE batch IS NULL AND prio = 0 "
            "ORDER BY id LIMIT 20"
        ).fetchall()
        dropped = 0
        for bid, sids, ts, vals in rows:
            s, t, v = _unpack_block(sids, ts, vals)
            dropped += self._rewrite(bid, s, t, v, np.ones(len(s), dtype=bool))
        if dropped:
            return dropped
        rows = self._db.execute(
            "SELECT id, sids, ts, vals FROM blocks WHERE batch IS NULL ORDER BY id LIMIT 50"
        ).fetchall()
        blocks = [(bid, *_unpack_block(sids, ts, vals)) for bid, sids, ts, vals in rows]
        if not blocks:
            return 0
        all_sids = np.concatenate([b[1] for b in blocks])
        all_ts = np.concatenate([b[2] for b in blocks])
        newest = np.array([self._newest.get(int(x), -1) for x in all_sids], dtype=np.int64)
        droppable = all_ts < newest
        if not droppable.any():
            return 0
        ids, counts = np.unique(all_sids[droppable], return_counts=True)
        top = int(ids[np.argmax(counts)])
        quota = max(1, int(counts.max()) // 10)
        for bid, s, t, v in blocks:
            if quota <= 0:
                break
            mine = np.flatnonzero(s == top)[:quota]
            mask = np.zeros(len(s), dtype=bool)
            mask[mine] = True
            n = self._rewrite(bid, s, t, v, mask)
            quota -= n
            dropped += n
        return dropped

    # -- draining --------------------------------------------------------------------

    def next_batch(
        self, limit: int = 5000, *, history: bool = True, in_flight: Sequence[int] = ()
    ) -> Batch | None:
        """The next batch to send, in drain order; None if nothing (allowed) is left.

        Args:
            limit: most events in an events batch, most current values in a current
                batch; a history batch takes whole blocks up to about ``limit`` points.
            history: whether a history batch may be formed (the caller's rate limit).
            in_flight: ids of batches the caller has sent and awaits the ack of (a
                pending batch not among them is offered again first).
        """
        with self._lock:
            skip = ",".join(str(int(i)) for i in in_flight)
            pending = self._db.execute(
                f"SELECT id, kind FROM batches WHERE id NOT IN ({skip}) ORDER BY id LIMIT 1"  # noqa: S608
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
        if self._current_due:
            self._current_due = False
            current = [
                (sid, ts, value)
                for sid, (ts, value) in self._latest.items()
                if ts > self._sent_ts.get(sid, -(1 << 62)) and (sid, ts) not in self._skips
            ]
            if current:
                self._latest.clear()
                s = np.array([c[0] for c in current], dtype=np.int64)
                t = np.array([c[1] for c in current], dtype=np.int64)
                v = np.array([c[2] for c in current], dtype=np.float64)
                bid = self._new_batch(BatchKind.CURRENT)
                self._db.execute(
                    "INSERT INTO blocks (n, prio, batch, copy, sids, ts, vals) "
                    "VALUES (?, ?, ?, 1, ?, ?, ?)",
                    (
                        len(s),
                        int(Priority.NORMAL),
                        bid,
                        _pack(s.astype(_I32)),
                        _pack_ts(t),
                        _pack(v),
                    ),
                )
                keys = list(zip(s.tolist(), t.tolist(), strict=True))
                self._db.executemany("INSERT OR IGNORE INTO skips VALUES (?, ?)", keys)
                self._skips.update(keys)
                self._skip_cache = None
                return self._load(bid, BatchKind.CURRENT)
        live = self._take_blocks(limit, "id > ?", self._live_after)
        if live:
            bid = self._new_batch(BatchKind.LIVE)
            self._db.executemany("UPDATE blocks SET batch=? WHERE id=?", [(bid, i) for i in live])
            return self._load(bid, BatchKind.LIVE)
        if not history:
            return None
        chosen = self._take_blocks(limit, "id <= ?", self._live_after)
        if not chosen:
            return None
        bid = self._new_batch(BatchKind.HISTORY)
        self._db.executemany("UPDATE blocks SET batch=? WHERE id=?", [(bid, i) for i in chosen])
        return self._load(bid, BatchKind.HISTORY)

    def _take_blocks(self, limit: int, where: str, bound: int) -> list[int]:
        chosen: list[int] = []
        total = 0
        for block_id, n in self._db.execute(
            f"SELECT id, n FROM blocks WHERE batch IS NULL AND {where} ORDER BY id LIMIT 1000",  # noqa: S608
            (bound,),
        ):
            if chosen and total + n > limit:
                break
            chosen.append(int(block_id))
            total += int(n)
        return chosen

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
        parts = [
            _unpack_block(sids, ts, vals)
            for sids, ts, vals in self._db.execute(
                "SELECT sids, ts, vals FROM blocks WHERE batch=? ORDER BY id", (bid,)
            )
        ]
        if parts:
            s = np.concatenate([p[0] for p in parts])
            t = np.concatenate([p[1] for p in parts])
            v = np.concatenate([p[2] for p in parts])
        else:
            s, t, v = _EMPTY_I, _EMPTY_I, _EMPTY_F
        if kind is not BatchKind.CURRENT and self._skips:
            skip = self._skipped(s, t)
            if skip.any():
                s, t, v = s[~skip], t[~skip], v[~skip]
        if kind is not BatchKind.CURRENT and self._latest and len(s):
            # a point on its way with this batch is no longer a "current value" to send
            ids, newest, _ = _newest_per_series(s, t)
            for sid, tmax in zip(ids.tolist(), newest.tolist(), strict=True):
                latest = self._latest.get(sid)
                if latest is not None and latest[0] <= tmax:
                    del self._latest[sid]
        present = np.flatnonzero(np.bincount(s)) if len(s) else _EMPTY_I
        names = {x: self._names[x] for x in present.tolist()}
        return Batch(id=bid, msg_id=msg_id, kind=kind, sids=s, ts=t, values=v, names=names)

    def ack(self, batch: Batch) -> None:
        """The uplink acknowledged ``batch``: delete its rows (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if batch.kind is BatchKind.EVENTS:
                    self._db.execute("DELETE FROM events WHERE batch=?", (batch.id,))
                else:
                    if batch.kind is not BatchKind.CURRENT and self._skips:
                        self._consume_skips(batch.id)
                    self._db.execute("DELETE FROM blocks WHERE batch=?", (batch.id,))
                self._db.execute("DELETE FROM batches WHERE id=?", (batch.id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if batch.kind is not BatchKind.EVENTS and len(batch.sids):
                sids, newest, _ = _newest_per_series(batch.sids, batch.ts)
                sent = self._sent_ts
                for sid, tmax in zip(sids.tolist(), newest.tolist(), strict=True):
                    if tmax > sent.get(sid, -(1 << 62)):
                        sent[sid] = tmax

    def _consume_skips(self, bid: int) -> None:
        """Forget the skips of the points a history batch held (they are delivered)."""
        done: list[tuple[int, int]] = []
        for sids, ts, vals in self._db.execute(
            "SELECT sids, ts, vals FROM blocks WHERE batch=?", (bid,)
        ):
            s, t, _ = _unpack_block(sids, ts, vals)
            hit = self._skipped(s, t)
            done.extend(zip(s[hit].tolist(), t[hit].tolist(), strict=True))
        if done:
            self._db.executemany("DELETE FROM skips WHERE sid=? AND ts=?", done)
            self._skips.difference_update(done)
            self._skip_cache = None

    def stats(self) -> BufferStats:
        """Current depth (points not yet delivered), size and drop count."""
        with self._lock:
            points = self._db.execute(
                "SELECT coalesce(sum(n), 0) FROM blocks WHERE copy = 0"
            ).fetchone()[0]
            events = self._db.execute("SELECT count(*) FROM events").fetchone()[0]
            pending = self._db.execute("SELECT count(*) FROM batches").fetchone()[0]
            dropped = self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()
            collected = self._db.execute("SELECT value FROM meta WHERE key='collected'").fetchone()
            return BufferStats(
                collected_points=int(collected[0]) if collected else 0,
                points=int(points) - len(self._skips),
                events=int(events),
                pending_batches=int(pending),
                used_bytes=self.used_bytes(),
                budget_bytes=self.budget_bytes,
                dropped_points=int(dropped[0]) if dropped else 0,
            )


def _newest_per_series(
    s: npt.NDArray[np.int64],
    t: npt.NDArray[np.int64],
    v: npt.NDArray[np.float64] | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[float]]:
    """Per series id: its newest timestamp and the value at it (last of equal times)."""
    if not len(s):
        return _EMPTY_I, _EMPTY_I, []
    order = np.lexsort((t, s))  # by series, then time; stable
    ss = s[order]
    last = np.flatnonzero(np.append(ss[1:] != ss[:-1], True))
    idx = order[last]
    values = [] if v is None else v[idx].tolist()
    return s[idx], t[idx], values
