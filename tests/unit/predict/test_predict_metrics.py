import math

import numpy as np
import pytest

from ironbridge.model import InvalidInput
from ironbridge.predict.metrics import (
    BinaryCounts,
    binary_counts,
    nab_probation,
    nab_score,
    phm08_score,
    rmse,
    skab_summary,
)


def test_rmse_worked_example():
    assert rmse([10, 20, 30], [12, 18, 30]) == pytest.approx(math.sqrt(8 / 3))


def test_phm08_score_is_asymmetric_late_costs_more():
    late = phm08_score([110], [100])  # d = +10 -> e^(10/10) - 1
    early = phm08_score([90], [100])  # d = -10 -> e^(10/13) - 1
    assert late == pytest.approx(math.e - 1)
    assert early == pytest.approx(math.exp(10 / 13) - 1)
    assert late > early
    assert phm08_score([100], [100]) == 0.0
    # Summed over engines, matching the reference formula.
    d = np.array([-13.0, 0.0, 20.0])
    assert phm08_score(d + 50, np.full(3, 50.0)) == pytest.approx((math.e - 1) + (math.e**2 - 1))


def test_length_mismatch_rejected():
    with pytest.raises(InvalidInput):
        rmse([1, 2], [1])


def test_skab_counts_summed_over_files():
    # File 1: truth 0 0 1 1 1 0, pred 0 1 1 1 0 0 -> TP 2, FP 1, FN 1, TN 2.
    f1 = (np.array([0, 1, 1, 1, 0, 0]), np.array([0, 0, 1, 1, 1, 0]))
    # File 2: truth 1 1 0 0, pred 1 0 0 1 -> TP 1, FP 1, FN 1, TN 1.
    f2 = (np.array([1, 0, 0, 1]), np.array([1, 1, 0, 0]))
    c = skab_summary([f1, f2])
    assert c == BinaryCounts(tp=3, fp=2, tn=3, fn=2)
    assert c.f1 == pytest.approx(3 / (3 + (2 + 2) / 2))
    assert c.far == pytest.approx(100 * 2 / 5)
    assert c.mar == pytest.approx(100 * 2 / 5)
    # Micro-average, not the mean of per-file F1.
    per_file_mean = (binary_counts(*f1).f1 + binary_counts(*f2).f1) / 2
    assert c.f1 != pytest.approx(per_file_mean)


def test_null_detector_counts():
    c = binary_counts(np.zeros(4), np.array([0, 1, 1, 0]))
    assert c.f1 == 0.0
    assert c.far == 0.0
    assert c.mar == 100.0


def test_nab_probation_is_capped():
    assert nab_probation(1000) == 150
    assert nab_probation(22695) == 750


def test_nab_perfect_null_and_fp_only():
    n = 1000
    windows = [(400, 499), (700, 799)]
    perfect = np.zeros(n, dtype=bool)
    perfect[[400, 700]] = True
    assert nab_score(perfect, windows, probation=150) == pytest.approx(100.0)
    assert nab_score(np.zeros(n, dtype=bool), windows, probation=150) == pytest.approx(0.0)
    # One detection at the last row of each window: NAB's position is -(1/100), so each
    # scores (2 sigmoid(0.05) - 1) / (2 sigmoid(5) - 1), just above 0.
    edge = np.zeros(n, dtype=bool)
    edge[[499, 799]] = True
    tp = (2 / (1 + math.exp(-0.05)) - 1) / (2 / (1 + math.exp(-5)) - 1)
    assert nab_score(edge, windows, probation=150) == pytest.approx(100 * (2 * tp + 2) / 4)
    # Perfect plus one false positive before any window costs fpWeight 0.11.
    fp = perfect.copy()
    fp[200] = True
    assert nab_score(fp, windows, probation=150) == pytest.approx(100 * (4 - 0.11) / 4)
    # Detections inside the probationary period are not scored.
    early = perfect.copy()
    early[10] = True
    assert nab_score(early, windows, probation=150) == pytest.approx(100.0)


def test_nab_fp_right_after_window_is_cheap():
    n = 1000
    windows = [(400, 499)]
    base = np.zeros(n, dtype=bool)
    base[400] = True
    near = base.copy()
    near[505] = True
    far = base.copy()
    far[900] = True
    assert nab_score(near, windows, probation=150) > nab_score(far, windows, probation=150)
    with pytest.raises(InvalidInput):
        nab_score(base, windows, profile="nope")
