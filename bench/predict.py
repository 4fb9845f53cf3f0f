"""Predictive-maintenance benchmarks: C-MAPSS RUL, SKAB, NAB, and fleet scoring throughput.

Usage: .venv/bin/python bench/predict.py [--quick] [--data ../shared/datasets]
Writes bench/results/predict.json. Baselines measured in the same run: the constant
(mean training RUL) predictor for C-MAPSS, the "flag everything" detector for SKAB, and a
per-asset Python loop for the fleet scorer.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from ironbridge.predict.bench import format_results, load_subset, run_cmapss, run_nab, run_skab
from ironbridge.predict.bench.cmapss import CAP, SENSOR_NAMES
from ironbridge.predict.bench.skab import SKAB_TRAIN_ROWS, load_skab_csv
from ironbridge.predict.health import FleetScorer
from ironbridge.predict.metrics import binary_counts, phm08_score, rmse
from ironbridge.predict.pipeline import RulPipeline

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "datasets"

# Six operating regimes as in FD002/FD004 (altitude kft, Mach, TRA).
REGIMES = np.array(
    [
        [0, 0, 100],
        [10, 0.25, 100],
        [20, 0.7, 100],
        [25, 0.62, 60],
        [35, 0.84, 100],
        [42, 0.84, 100],
    ],
    dtype=float,
)


def constant_baseline(data: Path, subsets: list[str]) -> dict[str, dict[str, float]]:
    out = {}
    for name in subsets:
        ds = load_subset(data, name)
        pred = np.full(ds.test_rul.shape[0], ds.train_target(CAP).mean())
        clipped = np.minimum(ds.test_rul, CAP)
        out[name] = {
            "rmse_clipped": rmse(pred, clipped),
            "score_clipped": phm08_score(pred, clipped),
        }
    return out


def six_condition_check(
    data: Path, seed: int = 0, setting_noise: tuple[float, float, float] = (1.0, 1.0, 0.0)
) -> dict[str, float]:
    """FD001 rewritten under six operating regimes (settings and per-regime sensor offsets
    and gains); the same pipeline must find the 6 regimes and keep its accuracy.

    FD001's own setting jitter, scaled by ``setting_noise``, is added to the regime
    settings. ``(1, 1, 0)`` keeps it as it is (std 0.002 kft, 0.0003 Mach: the spread
    inside one FD002 regime); ``(1000, 100, 0)`` blows the altitude jitter up to 2.2 kft,
    so that the 35 and 42 kft regimes overlap and about 2 % of the rows cannot be told
    apart (a stress case).
    """
    ds = load_subset(data, "FD001")
    rng = np.random.default_rng(seed)
    off = rng.normal(0, 50, (6, 21))
    gain = rng.uniform(0.5, 3.0, (6, 21))

    def warp(settings: np.ndarray, sensors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = rng.integers(0, 6, settings.shape[0])
        s = REGIMES[c] + settings * np.asarray(setting_noise)
        return s, off[c] + gain[c] * sensors

    tr_s, tr_x = warp(ds.train_settings, ds.train_sensors)
    te_s, te_x = warp(ds.test_settings, ds.test_sensors)
    t0 = time.perf_counter()
    pipe = RulPipeline.fit(
        unit=ds.train_unit,
        settings=tr_s,
        sensors=tr_x,
        rul=ds.train_target(None),
        sensor_names=SENSOR_NAMES,
    )
    train_s = time.perf_counter() - t0
    pred, _, _ = pipe.predict_last(ds.test_unit, te_s, te_x)
    clipped = np.minimum(ds.test_rul, CAP)
    return {
        "n_conditions": pipe.normaliser.n_conditions,
        "rmse_clipped": rmse(pred, clipped),
        "score_clipped": phm08_score(pred, clipped),
        "train_seconds": train_s,
    }


def skab_baseline(root: Path) -> dict[str, float]:
    total = None
    for f in sorted(root.rglob("*.csv")):
        _, x, y = load_skab_csv(f)
        if y is None or x.shape[0] <= SKAB_TRAIN_ROWS:
            continue
        c = binary_counts(np.ones(x.shape[0] - SKAB_TRAIN_ROWS, bool), y[SKAB_TRAIN_ROWS:])
        total = c if total is None else total + c
    assert total is not None
    return {"f1": total.f1, "far": total.far, "mar": total.mar}


def throughput(data: Path, n_assets: int) -> dict[str, float]:
    ds = load_subset(data, "FD001")
    pipe = RulPipeline.fit(
        unit=ds.train_unit,
        settings=ds.train_settings,
        sensors=ds.train_sensors,
        rul=ds.train_target(None),
        sensor_names=SENSOR_NAMES,
        rounds=600,
    )
    x_train = pipe.features(ds.train_unit, ds.train_settings, ds.train_sensors)
    scorer = FleetScorer.fit(pipe.model, x_train, ds.train_target(None))
    x_test = pipe.features(ds.test_unit, ds.test_settings, ds.test_sensors)
    rng = np.random.default_rng(0)
    batch = x_test[rng.integers(0, x_test.shape[0], n_assets)]
    scorer.score_batch(batch[:10])
    t0 = time.perf_counter()
    scores = scorer.score_batch(batch)
    batch_s = time.perf_counter() - t0
    n_loop = 100
    t1 = time.perf_counter()
    for i in range(n_loop):
        scorer.score_batch(batch[i : i + 1])
    loop_s = (time.perf_counter() - t1) / n_loop * n_assets
    assert scores.health.shape == (n_assets,)
    return {
        "assets": n_assets,
        "batch_seconds": batch_s,
        "per_asset_loop_seconds_extrapolated": loop_s,
        "speedup_vs_loop": loop_s / batch_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--quick", action="store_true", help="FD001 only, 1 000 assets, no 6-regime check"
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    subsets = ["FD001"] if args.quick else ["FD001", "FD003"]
    res: dict[str, object] = {}
    cm = run_cmapss(args.data / "cmapss", subsets)
    cm["baseline_constant"] = constant_baseline(args.data / "cmapss", subsets)
    res["cmapss"] = cm
    print("C-MAPSS (cap 125, last cycle per test engine)")
    print(format_results("cmapss", cm))
    for k, v in cm["baseline_constant"].items():
        print(
            f"  baseline constant {k}: RMSE clip {v['rmse_clipped']:.2f},"
            f" score {v['score_clipped']:.0f}"
        )
    if not args.quick:
        for key, noise in (("", (1.0, 1.0, 0.0)), ("_noisy", (1000.0, 100.0, 0.0))):
            six = six_condition_check(args.data / "cmapss", setting_noise=noise)
            res[f"cmapss_fd001_six_regimes{key}"] = six
            print(
                f"FD001 under 6 synthetic regimes{key}: found {six['n_conditions']} "
                f"conditions, RMSE clip {six['rmse_clipped']:.2f}, "
                f"train {six['train_seconds']:.1f}s"
            )
    sk = run_skab(args.data / "skab")
    sk["baseline_flag_all"] = skab_baseline(args.data / "skab")
    res["skab"] = sk
    print("\nSKAB outlier detection (first 400 rows train, counts summed over files)")
    print(format_results("skab", sk))
    print(f"  baseline flag-everything: F1 {sk['baseline_flag_all']['f1']:.3f}")
    nab = run_nab(args.data / "nab")
    res["nab"] = nab
    print("\nNAB (null detector = 0, perfect = 100)")
    print(format_results("nab", nab))
    tp = throughput(args.data / "cmapss", 1000 if args.quick else 10_000)
    res["throughput"] = tp
    print(
        f"\nscore_batch: {tp['assets']} assets in {tp['batch_seconds']:.3f}s "
        f"(per-asset loop: {tp['per_asset_loop_seconds_extrapolated']:.1f}s, "
        f"{tp['speedup_vs_loop']:.0f}x)"
    )
    out = HERE / "results" / "predict.json"
    out.write_text(json.dumps(res, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
