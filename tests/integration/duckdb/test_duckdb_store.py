"""DuckDB-only behaviour of the telemetry store (the shared contract is in store_contract/)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

pytestmark = pytest.mark.integration

S = 1_000_000
T0 = 1_699_920_000 * S


def test_rebuild_latest_after_bulk_load(tmp_path: Path) -> None:
    path = tmp_path / "t.duckdb"
    DuckDBTelemetryStore(path).close()
    con = duckdb.connect(str(path))
    con.execute(
        "INSERT INTO points SELECT i % 3, make_timestamp($t0 + i * 1000000), i::DOUBLE "
        "FROM range(30) t(i)",
        {"t0": T0},
    )
    con.close()
    with DuckDBTelemetryStore(path) as s:
        assert s.latest([0, 1, 2]).num_rows == 0
        s.rebuild_latest()
        assert s.latest([0, 1, 2]).column("value").to_pylist() == [27.0, 28.0, 29.0]
        # overwrites the bulk-loaded point
        s.append(PointBatch(np.array([0]), np.array([T0]), np.array([-1.0])))
        assert s.count() == 30
