"""Anomaly training leaves out the few assets that are far off the fleet, and says so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ironbridge.predict.bundle import BundleConfig, PdmBundle
from ironbridge.predict.frames import AssetFrames
from ironbridge.predict.trim import TRIM_MAX_FRACTION, AssetTrim, outlier_assets

COLUMNS = ("engine_speed", "coolant_temp", "oil_pressure")
BUCKET_US = 5_000_000
ROWS = 60


def _truck(rng: np.random.Generator, n: int = ROWS, wear: float = 0.0) -> np.ndarray:
    """Buckets of one driving truck; ``wear`` heats the coolant and drops the oil pressure."""
    rpm = np.clip(1300.0 + 250.0 * rng.standard_normal(n), 600.0, 2100.0)
    coolant = 88.0 + 25.0 * wear + 0.8 * rng.standard_normal(n)
    oil = (60.0 + 0.21 * rpm) * (1.0 - 0.5 * wear) + 3.0 * rng.standard_normal(n)
    return np.column_stack([rpm, coolant, oil])


def _frames(blocks: list[np.ndarray], first: int = 0) -> AssetFrames:
    values = np.concatenate(blocks)
    unit = np.concatenate([np.full(b.shape[0], i) for i, b in enumerate(blocks)])
    ts = np.concatenate([np.arange(b.shape[0], dtype=np.int64) * BUCKET_US for b in blocks])
    return AssetFrames(
        asset_ids=tuple(f"truck-{first + i:02d}" for i in range(len(blocks))),
        unit=unit,
        ts_us=ts,
        values=values,
        columns=COLUMNS,
        bucket_us=BUCKET_US,
    )


CONFIG = BundleConfig(
    asset_type="heavy_truck", sensors=COLUMNS, settings=(), bucket_s=5, rul_cap_h=24.0
)


def test_two_faulty_of_twenty_are_left_out_and_listed(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    faulty = {3: 0.6, 11: 0.5}  # overheating, low oil pressure from the start
    blocks = [_truck(rng, wear=faulty.get(i, 0.0)) for i in range(20)]

    bundle, metrics, _ = PdmBundle.fit(CONFIG, _frames(blocks), {})

    assert set(bundle.trim.excluded) == {"truck-03", "truck-11"}
    assert bundle.trim.judged == 20
    assert all(s > 1.0 for s in bundle.trim.scores)  # far beyond the others' limit
    assert metrics["anomaly_excluded_assets"] == 2
    assert metrics["anomaly_train_rows"] == 18 * ROWS
    # Fitted without them: the same model as one trained on the 18 others alone.
    clean = [b for i, b in enumerate(blocks) if i not in faulty]
    reference, _, _ = PdmBundle.fit(CONFIG, _frames(clean), {})
    assert reference.trim.excluded == ()
    np.testing.assert_allclose(bundle.normaliser.mean, reference.normaliser.mean)
    np.testing.assert_allclose(bundle.detector.mean, reference.detector.mean)
    np.testing.assert_allclose(bundle.detector.t2_limit, reference.detector.t2_limit)
    # ...which sees moderate wear that a model trained with the faulty pair would miss.
    live = _frames([_truck(np.random.default_rng(7), wear=0.25)])
    wearing = bundle.score_rows(live, np.arange(len(live))).anomaly
    assert np.nanmedian(wearing) > 1.0
    # Deterministic: the same data gives the same trim.
    again, _, _ = PdmBundle.fit(CONFIG, _frames(blocks), {})
    assert again.trim == bundle.trim
    # Stored with the version and read back.
    bundle.save(tmp_path / "v1")
    assert PdmBundle.load(tmp_path / "v1").trim == bundle.trim
    doc = bundle.trim.to_json()
    assert [e["asset"] for e in doc["excluded"]] == list(bundle.trim.excluded)
    assert doc["skipped"] is None


def test_a_small_fleet_is_not_trimmed_and_its_faulty_pair_hides_wear() -> None:
    """What trimming saves the fleet above from: untrimmed, moderate wear looks normal."""
    rng = np.random.default_rng(1)
    faulty = {3: 0.6, 11: 0.5}
    blocks = [_truck(rng, wear=faulty.get(i, 0.0)) for i in range(20)]
    # Six trucks are too few to judge (TRIM_MIN_ASSETS), so this fit keeps the pair.
    few = PdmBundle.fit(CONFIG, _frames([blocks[3], blocks[11], *blocks[:4]]), {})[0]
    assert few.trim.excluded == ()
    live = _frames([_truck(np.random.default_rng(7), wear=0.25)])
    assert np.nanmedian(few.score_rows(live, np.arange(len(live))).anomaly) < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_a_homogeneous_fleet_loses_nobody(seed: int) -> None:
    rng = np.random.default_rng(seed)
    bundle, metrics, _ = PdmBundle.fit(CONFIG, _frames([_truck(rng) for _ in range(20)]), {})
    assert bundle.trim.excluded == ()
    assert bundle.trim.judged == 20
    assert metrics["anomaly_excluded_assets"] == 0
    assert metrics["anomaly_train_rows"] == 20 * ROWS


def test_no_more_than_a_fifth_is_left_out() -> None:
    rng = np.random.default_rng(2)
    wear = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8]  # six of twenty, more than the bound allows
    blocks = [_truck(rng, wear=wear[i // 3] if i % 3 == 0 and i < 18 else 0.0) for i in range(20)]
    bundle, metrics, _ = PdmBundle.fit(CONFIG, _frames(blocks), {})
    trim = bundle.trim
    # The screen kept the four furthest off as suspects, not the two mildest.
    assert trim.over_cap == 2
    suspects = {*trim.excluded, *trim.readmitted}
    assert suspects == {"truck-15", "truck-12", "truck-09", "truck-06"}
    # With two faulty trucks left in, the refit still sees the milder suspects as
    # normal enough to come back: 30 % of a fleet faulty is beyond what trimming fixes.
    assert 1 <= len(trim.excluded) <= int(TRIM_MAX_FRACTION * 20)
    assert "truck-15" in trim.excluded
    assert metrics["anomaly_excluded_assets"] == len(trim.excluded)


def test_the_screen_caps_and_orders_by_how_far_off() -> None:
    rng = np.random.default_rng(5)
    unit = np.repeat(np.arange(20), 10)
    ids = [f"a{a}" for a in range(20)]
    scores = 0.2 + 0.02 * rng.standard_normal(200)
    levels = rng.standard_normal((200, 2))
    # Eight assets off: four by their score, two too hot, two with too low a pressure.
    for a, bump in zip(range(4), (5.0, 6.0, 7.0, 8.0), strict=True):
        scores[unit == a] += bump
    levels[unit == 4, 0] += 40.0
    levels[unit == 5, 0] += 30.0
    levels[unit == 6, 1] -= 20.0
    levels[unit == 7, 1] -= 10.0
    trim = outlier_assets(scores, levels, unit, ids, ["coolant", "oil"])
    assert trim.excluded == ("a3", "a2", "a1", "a0")  # furthest off first, at most 4
    assert trim.screened_on == ("anomaly_score",) * 4
    assert list(trim.screen_z) == sorted(trim.screen_z, reverse=True)
    assert trim.over_cap == 4
    wide = outlier_assets(scores, levels, unit, ids, ["coolant", "oil"], max_fraction=0.5)
    assert set(wide.excluded) == {f"a{a}" for a in range(8)}
    assert wide.screened_on[wide.excluded.index("a6")] == "oil"
    assert wide.screen_z[wide.excluded.index("a6")] < -3.5  # a level is off either way
    # A score far *below* the fleet's is not off.
    scores[unit == 19] = 0.0
    assert "a19" not in outlier_assets(scores, levels, unit, ids, ["c", "o"]).excluded


def test_too_few_assets_or_rows_are_not_judged() -> None:
    rng = np.random.default_rng(3)
    blocks = [_truck(rng, wear=0.6 if i == 0 else 0.0) for i in range(6)]
    bundle, metrics, _ = PdmBundle.fit(CONFIG, _frames(blocks), {})
    assert bundle.trim.excluded == ()
    assert "fewer than 10" in bundle.trim.skipped
    assert metrics["anomaly_excluded_assets"] == 0
    # An asset with too few rows is neither judged nor left out.
    scores = np.concatenate([np.full(3, 50.0), np.tile([0.1, 0.2], 100)])
    unit = np.concatenate([np.zeros(3, dtype=int), np.repeat(np.arange(1, 21), 10)])
    levels = np.zeros((scores.shape[0], 1))
    trim = outlier_assets(scores, levels, unit, [f"a{a}" for a in range(21)], ["c"])
    assert trim.excluded == ()
    assert trim.judged == 20


def test_a_suspect_that_looks_normal_under_the_refit_comes_back() -> None:
    screen = AssetTrim(
        excluded=("a", "b", "c"),
        screened_on=("coolant", "anomaly_score", "oil"),
        screen_z=(9.0, 5.0, -4.0),
        scores=(float("nan"),) * 3,
        judged=20,
    )
    unit = np.repeat(np.arange(4), 5)
    refit = np.concatenate([np.full(5, 0.1), np.full(5, 4.0), np.full(5, 0.6), np.full(5, 9.0)])
    trim = screen.confirmed(refit, unit, ["x", "a", "b", "c"])
    assert trim.excluded == ("a", "c")
    assert trim.screened_on == ("coolant", "oil")
    assert trim.scores == (4.0, 9.0)
    assert trim.readmitted == ("b",)
    assert AssetTrim.from_json(trim.to_json()) == trim
