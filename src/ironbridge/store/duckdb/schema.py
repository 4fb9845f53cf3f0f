"""Schema of the DuckDB telemetry file and its forward migrations."""

# ruff: noqa: S608 - every SQL text is assembled from constant fragments of this module

from __future__ import annotations

from typing import Any

#: Roll-up tables (name, bucket width in µs), finest first. Each row summarises the
#: points of one series in one epoch-aligned bucket; a bucket may have several rows
#: (appends add partial rows, queries merge them), see :mod:`.store`.
ROLLUPS: tuple[tuple[str, int], ...] = (
    ("rollup_1m", 60_000_000),
    ("rollup_1h", 3_600_000_000),
)
ROLLUP_COLUMNS = (
    "series, bucket, n, v_sum, v_min, v_max, first_ts, first_v, last_ts, last_v, min_ts, max_ts"
)
_ROLLUP_DDL = (
    "CREATE TABLE {name} (series BIGINT NOT NULL, bucket BIGINT NOT NULL, n BIGINT NOT NULL,"
    " v_sum DOUBLE, v_min DOUBLE, v_max DOUBLE, first_ts BIGINT NOT NULL, first_v DOUBLE,"
    " last_ts BIGINT NOT NULL, last_v DOUBLE, min_ts BIGINT NOT NULL, max_ts BIGINT NOT NULL)"
)
#: the state of a group of points (columns series, t = epoch µs, value, b = bucket)
POINT_STATE = (
    "count(*), sum(value), min(value), max(value), min(t), arg_min(value, t), max(t),"
    " arg_max(value, t), arg_min(t, value), arg_max(t, value)"
)


def floor_sql(expr: str, width: int) -> str:
    """SQL flooring the integer ``expr`` to a multiple of ``width`` (``%`` truncates)."""
    return f"({expr} - ((({expr}) % {width}) + {width}) % {width})"


def rollup_fill_sql(name: str, width: int, where: str = "") -> str:
    """SQL inserting the roll-up rows of every point (matching ``where``) into ``name``."""
    return (
        f"INSERT INTO {name} SELECT series, b, {POINT_STATE} FROM ("
        f" SELECT series, t, value, {floor_sql('t', width)} AS b FROM ("
        f" SELECT series, epoch_us(ts) AS t, value FROM points{where}))"
        " GROUP BY series, b ORDER BY series, b"
    )


#: Ordered migrations; entry ``i`` takes the schema from version ``i`` to ``i + 1``.
#: Points carry no unique index on purpose: an ART index costs too much on the append
#: path, and the store enforces one value per (series, ts) itself.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        "CREATE TABLE points (series BIGINT NOT NULL, ts TIMESTAMP NOT NULL, value DOUBLE)",
        "CREATE TABLE latest ( series BIGINT PRIMARY KEY, ts TIMESTAMP NOT NULL, value DOUBLE)",
        "CREATE TABLE events ("
        " asset_id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, kind VARCHAR NOT NULL,"
        " code VARCHAR NOT NULL, payload VARCHAR NOT NULL)",
        "CREATE TABLE checkpoints (consumer VARCHAR PRIMARY KEY, seq BIGINT NOT NULL)",
    ),
    # v2: roll-ups for long-range charts and aggregates, filled from the stored points
    (
        *(_ROLLUP_DDL.format(name=name) for name, _ in ROLLUPS),
        *(rollup_fill_sql(name, width) for name, width in ROLLUPS),
    ),
    # v3: the latest table is written every few seconds, not with every append; this
    # row says whether it is complete (the file was closed cleanly) or must be rebuilt
    (
        "CREATE TABLE latest_state (synced BOOLEAN NOT NULL)",
        "INSERT INTO latest_state VALUES (true)",
    ),
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: Any) -> int:
    """Bring the file's schema to :data:`SCHEMA_VERSION`; return the version found.

    Args:
        conn: an open DuckDB connection (``duckdb.DuckDBPyConnection``).
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    # fetchall, not fetchone: a half-read result keeps its transaction open, and an open
    # transaction blocks CHECKPOINT later on.
    rows = conn.execute("SELECT max(version) FROM schema_version").fetchall()
    row = rows[0] if rows else None
    found = int(row[0]) if row is not None and row[0] is not None else 0
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"telemetry file has schema version {found}, newer than this code ({SCHEMA_VERSION})"
        )
    for version in range(found, SCHEMA_VERSION):
        conn.begin()
        try:
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version VALUES (?)", [version + 1])
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return found
