from pathlib import Path

import numpy as np
import pytest

from ironbridge.model import Conflict, InvalidInput, NotFound
from ironbridge.predict.anomaly import PcaDetector
from ironbridge.predict.health import FleetScorer, health_index
from ironbridge.predict.pipeline import RulPipeline, last_rows
from ironbridge.predict.registry import ModelRegistry
from ironbridge.predict.rul import RulModel

pytest.importorskip("lightgbm")


def degradation_fleet(n_units: int, seed: int) -> tuple[np.ndarray, ...]:
    """Units run to failure; two sensors drift exponentially as the unit ages."""
    rng = np.random.default_rng(seed)
    units, settings, sensors, rul = [], [], [], []
    for u in range(n_units):
        life = int(rng.integers(80, 160))
        t = np.arange(1, life + 1)
        wear = np.exp(3.0 * t / life) - 1.0
        s = np.column_stack(
            [
                wear + rng.normal(0, 0.3, life),
                -0.5 * wear + rng.normal(0, 0.3, life),
                rng.normal(0, 1, life),
            ]
        )
        units.append(np.full(life, u))
        settings.append(rng.normal(0, 0.001, (life, 1)))
        sensors.append(s)
        rul.append(life - t)
    return (
        np.concatenate(units),
        np.vstack(settings),
        np.vstack(sensors),
        np.concatenate(rul).astype(float),
    )


@pytest.fixture(scope="module")
def pipeline() -> RulPipeline:
    unit, settings, sensors, rul = degradation_fleet(30, seed=0)
    return RulPipeline.fit(
        unit=unit,
        settings=settings,
        sensors=sensors,
        rul=rul,
        sensor_names=["a", "b", "c"],
        cap=60,
        folds=3,
        rounds=60,
    )


def test_rul_decreases_along_a_trajectory(pipeline: RulPipeline):
    unit, settings, sensors, rul = degradation_fleet(1, seed=42)
    x = pipeline.features(unit, settings, sensors)
    pred, lo, hi = pipeline.model.predict(x)
    n = len(pred)
    early, late = pred[: n // 4].mean(), pred[-n // 8 :].mean()
    assert early > 45
    assert late < 20
    assert np.all(lo <= pred)
    assert np.all(pred <= hi)
    assert np.sqrt(np.mean((pred - np.minimum(rul, 60)) ** 2)) < 12


def test_rul_training_is_deterministic(pipeline: RulPipeline):
    unit, settings, sensors, rul = degradation_fleet(30, seed=0)
    again = RulPipeline.fit(
        unit=unit,
        settings=settings,
        sensors=sensors,
        rul=rul,
        sensor_names=["a", "b", "c"],
        cap=60,
        folds=3,
        rounds=60,
    )
    a = pipeline.predict_last(unit, settings, sensors)[0]
    b = again.predict_last(unit, settings, sensors)[0]
    np.testing.assert_array_equal(a, b)


def test_last_rows():
    assert last_rows(np.array([3, 3, 5, 5, 5, 9])).tolist() == [1, 4, 5]


def test_predict_rejects_wrong_width(pipeline: RulPipeline):
    with pytest.raises(InvalidInput):
        pipeline.model.predict(np.zeros((2, 3)))


def test_anomaly_thresholds_flag_injected_faults_not_normal_data():
    rng = np.random.default_rng(3)
    cov = np.array([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 1.0]])
    normal = rng.multivariate_normal(np.zeros(3), cov, 2000)
    det = PcaDetector.fit(normal[:1000])
    fresh = normal[1000:]
    assert det.detect(fresh).mean() < 0.01
    faulty = rng.multivariate_normal(np.zeros(3), cov, 300)
    faulty[100:200, 0] += 4.0  # a step on one sensor breaks the correlation
    flags = det.detect(faulty)
    assert flags[110:200].mean() > 0.9
    assert flags[:100].mean() < 0.05


def test_anomaly_detector_round_trip(tmp_path: Path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 4))
    det = PcaDetector.fit(x)
    det.save(tmp_path)
    back = PcaDetector.load(tmp_path)
    np.testing.assert_allclose(back.score(x), det.score(x))


def test_health_index_combines_life_and_anomaly():
    h = health_index(np.array([125.0, 62.5, 0.0, 125.0]), np.array([0.5, 0.5, 0.5, 3.0]), 125)
    np.testing.assert_allclose(h, [100.0, 50.0, 0.0, 100.0 / 3.0])


def test_fleet_scorer_and_registry_round_trip(pipeline: RulPipeline, tmp_path: Path):
    unit, settings, sensors, rul = degradation_fleet(5, seed=7)
    x = pipeline.features(unit, settings, sensors)
    scorer = FleetScorer.fit(pipeline.model, x, rul)
    scores = scorer.score_batch(x)
    assert scores.health.shape == (x.shape[0],)
    assert np.all((scores.health >= 0) & (scores.health <= 100))

    reg = ModelRegistry(tmp_path / "models")
    assert reg.active("engine", "rul") is None
    v1 = reg.register(
        "engine",
        "rul",
        pipeline.model.save,
        features=pipeline.model.feature_names,
        training_range={"units": 30},
        metrics={"oof_rmse": pipeline.model.oof_rmse},
    )
    v2 = reg.register(
        "engine", "rul", pipeline.model.save, features=[], training_range={}, metrics={}
    )
    assert (v1.version, v2.version) == (1, 2)
    assert (tmp_path / "models/engine/rul/v1/model.0.txt").is_file()
    assert [m.version for m in reg.list_versions("engine", "rul")] == [1, 2]
    reg.deploy("engine", "rul", 1)
    reg.deploy("engine", "rul", 2)
    assert reg.active("engine", "rul").version == 2
    assert reg.rollback("engine", "rul").version == 1
    assert reg.active("engine", "rul").version == 1
    with pytest.raises(Conflict):
        reg.rollback("engine", "rul")
    with pytest.raises(NotFound):
        reg.deploy("engine", "rul", 9)
    with pytest.raises(InvalidInput):
        reg.list_versions("../etc", "rul")
    loaded = RulModel.load(reg.path("engine", "rul", 1))
    np.testing.assert_allclose(loaded.predict(x)[0], pipeline.model.predict(x)[0])
    meta = reg.active("engine", "rul")
    assert meta.metrics["oof_rmse"] == pytest.approx(pipeline.model.oof_rmse)
    assert meta.features == pipeline.model.feature_names
