"""Dispatch benchmark: OR-Tools plan against the greedy nearest-available baseline.

500 open work orders, 100 technicians in 20 stations across Shandong; both plans are
evaluated by the same simulation (travel with the way home, SLA response breaches).

    .venv/bin/python bench/dispatch.py            # 500 orders, 100 technicians, 8 s limit
    .venv/bin/python bench/dispatch.py --quick    # 100 orders, 20 technicians, 2 s limit
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from ironbridge.aftersales import greedy_plan, propose_plan
from ironbridge.aftersales.scenario import dispatch_problem


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n_jobs, per_station, limit = (100, 1, 2.0) if args.quick else (500, 5, 8.0)
    techs, jobs = dispatch_problem(n_jobs, per_station, seed=args.seed)
    greedy = greedy_plan(techs, jobs)
    t0 = time.perf_counter()
    plan = propose_plan(techs, jobs, time_limit_s=limit)
    wall = time.perf_counter() - t0
    rows = [
        ("greedy nearest-available", greedy.solve_s, greedy.travel_min, greedy.breaches,
         len(greedy.unassigned)),
        (f"ironbridge {plan.method}", wall, plan.travel_min, plan.breaches, len(plan.unassigned)),
    ]  # fmt: skip
    print(
        f"{len(jobs)} work orders, {len(techs)} technicians, "
        f"{len({t.station_id for t in techs})} stations"
    )
    print(f"{'method':28} {'time s':>8} {'travel min':>11} {'breaches':>9} {'unassigned':>11}")
    for name, s, travel, breaches, un in rows:
        print(f"{name:28} {s:8.2f} {travel:11.0f} {breaches:9d} {un:11d}")
    saving = 1 - plan.travel_min / greedy.travel_min if greedy.travel_min else 0.0
    print(f"travel {saving:.1%} less than greedy; breaches {plan.breaches} vs {greedy.breaches}")
    out = {
        "jobs": len(jobs), "technicians": len(techs), "time_limit_s": limit,
        "plan_s": wall, "travel_min": plan.travel_min, "breaches": plan.breaches,
        "unassigned": len(plan.unassigned), "baseline_travel_min": greedy.travel_min,
        "baseline_breaches": greedy.breaches, "baseline_unassigned": len(greedy.unassigned),
        "travel_saving": saving, "machine": platform.processor() or platform.machine(),
        "quick": args.quick,
    }  # fmt: skip
    path = Path(__file__).with_name("results") / "dispatch.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
