"""Store append rate: DuckDBTelemetryStore.append vs a raw DuckDB Arrow insert.

Run: .venv/bin/python bench/store_append.py [--quick] [--points N]
Importable: ``run(points) -> dict`` (bench/ingest.py calls it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from ironbridge.store import Checkpoint, PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

RESULTS = Path(__file__).parent / "results" / "store_append.json"
T0 = 1_735_689_600_000_000  # 2025-01-01T00:00:00Z in µs


def make_batches(points: int, batch: int, series: int) -> list[PointBatch]:
    """Time-ordered batches: every series reports once a second, series after series."""
    rng = np.random.default_rng(7)
    out = []
    for start in range(0, points, batch):
        k = np.arange(start, min(start + batch, points), dtype=np.int64)
        out.append(
            PointBatch(
                k % series,
                T0 + (k // series) * 1_000_000,
                rng.normal(50.0, 5.0, k.shape[0]),
            )
        )
    return out


def _raw_insert(path: Path, batches: list[PointBatch]) -> float:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE points (series BIGINT NOT NULL, ts TIMESTAMP NOT NULL, value DOUBLE)")
    t = time.perf_counter()
    for b in batches:
        table = pa.table(
            {
                "series": b.series,
                "ts": pa.array(b.ts, pa.int64()).cast(pa.timestamp("us")),
                "value": b.value,
            }
        )
        con.begin()
        con.register("batch", table)
        con.execute("INSERT INTO points SELECT * FROM batch")
        con.unregister("batch")
        con.commit()
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def _store_append(path: Path, batches: list[PointBatch]) -> tuple[float, int]:
    store = DuckDBTelemetryStore(path)
    t = time.perf_counter()
    for seq, b in enumerate(batches, 1):
        store.append(b, checkpoint=Checkpoint(consumer="bench", seq=seq))
    elapsed = time.perf_counter() - t
    count = store.count()
    store.close()
    return elapsed, count


def run(
    points: int, batch: int = 100_000, series: int = 10_000, repeats: int = 2
) -> dict[str, Any]:
    """Append ``points`` through the store and through a bare insert; return rates."""
    batches = make_batches(points, batch, series)
    raw_s = store_s = float("inf")
    # alternate the two paths and keep each one's best run, so neither profits from
    # going second (warm page cache, allocator)
    for attempt in range(repeats):
        with tempfile.TemporaryDirectory(prefix="ib-bench-append-") as tmp:
            raw_s = min(raw_s, _raw_insert(Path(tmp) / f"raw{attempt}.duckdb", batches))
            elapsed, count = _store_append(Path(tmp) / f"store{attempt}.duckdb", batches)
            store_s = min(store_s, elapsed)
        assert count == points, (count, points)
    raw_rate = points / raw_s
    store_rate = points / store_s
    return {
        "points": points,
        "batch": batch,
        "series": series,
        "raw_points_per_s": round(raw_rate),
        "store_points_per_s": round(store_rate),
        "store_vs_raw": round(store_rate / raw_rate, 3),
        "target_store_vs_raw": 0.30,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=5_000_000)
    parser.add_argument("--quick", action="store_true", help="1 M points")
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    points = 1_000_000 if args.quick else args.points
    result = run(points, batch=args.batch)
    print(f"{'path':<28}{'points/s':>14}")
    print(f"{'raw DuckDB Arrow insert':<28}{result['raw_points_per_s']:>14,}")
    print(f"{'DuckDBTelemetryStore.append':<28}{result['store_points_per_s']:>14,}")
    print(f"store / raw = {result['store_vs_raw']:.2f} (target >= 0.30)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
