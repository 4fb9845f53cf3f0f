"""C-MAPSS loader (NASA's original text files) and the standard RUL benchmark protocol."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ironbridge.model import InvalidInput, NotFound

__all__ = ["CmapssSubset", "load_subset", "run_cmapss"]

SETTING_NAMES = ("setting_1", "setting_2", "setting_3")
SENSOR_NAMES = tuple(f"s{i}" for i in range(1, 22))
CAP = 125


@dataclass(frozen=True, slots=True, kw_only=True)
class CmapssSubset:
    """One C-MAPSS subset: train and test trajectories plus the test ground truth."""

    name: str
    train_unit: np.ndarray
    train_cycle: np.ndarray
    train_settings: np.ndarray
    train_sensors: np.ndarray
    test_unit: np.ndarray
    test_cycle: np.ndarray
    test_settings: np.ndarray
    test_sensors: np.ndarray
    test_rul: np.ndarray  # one value per test unit, in unit order

    def train_target(self, cap: float | None = CAP) -> np.ndarray:
        """RUL of every training row (``T - t``), clipped at ``cap`` unless it is None."""
        last = _last_per_unit(self.train_unit, self.train_cycle)
        rul = (last - self.train_cycle).astype(np.float64)
        out: np.ndarray = rul if cap is None else np.minimum(rul, cap)
        return out


def _last_per_unit(unit: np.ndarray, cycle: np.ndarray) -> np.ndarray:
    uniq, inv = np.unique(unit, return_inverse=True)
    last = np.zeros(uniq.shape[0], dtype=np.int64)
    np.maximum.at(last, inv, cycle)
    out: np.ndarray = last[inv]
    return out


def _read_matrix(path: Path) -> np.ndarray:
    if not path.is_file():
        raise NotFound("file", str(path))
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    try:
        arr = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise InvalidInput(str(path), "not a whitespace-separated numeric table") from exc
    return arr


def _split(arr: np.ndarray, path: Path) -> tuple[np.ndarray, ...]:
    if arr.ndim != 2 or arr.shape[1] < 26:
        raise InvalidInput(str(path), "expected 26 columns: unit, cycle, 3 settings, 21 sensors")
    unit = arr[:, 0].astype(np.int64)
    cycle = arr[:, 1].astype(np.int64)
    order = np.lexsort((cycle, unit))
    return unit[order], cycle[order], arr[order, 2:5], arr[order, 5:26]


def load_subset(data_dir: str | Path, name: str) -> CmapssSubset:
    """Read ``train_<name>.txt``, ``test_<name>.txt`` and ``RUL_<name>.txt`` from a directory."""
    d = Path(data_dir)
    tr = _split(_read_matrix(d / f"train_{name}.txt"), d / f"train_{name}.txt")
    te = _split(_read_matrix(d / f"test_{name}.txt"), d / f"test_{name}.txt")
    rul = _read_matrix(d / f"RUL_{name}.txt").reshape(-1)
    n_test = np.unique(te[0]).shape[0]
    if rul.shape[0] != n_test:
        raise InvalidInput(f"RUL_{name}.txt", f"{rul.shape[0]} values for {n_test} test units")
    return CmapssSubset(
        name=name,
        train_unit=tr[0],
        train_cycle=tr[1],
        train_settings=tr[2],
        train_sensors=tr[3],
        test_unit=te[0],
        test_cycle=te[1],
        test_settings=te[2],
        test_sensors=te[3],
        test_rul=rul,
    )


def run_cmapss(
    data_dir: str | Path, subsets: list[str] | tuple[str, ...] = ("FD001", "FD003")
) -> dict[str, Any]:
    """Train and evaluate the RUL pipeline on each subset with the standard protocol.

    Protocol: piecewise-linear target capped at 125; one prediction per test engine at its
    last recorded cycle; RMSE and PHM08 score against ``RUL_FD00x.txt`` both raw and clipped
    at 125. The method and hyperparameters are the same for every subset.

    Returns:
        ``{"subsets": {name: {...metrics...}}, "protocol": {...}}``.
    """
    from ironbridge.predict.metrics import phm08_score, rmse
    from ironbridge.predict.pipeline import RulPipeline

    out: dict[str, Any] = {}
    for name in subsets:
        ds = load_subset(data_dir, name)
        t0 = time.perf_counter()
        c0 = time.process_time()
        pipe = RulPipeline.fit(
            unit=ds.train_unit,
            settings=ds.train_settings,
            sensors=ds.train_sensors,
            rul=ds.train_target(None),
            sensor_names=SENSOR_NAMES,
        )
        train_s = time.perf_counter() - t0
        train_cpu_s = time.process_time() - c0
        t1 = time.perf_counter()
        pred, lo, hi = pipe.predict_last(ds.test_unit, ds.test_settings, ds.test_sensors)
        predict_s = time.perf_counter() - t1
        raw = ds.test_rul
        clipped = np.minimum(raw, CAP)
        out[name] = {
            "n_train_units": int(np.unique(ds.train_unit).shape[0]),
            "n_test_units": int(raw.shape[0]),
            "n_conditions": pipe.normaliser.n_conditions,
            "rmse_clipped": rmse(pred, clipped),
            "score_clipped": phm08_score(pred, clipped),
            "rmse_raw": rmse(pred, raw),
            "score_raw": phm08_score(pred, raw),
            "interval_coverage_clipped": float(np.mean((clipped >= lo) & (clipped <= hi))),
            "interval_mean_width": float(np.mean(hi - lo)),
            "train_seconds": train_s,
            "train_cpu_seconds": train_cpu_s,
            "predict_seconds": predict_s,
        }
    return {
        "protocol": {
            "cap": CAP,
            "target": "min(T - t, 125)",
            "test": "last recorded cycle of each test engine",
            "truth": "both raw RUL_FD00x.txt and clipped at 125",
        },
        "subsets": out,
    }
