"""SKAB: how the fixed method of ``ironbridge bench skab`` was selected, with held-out figures.

Usage: .venv/bin/python bench/skab_cv.py [--data ../shared/datasets/skab/valve1]
Writes bench/results/skab_cv.json; ~1-2 min on 2 shared cores.

Every candidate in GRID is run on every file (fit on its first 400 rows, SKAB's protocol).
For each split of the files into two folds, the candidate with the best F1 on one fold
(development) is evaluated on the other (held out), and the reverse; the held-out counts
of both directions are pooled. The method fixed in ``ironbridge.predict.bench.skab`` is the
one chosen on files 0-7 (rule set before the run: choose on the first half, evaluate on
the second). Also reported: the earlier per-file protocol (no labels) on the same folds.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ironbridge.predict.anomaly import PcaDetector
from ironbridge.predict.bench.skab import (
    SKAB_TRAIN_ROWS as N,
)
from ironbridge.predict.bench.skab import (
    choose_smoothing,
    ewma,
    load_skab_csv,
    roughness_floor,
    skab_flags,
)

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets" / "skab" / "valve1"
Counts = tuple[int, int, int, int]


def smooth(s: np.ndarray, w: int, kind: str) -> np.ndarray:
    if w <= 1:
        return s
    if kind == "ewma":
        return ewma(s, w)
    v = sliding_window_view(np.concatenate([np.full(w - 1, s[0]), s]), w)
    out: np.ndarray = v.mean(axis=1) if kind == "mean" else np.median(v, axis=1)
    return out


def persist(flag: np.ndarray, k: int) -> np.ndarray:
    """Alarm only after ``k`` consecutive exceedances."""
    if k <= 1:
        return flag
    c = np.concatenate([[0], np.cumsum(flag)])
    idx = np.arange(flag.shape[0])
    out: np.ndarray = c[idx + 1] - c[np.maximum(idx - k + 1, 0)] == k
    return out


def pca_stat(x: np.ndarray, floor: float, comb: str, fit_rows: int) -> np.ndarray:
    det = PcaDetector.fit(x[:fit_rows], min_roughness=floor)
    t2, q = det.t2_q(x)
    t2, q = t2 / det.t2_limit, q / det.q_limit
    out: np.ndarray = {"max": np.maximum(t2, q), "sum": 0.5 * (t2 + q), "q": q, "t2": t2}[comb]
    return out


def mset_stat(x: np.ndarray, floor: float, fit_rows: int = 300) -> np.ndarray:
    """MSET-like: estimate each row from a memory of normal rows (Euclidean similarity)."""
    det = PcaDetector.fit(x[:N], min_roughness=floor)
    z = (x[:, det.keep] - det.mean) / det.scale
    mem = z[:fit_rows]

    def op(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d: np.ndarray = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
        return d

    w = np.linalg.pinv(op(mem, mem)) @ op(mem, z)
    r = ((z - w.T @ mem) ** 2).sum(1)
    lim = float(np.quantile(r[fit_rows:N], 0.99)) or 1.0
    out: np.ndarray = r / lim
    return out


def grid() -> Iterator[dict[str, Any]]:
    for det, comb in [("pca", "max"), ("pca", "sum"), ("pca", "q"), ("pca", "t2"), ("mset", "-")]:
        for cols in ("all", "floor"):
            for kind in ("mean", "median", "ewma"):
                for w in (1, 5, 10, 20, 40):
                    if w == 1 and kind != "mean":
                        continue
                    for k in (1, 5, 10, 20):
                        for m in (1.0, 1.5):
                            for thr in ("insample", "oos") if det == "pca" else ("oos",):
                                yield {
                                    "det": det, "comb": comb, "cols": cols, "kind": kind,
                                    "w": w, "k": k, "m": m, "thr": thr,
                                }  # fmt: skip


def counts(flag: np.ndarray, y: np.ndarray) -> Counts:
    return (
        int((flag & y).sum()),
        int((flag & ~y).sum()),
        int((~flag & ~y).sum()),
        int((~flag & y).sum()),
    )


def summary(cs: list[Counts]) -> dict[str, float]:
    tp, fp, tn, fn = (sum(c[i] for c in cs) for i in range(4))
    return {
        "f1": tp / (tp + 0.5 * (fp + fn)) if tp else 0.0,
        "far": 100.0 * fp / max(fp + tn, 1),
        "mar": 100.0 * fn / max(fn + tp, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    paths = sorted(args.data.glob("*.csv"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    files = [load_skab_csv(p)[1:] for p in paths]
    cfgs = list(grid())
    floor = roughness_floor(N)
    per: list[list[Counts]] = []  # per config, per file
    cache: dict[tuple[Any, ...], np.ndarray] = {}
    for c in cfgs:
        row = []
        for i, (x, y) in enumerate(files):
            fl = floor if c["cols"] == "floor" else 0.0
            fit = 300 if c["thr"] == "oos" else N
            key = (i, c["det"], c["cols"], c["comb"], c["thr"])
            if key not in cache:
                stat = mset_stat(x, fl) if c["det"] == "mset" else None
                cache[key] = stat if stat is not None else pca_stat(x, fl, c["comb"], fit)
            sm = smooth(cache[key], c["w"], c["kind"])
            # Threshold from the training rows the model did not see ("oos"), else all 400.
            thr = sm[fit % N : N].max() * c["m"]
            row.append(counts(persist(sm > thr, c["k"])[N:], y[N:]))
        per.append(row)

    def fixed_counts(idx: list[int]) -> list[Counts]:
        return [counts(skab_flags(files[i][0])[0][N:], files[i][1][N:]) for i in idx]

    def old_protocol(idx: list[int]) -> list[Counts]:
        out = []
        for i in idx:
            x, y = files[i]
            w = choose_smoothing(x[:N], floor)
            det = PcaDetector.fit(x[:N], smooth=w, min_roughness=floor)
            out.append(counts(det.detect(x)[N:], y[N:]))
        return out

    n = len(files)
    splits = {
        "first/second half": (list(range(n // 2)), list(range(n // 2, n))),
        "even/odd": (list(range(0, n, 2)), list(range(1, n, 2))),
    }
    res: dict[str, Any] = {"files": [p.name for p in paths], "candidates": len(cfgs)}
    for name, (a, b) in splits.items():
        held: list[Counts] = []
        out: dict[str, Any] = {}
        for dev, ho, tag in [(a, b, "a->b"), (b, a, "b->a")]:
            best = max(range(len(cfgs)), key=lambda j: summary([per[j][i] for i in dev])["f1"])
            hc = [per[best][i] for i in ho]
            held += hc
            out[tag] = {
                "chosen": cfgs[best],
                "dev": summary([per[best][i] for i in dev]),
                "held_out": summary(hc),
            }
        out["pooled_held_out"] = summary(held)
        out["fixed_method_per_fold"] = [summary(fixed_counts(a)), summary(fixed_counts(b))]
        out["old_protocol_per_fold"] = [summary(old_protocol(a)), summary(old_protocol(b))]
        res[name] = out
    res["fixed_method_all"] = summary(fixed_counts(list(range(n))))
    res["old_protocol_all"] = summary(old_protocol(list(range(n))))
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "skab_cv.json").write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
