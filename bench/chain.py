"""Industrial-chain benchmark: region metrics and what-if on a large random chain.

ironbridge (numpy bincounts + rustworkx Dijkstra) against a networkx implementation of
the same metrics, in the same run; results are asserted equal.

    .venv/bin/python bench/chain.py            # 100 000 firms, 1 000 000 links
    .venv/bin/python bench/chain.py --quick    # 5 000 firms, 50 000 links
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import rustworkx as rx

from ironbridge.chain import ChainFrame, RegionLevel, Removal, WhatIf, generate_chain, region_report
from ironbridge.chain.frame import BoolArray

LEVELS = (RegionLevel.PROVINCE, RegionLevel.CITY)
FIELDS = (
    "completeness",
    "completeness_weighted",
    "local_rate_value",
    "local_rate_count",
    "local_rate_part",
    "single_source_share",
)
EPS = 1e-9


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------- networkx baseline
def nx_build(frame: ChainFrame) -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    makes: dict[int, list[int]] = defaultdict(list)
    for f, c in zip(frame.make_firm.tolist(), frame.make_comp.tolist(), strict=True):
        makes[f].append(c)
    regions = {lv: frame.firm_region[lv].tolist() for lv in LEVELS}
    for f in range(frame.n_firms):
        g.add_node(f, makes=makes[f], **{lv.value: regions[lv][f] for lv in LEVELS})
    cols = (frame.sup, frame.cus, frame.comp, frame.share, frame.value, frame.cover, frame.recovery)
    for u, v, c, s, val, cov, rec in zip(*(a.tolist() for a in cols), strict=True):
        g.add_edge(u, v, comp=c, share=s, value=val, cover=cov, recovery=rec)
    return g


def nx_region_metrics(
    g: nx.MultiDiGraph, frame: ChainFrame, level: RegionLevel
) -> dict[str, list[float]]:
    key = level.value
    n_r = len(frame.region_names[level])
    imp = frame.comp_importance.tolist()
    covered: list[set[int]] = [set() for _ in range(n_r)]
    for _, d in g.nodes(data=True):
        covered[d[key]].update(d["makes"])
    purchase = [0.0] * n_r
    local = [0.0] * n_r
    suppliers: list[set[int]] = [set() for _ in range(n_r)]
    parts: list[set[int]] = [set() for _ in range(n_r)]
    local_parts: list[set[int]] = [set() for _ in range(n_r)]
    rc_sup: dict[tuple[int, int], set[int]] = defaultdict(set)
    rc_val: dict[tuple[int, int], float] = defaultdict(float)
    nodes = g.nodes
    for u, v, d in g.edges(data=True):
        r, rs = nodes[v][key], nodes[u][key]
        c, val = d["comp"], d["value"]
        purchase[r] += val
        suppliers[r].add(u)
        parts[r].add(c)
        rc_sup[(r, c)].add(u)
        rc_val[(r, c)] += val
        if rs == r:
            local[r] += val
            local_parts[r].add(c)
    single = [0.0] * n_r
    for (r, c), sups in rc_sup.items():
        if len(sups) == 1:
            single[r] += rc_val[(r, c)]
    total_imp = sum(imp)
    out: dict[str, list[float]] = {f: [] for f in FIELDS}
    for r in range(n_r):
        out["completeness"].append(len(covered[r]) / frame.n_comps)
        out["completeness_weighted"].append(sum(imp[c] for c in covered[r]) / total_imp)
        out["local_rate_value"].append(local[r] / purchase[r] if purchase[r] > 0 else math.nan)
        n_local = sum(1 for s in suppliers[r] if nodes[s][key] == r)
        out["local_rate_count"].append(n_local / len(suppliers[r]) if suppliers[r] else math.nan)
        out["local_rate_part"].append(len(local_parts[r]) / len(parts[r]) if parts[r] else math.nan)
        out["single_source_share"].append(single[r] / purchase[r] if purchase[r] > 0 else math.nan)
    return out


def nx_group_totals(g: nx.MultiDiGraph) -> dict[tuple[int, int], float]:
    totals: dict[tuple[int, int], float] = defaultdict(float)
    for _, v, d in g.edges(data=True):
        totals[(v, d["comp"])] += d["share"]
    return totals


def nx_whatif(
    g: nx.MultiDiGraph, totals: dict[tuple[int, int], float], removed: set[int]
) -> dict[int, float]:
    """Halt a firm when it lost all sources of one input; TTS by Dijkstra on cover days."""
    lost: dict[tuple[int, int], float] = defaultdict(float)
    halting: set[tuple[int, int]] = set()
    halted: set[int] = set()
    queue = deque(removed)
    while queue:
        u = queue.popleft()
        for _, v, d in g.out_edges(u, data=True):
            if v in removed:
                continue
            grp = (v, d["comp"])
            lost[grp] += d["share"]
            if lost[grp] / totals[grp] >= 1.0 - EPS:
                halting.add(grp)
                if v not in halted:
                    halted.add(v)
                    queue.append(v)
    h = nx.DiGraph()
    source = -1
    for u in removed | halted:
        for _, v, d in g.out_edges(u, data=True):
            if (v, d["comp"]) in halting:
                tail = source if u in removed else u
                w = d["cover"]
                if not h.has_edge(tail, v) or h[tail][v]["weight"] > w:
                    h.add_edge(tail, v, weight=w)
    if source not in h:
        return {}
    dist = nx.single_source_dijkstra_path_length(h, source)
    return {n: t for n, t in dist.items() if n in halted}


# ---------------------------------------------------------------- run
def compare_metrics(ours: Any, theirs: dict[str, list[float]], level: RegionLevel) -> None:
    for f in FIELDS:
        a = np.array([getattr(m, f) for m in ours.metrics])
        b = np.array(theirs[f])
        assert np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True), f"{level} {f} differs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--firms", type=int, default=100_000)
    ap.add_argument("--links", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="5 000 firms, 50 000 links")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "chain.json")
    args = ap.parse_args()
    if args.quick:
        args.firms, args.links = 5_000, 50_000
    frame, t_gen = timed(generate_chain, args.firms, args.links, args.seed)
    rows: list[dict[str, Any]] = []

    def row(task: str, ours: float, base: float, note: str = "") -> None:
        rows.append(
            {
                "task": task,
                "ironbridge_s": ours,
                "networkx_s": base,
                "speedup": base / ours,
                "note": note,
            }
        )

    # build: ironbridge indexes once (what-if groups); networkx builds its graph once
    engine, t_index = timed(WhatIf, frame)
    g, t_nx_build = timed(nx_build, frame)
    totals, t_nx_tot = timed(nx_group_totals, g)
    row(
        "build / index",
        t_index,
        t_nx_build + t_nx_tot,
        "WhatIf index vs MultiDiGraph + input totals",
    )

    t_ours = t_base = 0.0
    for level in LEVELS:
        ours, t1 = timed(region_report, frame, level)
        theirs, t2 = timed(nx_region_metrics, g, frame, level)
        compare_metrics(ours, theirs, level)
        row(f"region metrics, {level.value} ({len(ours.metrics)} regions)", t1, t2)
        t_ours, t_base = t_ours + t1, t_base + t2
    row("region metrics, all levels", t_ours, t_base, "asserted equal")

    # what-if 1: the supplier with the most customers at the deepest tier
    deep = frame.comp_parent[frame.comp_parent[frame.comp]] >= 0
    top = int(np.argmax(np.bincount(frame.sup[deep], minlength=frame.n_firms)))
    # what-if 2: a whole province
    region = frame.region_names[RegionLevel.PROVINCE][0]
    removed_region: BoolArray = frame.firm_region[RegionLevel.PROVINCE] == 0
    for label, removal, removed in (
        (f"what-if: supplier {frame.firm_ids[top]}", Removal.supplier(frame.firm_ids[top]), {top}),
        (
            f"what-if: region {region}",
            Removal.of_region(region),
            set(np.flatnonzero(removed_region).tolist()),
        ),
    ):
        res, t1 = timed(engine.run, removal)
        base, t2 = timed(nx_whatif, g, totals, removed)
        ours_tts = {frame.firm_index(k): v for k, v in res.time_to_survive.items()}
        assert set(ours_tts) == set(base), f"{label}: halted sets differ"
        assert all(abs(ours_tts[k] - base[k]) < 1e-9 for k in base), f"{label}: TTS differs"
        row(label, t1, t2, f"{len(res.halted)} firms halted, {len(res.products)} products")

    print(
        f"chain benchmark: {frame.n_firms:,} firms, {frame.n_links:,} links, "
        f"{frame.n_comps} components (generated in {t_gen:.2f} s)"
    )
    print(f"{'task':<48} {'ironbridge s':>13} {'networkx s':>11} {'speedup':>8}  note")
    for r in rows:
        times = f"{r['ironbridge_s']:>13.3f} {r['networkx_s']:>11.3f} {r['speedup']:>7.1f}x"
        print(f"{r['task']:<48} {times}  {r['note']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "chain",
                "firms": frame.n_firms,
                "links": frame.n_links,
                "components": frame.n_comps,
                "seed": args.seed,
                "quick": args.quick,
                "versions": {
                    "numpy": np.__version__,
                    "networkx": nx.__version__,
                    "rustworkx": rx.__version__,
                },
                "machine": {
                    "python": platform.python_version(),
                    "cpu_count": __import__("os").cpu_count(),
                },
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
