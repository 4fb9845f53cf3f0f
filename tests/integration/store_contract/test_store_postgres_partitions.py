"""PostgreSQL-only behaviour of the telemetry store: daily partitions and retention."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from ironbridge.store import Agg, PointBatch
from ironbridge.store.postgres import PostgresTelemetryStore

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

S = 1_000_000
DAY = 86_400 * S
T0 = 1_699_920_000 * S  # midnight UTC


def _partitions(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'tm_blocks'::regclass ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def test_partitions_created_ahead_and_dropped_by_retention(pg_url: str) -> None:
    with PostgresTelemetryStore(pg_url, days_ahead=2) as store:
        assert _partitions(pg_url) == []
        ts = np.array([T0 + 3_600 * S, T0 + DAY + 60 * S, T0 + 2 * DAY], np.int64)
        store.append(PointBatch(np.array([1, 1, 1]), ts, np.array([1.0, 2.0, 3.0])))
        # the three days written plus two ahead of the last
        assert _partitions(pg_url) == [
            "tm_blocks_20231114",
            "tm_blocks_20231115",
            "tm_blocks_20231116",
            "tm_blocks_20231117",
            "tm_blocks_20231118",
        ]
        dropped = store.drop_before(T0 + DAY + 1)
        assert dropped == ["tm_blocks_20231114"]
        assert store.count() == 2
        assert store.raw([1], T0, T0 + 3 * DAY).column("value").to_pylist() == [2.0, 3.0]
        # the hour roll-up outlives the raw partitions (long-range queries)
        hours = store.aggregate([1], T0, T0 + 3 * DAY, DAY, [Agg.COUNT])
        assert hours.column("count").to_pylist() == [1, 1, 1]


def test_a_second_store_sees_the_same_data(pg_url: str) -> None:
    # cluster mode: many processes on one database
    with PostgresTelemetryStore(pg_url) as a, PostgresTelemetryStore(pg_url) as b:
        a.append(PointBatch(np.array([1]), np.array([T0]), np.array([1.0])))
        b.append(PointBatch(np.array([2]), np.array([T0]), np.array([2.0])))
        assert a.latest([1, 2]).column("value").to_pylist() == [1.0, 2.0]
        assert b.count() == 2
