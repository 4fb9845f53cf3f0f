"""The DuckDB telemetry store: points, events, latest values and consumer checkpoints."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa

from ironbridge.model import Event, InvalidInput, PermanentError
from ironbridge.store.arguments import (
    aggregates,
    check_limit,
    check_range,
    events_params,
    series_ids,
)
from ironbridge.store.duckdb.columnar import (
    MaxTsIndex,
    PreparedBatch,
    late_mask,
    m4_merge,
    prepare_batch,
)
from ironbridge.store.duckdb.errors import mapped_errors
from ironbridge.store.duckdb.schema import migrate
from ironbridge.store.points import PointBatch
from ironbridge.store.ports import Agg, Checkpoint

_LOGGER = logging.getLogger(__name__)

_TS = pa.timestamp("us", tz="UTC")
_TS_NAIVE = pa.timestamp("us")
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
_LATEST_SQL = "SELECT series, ts, value FROM latest WHERE {series} ORDER BY series"
_M4_SQL = (
    "SELECT min(t) AS t_first, arg_min(value, t) AS v_first,"
    " max(t) AS t_last, arg_max(value, t) AS v_last,"
    " arg_min(t, value) AS t_min, min(value) AS v_min,"
    " arg_max(t, value) AS t_max, max(value) AS v_max, count(*) AS n"
    " FROM (SELECT epoch_us(ts) AS t, value FROM points WHERE series = $s"
    " AND ts >= make_timestamp($start) AND ts < make_timestamp($end))"
    " GROUP BY (t - $start) // $width"
)
_SERIES_RAW_SQL = (
    "SELECT ts, value FROM points WHERE series = $s"
    " AND ts >= make_timestamp($start) AND ts < make_timestamp($end) ORDER BY ts"
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
    ) -> None:
        """Open (creating if needed) the store at ``path`` (``":memory:"`` for tests).

        Args:
            path: the DuckDB file.
            threads: DuckDB worker threads (default: DuckDB's, one per core).
            memory_limit: DuckDB memory limit, e.g. ``"2GB"``.
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
        with mapped_errors("open"):
            self._conn = duckdb.connect(self._path, config=config)
            try:
                try:
                    migrate(self._conn)
                except RuntimeError as exc:
                    raise PermanentError(str(exc)) from exc
                self._writer = self._conn.cursor()
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
        """Checkpoint the write-ahead log into the file and close (idempotent)."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            with mapped_errors("close"):
                try:
                    self._writer.execute("CHECKPOINT")
                finally:
                    self._writer.close()
                    self._conn.close()
        _LOGGER.info("telemetry store closed at %s", self._path)

    def checkpoint_db(self) -> None:
        """Fold the write-ahead log into the database file (DuckDB ``CHECKPOINT``)."""
        with self._write_lock, mapped_errors("checkpoint"):
            self._writer.execute("CHECKPOINT")

    def rebuild_latest(self) -> None:
        """Recompute the latest table and the max-ts index from the points table.

        Needed only after points were loaded around :meth:`append` (bulk imports).
        """
        with self._write_lock, mapped_errors("rebuild_latest"):
            cur = self._writer
            cur.begin()
            try:
                cur.execute("DELETE FROM latest")
                cur.execute(
                    "INSERT INTO latest SELECT series, max(ts), arg_max(value, ts) "
                    "FROM points GROUP BY series"
                )
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
            self._max_ts = self._load_max_ts()

    def _load_max_ts(self) -> MaxTsIndex:
        # The latest table holds, per series, the highest ts ever committed (it is
        # upserted in the same transaction as the points), so it rebuilds the index
        # without scanning the points.
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
        checkpoint: Checkpoint | None = None,
    ) -> int:
        """Store points and events (and a checkpoint) in one transaction.

        Args:
            points: the batch; duplicates of a (series, ts) keep their last occurrence.
            events: events to store with the points.
            checkpoint: consumer sequence to commit with the data (it never moves back).

        Returns:
            The number of points written (after dropping in-batch duplicates).

        Raises:
            InvalidInput: on malformed batches, events or checkpoints.
            TransientError: the write may succeed if retried (nothing was committed).
            PermanentError: DuckDB refused the write (nothing was committed).
        """
        batch = prepare_batch(points.series, points.ts, points.value)
        ev_table = _events_table(events)
        if checkpoint is not None:
            if not checkpoint.consumer:
                raise InvalidInput("checkpoint.consumer", "must not be empty")
            if checkpoint.seq < 0:
                raise InvalidInput("checkpoint.seq", "must be non-negative")
        n = int(batch.series.shape[0])
        with self._write_lock, mapped_errors("append"):
            cur = self._writer
            prev = self._max_ts.lookup(batch.group_series) if n else None
            late = late_mask(batch, prev) if prev is not None else None
            cur.begin()
            try:
                if late is not None:
                    self._delete_overwritten(cur, batch, late)
                if n:
                    self._insert_points(cur, batch)
                if ev_table is not None:
                    _insert_arrow(cur, "_ib_events", ev_table, "INSERT INTO events SELECT * FROM ")
                if checkpoint is not None:
                    cur.execute(
                        "INSERT INTO checkpoints VALUES ($c, $s) ON CONFLICT (consumer) "
                        "DO UPDATE SET seq = greatest(checkpoints.seq, excluded.seq)",
                        {"c": checkpoint.consumer, "s": int(checkpoint.seq)},
                    )
                cur.commit()
            except BaseException:
                _rollback(cur)
                raise
            if n:
                self._max_ts.update(batch.group_series, batch.ts[batch.group_end])
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
    def _insert_points(cur: Any, batch: PreparedBatch) -> None:
        table = pa.table(
            {
                "series": batch.series,
                "ts": pa.array(batch.ts, pa.int64()).cast(_TS_NAIVE),
                "value": batch.value,
            }
        )
        _insert_arrow(cur, "_ib_points", table, "INSERT INTO points SELECT * FROM ")
        last = batch.group_end
        latest = pa.table(
            {
                "series": batch.group_series,
                "ts": pa.array(batch.ts[last], pa.int64()).cast(_TS_NAIVE),
                "value": batch.value[last],
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
        cols = ", ".join(f"{_AGG_SQL[a]} AS {a.value}" for a in wanted)
        sql = _AGG_QUERY.replace("{aggs}", cols)
        params = {"start": int(start_us), "end": int(end_us), "width": width, "origin": origin}
        return self._query("aggregate", sql, params, ids, schema)

    def latest(self, series: Sequence[int]) -> pa.Table:
        """Latest point of each series: columns series, ts, value (absent series omitted)."""
        ids = series_ids(series)
        if ids.shape[0] == 0:
            return RAW_SCHEMA.empty_table()
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

        The range is cut into ``max_points // 4`` pixel columns; each keeps its first,
        last, lowest and highest point. A range holding at most ``max_points`` points is
        returned whole.
        """
        check_range(start_us, end_us)
        if int(max_points) < 4:
            raise InvalidInput("max_points", f"must be at least 4, got {max_points}")
        columns = int(max_points) // 4
        width = -(-(int(end_us) - int(start_us)) // columns)
        params = {"s": int(series), "start": int(start_us), "end": int(end_us), "width": width}
        with self._reader("downsample") as cur:
            c = cur.execute(_M4_SQL, params).fetchnumpy()
            if int(np.sum(c["n"])) <= int(max_points):
                rows = cur.sql(
                    _SERIES_RAW_SQL,
                    params={"s": int(series), "start": int(start_us), "end": int(end_us)},
                ).to_arrow_table()
                return rows.cast(DOWNSAMPLE_SCHEMA)
        ts, value = m4_merge(
            tuple(np.asarray(c[k], np.int64) for k in ("t_first", "t_last", "t_min", "t_max")),  # type: ignore[arg-type]
            tuple(np.asarray(c[k], np.float64) for k in ("v_first", "v_last", "v_min", "v_max")),  # type: ignore[arg-type]
        )
        return pa.table({"ts": pa.array(ts, _TS), "value": value}, schema=DOWNSAMPLE_SCHEMA)

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
            if ids.shape[0] == 1:
                params = {**params, "sid": int(ids[0])}
                table = cur.sql(sql.format(series="series = $sid"), params=params).to_arrow_table()
            else:
                # A registered Arrow table keeps thousands of ids out of the SQL text;
                # the BETWEEN bounds still let zone maps skip row groups.
                params = {**params, "smin": int(ids[0]), "smax": int(ids[-1])}
                cond = "series IN (SELECT series FROM _ib_ids) AND series BETWEEN $smin AND $smax"
                cur.register("_ib_ids", pa.table({"series": ids}))
                table = cur.sql(sql.format(series=cond), params=params).to_arrow_table()
        return table.cast(schema)


def _insert_arrow(cur: Any, name: str, table: pa.Table, head: str, tail: str = "") -> None:
    cur.register(name, table)
    try:
        cur.execute(head + name + tail)
    finally:
        cur.unregister(name)


def _rollback(cur: Any) -> None:
    with contextlib.suppress(duckdb.Error):
        cur.rollback()
