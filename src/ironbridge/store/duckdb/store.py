"""The DuckDB telemetry store: points, roll-ups, events, latest values and checkpoints."""

# ruff: noqa: S608 - every SQL text is assembled from constant fragments of this package

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from ironbridge.model import Event, InvalidInput, PermanentError, TransientError
from ironbridge.store.arguments import (
    aggregates,
    check_limit,
    check_range,
    checked_checkpoints,
    events_params,
    series_ids,
)
from ironbridge.store.duckdb.columnar import (
    MaxTsIndex,
    PendingLatest,
    PreparedBatch,
    last_per_series,
    late_mask,
    m4_columns,
    m4_merge,
    prepare_batch,
    rollup_states,
    rollup_width,
)
from ironbridge.store.duckdb.errors import mapped_errors
from ironbridge.store.duckdb.schema import (
    POINT_STATE,
    ROLLUPS,
    migrate,
    rollup_fill_sql,
)
from ironbridge.store.points import PointBatch
from ironbridge.store.ports import Agg, Checkpoint

_LOGGER = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
_TS_NAIVE = pa.timestamp("us")
RAW_SCHEMA = pa.schema([("series", pa.int64()), ("ts", _TS), ("value", pa.float64())])
DOWNSAMPLE_SCHEMA = pa.schema([("ts", _TS), ("value", pa.float64())])
#: a roll-up level serves a chart when a pixel column spans at least this many buckets
#: (the finest level also serves narrower columns, down to one bucket)
_ROLLUP_MIN_BUCKETS = 4
EVENTS_SCHEMA = pa.schema(
    [
        ("asset_id", pa.string()),
        ("ts", _TS),
        ("kind", pa.string()),
        ("code", pa.string()),
        ("payload", pa.string()),
    ]
)

_AGG_SQL = {
    Agg.AVG: "avg(value)",
    Agg.MIN: "min(value)",
    Agg.MAX: "max(value)",
    Agg.SUM: "sum(value)",
    Agg.COUNT: "count(*)",
    Agg.FIRST: "arg_min(value, ts)",
    Agg.LAST: "arg_max(value, ts)",
}

# Every SQL text below is a constant; values travel as parameters. ``{series}`` and
# ``{aggs}`` are filled from fixed fragments, never from caller text.
_RAW_SQL = (
    "SELECT series, ts, value FROM points WHERE {series}"
    " AND ts >= make_timestamp($start) AND ts < make_timestamp($end) ORDER BY series, ts"
)
_AGG_QUERY = (
    "SELECT series, make_timestamp(k * $width + $origin) AS bucket, {aggs} FROM ("
    " SELECT series, (epoch_us(ts) - $origin) // $width AS k, ts, value FROM points"
    " WHERE {series} AND ts >= make_timestamp($start) AND ts < make_timestamp($end))"
    " GROUP BY series, k ORDER BY series, k"
)
# Aggregates over roll-up rows (whole buckets) and the points at the ragged ends.
_AGG_STATE_SQL = {
    Agg.AVG: "sum(v_sum) / sum(n)",
    Agg.MIN: "min(v_min)",
    Agg.MAX: "max(v_max)",
    Agg.SUM: "sum(v_sum)",
    Agg.COUNT: "sum(n)::BIGINT",
    Agg.FIRST: "arg_min(first_v, first_ts)",
    Agg.LAST: "arg_max(last_v, last_ts)",
}
_AGG_ROLLUP_QUERY = (
    "SELECT series, make_timestamp(k * $width + $origin) AS bucket, {aggs} FROM ("
    " SELECT series, (bucket - $origin) // $width AS k, n, v_sum, v_min, v_max,"
    " first_ts, first_v, last_ts, last_v FROM {table}"
    " WHERE {series} AND bucket >= $lo AND bucket < $hi"
    " UNION ALL SELECT series, (t - $origin) // $width AS k, 1 AS n, value AS v_sum,"
    " value AS v_min, value AS v_max, t AS first_ts, value AS first_v, t AS last_ts,"
    " value AS last_v FROM (SELECT series, epoch_us(ts) AS t, value FROM points"
    " WHERE {series} AND ((ts >= make_timestamp($start) AND ts < make_timestamp($lo))"
    " OR (ts >= make_timestamp($hi) AND ts < make_timestamp($end)))))"
    " GROUP BY series, k ORDER BY series, k"
)
_LATEST_SQL = "SELECT series, ts, value FROM latest WHERE {series} ORDER BY series"
# the latest table recomputed from the points (bulk loads, and after a crash)
_LATEST_FROM_POINTS = (
    "DELETE FROM latest",
    "INSERT INTO latest SELECT series, max(ts), arg_max(value, ts) FROM points GROUP BY series",
)
# M4 per (series, pixel column k): first, last, lowest and highest point, and the count.
_M4_COLUMNS = (
    "SELECT series, k, min(first_ts) AS t_first, arg_min(first_v, first_ts) AS v_first,"
    " max(last_ts) AS t_last, arg_max(last_v, last_ts) AS v_last,"
    " arg_min(min_ts, v_min) AS t_min, min(v_min) AS v_min,"
    " arg_max(max_ts, v_max) AS t_max, max(v_max) AS v_max, sum(n)::BIGINT AS n FROM ("
)
_M4_POINTS = (
    "SELECT series, (t - $origin) // $width AS k, t AS first_ts, value AS first_v,"
    " t AS last_ts, value AS last_v, t AS min_ts, value AS v_min, t AS max_ts,"
    " value AS v_max, 1 AS n FROM (SELECT series, epoch_us(ts) AS t, value FROM points"
    " WHERE {series} AND {window})"
)
_M4_TAIL = ") GROUP BY series, k ORDER BY series, k"
_RAW_WINDOW = "ts >= make_timestamp($start) AND ts < make_timestamp($end)"
# a roll-up's whole buckets in [lo, hi); the ragged ends come from the points
_RAGGED_WINDOW = (
    "((ts >= make_timestamp($start) AND ts < make_timestamp($lo))"
    " OR (ts >= make_timestamp($hi) AND ts < make_timestamp($end)))"
)
_M4_ROLLUP = (
    "SELECT series, (first_ts - $origin) // $width AS k, first_ts, first_v, last_ts, last_v,"
    " min_ts, v_min, max_ts, v_max, n FROM {table}"
    " WHERE {series} AND bucket >= $lo AND bucket < $hi"
)
_M4_RAW_SQL = _M4_COLUMNS + _M4_POINTS.replace("{window}", _RAW_WINDOW) + _M4_TAIL
_M4_ROLLUP_SQL = {
    table: _M4_COLUMNS
    + _M4_ROLLUP.replace("{table}", table)
    + " UNION ALL "
    + _M4_POINTS.replace("{window}", _RAGGED_WINDOW)
    + _M4_TAIL
    for table, _ in ROLLUPS
}
# Compaction: the buckets (from $lo on) with several partial rows become one row each.
_COMPACT = (
    "CREATE OR REPLACE TEMP TABLE _ib_merged AS SELECT series, bucket, sum(n)::BIGINT AS n,"
    " sum(v_sum) AS v_sum, min(v_min) AS v_min, max(v_max) AS v_max,"
    " min(first_ts) AS first_ts, arg_min(first_v, first_ts) AS first_v,"
    " max(last_ts) AS last_ts, arg_max(last_v, last_ts) AS last_v,"
    " arg_min(min_ts, v_min) AS min_ts, arg_max(max_ts, v_max) AS max_ts"
    " FROM {table} WHERE bucket >= $lo GROUP BY series, bucket HAVING count(*) > 1",
    "DELETE FROM {table} USING _ib_merged AS m WHERE {table}.series = m.series"
    " AND {table}.bucket = m.bucket AND {table}.bucket >= $lo",
    "INSERT INTO {table} SELECT * FROM _ib_merged ORDER BY series, bucket",
    "DROP TABLE _ib_merged",
)
# Buckets holding overwritten or back-filled points are recomputed from the points.
_ROLLUP_DELETE = (
    "DELETE FROM {table} USING _ib_keys AS k"
    " WHERE {table}.series = k.series AND {table}.bucket = k.bucket"
)
_ROLLUP_RECOMPUTE = (
    "INSERT INTO {table} SELECT series, b, " + POINT_STATE + " FROM ("
    " SELECT p.series, epoch_us(p.ts) AS t, p.value, k.bucket AS b FROM points AS p"
    " JOIN _ib_keys AS k ON p.series = k.series AND epoch_us(p.ts) >= k.bucket"
    " AND epoch_us(p.ts) < k.bucket + {width}"
    " WHERE p.ts >= make_timestamp($lo) AND p.ts < make_timestamp($hi))"
    " GROUP BY series, b"
)
_EVENTS_SQL = (
    "SELECT asset_id, ts, kind, code, payload FROM events"
    " WHERE asset_id IN (SELECT unnest($assets::VARCHAR[]))"
    " AND ts >= make_timestamp($start) AND ts < make_timestamp($end){kinds}"
    " ORDER BY ts, asset_id, kind, code LIMIT $limit"
)
_KINDS_SQL = " AND kind IN (SELECT unnest($kinds::VARCHAR[]))"


def _agg_schema(aggs: Sequence[Agg]) -> pa.Schema:
    fields = [("series", pa.int64()), ("bucket", _TS)]
    fields += [(a.value, pa.int64() if a is Agg.COUNT else pa.float64()) for a in aggs]
    return pa.schema(fields)


def _events_table(events: Sequence[Event]) -> pa.Table | None:
    if not events:
        return None
    try:
        payloads = [orjson.dumps(e.payload).decode() for e in events]
    except TypeError as exc:
        raise InvalidInput("events.payload", f"not JSON-serialisable: {exc}") from exc
    return pa.table(
        {
            "asset_id": pa.array([e.asset_id for e in events], pa.string()),
            "ts": pa.array([int(e.ts_us) for e in events], pa.int64()).cast(_TS_NAIVE),
            "kind": pa.array([e.kind for e in events], pa.string()),
            "code": pa.array([e.code for e in events], pa.string()),
            "payload": pa.array(payloads, pa.string()),
        }
    )


class DuckDBTelemetryStore:
    """A :class:`~ironbridge.store.ports.TelemetryStore` in one DuckDB file.

    Next to the points it keeps roll-ups (1 minute and 1 hour buckets, see
    :data:`~ironbridge.store.duckdb.schema.ROLLUPS`): per series and bucket the count,
    sum, min and max with their timestamps, first and last point. An append adds one
    partial row per (series, bucket) it touches; queries merge the rows of a bucket, so
    the append path needs no index and no read. Buckets that receive points at or below
    their series' latest timestamp are recomputed from the points in the same
    transaction. Long-range charts (:meth:`downsample_many`) read the roll-ups for the
    whole buckets of their range and the points only at its ragged ends.

    Single writer: :meth:`append` (and :meth:`rebuild_latest`) must be called from one
    thread at a time (a lock makes concurrent calls queue, not corrupt). Reads may run
    from any number of threads concurrently; each uses its own DuckDB cursor.

    One value per (series, ts) is kept without a unique index: the store remembers the
    highest timestamp written per series; points above it are appended directly, and the
    rare points at or below it first delete any stored row with the same key, in the
    same transaction (last write wins).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        threads: int | None = None,
        memory_limit: str | None = None,
        compact_after: int = 4_000_000,
        latest_flush_s: float = 2.0,
    ) -> None:
        """Open (creating if needed) the store at ``path`` (``":memory:"`` for tests).

        Args:
            path: the DuckDB file.
            threads: DuckDB worker threads (default: DuckDB's, one per core).
            memory_limit: DuckDB memory limit, e.g. ``"2GB"``.
            compact_after: merge the roll-ups' partial rows once appends have added
                this many of them (see :meth:`compact_rollups`).
            latest_flush_s: write the latest point per series to the ``latest`` table
                at most this often (reads merge what is pending; see :meth:`latest`).
        """
        config: dict[str, str | bool | int | float | list[str]] = {}
        if threads is not None:
            config["threads"] = int(threads)
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self._path = str(path)
        self._write_lock = threading.Lock()
        self._cursor_lock = threading.Lock()
        self._closed = False
        self._compact_after = max(1, int(compact_after))
        #: partial roll-up rows appended since the last compaction, and their lowest bucket
        self._partial_rows = 0
        self._dirty_from: dict[str, int] = {}
        self._latest_flush_s = float(latest_flush_s)
        self._latest_flushed = time.monotonic()
        self._pending = PendingLatest()
        with mapped_errors("open"):
            self._conn = duckdb.connect(self._path, config=config)
            try:
                try:
                    migrate(self._conn)
                except RuntimeError as exc:
                    raise PermanentError(str(exc)) from exc
                self._writer = self._conn.cursor()
                self._synced = self._latest_synced()
                if not self._synced:
                    self._rebuild_latest_after_crash()
                self._max_ts = self._load_max_ts()
            except BaseException:
                self._conn.close()
                raise
        _LOGGER.info("telemetry store opened at %s (%d series)", self._path, len(self._max_ts))

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> DuckDBTelemetryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Compact the roll-ups, checkpoint the write-ahead log into the file, close.

        Idempotent.
        """
        with self._write_lock:
            if self._closed:
                return
            self._compact()
            self._flush_latest_and_mark_synced()
            self._closed = True
            with mapped_errors("close"):
                try:
                    self._writer.execute("CHECKPOINT")
                finally:
                    self._writer.close()
                    self._conn.close()
        _LOGGER.info("telemetry store closed at %s", self._path)

    def compact_rollups(self) -> None:
        """Merge the partial roll-up rows appended since the last compaction.

        Appends add one row per (series, bucket) they touch, so a bucket filled by many
        small batches has many rows until this merges them into one. :meth:`append`
        calls it every ``compact_after`` partial rows, :meth:`close` at the end.
        """
        with self._write_lock:
            self._compact()

    def _compact(self) -> None:
        if not self._dirty_from or self._closed:
            return
        cur = self._writer
        try:
            with mapped_errors("compact_rollups"):
                cur.begin()
                try:
                    for table, lo in self._dirty_from.items():
                        for statement in _COMPACT:
                            params = {"lo": lo} if "$lo" in statement else None
                            cur.execute(statement.replace("{table}", table), params)
                    cur.commit()
                except BaseException:
                    _rollback(cur)
                    raise
        except (PermanentError, TransientError):
            # Queries merge partial rows anyway: a failed compaction only costs speed.
            _LOGGER.warning("roll-up compaction failed; will retry", exc_info=True)
            return
        self._partial_rows = 0
        self._dirty_from = {}

    def checkpoint_db(self) -> None:
        """Fold the write-ahead log into the database file (DuckDB ``CHECKPOINT``)."""
        with self._write_lock, mapped_errors("checkpoint"):
            self._writer.execute("CHECKPOINT")

    def rebuild_latest(self) -> None:
        """Recompute the latest table, the roll-ups and the max-ts index from the points.

        Needed only after points were loaded around :meth:`append` (bulk imports).
        """
        with self._write_lock, mapped_errors("rebuild_latest"):
            cur = self._writer
            cur.begin()
            try:
                for statement in _LATEST_FROM_POINTS:
                    cur.execute(statement)
                for table, width in ROLLUPS:
                    cur.execute(f"DELETE FROM {table}")
                    cur.execute(rollup_fill_sql(table, width))
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
            self._pending.clear()
            self._max_ts = self._load_max_ts()

    def _latest_synced(self) -> bool:
        rows = self._writer.execute("SELECT bool_and(synced) FROM latest_state").fetchall()
        return bool(rows and rows[0][0])

    def _rebuild_latest_after_crash(self) -> None:
        """Recompute the latest table from the points: the file was not closed cleanly.

        Appends write the latest point per series every ``latest_flush_s`` seconds, so
        after a crash the table may miss the last seconds of appends. The points are
        complete (each append commits atomically), so one pass over them restores it.
        """
        _LOGGER.warning(
            "telemetry store %s was not closed cleanly: rebuilding latest values from the points",
            self._path,
        )
        started = time.perf_counter()
        cur = self._writer
        cur.begin()
        try:
            for statement in _LATEST_FROM_POINTS:
                cur.execute(statement)
            cur.execute("UPDATE latest_state SET synced = true")
            cur.commit()
        except BaseException:
            _rollback(cur)
            raise
        self._synced = True
        _LOGGER.info("latest values rebuilt in %.1f s", time.perf_counter() - started)

    def _flush_latest_and_mark_synced(self) -> None:
        """Write what is pending to the latest table and mark it complete (at close)."""
        if self._synced:
            return
        with mapped_errors("close"):
            cur = self._writer
            cur.begin()
            try:
                self._upsert_latest(cur, *self._pending.snapshot())
                cur.execute("UPDATE latest_state SET synced = true")
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
        self._pending.clear()
        self._synced = True

    @staticmethod
    def _upsert_latest(cur: Any, series: Any, ts: Any, value: Any) -> None:
        if series.shape[0] == 0:
            return
        latest = pa.table(
            {
                "series": series,
                "ts": pa.array(ts, pa.int64()).cast(_TS_NAIVE),
                "value": value,
            }
        )
        _insert_arrow(
            cur,
            "_ib_latest",
            latest,
            "INSERT INTO latest SELECT * FROM ",
            " ON CONFLICT (series) DO UPDATE SET ts = excluded.ts, value = excluded.value"
            " WHERE excluded.ts >= latest.ts",
        )

    def _load_max_ts(self) -> MaxTsIndex:
        # The latest table holds, per series, the highest ts ever committed (complete
        # after a clean close or a rebuild at open), so it rebuilds the index without
        # scanning the points.
        cols = self._writer.execute("SELECT series, epoch_us(ts) AS ts FROM latest").fetchnumpy()
        return MaxTsIndex(
            np.asarray(cols["series"], dtype=np.int64), np.asarray(cols["ts"], dtype=np.int64)
        )

    @contextlib.contextmanager
    def _reader(self, operation: str) -> Iterator[Any]:
        with mapped_errors(operation):
            with self._cursor_lock:
                cur = self._conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    # -- writes ----------------------------------------------------------------------

    def append(
        self,
        points: PointBatch,
        events: Sequence[Event] = (),
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
    ) -> int:
        """Store points and events (and checkpoints) in one transaction.

        Args:
            points: the batch; duplicates of a (series, ts) keep their last occurrence.
            events: events to store with the points.
            checkpoint: consumer sequence(s) to commit with the data (none moves back).

        Returns:
            The number of points written (after dropping in-batch duplicates).

        Raises:
            InvalidInput: on malformed batches, events or checkpoints.
            TransientError: the write may succeed if retried (nothing was committed).
            PermanentError: DuckDB refused the write (nothing was committed).
        """
        batch = prepare_batch(points.series, points.ts, points.value)
        ev_table = _events_table(events)
        marks = checked_checkpoints(checkpoint)
        n = int(batch.series.shape[0])
        with self._write_lock, mapped_errors("append"):
            cur = self._writer
            prev = self._max_ts.lookup(batch.group_series) if n else None
            late = late_mask(batch, prev) if prev is not None else None
            last = batch.group_end
            batch_latest = (batch.group_series, batch.ts[last], batch.value[last])
            flush = time.monotonic() - self._latest_flushed >= self._latest_flush_s
            cur.begin()
            try:
                if self._synced:
                    cur.execute("UPDATE latest_state SET synced = false")
                if late is not None:
                    self._delete_overwritten(cur, batch, late)
                partial: dict[str, tuple[int, int]] = {}
                if n:
                    self._insert_points(cur, batch)
                    partial = self._insert_rollups(cur, batch, late)
                if flush:
                    self._upsert_latest(cur, *self._pending.with_batch(*batch_latest))
                if ev_table is not None:
                    _insert_arrow(cur, "_ib_events", ev_table, "INSERT INTO events SELECT * FROM ")
                for c in marks:
                    cur.execute(
                        "INSERT INTO checkpoints VALUES ($c, $s) ON CONFLICT (consumer) "
                        "DO UPDATE SET seq = greatest(checkpoints.seq, excluded.seq)",
                        {"c": c.consumer, "s": int(c.seq)},
                    )
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
            self._synced = False
            if flush:
                self._pending.clear()
                self._latest_flushed = time.monotonic()
            else:
                self._pending.add(*batch_latest)
            if n:
                self._max_ts.update(batch.group_series, batch.ts[batch.group_end])
            for table, (rows, lo) in partial.items():
                self._partial_rows += rows
                self._dirty_from[table] = min(lo, self._dirty_from.get(table, lo))
            if self._partial_rows >= self._compact_after:
                self._compact()
        return n

    @staticmethod
    def _delete_overwritten(cur: Any, batch: PreparedBatch, late: np.ndarray[Any, Any]) -> None:
        late_ts = batch.ts[late]
        keys = pa.table(
            {"series": batch.series[late], "ts": pa.array(late_ts, pa.int64()).cast(_TS_NAIVE)}
        )
        cur.register("_ib_late", keys)
        try:
            # The literal ts bounds let DuckDB skip row groups by their zone maps.
            cur.execute(
                "DELETE FROM points USING _ib_late AS l "
                "WHERE points.series = l.series AND points.ts = l.ts "
                "AND points.ts >= make_timestamp($lo) AND points.ts <= make_timestamp($hi)",
                {"lo": int(late_ts.min()), "hi": int(late_ts.max())},
            )
        finally:
            cur.unregister("_ib_late")

    @staticmethod
    def _insert_rollups(
        cur: Any, batch: PreparedBatch, late: np.ndarray[Any, Any] | None
    ) -> dict[str, tuple[int, int]]:
        """Add the batch's partial roll-up rows; return per table (rows, lowest bucket)."""
        added: dict[str, tuple[int, int]] = {}
        for table, width in ROLLUPS:
            states = rollup_states(batch.series, batch.ts, batch.value, width)
            _insert_arrow(
                cur,
                "_ib_rollup",
                pa.table(states._asdict()),
                f"INSERT INTO {table} SELECT * FROM ",
            )
            added[table] = (int(states.n.shape[0]), int(states.bucket.min()))
            if late is None:
                continue
            # Late points may have overwritten a stored point or landed before rows
            # already merged: recompute their buckets (all rows of each) from the points.
            keys = rollup_states(batch.series[late], batch.ts[late], batch.value[late], width)
            cur.register("_ib_keys", pa.table({"series": keys.series, "bucket": keys.bucket}))
            try:
                cur.execute(_ROLLUP_DELETE.replace("{table}", table))
                cur.execute(
                    _ROLLUP_RECOMPUTE.replace("{table}", table).replace("{width}", str(width)),
                    {"lo": int(keys.bucket.min()), "hi": int(keys.bucket.max()) + width},
                )
            finally:
                cur.unregister("_ib_keys")
        return added

    @staticmethod
    def _insert_points(cur: Any, batch: PreparedBatch) -> None:
        table = pa.table(
            {
                "series": batch.series,
                "ts": pa.array(batch.ts, pa.int64()).cast(_TS_NAIVE),
                "value": batch.value,
            }
        )
        _insert_arrow(cur, "_ib_points", table, "INSERT INTO points SELECT * FROM ")

    # -- reads -----------------------------------------------------------------------

    def checkpoint(self, consumer: str) -> int:
        """Return the highest sequence committed for ``consumer`` (0 if none)."""
        with self._reader("checkpoint") as cur:
            rows = cur.execute(
                "SELECT seq FROM checkpoints WHERE consumer = $c", {"c": consumer}
            ).fetchall()
        return int(rows[0][0]) if rows else 0

    def count(self) -> int:
        """Return the number of stored points."""
        with self._reader("count") as cur:
            rows = cur.execute("SELECT count(*) FROM points").fetchall()
        return int(rows[0][0])

    def raw(
        self, series: Sequence[int], start_us: int, end_us: int, limit: int | None = None
    ) -> pa.Table:
        """Points in ``[start_us, end_us)``: columns series, ts, value; ordered by series, ts."""
        check_range(start_us, end_us)
        check_limit(limit)
        ids = series_ids(series)
        if ids.shape[0] == 0:
            return RAW_SCHEMA.empty_table()
        params: dict[str, Any] = {"start": int(start_us), "end": int(end_us)}
        sql = _RAW_SQL
        if limit is not None:
            sql += " LIMIT $limit"
            params["limit"] = int(limit)
        return self._query("raw", sql, params, ids, RAW_SCHEMA)

    def aggregate(
        self,
        series: Sequence[int],
        start_us: int,
        end_us: int,
        bucket_us: int,
        aggs: Sequence[Agg],
    ) -> pa.Table:
        """Time-bucket aggregates: columns series, bucket, then one column per agg.

        Buckets are aligned to the Unix epoch (``floor(ts / bucket_us) * bucket_us``);
        empty buckets are omitted. A repeated aggregate yields one column.
        """
        check_range(start_us, end_us)
        if int(bucket_us) <= 0:
            raise InvalidInput("bucket_us", f"must be positive, got {bucket_us}")
        wanted = aggregates(aggs)
        schema = _agg_schema(wanted)
        ids = series_ids(series)
        if ids.shape[0] == 0:
            return schema.empty_table()
        width = int(bucket_us)
        # Shift by the first bucket's start so the integer division only sees
        # non-negative numbers (DuckDB's // truncates towards zero; Python's floors).
        origin = (int(start_us) // width) * width
        params = {"start": int(start_us), "end": int(end_us), "width": width, "origin": origin}
        # A bucket of whole minutes (hours) reads the coarsest roll-up that divides it.
        table = next((t for t, w in reversed(ROLLUPS) if width % w == 0), None)
        if table is not None:
            unit = dict(ROLLUPS)[table]
            lo, hi = -(-int(start_us) // unit) * unit, (int(end_us) // unit) * unit
            if lo < hi:
                cols = ", ".join(f"{_AGG_STATE_SQL[a]} AS {a.value}" for a in wanted)
                sql = _AGG_ROLLUP_QUERY.replace("{aggs}", cols).replace("{table}", table)
                return self._query("aggregate", sql, {**params, "lo": lo, "hi": hi}, ids, schema)
        cols = ", ".join(f"{_AGG_SQL[a]} AS {a.value}" for a in wanted)
        sql = _AGG_QUERY.replace("{aggs}", cols)
        return self._query("aggregate", sql, params, ids, schema)

    def latest(self, series: Sequence[int]) -> pa.Table:
        """Latest point of each series: columns series, ts, value (absent series omitted).

        The ``latest`` table is written every ``latest_flush_s`` seconds; the points
        committed since are merged over it here, so a read sees every committed append.
        """
        ids = series_ids(series)
        if ids.shape[0] == 0:
            return RAW_SCHEMA.empty_table()
        # the pending points first: a flush between the two reads moves points from the
        # snapshot to the table, never out of both
        p_series, p_ts, p_value = self._pending.snapshot()
        table = self._latest_rows(ids)
        if p_series.shape[0] == 0:
            return table
        mine = np.isin(p_series, ids, assume_unique=True)
        if not mine.any():
            return table
        merged = last_per_series(
            np.concatenate((table.column("series").to_numpy(), p_series[mine])),
            np.concatenate((table.column("ts").cast(pa.int64()).to_numpy(), p_ts[mine])),
            np.concatenate((table.column("value").to_numpy(zero_copy_only=False), p_value[mine])),
        )
        return pa.table(
            {
                "series": merged[0],
                "ts": pa.array(merged[1], pa.int64()).cast(_TS),
                "value": merged[2],
            },
            schema=RAW_SCHEMA,
        )

    def _latest_rows(self, ids: Any) -> pa.Table:
        lo, hi = int(ids[0]), int(ids[-1])
        if hi - lo + 1 > 4 * ids.shape[0]:
            return self._query("latest", _LATEST_SQL, {}, ids, RAW_SCHEMA)
        # Dense id sets (the usual case: ids are handed out in order) read the id range
        # and filter in numpy, cheaper than a semi join against a registered table.
        with self._reader("latest") as cur:
            table = cur.sql(
                _LATEST_SQL.format(series="series BETWEEN $lo AND $hi"),
                params={"lo": lo, "hi": hi},
            ).to_arrow_table()
        if hi - lo + 1 != ids.shape[0]:
            keep = np.isin(table.column("series").to_numpy(), ids, assume_unique=True)
            table = table.filter(pa.array(keep))
        return table.cast(RAW_SCHEMA)

    def downsample(self, series: int, start_us: int, end_us: int, max_points: int) -> pa.Table:
        """At most ``max_points`` points (ts, value) that draw like the full series (M4).

        The range is cut into at most ``max_points // 4`` pixel columns; each keeps its
        first, last, lowest and highest point. A range holding at most ``max_points``
        points is returned whole.
        """
        table = self.downsample_many([series], start_us, end_us, max_points)
        return table.select(["ts", "value"]).cast(DOWNSAMPLE_SCHEMA)

    def downsample_many(
        self, series: Sequence[int], start_us: int, end_us: int, max_points: int
    ) -> pa.Table:
        """:meth:`downsample` of several series at once: columns series, ts, value.

        Columns at least a minute wide are computed from the roll-ups (whole buckets)
        and the points at the ragged ends of the range; their edges are then whole
        buckets, so a column may be up to one bucket wider than an even split. Narrower
        columns read the points. Either way every point returned is a stored point and
        each column keeps its true extremes.
        """
        check_range(start_us, end_us)
        if int(max_points) < 4:
            raise InvalidInput("max_points", f"must be at least 4, got {max_points}")
        ids = series_ids(series)
        if ids.shape[0] == 0:
            return RAW_SCHEMA.empty_table()
        start, end, limit = int(start_us), int(end_us), int(max_points)
        columns = limit // 4
        _, even_width = m4_columns(start, end, columns)
        unit = rollup_width(even_width, tuple(w for _, w in ROLLUPS), _ROLLUP_MIN_BUCKETS)
        if unit is None:
            origin, width = m4_columns(start, end, columns)
            sql, params = _M4_RAW_SQL, {"start": start, "end": end}
        else:
            origin, width = m4_columns(start, end, columns, unit)
            lo, hi = -(-start // unit) * unit, (end // unit) * unit
            sql = _M4_ROLLUP_SQL[next(name for name, w in ROLLUPS if w == unit)]
            params = {"start": start, "end": end, "lo": lo, "hi": hi}
        params.update(origin=origin, width=width)
        with self._reader("downsample") as cur:
            c = self._select(cur, sql, params, ids).fetchnumpy()
        col_series = np.asarray(c["series"], np.int64)
        n = np.asarray(c["n"], np.int64)
        # per series: the column rows [bounds[i], bounds[i + 1]) and the point count
        present, bounds = np.unique(col_series, return_index=True)
        bounds = np.append(bounds, col_series.shape[0])
        counts = np.add.reduceat(n, bounds[:-1]) if present.shape[0] else n[:0]
        whole = present[counts <= limit]
        parts: dict[int, pa.Table] = {}
        if whole.shape[0]:
            rows = self.raw(whole.tolist(), start, end)
            row_series = rows.column("series").to_numpy()
            for sid in whole.tolist():
                parts[sid] = rows.filter(pa.array(row_series == sid))
        ts_cols = tuple(np.asarray(c[k], np.int64) for k in ("t_first", "t_last", "t_min", "t_max"))
        v_cols = tuple(
            np.asarray(c[k], np.float64) for k in ("v_first", "v_last", "v_min", "v_max")
        )
        for i, sid in enumerate(present.tolist()):
            if sid in parts:
                continue
            sl = slice(int(bounds[i]), int(bounds[i + 1]))
            ts, value = m4_merge(
                tuple(x[sl] for x in ts_cols),  # type: ignore[arg-type]
                tuple(x[sl] for x in v_cols),  # type: ignore[arg-type]
            )
            parts[sid] = pa.table(
                {
                    "series": np.full(ts.shape[0], sid, np.int64),
                    "ts": pa.array(ts, _TS),
                    "value": value,
                },
                schema=RAW_SCHEMA,
            )
        if not parts:
            return RAW_SCHEMA.empty_table()
        return pa.concat_tables([parts[k].cast(RAW_SCHEMA) for k in sorted(parts)])

    def events(
        self,
        asset_ids: Sequence[str],
        start_us: int,
        end_us: int,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> pa.Table:
        """Events in the range: columns asset_id, ts, kind, code, payload (JSON text).

        Ordered by ts (then asset, kind, code); ``kinds=None`` means every kind.
        """
        params = events_params(asset_ids, start_us, end_us, kinds, limit)
        if params is None:
            return EVENTS_SCHEMA.empty_table()
        kinds_sql = ""
        if kinds is not None:
            kinds_sql = _KINDS_SQL
            params["kinds"] = [str(k) for k in kinds]
        sql = _EVENTS_SQL.replace("{kinds}", kinds_sql)
        with self._reader("events") as cur:
            table = cur.sql(sql, params=params).to_arrow_table()
        return table.cast(EVENTS_SCHEMA)

    def _query(
        self,
        operation: str,
        sql: str,
        params: dict[str, Any],
        ids: np.ndarray[Any, np.dtype[np.int64]],
        schema: pa.Schema,
    ) -> pa.Table:
        """Run ``sql`` with its ``{series}`` placeholder bound to the ids, cast to schema."""
        with self._reader(operation) as cur:
            table = self._select(cur, sql, params, ids).to_arrow_table()
        return table.cast(schema)

    @staticmethod
    def _select(
        cur: Any, sql: str, params: dict[str, Any], ids: np.ndarray[Any, np.dtype[np.int64]]
    ) -> Any:
        """Run ``sql`` with its ``{series}`` placeholders bound to the ids; return the relation."""
        if ids.shape[0] == 1:
            params = {**params, "sid": int(ids[0])}
            return cur.sql(sql.replace("{series}", "series = $sid"), params=params)
        # A registered Arrow table keeps thousands of ids out of the SQL text; the
        # BETWEEN bounds still let zone maps skip row groups.
        params = {**params, "smin": int(ids[0]), "smax": int(ids[-1])}
        cond = "series IN (SELECT series FROM _ib_ids) AND series BETWEEN $smin AND $smax"
        cur.register("_ib_ids", pa.table({"series": ids}))
        return cur.sql(sql.replace("{series}", cond), params=params)


def _insert_arrow(cur: Any, name: str, table: pa.Table, head: str, tail: str = "") -> None:
    cur.register(name, table)
    try:
        cur.execute(head + name + tail)
    finally:
        cur.unregister(name)


def _rollback(cur: Any) -> None:
    with contextlib.suppress(duckdb.Error):
        cur.rollback()
