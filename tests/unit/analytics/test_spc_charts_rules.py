"""SPC: Shewhart constants, X̄-R / X̄-S / I-MR limits and the eight Nelson rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ironbridge.analytics.spc import (
    ChartKind,
    constants,
    fit_i_mr,
    fit_xbar_r,
    fit_xbar_s,
    nelson_rules,
    western_electric_rules,
)
from ironbridge.model import InvalidInput


@pytest.mark.parametrize(
    ("n", "a2", "d3", "d4", "d2", "a3", "b3", "b4", "e2"),
    [
        # Published values (ASTM / Montgomery Appendix VI); E2 = 3/d2.
        (2, 1.880, 0.0, 3.267, 1.128, 2.659, 0.0, 3.267, 2.660),
        (5, 0.577, 0.0, 2.114, 2.326, 1.427, 0.0, 2.089, 1.290),
        (10, 0.308, 0.223, 1.777, 3.078, 0.975, 0.284, 1.716, 0.975),
        (25, 0.153, 0.459, 1.541, 3.931, 0.606, 0.565, 1.435, 0.763),
    ],
)
def test_constants_match_published_tables(n, a2, d3, d4, d2, a3, b3, b4, e2) -> None:
    k = constants(n)
    assert (k.a2, k.d3_factor, k.d4, k.d2, k.a3, k.b3, k.b4, k.e2) == (
        a2,
        d3,
        d4,
        d2,
        a3,
        b3,
        b4,
        e2,
    )


@pytest.mark.parametrize("n", range(2, 26))
def test_constants_are_consistent_with_their_definitions(n: int) -> None:
    k = constants(n)
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    assert k.c4 == pytest.approx(c4, abs=6e-5)
    assert k.a2 == pytest.approx(3 / (k.d2 * math.sqrt(n)), abs=2e-3)
    assert k.a3 == pytest.approx(3 / (c4 * math.sqrt(n)), abs=2e-3)
    assert k.b4 == pytest.approx(1 + 3 * math.sqrt(1 - c4**2) / c4, abs=2e-3)
    assert k.d4 == pytest.approx(1 + 3 * k.d3 / k.d2, abs=2e-3)
    assert k.d3_factor == pytest.approx(max(0.0, 1 - 3 * k.d3 / k.d2), abs=2e-3)


def test_constants_reject_out_of_range() -> None:
    for bad in (1, 26, 2.5):
        with pytest.raises(InvalidInput) as err:
            constants(bad)  # type: ignore[arg-type]
        assert err.value.field == "subgroup_size"


def test_i_mr_limits_hand_computed() -> None:
    x = [10, 12, 11, 13, 12]
    lim = fit_i_mr(x)
    # X̄ = 58/5 = 11.6; moving ranges 2, 1, 2, 1 -> MR̄ = 1.5.
    assert lim.kind is ChartKind.I_MR
    assert lim.center == pytest.approx(11.6)
    assert lim.dispersion_center == pytest.approx(1.5)
    # UCL = 11.6 + 2.66·1.5 = 15.59; LCL = 11.6 - 3.99 = 7.61; MR UCL = 3.267·1.5 = 4.9005.
    assert lim.ucl == pytest.approx(15.59)
    assert lim.lcl == pytest.approx(7.61)
    assert lim.dispersion_ucl == pytest.approx(4.9005)
    assert lim.dispersion_lcl == 0.0
    assert lim.process_sigma == pytest.approx(1.5 / 1.128)
    chart = lim.chart([11, 16, 11, 12, 11])
    assert list(chart.violations[1]) == [1]  # 16 > 15.59
    # Moving ranges 5, 5, 1, 1: both 5s exceed 4.9005.
    assert list(chart.dispersion_violations) == [0, 1]


def test_xbar_r_and_xbar_s_limits_hand_computed() -> None:
    ref = [[1, 2, 3], [2, 3, 4], [3, 4, 8]]
    r = fit_xbar_r(ref)
    # Means 2, 3, 5 -> X̿ = 10/3; ranges 2, 2, 5 -> R̄ = 3; n = 3: A2 = 1.023, D4 = 2.574.
    assert r.center == pytest.approx(10 / 3)
    assert r.ucl == pytest.approx(10 / 3 + 1.023 * 3)
    assert r.lcl == pytest.approx(10 / 3 - 1.023 * 3)
    assert (r.dispersion_center, r.dispersion_lcl) == (3.0, 0.0)
    assert r.dispersion_ucl == pytest.approx(2.574 * 3)
    assert r.sigma == pytest.approx(1.023 * 3 / 3)
    s = fit_xbar_s(ref)
    # s = 1, 1, sqrt(7) -> S̄ = (2 + sqrt 7)/3; A3 = 1.954, B4 = 2.568, B3 = 0.
    sbar = (2 + math.sqrt(7)) / 3
    assert s.dispersion_center == pytest.approx(sbar)
    assert s.ucl == pytest.approx(10 / 3 + 1.954 * sbar)
    assert s.dispersion_ucl == pytest.approx(2.568 * sbar)
    assert s.process_sigma == pytest.approx(sbar / 0.8862)


def test_limits_stay_frozen_on_live_data() -> None:
    rng = np.random.default_rng(7)
    ref = rng.normal(50, 1, size=(25, 5))
    lim = fit_xbar_r(ref)
    live = rng.normal(50, 1, size=(30, 5))
    live[20:] += 1.5  # a sustained shift after subgroup 20
    chart = lim.chart(live)
    assert chart.limits is lim
    assert chart.points == pytest.approx(live.mean(axis=1))
    assert chart.dispersion == pytest.approx(np.ptp(live, axis=1))
    assert chart.alarm_indices.size > 0
    assert chart.alarm_indices.min() >= 20
    with pytest.raises(InvalidInput):
        lim.chart(rng.normal(size=(3, 4)))  # wrong subgroup size
    s_chart = fit_xbar_s(ref).chart(live)
    assert s_chart.dispersion == pytest.approx(live.std(axis=1, ddof=1))


# ---- Nelson rules: centre 0, σ 1; each rule gets a series that fires and one that does not.

ALT = [0.3, -0.3]
RULE_CASES = {
    # N1: beyond 3σ; exactly 3σ is inside.
    1: ([0, 0.5, -0.5, 3.5, 0], [3], [3.0, -3.0, 2.9]),
    # N2: nine in a row on one side; a point on the centre line breaks the run.
    2: ([-0.5] + [0.5] * 9, [9], [0.5] * 4 + [0.0] + [0.5] * 8),
    # N3: six in a row steadily increasing (five rises); a tie breaks it.
    3: ([0, -1, -0.8, -0.5, 0, 0.2, 0.4], [6], [-1, -0.8, -0.5, -0.5, 0.2, 0.4]),
    # N4: fourteen alternating; thirteen do not.
    4: (ALT * 7, [13], ALT * 6 + [0.3]),
    # N5: two of three beyond 2σ on the same side; opposite sides or exactly 2σ do not.
    5: ([0, 2.5, 0, 2.1], [3], [2.5, 0, -2.5, 2.0, 2.2]),
    # N6: four of five beyond 1σ on the same side.
    6: ([1.5, 1.2, 0, 1.1, 1.9], [4], [1.5, 1.2, 0, -1.1, 1.9]),
    # N7: fifteen in a row within 1σ (hugging the centre line).
    7: (
        [0.5, 0.6, -0.2, -0.4, 0.9, 0.1, -1.0, 0.3, 0.3, -0.5, 0.8, -0.1, 0.2, 0.6, -0.7],
        [14],
        [0.5, 0.6, -0.2, -0.4, 0.9, 0.1, -1.0, 0.3, 1.2, -0.5, 0.8, -0.1, 0.2, 0.6, -0.7],
    ),
    # N8: eight in a row outside 1σ on both sides (mixture); one side only does not.
    8: (
        [1.5, -1.5, -1.8, 1.2, 1.6, -1.1, 1.3, -2.0],
        [7],
        [1.5, 1.8, 1.2, 1.6, 1.1, 1.3, 2.5, 1.4],
    ),
}


@pytest.mark.parametrize("rule", sorted(RULE_CASES))
def test_each_nelson_rule_fires_and_holds(rule: int) -> None:
    fires, where, quiet = RULE_CASES[rule]
    assert list(nelson_rules(fires, 0.0, 1.0)[rule]) == where
    assert list(nelson_rules(quiet, 0.0, 1.0)[rule]) == []


def test_rules_scale_with_centre_and_sigma() -> None:
    x = 10 + 2 * np.array(RULE_CASES[5][0])
    assert list(nelson_rules(x, 10.0, 2.0)[5]) == [3]


def test_run_counters_do_not_reset_after_a_signal() -> None:
    assert list(nelson_rules([0.5] * 11, 0.0, 1.0)[2]) == [8, 9, 10]


def test_western_electric_rules() -> None:
    we = western_electric_rules([0.5] * 8, 0.0, 1.0)
    assert list(we[4]) == [7]  # WE4: 8 on one side (Nelson N2 needs 9)
    assert list(nelson_rules([0.5] * 8, 0.0, 1.0)[2]) == []
    we = western_electric_rules([0, 2.5, 0, 2.1, 3.5], 0.0, 1.0)
    assert list(we[1]) == [4]
    assert list(we[2]) == [3, 4]


def test_rule_inputs_are_validated() -> None:
    with pytest.raises(InvalidInput) as err:
        nelson_rules([1, 2], 0.0, 0.0)
    assert err.value.field == "sigma"
    with pytest.raises(InvalidInput):
        nelson_rules([1, float("nan")], 0.0, 1.0)
