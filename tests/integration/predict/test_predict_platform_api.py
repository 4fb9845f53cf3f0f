"""Predictive maintenance through a real platform: train, deploy, score, roll back over HTTP.

History goes in as device telemetry (HTTP), predictions come back as ordinary series
written by the ingest worker, read through the telemetry query API.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from harness import PlatformProcess, basic, wait_for

pytestmark = pytest.mark.integration
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
H_MS = 3_600_000
FAILS: dict[str, float | None] = {"p0": 18.0, "p1": 20.0, "p2": 22.0, "p3": 16.0, "p4": None}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("predict")) / "data",
        extra_env={"IRONBRIDGE_PREDICT_INTERVAL_S": "1"},
    ).start()
    yield p
    assert p.stop() == 0, p.log()


def _history(t0: int) -> dict[str, dict[str, Any]]:
    rng = np.random.default_rng(7)
    out = {}
    for asset, fail_h in FAILS.items():
        end = t0 + int((fail_h if fail_h is not None else 24.0) * H_MS)
        ts = np.arange(t0, end, 300_000, dtype=np.int64)
        d = (
            np.zeros(ts.shape[0])
            if fail_h is None
            else np.clip(1 - (t0 + fail_h * H_MS - ts) / (6 * H_MS), 0, 1) ** 2
        )
        temp = 60 + rng.normal(0, 1.0, ts.shape[0]) + 30 * d
        vib = 2 + rng.normal(0, 0.1, ts.shape[0]) + 3 * d
        out[asset] = {
            "ts": ts.tolist(),
            "values": {"temp": np.round(temp, 3).tolist(), "vib": np.round(vib, 4).tolist()},
        }
    return out


def _job(api: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/api/v1/predict/train", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def done() -> dict[str, Any] | None:
        j = api.get(f"/api/v1/predict/jobs/{job_id}").json()
        return j if j["state"] in ("succeeded", "failed") else None

    job: dict[str, Any] = wait_for(done, timeout=300, interval=0.2, what="training job")
    assert job["state"] == "succeeded", job
    return job


def test_train_deploy_score_rollback_through_the_api(platform: PlatformProcess) -> None:
    api = platform.client()
    r = api.post("/api/v1/asset-types", content=PUMP, headers={"Content-Type": "text/yaml"})
    assert r.status_code == 201, r.text
    # A plain threshold rule on the prediction series, as on any measurement.
    rule = {
        "id": "pump-health-low",
        "kind": "threshold",
        "asset_type": "pump",
        "params": {"measurement": "health_index", "op": "<", "limit": 30},
    }
    r = api.post("/api/v1/rules", json=rule)
    assert r.status_code == 201, r.text
    t0 = (int(time.time() * 1000) - 30 * H_MS) // H_MS * H_MS
    for asset, body in _history(t0).items():
        assert (
            api.post("/api/v1/assets", json={"id": asset, "type_name": "pump"}).status_code == 201
        )
        r = api.post("/api/v1/devices", json={"id": f"dev-{asset}", "asset_ids": [asset]})
        assert r.status_code == 201, r.text
        r = httpx.post(
            f"{platform.url}/api/v1/telemetry",
            content=orjson.dumps(body),
            headers=basic(f"dev-{asset}", r.json()["credential"]),
        )
        assert r.status_code == 202, r.text
    stored = {
        a: t0 + int((f if f is not None else 24.0) * H_MS) - 300_000 for a, f in FAILS.items()
    }

    def all_stored() -> bool:
        r = api.get("/api/v1/telemetry/latest", params={"asset": list(FAILS)})
        got = {v["asset"]: v["ts"] for v in r.json()["values"] if v["measurement"] == "vib"}
        return got == stored

    wait_for(all_stored, timeout=90, what="the history to be stored")
    # The rules worker picks up rule changes on its housekeeping tick: wait until it
    # watches the five pumps, so the first predictions are evaluated.
    wait_for(
        lambda: api.get("/api/v1/rules-stats").json().get("bindings", 0) >= 5,
        timeout=90,
        what="the rules worker to load the rule",
    )

    # A request naming a prediction output as input is refused with the field.
    r = api.post("/api/v1/predict/train", json={"asset_type": "pump", "measurements": ["rul"]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "measurements", r.text

    common = {
        "asset_type": "pump",
        "start": t0,
        "end": t0 + 25 * H_MS,
        "bucket_s": 300,
        "rul_cap_h": 8,
        "rounds": 150,
        "failures": {a: [t0 + int(f * H_MS)] for a, f in FAILS.items() if f is not None},
    }
    job = _job(api, common)
    v1 = job["version"]
    assert v1["version"] == 1
    assert v1["has_rul"] is True
    assert v1["metrics"]["rul_cv_rmse_h"] < 2.0, v1["metrics"]
    assert v1["training_range"]["assets"] == 5
    # Five pumps are too few to judge which are far off: nobody is left out, and the
    # version says why.
    trim = v1["anomaly_trim"]
    assert trim["excluded"] == [], trim
    assert trim["judged_assets"] == 5, trim
    assert "fewer than 10" in trim["skipped"], trim
    assert v1["metrics"]["anomaly_excluded_assets"] == 0

    models = api.get("/api/v1/predict/models/pump").json()
    assert models["active"] is None
    assert models["versions"][0]["anomaly_trim"] == trim
    assert [v["version"] for v in models["versions"]] == [1]
    r = api.post("/api/v1/predict/models/pump/deploy", json={"version": 1})
    assert r.status_code == 200, r.text

    # The scheduled scorer (every second, woken by the deploy) writes the predictions as
    # ordinary series through ingest; the scores endpoint reads them back, worst first.
    def scored() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = api.get(
            "/api/v1/predict/scores", params={"asset_type": "pump"}
        ).json()
        return rows if len(rows) == 5 and all(x["rul"] is not None for x in rows) else None

    rows = wait_for(scored, timeout=90, interval=0.2, what="predictions of 5 pumps")
    assert {x["asset_id"] for x in rows[:4]} == {"p0", "p1", "p2", "p3"}
    assert rows[-1]["asset_id"] == "p4"
    assert rows[-1]["health_index"] > 80
    assert rows[0]["health_index"] < 30
    assert rows[0]["rul_lo"] <= rows[0]["rul"]
    r = api.get(
        "/api/v1/telemetry/raw",
        params={"asset": "p3", "measurement": "health_index", "start": t0, "end": "now+1h"},
    )
    [series] = r.json()["series"]
    p3 = next(x for x in rows if x["asset_id"] == "p3")
    # The deployed version back-filled p3's history (one value per 5-min bucket); the
    # newest is stamped at p3's newest reading and is what the ranking shows.
    assert len(series["ts"]) > 100
    assert series["ts"][-1] == stored["p3"]
    assert series["value"][-1] == p3["health_index"]

    # The rules engine saw the predictions on ib.norm.points and raised alarms.
    low = {x["asset_id"] for x in rows if x["health_index"] < 30}
    assert low, rows

    def alarmed() -> set[str] | None:
        r = api.get("/api/v1/alarms", params={"rule_id": "pump-health-low"})
        got = {a["asset_id"] for a in r.json()}
        return got if got == low else None

    wait_for(alarmed, timeout=90, interval=0.2, what=f"alarms on {sorted(low)}")

    job2 = _job(api, {**common, "measurements": ["temp"], "deploy": True})
    assert job2["version"]["version"] == 2
    assert api.get("/api/v1/predict/models/pump").json()["active"] == 2
    r = api.post("/api/v1/predict/models/pump/rollback")
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    listing = api.get("/api/v1/predict/models").json()
    assert [(m["asset_type"], m["active"], len(m["versions"])) for m in listing] == [("pump", 1, 2)]
    assert api.post("/api/v1/predict/models/pump/rollback").status_code == 409
