"""``ironbridge admin migrate --to postgresql://…``: move an embedded installation to cluster mode.

Copies the registry (every table of every package, SQLite -> PostgreSQL, in foreign-key
order, sequences reset) and the telemetry (DuckDB points through the PostgreSQL store's
append, so partitions, roll-ups and latest values are built as they would be by ingest;
events and checkpoints as they are), then verifies the counts. The embedded platform
must be stopped (DuckDB allows one process per file); the target must be empty.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import sqlalchemy as sa

from ironbridge.model import Conflict, Event, PermanentError
from ironbridge.store import Checkpoint, PointBatch
from ironbridge.store.postgres import PostgresTelemetryStore
from ironbridge.store.sql import SqlRegistry

_LOGGER = logging.getLogger(__name__)

#: points per append while copying (one transaction each)
CHUNK = 200_000


@dataclass
class MigrationReport:
    """What was copied, table by table, and the verified totals."""

    registry_rows: dict[str, int] = field(default_factory=dict)
    points: int = 0
    events: int = 0
    checkpoints: dict[str, int] = field(default_factory=dict)


def _sa_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def migrate_registry(source_url: str, target_url: str, report: MigrationReport) -> None:
    """Copy every registry table from ``source_url`` to ``target_url`` (migrated first)."""
    SqlRegistry.open(target_url).close()  # creates every package's tables (Alembic heads)
    src = sa.create_engine(source_url)
    dst = sa.create_engine(target_url)
    try:
        meta = sa.MetaData()
        meta.reflect(src)
        target_meta = sa.MetaData()
        target_meta.reflect(dst)
        with src.connect() as s, dst.begin() as d:
            for table in meta.sorted_tables:
                if table.name == "alembic_version" or table.name not in target_meta.tables:
                    continue
                target = target_meta.tables[table.name]
                if d.execute(sa.select(sa.func.count()).select_from(target)).scalar_one():
                    raise Conflict(f"target table {table.name} is not empty")
                rows = [dict(r._mapping) for r in s.execute(sa.select(table))]
                if rows:
                    cols = set(target.columns.keys())
                    d.execute(
                        target.insert(), [{k: v for k, v in r.items() if k in cols} for r in rows]
                    )
                report.registry_rows[table.name] = len(rows)
                _reset_sequences(d, target)
            for name, n in report.registry_rows.items():
                got = d.execute(sa.select(sa.func.count()).select_from(target_meta.tables[name]))
                if got.scalar_one() != n:
                    raise PermanentError(f"registry table {name}: copied {n} rows, found fewer")
    finally:
        src.dispose()
        dst.dispose()


def _reset_sequences(conn: sa.Connection, table: sa.Table) -> None:
    # Rows came with their ids: move each serial column's sequence past them.
    for col in table.columns:
        if col.primary_key and isinstance(col.type, sa.Integer):
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col.name}
            ).scalar()
            if seq:
                top = f'SELECT coalesce(max("{col.name}"), 0) + 1 FROM "{table.name}"'  # noqa: S608 - reflected names
                conn.execute(sa.text(f"SELECT setval(:s, ({top}), false)"), {"s": seq})


def migrate_telemetry(
    duckdb_path: Path,
    target_url: str,
    report: MigrationReport,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Copy points, events and checkpoints from the DuckDB file into PostgreSQL."""
    import duckdb

    src = duckdb.connect(str(duckdb_path), read_only=True)
    store = PostgresTelemetryStore(target_url)
    try:
        if store.count():
            raise Conflict("the target telemetry store is not empty")
        reader = src.sql(
            "SELECT series, epoch_us(ts) AS ts, value FROM points ORDER BY series, ts"
        ).to_arrow_reader(CHUNK)
        for rb in reader:
            batch = PointBatch(
                rb.column(0).to_numpy().astype(np.int64),
                rb.column(1).to_numpy().astype(np.int64),
                rb.column(2).to_numpy(zero_copy_only=False).astype(np.float64),
            )
            report.points += store.append(batch)
            if progress is not None:
                progress(report.points)
        rows = src.execute(
            "SELECT asset_id, epoch_us(ts), kind, code, payload FROM events ORDER BY ts"
        ).fetchall()
        events = [
            Event(asset_id=a, ts_us=int(t), kind=k, code=c, payload=orjson.loads(p))
            for a, t, k, c, p in rows
        ]
        for i in range(0, len(events), 10_000):
            store.append(PointBatch.empty(), events[i : i + 10_000])
        report.events = len(events)
        for consumer, seq in src.execute("SELECT consumer, seq FROM checkpoints").fetchall():
            store.append(PointBatch.empty(), (), Checkpoint(consumer=consumer, seq=int(seq)))
            report.checkpoints[consumer] = int(seq)
        want = int(src.execute("SELECT count(*) FROM points").fetchall()[0][0])
        if store.count() != want:
            raise PermanentError(f"points: {want} in DuckDB, {store.count()} in PostgreSQL")
    finally:
        store.close()
        src.close()


def migrate_installation(
    data_dir: Path,
    registry_source_url: str,
    target_url: str,
    progress: Callable[[int], None] | None = None,
) -> MigrationReport:
    """Copy an embedded installation (registry and telemetry) into PostgreSQL at ``target_url``."""
    report = MigrationReport()
    migrate_registry(registry_source_url, _sa_url(target_url), report)
    duck = data_dir / "telemetry.duckdb"
    if duck.exists():
        migrate_telemetry(
            duck, target_url.replace("postgresql+psycopg://", "postgresql://", 1), report, progress
        )
    return report
