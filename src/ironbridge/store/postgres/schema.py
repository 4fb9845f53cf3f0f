"""Schema of the PostgreSQL telemetry tables, their partitions and forward migrations.

Timestamps are stored as ``bigint`` µs since the epoch (the unit of the whole
platform): range partitions, bucket arithmetic and binary COPY then need no
conversion. Tables carry a ``tm_`` prefix so they can share a database with the
registry.

Points are stored in blocks (:mod:`ironbridge.store.postgres.blocks`): ``tm_blocks``,
range-partitioned by day on the block's first timestamp, keyed by (series, t0). The
view ``tm_points (series, ts, value)`` shows them a point a row, for ad-hoc SQL.
Schema version 1 stored a row per point in a table ``tm_points``; migration 2 moves
those rows into blocks.
"""

# ruff: noqa: S608 - SQL texts are assembled from constants of this module only

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ironbridge.store.postgres.blocks import BLOCK_POINTS, BLOCK_SPAN_US

#: µs in one day: the width of a points partition.
DAY_US = 86_400_000_000
#: widths of the roll-up tables, widest first
ROLLUPS: tuple[tuple[str, int], ...] = (
    ("tm_points_1h", 3_600_000_000),
    ("tm_points_1m", 60_000_000),
)

_ROLLUP_DDL = (
    "CREATE TABLE {name} (series bigint NOT NULL, bucket bigint NOT NULL,"
    " n bigint NOT NULL, sum double precision NOT NULL, min double precision NOT NULL,"
    " max double precision NOT NULL, first_ts bigint NOT NULL,"
    " first_v double precision NOT NULL, last_ts bigint NOT NULL,"
    " last_v double precision NOT NULL, PRIMARY KEY (series, bucket))"
)

#: the partitioned table of point blocks
POINTS_TABLE = "tm_blocks"
_HOUR_OF_TS = f"(ts - (((ts % {BLOCK_SPAN_US}) + {BLOCK_SPAN_US}) % {BLOCK_SPAN_US}))"


def _points_to_blocks(conn: Any) -> None:
    """Migration 2: the row-per-point table ``tm_points`` becomes blocks and a view."""
    conn.execute(
        "CREATE TABLE tm_blocks (series bigint NOT NULL, t0 bigint NOT NULL,"
        " t1 bigint NOT NULL, n integer NOT NULL, ts bigint[] NOT NULL,"
        " vals double precision[] NOT NULL, PRIMARY KEY (series, t0)) PARTITION BY RANGE (t0)"
    )
    # arrays inline and uncompressed (a block fits a page): no TOAST work per block
    conn.execute(
        "ALTER TABLE tm_blocks ALTER COLUMN ts SET STORAGE PLAIN,"
        " ALTER COLUMN vals SET STORAGE PLAIN"
    )
    _create_missing(conn, _days_of(conn, "tm_points"))
    conn.execute(
        "INSERT INTO tm_blocks SELECT series, min(ts), max(ts), count(*)::integer,"
        " array_agg(ts ORDER BY ts), array_agg(value ORDER BY ts) FROM ("
        f" SELECT series, ts, value, {_HOUR_OF_TS} AS h, (row_number() OVER"
        f" (PARTITION BY series, {_HOUR_OF_TS} ORDER BY ts) - 1) / {BLOCK_POINTS} AS c"
        " FROM tm_points) AS p GROUP BY series, h, c"
    )
    conn.execute("DROP TABLE tm_points")
    conn.execute(
        "CREATE VIEW tm_points AS SELECT b.series, u.ts, u.value FROM tm_blocks b"
        " CROSS JOIN LATERAL unnest(b.ts, b.vals) AS u(ts, value)"
    )


#: Ordered migrations; entry ``i`` takes the schema from version ``i`` to ``i + 1``
#: (statements, or a function of the connection for a migration that moves data).
MIGRATIONS: tuple[tuple[str, ...] | Callable[[Any], None], ...] = (
    (
        "CREATE TABLE tm_points (series bigint NOT NULL, ts bigint NOT NULL,"
        " value double precision NOT NULL, PRIMARY KEY (series, ts)) PARTITION BY RANGE (ts)",
        "CREATE TABLE tm_latest (series bigint PRIMARY KEY, ts bigint NOT NULL,"
        " value double precision NOT NULL)",
        'CREATE TABLE tm_events (asset_id text COLLATE "C" NOT NULL, ts bigint NOT NULL,'
        ' kind text COLLATE "C" NOT NULL, code text COLLATE "C" NOT NULL, payload text NOT NULL)',
        "CREATE INDEX tm_events_asset_ts ON tm_events (asset_id, ts)",
        "CREATE TABLE tm_checkpoints (consumer text PRIMARY KEY, seq bigint NOT NULL)",
        _ROLLUP_DDL.format(name="tm_points_1m"),
        _ROLLUP_DDL.format(name="tm_points_1h"),
    ),
    _points_to_blocks,
)

SCHEMA_VERSION = len(MIGRATIONS)

#: advisory lock key serialising schema and partition changes between processes
LOCK_KEY = 0x1B7E1E


def migrate(conn: Any) -> int:
    """Bring the database's telemetry schema to :data:`SCHEMA_VERSION`; return the version found.

    Runs in one transaction under an advisory lock, so concurrent workers starting at
    once do not race.

    Args:
        conn: an open ``psycopg.Connection`` (not in a transaction).
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS tm_schema (version integer NOT NULL)")
        row = conn.execute("SELECT max(version) FROM tm_schema").fetchone()
        found = int(row[0]) if row is not None and row[0] is not None else 0
        if found > SCHEMA_VERSION:
            raise RuntimeError(
                f"telemetry schema version {found} is newer than this code ({SCHEMA_VERSION})"
            )
        for version in range(found, SCHEMA_VERSION):
            step = MIGRATIONS[version]
            if callable(step):
                step(conn)
                continue
            for statement in step:
                conn.execute(statement)
        if found < SCHEMA_VERSION:
            conn.execute("DELETE FROM tm_schema")
            conn.execute("INSERT INTO tm_schema VALUES (%s)", (SCHEMA_VERSION,))
    return found


def partition_name(day: int) -> str:
    """Return the name of the partition holding day ``day`` (days since the epoch)."""
    date = datetime.fromtimestamp(day * 86_400, UTC)
    return f"{POINTS_TABLE}_{date:%Y%m%d}" if day >= 0 else f"{POINTS_TABLE}_m{-day}"


def existing_days(conn: Any) -> set[int]:
    """Return the days (since the epoch) that already have a points partition."""
    return _days_of(conn, POINTS_TABLE)


def _days_of(conn: Any, table: str) -> set[int]:
    rows = conn.execute(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
        " JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    days: set[int] = set()
    for (bound,) in rows:
        # "FOR VALUES FROM ('1699920000000000') TO ('1700006400000000')"
        lo = str(bound).split("(", 1)[1].split(")", 1)[0].strip("'")
        days.add(int(lo) // DAY_US)
    return days


def create_partitions(conn: Any, days: set[int]) -> None:
    """Create the daily partitions of ``days`` that are missing (one transaction).

    Args:
        conn: an open ``psycopg.Connection`` (not in a transaction).
        days: days since the epoch.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        _create_missing(conn, days)


def _create_missing(conn: Any, days: set[int]) -> None:
    for day in sorted(days - existing_days(conn)):
        conn.execute(
            f"CREATE TABLE {partition_name(day)} PARTITION OF {POINTS_TABLE}"
            f" FOR VALUES FROM ({day * DAY_US}) TO ({(day + 1) * DAY_US})"
        )


def drop_partitions_before(conn: Any, ts_us: int) -> list[str]:
    """Drop every partition that ends at or before ``ts_us``; return their names.

    The 1-minute roll-up rows before ``ts_us`` go with them; the 1-hour roll-up is
    kept (it is small and serves long-range queries past the raw retention).
    """
    dropped: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for day in sorted(existing_days(conn)):
            if (day + 1) * DAY_US <= ts_us:
                name = partition_name(day)
                conn.execute(f"DROP TABLE {name}")
                dropped.append(name)
        conn.execute("DELETE FROM tm_points_1m WHERE bucket < %s", (int(ts_us),))
    return dropped
