import numpy as np
import pyarrow as pa
import pytest

from ironbridge.model import InvalidInput
from ironbridge.predict.features import (
    ConditionNormaliser,
    build_features,
    expanding_mean,
    group_starts,
    pivot_raw,
    position_in_group,
    rolling_mean,
    rolling_slope,
    rolling_std,
)

# Two units: A has 5 rows, B has 3 rows.
VALUES = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 10.0, 8.0, 6.0])
GROUPS = np.array([1, 1, 1, 1, 1, 2, 2, 2])


def test_group_starts_and_positions():
    assert group_starts(GROUPS).tolist() == [0, 0, 0, 0, 0, 5, 5, 5]
    assert position_in_group(GROUPS).tolist() == [0, 1, 2, 3, 4, 0, 1, 2]


def test_rolling_mean_matches_hand_computed_windows():
    got = rolling_mean(VALUES, GROUPS, 3)[:, 0]
    # Unit A: [1], [1,2], [1,2,4], [2,4,7], [4,7,11]; unit B restarts: [10], [10,8], [10,8,6].
    want = [1, 1.5, 7 / 3, 13 / 3, 22 / 3, 10, 9, 8]
    np.testing.assert_allclose(got, want)


def test_rolling_std_is_population_std_of_window():
    got = rolling_std(VALUES, GROUPS, 3)[:, 0]
    want = [
        0.0,
        0.5,
        np.std([1, 2, 4]),
        np.std([2, 4, 7]),
        np.std([4, 7, 11]),
        0.0,
        1.0,
        np.std([10, 8, 6]),
    ]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_rolling_slope_is_least_squares_slope():
    got = rolling_slope(VALUES, GROUPS, 3)[:, 0]
    want = [0.0, 1.0, np.polyfit([0, 1, 2], [1, 2, 4], 1)[0], 2.5, 3.5, 0.0, -2.0, -2.0]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_expanding_mean_full_and_baseline():
    np.testing.assert_allclose(
        expanding_mean(VALUES, GROUPS)[:, 0], [1, 1.5, 7 / 3, 3.5, 5, 10, 9, 8]
    )
    # Baseline of the first 2 rows, causal before row 2.
    np.testing.assert_allclose(
        expanding_mean(VALUES, GROUPS, 2)[:, 0], [1, 1.5, 1.5, 1.5, 1.5, 10, 9, 9]
    )


def test_windows_are_multicolumn():
    x = np.column_stack([VALUES, 2 * VALUES])
    m = rolling_mean(x, GROUPS, 2)
    np.testing.assert_allclose(m[:, 1], 2 * m[:, 0])


def test_bad_window_rejected():
    with pytest.raises(InvalidInput):
        rolling_mean(VALUES, GROUPS, 0)


def test_build_features_names_and_shape():
    x = np.column_stack([VALUES, VALUES[::-1]])
    feats, names = build_features(x, GROUPS, ["a", "b"])
    assert feats.shape == (8, len(names))
    assert "a__mean5" in names
    assert "b__slope10" in names
    assert names[-1] == "age"
    assert feats[:, -1].tolist() == [1, 2, 3, 4, 5, 1, 2, 3]


def test_condition_normaliser_finds_three_conditions_and_removes_them():
    rng = np.random.default_rng(1)
    n = 3000
    cond = rng.integers(0, 3, n)
    centres = np.array([[0.0, 0.0], [20.0, 0.7], [42.0, 0.84]])
    settings = centres[cond] + rng.normal(0, 0.002, (n, 2))
    offsets = np.array([[100.0, -5.0], [300.0, 10.0], [600.0, 40.0]])
    scales = np.array([[1.0, 0.1], [3.0, 0.5], [5.0, 2.0]])
    health = rng.normal(0, 1, (n, 2))
    sensors = offsets[cond] + scales[cond] * health
    norm = ConditionNormaliser.fit(settings, sensors)
    assert norm.n_conditions == 3
    z = norm.transform(settings, sensors)
    # After per-condition z-scoring the regime is gone: what is left is the health signal.
    for k in range(2):
        assert np.corrcoef(z[:, k], health[:, k])[0, 1] > 0.999
    for c in range(3):
        np.testing.assert_allclose(z[cond == c].mean(axis=0), 0, atol=1e-9)


def test_condition_normaliser_single_regime_with_noise_stays_one():
    rng = np.random.default_rng(2)
    settings = np.column_stack(
        [rng.normal(0, 0.002, 2000), rng.normal(0, 0.0003, 2000), np.full(2000, 100.0)]
    )
    sensors = rng.normal(5, 1, (2000, 3))
    sensors[:, 2] = 7.0  # constant sensor
    norm = ConditionNormaliser.fit(settings, sensors)
    assert norm.n_conditions == 1
    assert norm.informative().tolist() == [True, True, False]
    assert np.all(norm.transform(settings, sensors)[:, 2] == 0)


def test_pivot_raw_wide_matrix_with_gaps():
    table = pa.table(
        {
            "series": pa.array([7, 7, 9], pa.int64()),
            "ts": pa.array([1000, 2000, 2000], pa.timestamp("us", tz="UTC")),
            "value": pa.array([1.0, 2.0, 3.0]),
        }
    )
    ts, m = pivot_raw(table, [9, 7])
    assert ts.tolist() == [1000, 2000]
    assert np.isnan(m[0, 0])
    assert m[0, 1] == 1.0
    assert m[1].tolist() == [3.0, 2.0]


def test_six_cmapss_regimes_that_differ_in_one_setting_are_all_found() -> None:
    # FD002's regimes: 35 and 42 kft share Mach and TRA; merging them leaves < 1 % of the
    # variance, so only the elbow rule keeps them apart.
    regimes = np.array(
        [
            [0, 0, 100],
            [10, 0.25, 100],
            [20, 0.7, 100],
            [25, 0.62, 60],
            [35, 0.84, 100],
            [42, 0.84, 100],
        ]
    )
    rng = np.random.default_rng(0)
    c = rng.integers(0, 6, 6000)
    settings = regimes[c] + rng.normal(0, [0.002, 0.0003, 0.0], (6000, 3))
    sensors = rng.normal(0, 1, (6000, 2)) + c[:, None] * 10.0
    norm = ConditionNormaliser.fit(settings, sensors)
    assert norm.n_conditions == 6
    found = norm.condition(settings)
    # every found condition holds exactly one true regime
    assert all(len(set(c[found == k])) == 1 for k in range(6))
