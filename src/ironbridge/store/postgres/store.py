"""The PostgreSQL telemetry store: partitioned points, roll-ups, events, latest, checkpoints."""

# ruff: noqa: S608 - every SQL text is assembled from constant fragments of this module
# (table names, widths, aggregate expressions); values always travel as parameters.

from __future__ import annotations

import logging
import struct
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import numpy as np
import orjson
import psycopg
import psycopg_pool
import pyarrow as pa

from ironbridge.model import Event, InvalidInput, PermanentError
from ironbridge.store.arguments import (
    aggregates,
    check_limit,
    check_range,
    checked_checkpoints,
    events_params,
    series_ids,
)
from ironbridge.store.duckdb.columnar import (
    NO_TS,
    PreparedBatch,
    late_mask,
    m4_merge,
    prepare_batch,
)
from ironbridge.store.points import PointBatch
from ironbridge.store.ports import Agg, Checkpoint
from ironbridge.store.postgres.blocks import (
    BLOCK_SPAN_US,
    COPY_HEADER,
    COPY_TRAILER,
    block_bounds,
    encode_blocks,
)
from ironbridge.store.postgres.errors import mapped_errors
from ironbridge.store.postgres.schema import (
    DAY_US,
    POINTS_TABLE,
    ROLLUPS,
    create_partitions,
    drop_partitions_before,
    existing_days,
    migrate,
    partition_name,
)

_LOGGER = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
RAW_SCHEMA = pa.schema([("series", pa.int64()), ("ts", _TS), ("value", pa.float64())])
DOWNSAMPLE_SCHEMA = pa.schema([("ts", _TS), ("value", pa.float64())])
EVENTS_SCHEMA = pa.schema(
    [
        ("asset_id", pa.string()),
        ("ts", _TS),
        ("kind", pa.string()),
        ("code", pa.string()),
        ("payload", pa.string()),
    ]
)

# -- binary COPY ------------------------------------------------------------------------
_ROW3 = np.dtype(
    [
        ("n", ">i2"),
        ("l1", ">i4"),
        ("a", ">i8"),
        ("l2", ">i4"),
        ("b", ">i8"),
        ("l3", ">i4"),
        ("c", ">f8"),
    ]
)
_ROW2 = np.dtype([("n", ">i2"), ("l1", ">i4"), ("a", ">i8"), ("l2", ">i4"), ("b", ">f8")])


def encode_copy(*columns: np.ndarray[Any, Any]) -> bytes:
    """Encode parallel non-null columns (int64 -> bigint, float64 -> float8) as binary COPY."""
    n = columns[0].shape[0]
    fields: list[tuple[str, str]] = [("n", ">i2")]
    for i, col in enumerate(columns):
        kind = ">f8" if col.dtype.kind == "f" else ">i8"
        fields += [(f"l{i}", ">i4"), (f"c{i}", kind)]
    rows = np.empty(n, dtype=np.dtype(fields))
    rows["n"] = len(columns)
    for i, col in enumerate(columns):
        rows[f"l{i}"] = 8
        rows[f"c{i}"] = col
    return COPY_HEADER + rows.tobytes() + COPY_TRAILER


def rollup_states(
    series: np.ndarray[Any, Any], ts: np.ndarray[Any, Any], value: np.ndarray[Any, Any], width: int
) -> tuple[np.ndarray[Any, Any], ...]:
    """Per (series, bucket) roll-up state of points sorted by (series, ts), in numpy.

    Returns:
        series, bucket, n, sum, min, max, first_ts, first_v, last_ts, last_v.
    """
    bucket = ts - np.mod(ts, width)
    change = np.flatnonzero((series[1:] != series[:-1]) | (bucket[1:] != bucket[:-1])) + 1
    starts = np.concatenate(([0], change)).astype(np.int64)
    ends = np.concatenate((change - 1, [series.shape[0] - 1])).astype(np.int64)
    return (
        series[starts],
        bucket[starts],
        (ends - starts + 1).astype(np.int64),
        np.add.reduceat(value, starts),
        np.minimum.reduceat(value, starts),
        np.maximum.reduceat(value, starts),
        ts[starts],
        value[starts],
        ts[ends],
        value[ends],
    )


def _series_list(series: Sequence[int]) -> list[int]:
    return [int(x) for x in series_ids(series)]


def _copy_blocks(cur: Any, series: Any, ts: Any, value: Any) -> None:
    """Write points sorted by (series, ts) as blocks, straight into the day partitions.

    Straight in: no tuple routing through the parent per row (measured about 8 % of
    the COPY time). A block lies within one hour, so within one day.
    """
    starts = block_bounds(series, ts)
    ends = np.append(starts[1:], series.shape[0])
    day = np.floor_divide(ts[starts], DAY_US)
    lo, hi = int(day.min()), int(day.max())
    for d in range(lo, hi + 1):
        sel = None if lo == hi else day == d
        if sel is not None and not sel.any():
            continue
        table = partition_name(d)
        with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
            if sel is None:
                copy.write(encode_blocks(series, ts, value, starts, ends))
            else:
                copy.write(encode_blocks(series, ts, value, starts[sel], ends[sel]))


def _merge_late(cur: Any, ls: Any, lt: Any, lv: Any, fresh: tuple[Any, Any, Any]) -> Any:
    """Take the blocks late points fall into and merge the points (last write wins).

    Args:
        cur: a cursor in the append's transaction.
        ls: series of the late points, sorted by (series, ts), one per key.
        lt: their timestamps.
        lv: their values.
        fresh: the batch's other points (after every stored point of their series).

    Returns:
        ``(blocks, new, overwritten)``: the points to write as blocks (the taken
        blocks' points with the late ones merged in, and the fresh ones); the points
        that did not exist before (for the roll-up merge); the (series, ts) of the
        stored points the late ones overwrote (their roll-up buckets are recomputed).
    """
    with cur.copy("COPY _tm_in (series, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(encode_copy(ls, lt, lv))
    taken = cur.execute(_TAKE_BLOCKS).fetchall()
    sizes = [len(r[1]) for r in taken]
    os_ = np.repeat(np.array([r[0] for r in taken], np.int64), sizes)
    ot = np.array([x for r in taken for x in r[1]], np.int64)
    ov = np.array([x for r in taken for x in r[2]], np.float64)
    src = np.concatenate((np.zeros(os_.shape[0], np.int8), np.ones(ls.shape[0], np.int8)))
    ks, kt, kv = np.concatenate((os_, ls)), np.concatenate((ot, lt)), np.concatenate((ov, lv))
    order = np.lexsort((src, kt, ks))  # a stored point just before the late one of its key
    ks, kt, kv, src = ks[order], kt[order], kv[order], src[order]
    same = (ks[1:] == ks[:-1]) & (kt[1:] == kt[:-1])
    superseded = np.append(same, False)  # a stored point a late one replaces
    replaces = np.insert(same, 0, False)  # a late point that replaces a stored one
    fs, ft, fv = fresh

    def with_fresh(mask: Any) -> tuple[Any, Any, Any]:
        """The merged points under ``mask`` and the fresh ones, sorted by (series, ts)."""
        a, b, c = (np.concatenate((x[mask], f)) for x, f in ((ks, fs), (kt, ft), (kv, fv)))
        by = np.lexsort((b, a))
        return a[by], b[by], c[by]

    return (
        with_fresh(~superseded),
        with_fresh((src == 1) & ~replaces),
        (ks[replaces], kt[replaces]),
    )


def _points_sql(ranges: Sequence[tuple[str, str]], series_cond: str) -> str:
    """SQL of the points (series, ts, value) in the ranges, from the blocks that hold them.

    Args:
        ranges: ``(lo, hi)`` SQL expressions (parameters) of half-open ranges.
        series_cond: a condition on ``b.series``.
    """
    parts = [
        f"SELECT b.series, u.ts, u.value FROM {POINTS_TABLE} b"
        " CROSS JOIN LATERAL unnest(b.ts, b.vals) AS u(ts, value)"
        f" WHERE {series_cond} AND b.t1 >= {lo} AND b.t0 < {hi}"
        f" AND b.t0 > {lo} - {BLOCK_SPAN_US} AND u.ts >= {lo} AND u.ts < {hi}"
        for lo, hi in ranges
    ]
    return " UNION ALL ".join(parts)


def _decode_copy(data: bytes, dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """Decode a binary COPY stream of fixed-width, non-null columns into a record array."""
    if not data:
        return np.empty(0, dtype=dtype)
    (ext,) = struct.unpack_from(">i", data, 15)
    body = memoryview(data)[19 + ext : len(data) - 2]
    return np.frombuffer(body, dtype=dtype)


# -- SQL ----------------------------------------------------------------------------------
def _floor(expr: str, width: int) -> str:
    """SQL flooring ``expr`` to a multiple of ``width`` (bigint ``/`` truncates to zero)."""
    return f"(({expr}) - ((({expr}) % {width}) + {width}) % {width})"


_STATE_COLS = "n, sum, min, max, first_ts, first_v, last_ts, last_v"
# Per-group state of points: first/last by ts via array min/max (µs fit a float8 exactly).
_POINT_STATE = (
    "count(*), sum(value), min(value), max(value), min(ts),"
    " (min(ARRAY[ts::float8, value]))[2], max(ts), (max(ARRAY[ts::float8, value]))[2]"
)
_STATE_STATE = (
    "sum(n)::bigint, sum(sum), min(min), max(max), min(first_ts),"
    " (min(ARRAY[first_ts::float8, first_v]))[2], max(last_ts),"
    " (max(ARRAY[last_ts::float8, last_v]))[2]"
)
_MERGE_TAIL = (
    " ON CONFLICT (series, bucket) DO UPDATE SET n = r.n + excluded.n,"
    " sum = r.sum + excluded.sum, min = least(r.min, excluded.min),"
    " max = greatest(r.max, excluded.max),"
    " first_v = CASE WHEN excluded.first_ts < r.first_ts THEN excluded.first_v"
    " ELSE r.first_v END, first_ts = least(r.first_ts, excluded.first_ts),"
    " last_v = CASE WHEN excluded.last_ts > r.last_ts THEN excluded.last_v"
    " ELSE r.last_v END, last_ts = greatest(r.last_ts, excluded.last_ts)"
)
_REPLACE_TAIL = " ON CONFLICT (series, bucket) DO UPDATE SET " + ", ".join(
    f"{c} = excluded.{c}" for c in _STATE_COLS.split(", ")
)


def _merge_new_sql(table: str) -> str:
    # Points that did not exist before this append only add to their bucket's state
    # (computed by the client in numpy and COPYed into a temporary table).
    return (
        f"INSERT INTO {table} AS r (series, bucket, {_STATE_COLS})"
        f" SELECT series, bucket, {_STATE_COLS} FROM _{table}" + _MERGE_TAIL
    )


def _recompute_sql(table: str, width: int) -> str:
    # Overwritten points change a bucket in ways a merge cannot undo: recompute it.
    return (
        f"INSERT INTO {table} AS r (series, bucket, {_STATE_COLS})"
        f" SELECT k.series, k.b, {_POINT_STATE}"
        f" FROM (SELECT DISTINCT series, {_floor('ts', width)} AS b FROM _tm_old) k"
        " CROSS JOIN LATERAL (SELECT u.ts, u.value FROM"
        f" {POINTS_TABLE} bl CROSS JOIN LATERAL unnest(bl.ts, bl.vals) AS u(ts, value)"
        f" WHERE bl.series = k.series AND bl.t1 >= k.b AND bl.t0 < k.b + {width}"
        f" AND bl.t0 > k.b - {BLOCK_SPAN_US} AND u.ts >= k.b AND u.ts < k.b + {width}) p"
        " GROUP BY k.series, k.b" + _REPLACE_TAIL
    )


_MERGE_NEW = {table: _merge_new_sql(table) for table, _ in ROLLUPS}
_RECOMPUTE = {table: _recompute_sql(table, width) for table, width in ROLLUPS}

_STATE_DDL = (
    "(series bigint, bucket bigint, n bigint, sum double precision, min double precision,"
    " max double precision, first_ts bigint, first_v double precision, last_ts bigint,"
    " last_v double precision) ON COMMIT DELETE ROWS"
)
_SESSION_SETUP = (
    "CREATE TEMP TABLE IF NOT EXISTS _tm_in (series bigint, ts bigint,"
    " value double precision) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS _tm_old (series bigint, ts bigint) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS _tm_lat (series bigint, ts bigint,"
    " value double precision) ON COMMIT DELETE ROWS",
    *(f"CREATE TEMP TABLE IF NOT EXISTS _{table} {_STATE_DDL}" for table, _ in ROLLUPS),
)
_PREV_LATEST = "SELECT series, ts FROM tm_latest WHERE series = ANY(%s)"
# The blocks that late points fall into (per series and hour, from the first late
# point to the last) are taken out, to be merged with them and written again.
_TAKE_BLOCKS = (
    f"DELETE FROM {POINTS_TABLE} b USING (SELECT series, min(ts) AS lo, max(ts) AS hi"
    f" FROM _tm_in GROUP BY series, {_floor('ts', BLOCK_SPAN_US)}) k"
    " WHERE b.series = k.series AND b.t1 >= k.lo AND b.t0 <= k.hi"
    f" AND b.t0 > k.lo - {BLOCK_SPAN_US} RETURNING b.series, b.ts, b.vals"
)
_UPSERT_LATEST = (
    "INSERT INTO tm_latest SELECT series, ts, value FROM _tm_lat"
    " ON CONFLICT (series) DO UPDATE SET ts = excluded.ts,"
    " value = excluded.value WHERE excluded.ts >= tm_latest.ts"
)
_CHECKPOINT = (
    "INSERT INTO tm_checkpoints VALUES (%s, %s) ON CONFLICT (consumer)"
    " DO UPDATE SET seq = greatest(tm_checkpoints.seq, excluded.seq)"
)
_FINAL = {
    Agg.AVG: "sum(sum) / sum(n)",
    Agg.MIN: "min(min)",
    Agg.MAX: "max(max)",
    Agg.SUM: "sum(sum)",
    Agg.COUNT: "sum(n)::bigint",
    Agg.FIRST: "(min(ARRAY[first_ts::float8, first_v]))[2]",
    Agg.LAST: "(max(ARRAY[last_ts::float8, last_v]))[2]",
}


def _agg_schema(aggs: Sequence[Agg]) -> pa.Schema:
    fields = [("series", pa.int64()), ("bucket", _TS)]
    fields += [(a.value, pa.int64() if a is Agg.COUNT else pa.float64()) for a in aggs]
    return pa.schema(fields)


def _rollup_for(bucket_us: int) -> tuple[str, int] | None:
    for table, width in ROLLUPS:
        if bucket_us % width == 0:
            return table, width
    return None


def _dsn(url: str) -> str:
    """Accept SQLAlchemy-style ``postgresql+psycopg://`` URLs as well as libpq ones."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


class PostgresTelemetryStore:
    """A :class:`~ironbridge.store.ports.TelemetryStore` in PostgreSQL (cluster mode).

    Points live in blocks (:mod:`~ironbridge.store.postgres.blocks`) in ``tm_blocks``,
    range-partitioned by day, keyed by (series, first ts): an append COPYs the batch's
    new points as new blocks (binary); late points are merged into the blocks they fall
    into (last write wins). The same transaction maintains the latest table, the
    1-minute and 1-hour roll-ups (merged for new points, recomputed for buckets whose
    points were overwritten) and the consumer checkpoints.

    Any number of threads and processes may append at once, provided two writers never
    write the same series at the same time (ingest partitions by device).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        days_ahead: int = 2,
        connect_timeout_s: float = 10.0,
    ) -> None:
        """Connect to ``url`` (``postgresql://…``), creating the schema if needed.

        Args:
            url: libpq URL (``postgresql+psycopg://`` is accepted too).
            pool_size: connections kept for concurrent appends and queries.
            days_ahead: daily partitions created ahead of the newest day written.
            connect_timeout_s: how long to wait for a connection from the pool.
        """
        self._url = _dsn(url)
        self._days_ahead = int(days_ahead)
        self._timeout = connect_timeout_s
        self._days: set[int] = set()
        self._days_lock = threading.Lock()
        self._closed = False
        with mapped_errors("open"):
            self._pool = psycopg_pool.ConnectionPool(
                self._url,
                min_size=1,
                max_size=max(1, int(pool_size)),
                open=False,
                configure=self._configure,
                check=psycopg_pool.ConnectionPool.check_connection,
                timeout=connect_timeout_s,
                # The pool retries a lost server with exponential backoff (1, 2, 4, 8 s
                # …) until this; a short bound keeps the retries about a second or two
                # apart (a new attempt starts on demand), so ingest resumes within a
                # couple of seconds of a restarted server instead of up to 8 s later.
                reconnect_timeout=3.0,
                name="ib-telemetry",
            )
            self._pool.open(wait=True, timeout=connect_timeout_s)
            try:
                with self._pool.connection() as conn:
                    try:
                        migrate(conn)
                    except RuntimeError as exc:
                        raise PermanentError(str(exc)) from exc
                    self._days = existing_days(conn)
            except BaseException:
                self._pool.close()
                raise
        _LOGGER.info("telemetry store opened on PostgreSQL (%d partitions)", len(self._days))

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        conn.autocommit = True
        # Temp tables cannot be created inside the schema-migration lock of another
        # session; they are per connection and emptied at each commit.
        try:
            for statement in _SESSION_SETUP:
                conn.execute(statement)
        except psycopg.errors.UndefinedTable:  # pragma: no cover - defensive
            pass

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> PostgresTelemetryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._pool.close()
        _LOGGER.info("telemetry store on PostgreSQL closed")

    def _conn(self) -> Any:
        if self._closed:
            raise PermanentError("postgresql telemetry store is closed")
        return self._pool.connection(timeout=self._timeout)

    # -- partitions --------------------------------------------------------------------

    def ensure_partitions(self, days: set[int]) -> None:
        """Create the daily partitions of ``days`` (and ``days_ahead`` after the last)."""
        with self._days_lock:
            missing = days - self._days
        if not missing:
            return
        last = max(missing)
        wanted = missing | {last + k for k in range(1, self._days_ahead + 1)}
        with mapped_errors("create partitions"), self._conn() as conn:
            create_partitions(conn, wanted)
            have = existing_days(conn)
        with self._days_lock:
            self._days = have

    def drop_before(self, ts_us: int) -> list[str]:
        """Retention: drop the daily partitions that end at or before ``ts_us``.

        Returns:
            The names of the dropped partitions.
        """
        with mapped_errors("drop partitions"), self._conn() as conn:
            dropped = drop_partitions_before(conn, int(ts_us))
            have = existing_days(conn)
        with self._days_lock:
            self._days = have
        if dropped:
            _LOGGER.info("retention dropped %d partitions before %s", len(dropped), ts_us)
        return dropped

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
            PermanentError: PostgreSQL refused the write (nothing was committed).
        """
        batch = prepare_batch(points.series, points.ts, points.value)
        rows = self._event_rows(events)
        marks = checked_checkpoints(checkpoint)
        n = int(batch.series.shape[0])
        if n:
            day = np.floor_divide(batch.ts, DAY_US)
            lo, hi = int(day.min()), int(day.max())
            # nearly every batch falls in one day: no sort for that case
            self.ensure_partitions({lo} if lo == hi else {int(d) for d in np.unique(day)})
        with mapped_errors("append"), self._conn() as conn, conn.transaction():
            cur = conn.cursor()
            if n:
                self._write_points(cur, batch)
            if rows:
                with cur.copy(
                    "COPY tm_events (asset_id, ts, kind, code, payload) FROM STDIN"
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            for c in marks:
                cur.execute(_CHECKPOINT, (c.consumer, int(c.seq)))
        return n

    @staticmethod
    def _event_rows(events: Sequence[Event]) -> list[tuple[str, int, str, str, str]]:
        try:
            return [
                (e.asset_id, int(e.ts_us), e.kind, e.code, orjson.dumps(e.payload).decode())
                for e in events
            ]
        except TypeError as exc:
            raise InvalidInput("events.payload", f"not JSON-serialisable: {exc}") from exc

    @staticmethod
    def _write_points(cur: Any, batch: PreparedBatch) -> None:
        # Points above their series' latest timestamp (nearly all of them) cannot
        # exist yet: they are written as new blocks by binary COPY. Late points are
        # merged into the blocks they fall into (last write wins), and the roll-up
        # buckets of points they overwrote are recomputed.
        groups = batch.group_series
        rows = cur.execute(_PREV_LATEST, ([int(x) for x in groups],)).fetchall()
        known = dict(rows)
        prev = np.fromiter((known.get(int(x), NO_TS) for x in groups), np.int64, groups.shape[0])
        late = late_mask(batch, prev)
        s, t, v = batch.series, batch.ts, batch.value
        overwritten = None
        if late is None:
            _copy_blocks(cur, s, t, v)
        else:
            fresh = ~late
            merged, new, overwritten = _merge_late(
                cur, s[late], t[late], v[late], (s[fresh], t[fresh], v[fresh])
            )
            _copy_blocks(cur, *merged)
            s, t, v = new
        for table, width in ROLLUPS:
            if s.shape[0]:
                with cur.copy(f"COPY _{table} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(encode_copy(*rollup_states(s, t, v, width)))
                cur.execute(_MERGE_NEW[table])
        if overwritten is not None and overwritten[0].shape[0]:
            with cur.copy("COPY _tm_old (series, ts) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(encode_copy(*overwritten))
            for table, _ in ROLLUPS:
                cur.execute(_RECOMPUTE[table])
        last = batch.group_end
        with cur.copy("COPY _tm_lat (series, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(encode_copy(batch.series[last], batch.ts[last], batch.value[last]))
        cur.execute(_UPSERT_LATEST)

    # -- reads -----------------------------------------------------------------------

    def _fetch(self, operation: str, sql: str, params: Sequence[Any] | dict[str, Any]) -> Any:
        with mapped_errors(operation), self._conn() as conn:
            return conn.execute(sql, params).fetchall()

    def _copy_out(self, operation: str, sql: str, params: dict[str, Any]) -> bytes:
        with mapped_errors(operation), self._conn() as conn:
            cur = conn.cursor()
            chunks: list[bytes] = []
            with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", params) as copy:
                for chunk in copy:
                    chunks.append(bytes(chunk))
            return b"".join(chunks)

    def checkpoint(self, consumer: str) -> int:
        """Return the highest sequence committed for ``consumer`` (0 if none)."""
        rows = self._fetch(
            "checkpoint", "SELECT seq FROM tm_checkpoints WHERE consumer = %s", (consumer,)
        )
        return int(rows[0][0]) if rows else 0

    def checkpoints(self) -> dict[str, int]:
        """Return every consumer's committed sequence."""
        rows = self._fetch("checkpoints", "SELECT consumer, seq FROM tm_checkpoints", ())
        return {str(c): int(s) for c, s in rows}

    def count(self) -> int:
        """Return the number of stored points."""
        sql = f"SELECT coalesce(sum(n), 0) FROM {POINTS_TABLE}"
        return int(self._fetch("count", sql, ())[0][0])

    def raw(
        self, series: Sequence[int], start_us: int, end_us: int, limit: int | None = None
    ) -> pa.Table:
        """Points in ``[start_us, end_us)``: columns series, ts, value; ordered by series, ts."""
        check_range(start_us, end_us)
        check_limit(limit)
        ids = _series_list(series)
        if not ids:
            return RAW_SCHEMA.empty_table()
        sql = (
            "SELECT series, ts, value FROM ("
            + _points_sql([("%(start)s", "%(end)s")], "b.series = ANY(%(ids)s)")
            + ") AS p ORDER BY series, ts"
        )
        params: dict[str, Any] = {"ids": ids, "start": int(start_us), "end": int(end_us)}
        if limit is not None:
            sql += " LIMIT %(limit)s"
            params["limit"] = int(limit)
        rows = _decode_copy(self._copy_out("raw", sql, params), _ROW3)
        return pa.table(
            {
                "series": pa.array(rows["a"].astype(np.int64)),
                "ts": pa.array(rows["b"].astype(np.int64)).cast(_TS),
                "value": pa.array(rows["c"].astype(np.float64)),
            },
            schema=RAW_SCHEMA,
        )

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
        empty buckets are omitted. A bucket that is a whole number of minutes (hours)
        reads the 1-minute (1-hour) roll-up for the whole roll-up buckets inside the
        range and the points only at its ragged ends.
        """
        check_range(start_us, end_us)
        if int(bucket_us) <= 0:
            raise InvalidInput("bucket_us", f"must be positive, got {bucket_us}")
        wanted = aggregates(aggs)
        schema = _agg_schema(wanted)
        ids = _series_list(series)
        if not ids:
            return schema.empty_table()
        width = int(bucket_us)
        start, end = int(start_us), int(end_us)
        origin = (start // width) * width
        params: dict[str, Any] = {
            "ids": ids,
            "start": start,
            "end": end,
            "origin": origin,
            "width": width,
        }
        rollup = _rollup_for(width)
        lo = hi = end
        if rollup is not None:
            _, rw = rollup
            lo, hi = -(-start // rw) * rw, (end // rw) * rw
        ends = _points_sql(
            [("%(start)s", "%(lo)s"), ("%(hi)s", "%(end)s")], "b.series = ANY(%(ids)s)"
        )
        parts = [
            f"SELECT series, (ts - %(origin)s) / %(width)s AS k, {_POINT_STATE}"
            f" FROM ({ends}) AS p GROUP BY series, k"
        ]
        params.update(lo=lo, hi=hi)
        if rollup is not None and lo < hi:
            parts.append(
                f"SELECT series, (bucket - %(origin)s) / %(width)s AS k, {_STATE_STATE}"
                f" FROM {rollup[0]} WHERE series = ANY(%(ids)s) AND bucket >= %(lo)s"
                " AND bucket < %(hi)s GROUP BY series, k"
            )
        finals = ", ".join(_FINAL[a] for a in wanted)
        sql = (
            f"SELECT series, k * %(width)s + %(origin)s, {finals} FROM ("
            + " UNION ALL ".join(parts)
            + f") AS parts (series, k, {_STATE_COLS}) GROUP BY series, k ORDER BY series, k"
        )
        rows = self._fetch("aggregate", sql, params)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(len(wanted) + 2)]
        arrays = [pa.array(cols[0], pa.int64()), pa.array(cols[1], pa.int64()).cast(_TS)]
        for i, a in enumerate(wanted):
            arrays.append(pa.array(cols[i + 2], pa.int64() if a is Agg.COUNT else pa.float64()))
        return pa.Table.from_arrays(arrays, schema=schema)

    def latest(self, series: Sequence[int]) -> pa.Table:
        """Latest point of each series: columns series, ts, value (absent series omitted)."""
        ids = _series_list(series)
        if not ids:
            return RAW_SCHEMA.empty_table()
        sql = "SELECT series, ts, value FROM tm_latest WHERE series = ANY(%(ids)s) ORDER BY series"
        rows = _decode_copy(self._copy_out("latest", sql, {"ids": ids}), _ROW3)
        return pa.table(
            {
                "series": pa.array(rows["a"].astype(np.int64)),
                "ts": pa.array(rows["b"].astype(np.int64)).cast(_TS),
                "value": pa.array(rows["c"].astype(np.float64)),
            },
            schema=RAW_SCHEMA,
        )

    def downsample(self, series: int, start_us: int, end_us: int, max_points: int) -> pa.Table:
        """At most ``max_points`` points (ts, value) that draw like the full series (M4).

        The range is cut into ``max_points // 4`` pixel columns; each keeps its first,
        last, lowest and highest point. A range holding at most ``max_points`` points is
        returned whole.
        """
        check_range(start_us, end_us)
        if int(max_points) < 4:
            raise InvalidInput("max_points", f"must be at least 4, got {max_points}")
        columns = int(max_points) // 4
        start, end = int(start_us), int(end_us)
        width = -(-(end - start) // columns)
        params = {"s": int(series), "start": start, "end": end, "width": width}
        points = "(" + _points_sql([("%(start)s", "%(end)s")], "b.series = %(s)s") + ") AS p"
        n = int(self._fetch("downsample", f"SELECT count(*) FROM {points}", params)[0][0])
        if n <= int(max_points):
            rows = _decode_copy(
                self._copy_out(
                    "downsample",
                    f"SELECT ts, value FROM {points} ORDER BY ts",
                    params,
                ),
                _ROW2,
            )
            return pa.table(
                {
                    "ts": pa.array(rows["a"].astype(np.int64)).cast(_TS),
                    "value": rows["b"].astype(np.float64),
                },
                schema=DOWNSAMPLE_SCHEMA,
            )
        sql = (
            "SELECT min(ARRAY[ts::float8, value]), max(ARRAY[ts::float8, value]),"
            " min(ARRAY[value, ts::float8]), max(ARRAY[value, ts::float8])"
            f" FROM {points} GROUP BY (ts - %(start)s) / %(width)s"
        )
        rows = self._fetch("downsample", sql, params)
        corners = np.asarray(rows, dtype=np.float64).reshape(len(rows), 4, 2)
        ts_cols = (corners[:, 0, 0], corners[:, 1, 0], corners[:, 2, 1], corners[:, 3, 1])
        v_cols = (corners[:, 0, 1], corners[:, 1, 1], corners[:, 2, 0], corners[:, 3, 0])
        ts, value = m4_merge(
            tuple(c.astype(np.int64) for c in ts_cols),  # type: ignore[arg-type]
            v_cols,
        )
        return pa.table({"ts": pa.array(ts, _TS), "value": value}, schema=DOWNSAMPLE_SCHEMA)

    def downsample_many(
        self, series: Sequence[int], start_us: int, end_us: int, max_points: int
    ) -> pa.Table:
        """:meth:`downsample` of several series: columns series, ts, value.

        One M4 query per series over the points (the roll-ups carry no timestamps of
        their extremes).
        """
        check_range(start_us, end_us)
        if int(max_points) < 4:
            raise InvalidInput("max_points", f"must be at least 4, got {max_points}")
        parts = []
        for sid in _series_list(series):
            t = self.downsample(sid, start_us, end_us, max_points)
            if t.num_rows:
                sids = pa.array(np.full(t.num_rows, sid, np.int64))
                parts.append(pa.table({"series": sids, "ts": t["ts"], "value": t["value"]}))
        if not parts:
            return RAW_SCHEMA.empty_table()
        return pa.concat_tables(parts).cast(RAW_SCHEMA)

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
        sql = (
            "SELECT asset_id, ts, kind, code, payload FROM tm_events"
            " WHERE asset_id = ANY(%(assets)s) AND ts >= %(start)s AND ts < %(end)s"
        )
        if kinds is not None:
            sql += " AND kind = ANY(%(kinds)s)"
            params["kinds"] = [str(k) for k in kinds]
        sql += " ORDER BY ts, asset_id, kind, code LIMIT %(limit)s"
        rows = self._fetch("events", sql, params)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(5)]
        return pa.table(
            {
                "asset_id": pa.array(cols[0], pa.string()),
                "ts": pa.array(cols[1], pa.int64()).cast(_TS),
                "kind": pa.array(cols[2], pa.string()),
                "code": pa.array(cols[3], pa.string()),
                "payload": pa.array(cols[4], pa.string()),
            },
            schema=EVENTS_SCHEMA,
        )
