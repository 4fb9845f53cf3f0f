"""Schema of the DuckDB telemetry file and its forward migrations."""

from __future__ import annotations

from typing import Any

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
