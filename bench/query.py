"""Query latency of DuckDBTelemetryStore vs hand-written DuckDB SQL on the same file.

Dataset (``--points`` total, default 100 M; ``--quick`` = 5 M), in ingest order (day by
day, all series of a day together):

* series 0: a 1 Hz sensor for up to a year (half the points, capped at 365 days), with
  one spike for the chart to keep;
* series 1..30000: 10 000 assets x 3 measurements (series ``1 + 3 * asset + m``) over
  the last 90 days, evenly spaced, sharing the other half of the points.

Queries: latest of 10 000 series; one day of series 0 at 1 Hz; series 0 over its span
in 1 h buckets; fleet-wide daily averages of measurement 0 over 30 days; an M4 chart
(2000 points) of series 0 over its span. Each is timed against hand-written SQL giving
the same answer; the generated file is kept in bench/.data and reused.

Run: .venv/bin/python bench/query.py [--quick] [--points N] [--repeat R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ironbridge.store import Agg
from ironbridge.store.duckdb import DuckDBTelemetryStore
from ironbridge.store.duckdb.columnar import m4_columns, rollup_width
from ironbridge.store.duckdb.schema import ROLLUPS

HERE = Path(__file__).parent
DATA = HERE / ".data"
RESULTS = HERE / "results" / "query.json"
S = 1_000_000
DAY = 86_400 * S
END = 1_767_225_600 * S  # 2026-01-01T00:00:00Z: every series ends here
ASSETS = 10_000
MEASUREMENTS = 3
SLOW = ASSETS * MEASUREMENTS
SLOW_DAYS = 90
LAYOUT = 1  # bump when the generated data changes


def layout(points: int) -> dict[str, int]:
    """Sizes of the dataset for ``points`` points in total."""
    fast_days = max(1, min(365, points // 2 // 86_400))
    fast = fast_days * 86_400
    per_series = max(1, (points - fast) // SLOW)
    return {
        "layout": LAYOUT,
        "points": fast + per_series * SLOW,
        "fast_days": fast_days,
        "fast_points": fast,
        "slow_per_series": per_series,
        "slow_period_us": SLOW_DAYS * DAY // per_series,
    }


def generate(path: Path, spec: dict[str, int]) -> None:
    """Write the dataset straight into the store's points table, day by day."""
    path.unlink(missing_ok=True)
    DuckDBTelemetryStore(path).close()  # creates the schema
    con = duckdb.connect(str(path))
    fast_start = END - spec["fast_days"] * DAY
    slow_start = END - SLOW_DAYS * DAY
    period = spec["slow_period_us"]
    spike = fast_start + (spec["fast_days"] * 86_400 * 2 // 3) * S
    t = time.perf_counter()
    days = max(spec["fast_days"], SLOW_DAYS)
    for day in range(days):
        d0 = END - (days - day) * DAY
        if d0 >= fast_start:
            con.execute(
                "INSERT INTO points SELECT 0, make_timestamp($d0 + i * 1000000),"
                " CASE WHEN $d0 + i * 1000000 = $spike THEN 1000.0"
                " ELSE 50 + 20 * sin(($d0 + i * 1000000 - $fs) / 3.6e9)"
                " + (hash(i + $d0) % 1000) / 500.0 END FROM range(86400) r(i)",
                {"d0": d0, "spike": spike, "fs": fast_start},
            )
        if d0 >= slow_start:
            # slow steps whose time falls in this day: k in [lo, hi)
            lo = -(-(d0 - slow_start) // period)
            hi = min(-(-(d0 + DAY - slow_start) // period), spec["slow_per_series"])
            if hi > lo:
                con.execute(
                    "INSERT INTO points SELECT 1 + (i % $n),"
                    " make_timestamp($ss + ($lo + i // $n) * $p),"
                    " (i % 997) / 10.0 + ((i // $n) % 24) FROM range(($hi - $lo) * $n) r(i)",
                    {"n": SLOW, "ss": slow_start, "lo": lo, "hi": hi, "p": period},
                )
        if day % 30 == 0:
            print(f"  generated day {day + 1}/{days}", file=sys.stderr)
    con.execute("CHECKPOINT")
    con.close()
    with DuckDBTelemetryStore(path) as store:
        store.rebuild_latest()
        assert store.count() == spec["points"], (store.count(), spec["points"])
    (path.with_suffix(".json")).write_text(json.dumps(spec))
    print(
        f"  generated {spec['points']:,} points in {time.perf_counter() - t:.1f} s", file=sys.stderr
    )


def dataset(points: int) -> tuple[Path, dict[str, int]]:
    """Return the generated file for ``points``, generating it unless already there."""
    spec = layout(points)
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"query-{spec['points']}.duckdb"
    meta = path.with_suffix(".json")
    if not (path.exists() and meta.exists() and json.loads(meta.read_text()) == spec):
        print(f"generating {path} ...", file=sys.stderr)
        generate(path, spec)
    return path, spec


def timed(
    ours: Callable[[], pa.Table], theirs: Callable[[], pa.Table], repeat: int
) -> tuple[list[float], pa.Table, list[float], pa.Table]:
    """Time both callables alternately (same cache state); cheap queries run more often."""
    ours_res, theirs_res = ours(), theirs()  # warm-up
    t = time.perf_counter()
    ours()
    if time.perf_counter() - t < 0.02:
        repeat = max(repeat, 60)
    ours_t: list[float] = []
    theirs_t: list[float] = []
    for _ in range(repeat):
        t = time.perf_counter()
        ours_res = ours()
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        theirs_res = theirs()
        theirs_t.append(time.perf_counter() - t)
    return ours_t, ours_res, theirs_t, theirs_res


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(0.95 * (len(xs) - 1)))]


def queries(
    store: DuckDBTelemetryStore, con: duckdb.DuckDBPyConnection, spec: dict[str, int]
) -> list[tuple[str, Callable[[], pa.Table], Callable[[], pa.Table]]]:
    fast_start = END - spec["fast_days"] * DAY
    day = END - DAY
    fleet = [1 + MEASUREMENTS * a for a in range(ASSETS)]
    latest_ids = list(range(1, ASSETS + 1))
    hour = 3600 * S
    # The store draws a long range from a roll-up, with pixel columns of whole buckets;
    # the hand-written SQL computes the same M4 (same column edges) from the points.
    even = m4_columns(fast_start, END, 2000 // 4)[1]
    unit = rollup_width(even, tuple(w for _, w in ROLLUPS)) or 1
    origin, width = m4_columns(fast_start, END, 2000 // 4, unit)

    def sql(text: str, params: dict[str, Any] | None = None) -> Callable[[], pa.Table]:
        def run() -> pa.Table:
            cur = con.cursor()
            try:
                return cur.sql(text, params=params).to_arrow_table()
            finally:
                cur.close()

        return run

    window = "ts >= make_timestamp($a) AND ts < make_timestamp($b)"
    m4_sql = (
        "WITH b AS (SELECT (epoch_us(ts) - $o) // $w AS px,"
        " min(ts) t1, arg_min(value, ts) v1, max(ts) t2, arg_max(value, ts) v2,"
        " arg_min(ts, value) t3, min(value) v3, arg_max(ts, value) t4, max(value) v4"
        f" FROM points WHERE series = 0 AND {window} GROUP BY px)"
        " SELECT DISTINCT ts, value FROM (SELECT t1 AS ts, v1 AS value FROM b"
        " UNION ALL SELECT t2, v2 FROM b UNION ALL SELECT t3, v3 FROM b"
        " UNION ALL SELECT t4, v4 FROM b) ORDER BY ts"
    )
    return [
        (
            "latest of 10 000 series",
            lambda: store.latest(latest_ids),
            sql(
                "SELECT series, ts, value FROM latest"
                " WHERE series BETWEEN 1 AND 10000 ORDER BY series"
            ),
        ),
        (
            "raw: 1 series, 1 day at 1 Hz",
            lambda: store.raw([0], day, END),
            sql(
                f"SELECT series, ts, value FROM points WHERE series = 0 AND {window} ORDER BY ts",
                {"a": day, "b": END},
            ),
        ),
        (
            f"1 series, {spec['fast_days']} d in 1 h buckets",
            lambda: store.aggregate([0], fast_start, END, hour, [Agg.AVG, Agg.MIN, Agg.MAX]),
            sql(
                "SELECT series, time_bucket(INTERVAL 1 HOUR, ts) AS bucket, avg(value),"
                f" min(value), max(value) FROM points WHERE series = 0 AND {window}"
                " GROUP BY ALL ORDER BY bucket",
                {"a": fast_start, "b": END},
            ),
        ),
        (
            "fleet daily avg, 10k series, 30 d",
            lambda: store.aggregate(fleet, END - 30 * DAY, END, DAY, [Agg.AVG]),
            sql(
                "SELECT series, time_bucket(INTERVAL 1 DAY, ts) AS bucket, avg(value)"
                f" FROM points WHERE series BETWEEN 1 AND {SLOW} AND (series - 1) % 3 = 0"
                f" AND {window} GROUP BY ALL ORDER BY series, bucket",
                {"a": END - 30 * DAY, "b": END},
            ),
        ),
        (
            f"M4 chart 2000 pts, 1 series {spec['fast_days']} d",
            lambda: store.downsample(0, fast_start, END, 2000),
            sql(m4_sql, {"a": fast_start, "b": END, "o": origin, "w": width}),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=100_000_000)
    parser.add_argument("--quick", action="store_true", help="5 M points")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    points = 5_000_000 if args.quick else args.points
    path, spec = dataset(points)
    store = DuckDBTelemetryStore(path)
    con = duckdb.connect(str(path))  # same process and config: shares the database
    rows = []
    try:
        for name, ours, theirs in queries(store, con, spec):
            ours_t, ours_res, theirs_t, theirs_res = timed(ours, theirs, args.repeat)
            assert ours_res.num_rows == theirs_res.num_rows, (
                name,
                ours_res.num_rows,
                theirs_res.num_rows,
            )
            p50_o, p50_t = statistics.median(ours_t), statistics.median(theirs_t)
            rows.append(
                {
                    "query": name,
                    "rows": ours_res.num_rows,
                    "store_p50_ms": round(p50_o * 1e3, 2),
                    "store_p95_ms": round(p95(ours_t) * 1e3, 2),
                    "sql_p50_ms": round(p50_t * 1e3, 2),
                    "sql_p95_ms": round(p95(theirs_t) * 1e3, 2),
                    "ratio_p50": round(p50_o / p50_t, 2),
                }
            )
    finally:
        store.close()
        con.close()
    head = (
        f"{'query':<38}{'rows':>8}{'store p50':>11}{'p95':>9}{'SQL p50':>10}{'p95':>9}{'ratio':>7}"
    )
    print(f"{spec['points']:,} points in {path}")
    print(head)
    for r in rows:
        print(
            f"{r['query']:<38}{r['rows']:>8}{r['store_p50_ms']:>9.1f}ms{r['store_p95_ms']:>7.1f}ms"
            f"{r['sql_p50_ms']:>8.1f}ms{r['sql_p95_ms']:>7.1f}ms{r['ratio_p50']:>7.2f}"
        )
    print("ratio = store p50 / hand-written SQL p50 (target <= 2)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"dataset": spec, "queries": rows, "target_ratio": 2.0}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
