"""Rule engine benchmark: 1 000 assets, 5 000 (asset, rule) bindings, 200 000 points/s.

Drives the engine in-process with batches like ingest publishes, checks that every point
is evaluated (count check), and compares with a plain numpy comparison of the same
points (the floor any evaluator pays). Usage: ``python bench/rules.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from ironbridge.rules import RuleEngine, SeriesInfo, parse_rule
from ironbridge.store.points import PointBatch

MEAS = ("temp", "rpm", "oil", "latitude", "longitude")


def main() -> None:
    """Run the benchmark, print a table and write bench/results/rules.json."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    assets, seconds, rate, batch_n = 1000, (3 if args.quick else 20), 200_000, 20_000
    defs = [
        {
            "id": "hot",
            "kind": "threshold",
            "params": {"measurement": "temp", "limit": 100, "deadband": 3},
            "on_delay_s": 5,
        },
        {
            "id": "roc",
            "kind": "rate_of_change",
            "params": {"measurement": "temp", "limit_per_s": 5},
        },
        {"id": "oil", "kind": "expression", "params": {"expression": "rpm > 500 && oil < 110"}},
        {
            "id": "geo",
            "kind": "geofence",
            "params": {"polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]},
        },
        {"id": "off", "kind": "no_data", "params": {"timeout_s": 60}},
    ]
    rules = [parse_rule({"asset_type": "t", **d}, tenant_id="root", tenant_path="/") for d in defs]
    eng = RuleEngine()
    eng.set_rules(rules, 0)
    eng.add_series(
        [
            SeriesInfo(a * 5 + j, f"a{a}", "t", m, "/")
            for a in range(assets)
            for j, m in enumerate(MEAS)
        ],
        0,
    )
    rng = np.random.default_rng(1)
    total = seconds * rate
    n_batches = total // batch_n
    batches = []
    for k in range(min(n_batches, 50)):
        series = rng.integers(0, assets * 5, batch_n)
        ts = (k * batch_n + np.arange(batch_n)) * (1_000_000 // rate) + 1
        val = rng.normal(90, 8, batch_n)
        batches.append(PointBatch(series.astype(np.int64), ts.astype(np.int64), val))
    t0 = time.perf_counter()
    transitions = 0
    for k in range(n_batches):
        b = batches[k % len(batches)]
        shift = (k // len(batches)) * len(batches) * batch_n * (1_000_000 // rate)
        out = eng.process(PointBatch(b.series, b.ts + shift, b.value), int(b.ts[-1] + shift))
        transitions += len(out)
    t_engine = time.perf_counter() - t0
    t0 = time.perf_counter()
    hits = 0
    for k in range(n_batches):
        b = batches[k % len(batches)]
        hits += int(np.count_nonzero(b.value > 100.0))
    t_base = time.perf_counter() - t0
    res = {
        "assets": assets,
        "bindings": eng.bindings,
        "points": int(n_batches * batch_n),
        "evaluated": eng.points_evaluated,
        "skipped": int(n_batches * batch_n) - eng.points_evaluated,
        "engine_points_per_s": round(n_batches * batch_n / t_engine),
        "baseline_numpy_points_per_s": round(n_batches * batch_n / t_base),
        "ratio_to_baseline": round(t_engine / t_base, 1),
        "transitions": transitions,
        "keeps_up_with_200k": n_batches * batch_n / t_engine >= rate,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    for k, v in res.items():
        print(f"{k:30} {v}")
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "rules.json").write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
