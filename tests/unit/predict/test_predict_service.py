"""PredictService in process: real SQLite registry and DuckDB store, ingest emulated at the bus.

The publisher below stands in for JetStream + the ingest worker (tested elsewhere): it
decodes each prediction message and validates it against the route ingest would use for
its subject (the asset's own platform source, :func:`platform_routes`) with the same
``to_points``, then appends it, so an invalid prediction fails here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest
import yaml

from ironbridge.codec import decode_telemetry
from ironbridge.ingest import platform_routes, to_points
from ironbridge.model import (
    Asset,
    Conflict,
    Device,
    InvalidInput,
    Principal,
    Role,
    now_us,
    parse_asset_type,
)
from ironbridge.predict.service import (
    PREDICTION_MEASUREMENTS,
    JobState,
    PredictService,
    TrainRequest,
)
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore
from ironbridge.store.sql import SqlRegistry, ensure_root

pytest.importorskip("lightgbm")

PUMP = """
name: pump
version: 1
measurements:
  - {name: temp, unit: degC, min: -40, max: 200}
  - {name: vib, unit: mm/s, min: 0, max: 100}
  - {name: health_index, unit: "%", min: 0, max: 100}
  - {name: anomaly_score, min: 0}
  - {name: rul, unit: h, min: 0}
  - {name: rul_lo, unit: h, min: 0}
  - {name: rul_hi, unit: h, min: 0}
"""
H = 3_600_000_000
STEP = 300_000_000
#: asset -> failure time in hours after the start (None: healthy, censored)
FAILS: dict[str, float | None] = {
    "p0": 18.0,
    "p1": 20.0,
    "p2": 22.0,
    "p3": 16.0,
    "p4": None,
    "p5": None,
}
ADMIN = Principal(user_id=0, username="t", tenant_id="root", tenant_path="/root/", role=Role.ADMIN)


def history(t0: int, hours: float = 24.0) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Run-to-failure histories: temp and vibration rise over the 6 h before failure."""
    rng = np.random.default_rng(7)
    out = {}
    for asset, fail_h in FAILS.items():
        end = t0 + int((fail_h if fail_h is not None else hours) * H)
        ts = np.arange(t0, end, STEP, dtype=np.int64)
        if fail_h is None:
            d = np.zeros(ts.shape[0])
        else:
            d = np.clip(1 - (t0 + fail_h * H - ts) / (6 * H), 0, 1) ** 2
        temp = 60 + rng.normal(0, 1.0, ts.shape[0]) + 30 * d
        vib = 2 + rng.normal(0, 0.1, ts.shape[0]) + 3 * d
        out[asset] = (ts, {"temp": temp, "vib": vib})
    return out


class IngestLikePublisher:
    """Validates like ingest and appends to the store (JetStream and the worker elsewhere)."""

    def __init__(self, registry: SqlRegistry, store: DuckDBTelemetryStore) -> None:
        self.registry, self.store, self.subjects = registry, store, []
        self.route = platform_routes(registry, computed=PREDICTION_MEASUREMENTS)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.subjects.append(subject)
        assert headers is not None
        assert headers["Ib-Origin"] == "predict"
        route = self.route(subject.split(".")[2])
        self.store.append(to_points(decode_telemetry(payload), route, now_us(), now_us()))
        return len(self.subjects)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[PredictService, SqlRegistry, DuckDBTelemetryStore, int]]:
    registry = SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    ensure_root(registry)
    store = DuckDBTelemetryStore(tmp_path / "telemetry.duckdb")
    registry.put_asset_type(None, "root", parse_asset_type(yaml.safe_load(PUMP)))
    t0 = (now_us() - 30 * H) // H * H
    data = history(t0)
    for asset, (ts, cols) in data.items():
        registry.create_asset(None, Asset(id=asset, tenant_id="root", type_name="pump", name=asset))
        if asset != "p5":
            registry.create_device(
                None, Device(id=f"dev-{asset}", tenant_id="root", asset_ids=(asset,), name=asset)
            )
        refs = {r.measurement: r.id for r in registry.series_of(None, [asset])}
        for m, v in cols.items():
            store.append(PointBatch(np.full(ts.shape[0], refs[m], dtype=np.int64), ts, v))
    svc = PredictService(
        registry=registry,
        store=store,
        publisher=IngestLikePublisher(registry, store),
        models_dir=tmp_path / "models",
        backfill_rows=120,  # 10 h of 5-min buckets, less than any asset's history
    )
    yield svc, registry, store, t0
    store.close()
    registry.close()


async def _train(svc: PredictService, t0: int, rounds: int = 150, **kw: object) -> int:
    req = TrainRequest(
        asset_type="pump",
        start_us=t0,
        end_us=t0 + 25 * H,
        bucket_s=300,
        rul_cap_h=8.0,
        failures={a: [t0 + int(f * H)] for a, f in FAILS.items() if f is not None},
        rounds=rounds,
        **kw,  # type: ignore[arg-type]
    )
    job = await svc.start_training(ADMIN, req)
    for task in list(svc._tasks):
        await task
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result is not None
    return job.result.version


async def test_train_deploy_score_rollback(
    env: tuple[PredictService, SqlRegistry, DuckDBTelemetryStore, int],
) -> None:
    svc, registry, store, t0 = env
    v1 = await _train(svc, t0)
    versions, active = svc.versions(ADMIN, "pump")
    assert [v.version for v in versions] == [v1]
    assert active is None
    meta = versions[0]
    assert meta.extra["has_rul"] is True
    assert meta.metrics["failures"] == 4
    assert meta.metrics["assets"] == 6
    # A constant guess of the mean label is far worse than ~1.5 h on this data.
    assert meta.metrics["rul_cv_rmse_h"] < 2.0, meta.metrics
    assert meta.metrics["anomaly_auc_near_failure"] > 0.9, meta.metrics

    assert await svc.score_once() == {"assets": 0, "published": 0, "points": 0}
    svc.deploy(ADMIN, "pump", v1)
    counts = await svc.score_once()
    assert counts["assets"] == counts["published"] == 6
    # Every asset is scored, p5 too, though no device is bound to it.
    assert {s.split(".")[2] for s in svc._publisher.subjects} == {  # type: ignore[attr-defined]
        f"_asset-{a}" for a in FAILS
    }
    rows = svc.scores(ADMIN, "pump")
    ids = [r["asset_id"] for r in rows]
    assert set(ids) == set(FAILS)
    # The four machines stopped at failure are the worst; the healthy ones are last.
    assert set(ids[:4]) == {"p0", "p1", "p2", "p3"}
    assert set(ids[4:]) == {"p4", "p5"}
    worst, best = rows[0], rows[-1]
    assert worst["health_index"] < 30 < 80 < best["health_index"]
    assert worst["rul"] < 2.0
    assert best["rul"] == pytest.approx(8.0, abs=1.0)
    assert worst["rul_lo"] <= worst["rul"] <= worst["rul_hi"]
    # A new version back-fills the recent history, so the console can chart it at once:
    # one prediction per bucket (5 min), stamped at the bucket's end (its last ms), the
    # newest one at the newest reading.
    refs = {r.measurement: r.id for r in registry.series_of(None, ["p3"])}
    got = store.raw([refs["rul"]], t0, t0 + 30 * H)
    ts = got.column("ts").cast("int64").to_numpy()
    newest = t0 + int(16.0 * H) - STEP
    assert len(ts) == svc.backfill_rows + 1  # 10 h of bucket ends, and the newest reading
    assert ts[-1] == newest // 1000 * 1000
    assert np.all(np.diff(ts[:-1]) == STEP)
    assert ts[-2] == newest - 1000
    rul = got.column("value").to_numpy()
    assert rul[0] > 4.0 > 2.0 > rul[-1]  # 10 h before failure, then near it
    assert counts["points"] == 5 * sum(
        min(svc.backfill_rows + 1, int((f or 24.0) * H) // STEP) for f in FAILS.values()
    )
    # Nothing new since: the next pass scores nothing.
    assert (await svc.score_once())["assets"] == 0

    v2 = await _train(svc, t0, rounds=20, deploy=True, measurements=("temp",))
    assert v2 == v1 + 1
    assert svc.versions(ADMIN, "pump")[1] == v2
    assert svc.rollback(ADMIN, "pump").version == v1
    assert svc.versions(ADMIN, "pump")[1] == v1
    with pytest.raises(Conflict):
        svc.rollback(ADMIN, "pump")


async def test_without_failures_only_anomaly_and_health(
    env: tuple[PredictService, SqlRegistry, DuckDBTelemetryStore, int],
) -> None:
    svc, _, _, t0 = env
    job = await svc.start_training(
        ADMIN, TrainRequest(asset_type="pump", start_us=t0, end_us=t0 + 25 * H, bucket_s=300)
    )
    for task in list(svc._tasks):
        await task
    assert job.state is JobState.SUCCEEDED, job.error
    assert job.result is not None
    assert job.result.extra["has_rul"] is False
    assert "rul_cv_rmse_h" not in job.result.metrics
    svc.deploy(ADMIN, "pump", job.result.version)
    await svc.score_once("pump")
    rows = {r["asset_id"]: r for r in svc.scores(ADMIN, "pump")}
    assert rows["p4"]["rul"] is None
    assert rows["p4"]["health_index"] > 50
    assert rows["p0"]["anomaly_score"] > rows["p4"]["anomaly_score"]


async def test_bad_requests_name_the_field(
    env: tuple[PredictService, SqlRegistry, DuckDBTelemetryStore, int],
) -> None:
    svc = env[0]
    with pytest.raises(InvalidInput) as e:
        await svc.start_training(ADMIN, TrainRequest(asset_type="pump", measurements=("rul",)))
    assert e.value.field == "measurements"
    with pytest.raises(InvalidInput) as e:
        await svc.start_training(ADMIN, TrainRequest(asset_type="pump", bucket_s=0))
    assert e.value.field == "bucket_s"
    bad_gates: list[tuple[tuple[tuple[str, float], ...], str, str]] = [
        ((("speed", 1.0),), "running.0.measurement", "not one of the model's measurements"),
        ((("temp", 1.0), ("vib", float("nan"))), "running.1.above", "finite"),
        ((("temp", 1.0), ("temp", 2.0)), "running.1.measurement", "already a condition"),
        (tuple(("temp", float(i)) for i in range(9)), "running", "at most 8"),
    ]
    for gate, field, reason in bad_gates:
        with pytest.raises(InvalidInput) as e:
            await svc.start_training(ADMIN, TrainRequest(asset_type="pump", running=gate))
        assert (e.value.field, reason in e.value.reason) == (field, True), e.value
