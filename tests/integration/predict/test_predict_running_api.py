"""The running gate through a real platform: set over HTTP and the CLI, stored, obeyed.

Motors drive, park long enough to cool, restart and warm up. A version trained with the
gate ``speed > 500`` and ``temp > 60`` must store it in its bundle and publish predictions
for the settled running buckets only: none while parked, none while warming up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from harness import ADMIN_PASSWORD, PlatformProcess, basic, wait_for
from ironbridge.cli import app

pytestmark = pytest.mark.integration

MOTOR = """
name: motor
version: 1
measurements:
  - {name: speed, unit: rpm, min: 0, max: 5000}
  - {name: temp, unit: degC, min: -40, max: 200}
  - {name: vib, unit: mm/s, min: 0, max: 100}
  - {name: health_index, unit: "%", min: 0, max: 100}
  - {name: anomaly_score, min: 0}
"""
MIN_MS = 60_000
MOTORS = ("m0", "m1", "m2", "m3")
GATE = [{"measurement": "speed", "above": 500.0}, {"measurement": "temp", "above": 60.0}]
#: Buckets of one motor: it drives, parks over PARK, restarts cold and warms up.
BUCKETS = 150
PARK = range(60, 90)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("predict-running")) / "data",
        extra_env={"IRONBRIDGE_PREDICT_INTERVAL_S": "1"},
    ).start()
    yield p
    assert p.stop() == 0, p.log()


def _motor(rng: np.random.Generator, shift: int) -> dict[str, np.ndarray]:
    """One reading per minute. Parked: speed 0, coolant falling. Restart: 2 °C a minute."""
    k = np.arange(BUCKETS)
    park = np.isin(k, PARK)
    after = k >= PARK.stop
    speed = np.where(park, 0.0, 1500.0 + 50.0 * rng.standard_normal(BUCKETS))
    temp = 70.0 + 0.5 * rng.standard_normal(BUCKETS)
    temp[park] = 70.0 - 1.0 * (k[park] - PARK.start + 1)
    warm = 41.0 + 2.0 * (k[after] - PARK.stop + shift)
    temp[after] = np.minimum(warm, temp[after])
    # A cold motor vibrates more: the warm-up would look like a fault if it were scored.
    vib = np.where(park, 0.0, 2.0 + 0.05 * rng.standard_normal(BUCKETS))
    vib[after] += 0.1 * np.clip(70.0 - temp[after], 0.0, None)
    return {"speed": speed, "temp": temp, "vib": vib}


def _settled_running(cols: dict[str, np.ndarray]) -> list[int]:
    """Buckets the gate lets through, by the rule in docs/predict.md (6th in a row on)."""
    out, run = [], 0
    for i in range(BUCKETS):
        run = run + 1 if cols["speed"][i] > 500.0 and cols["temp"][i] > 60.0 else 0
        if run >= 6:
            out.append(i)
    return out


def test_running_gate_over_http_lands_in_the_bundle_and_skips_buckets(
    platform: PlatformProcess,
) -> None:
    api = platform.client()
    r = api.post("/api/v1/asset-types", content=MOTOR, headers={"Content-Type": "text/yaml"})
    assert r.status_code == 201, r.text
    rng = np.random.default_rng(3)
    t0 = (int(time.time() * 1000) - 4 * 60 * MIN_MS) // (60 * MIN_MS) * (60 * MIN_MS)
    ts = t0 + np.arange(BUCKETS, dtype=np.int64) * MIN_MS + MIN_MS // 2  # mid-bucket
    data = {m: _motor(rng, shift=i) for i, m in enumerate(MOTORS)}
    for asset, cols in data.items():
        assert (
            api.post("/api/v1/assets", json={"id": asset, "type_name": "motor"}).status_code == 201
        )
        r = api.post("/api/v1/devices", json={"id": f"dev-{asset}", "asset_ids": [asset]})
        assert r.status_code == 201, r.text
        body = {"ts": ts.tolist(), "values": {k: np.round(v, 3).tolist() for k, v in cols.items()}}
        r = httpx.post(
            f"{platform.url}/api/v1/telemetry",
            content=orjson.dumps(body),
            headers=basic(f"dev-{asset}", r.json()["credential"]),
        )
        assert r.status_code == 202, r.text

    def all_stored() -> bool:
        r = api.get("/api/v1/telemetry/latest", params={"asset": list(MOTORS)})
        got = {v["asset"]: v["ts"] for v in r.json()["values"] if v["measurement"] == "vib"}
        return got == dict.fromkeys(MOTORS, int(ts[-1]))

    wait_for(all_stored, timeout=90, what="the history to be stored")

    # Bad gates are refused with the field and the reason, like any bad input.
    base = {"asset_type": "motor", "start": t0, "end": t0 + 4 * 60 * MIN_MS, "bucket_s": 60}
    bad: list[tuple[Any, str, str]] = [
        ([{"measurement": "rpm", "above": 1}], "running.0.measurement", "not one of"),
        ([GATE[0], {"measurement": "temp", "above": "warm"}], "running.1.above", "number"),
        ([{"measurement": "speed", "below": 1}], "running.0.above", "Field required"),
    ]
    for running, field, reason in bad:
        r = api.post("/api/v1/predict/train", json={**base, "running": running})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field, r.text
        assert reason in r.json()["error"], r.text
    # Infinity is not JSON, but Python's parser reads 1e999 as inf: refused as well.
    r = api.post(
        "/api/v1/predict/train",
        content=b'{"asset_type": "motor", "running": [{"measurement": "speed", "above": 1e999}]}',
        headers={"Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["field"]) == (422, "running.0.above"), r.text

    r = api.post("/api/v1/predict/train", json={**base, "running": GATE, "deploy": True})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def done() -> dict[str, Any] | None:
        j = api.get(f"/api/v1/predict/jobs/{job_id}").json()
        return j if j["state"] in ("succeeded", "failed") else None

    job = wait_for(done, timeout=300, interval=0.2, what="training job")
    assert job["state"] == "succeeded", job
    expected = {m: _settled_running(cols) for m, cols in data.items()}
    # Training saw the settled running buckets only.
    n_running = sum(len(v) for v in expected.values())
    assert job["version"]["metrics"]["anomaly_train_rows"] == n_running

    # The gate is in the deployed version: its config over the API and its bundle file.
    models = api.get("/api/v1/predict/models/motor").json()
    assert models["active"] == 1
    assert models["versions"][0]["config"]["running"] == GATE
    bundle = json.loads(
        (platform.data_dir / "models" / "motor" / "pdm" / "v1" / "bundle.json").read_text()
    )
    assert bundle["config"]["running"] == GATE

    # Predictions are published for exactly the settled running buckets: none while
    # parked, none while warming up, one per running bucket once settled (back-filled).
    def stamps(asset: str) -> list[int] | None:
        r = api.get(
            "/api/v1/telemetry/raw",
            params={"asset": asset, "measurement": "health_index", "start": t0, "end": "now+1h"},
        )
        series = r.json()["series"]
        return series[0]["ts"] if series and len(series[0]["ts"]) >= len(expected[asset]) else None

    for asset in MOTORS:
        got = wait_for(lambda a=asset: stamps(a), timeout=90, what=f"predictions of {asset}")
        # A bucket's prediction is stamped at its last millisecond, the newest at the
        # newest reading.
        want = [min(t0 + (i + 1) * MIN_MS - 1, int(ts[-1])) for i in expected[asset]]
        assert got == want, asset
        assert PARK.start - 1 in expected[asset]  # it ran settled right up to the park
        first_after = min(i for i in expected[asset] if i >= PARK.stop)
        # Speed alone would score from PARK.stop + 5; the warm-up (7-10 buckets to pass
        # 60 °C) is skipped as well.
        assert first_after >= PARK.stop + 7 + 5
    rows = api.get("/api/v1/predict/scores", params={"asset_type": "motor"}).json()
    assert {x["asset_id"] for x in rows} == set(MOTORS)
    assert all(x["health_index"] > 50 for x in rows), rows


def test_running_gate_from_the_cli(platform: PlatformProcess) -> None:
    common = [
        "predict",
        "train",
        "--asset-type",
        "motor",
        "--api",
        platform.url,
        "--username",
        "admin",
        "--password",
        ADMIN_PASSWORD,
        "--start",
        "now-5h",
        "--bucket-s",
        "60",
    ]
    runner = CliRunner()
    bad = runner.invoke(app, [*common, "--running", "speed"])
    assert bad.exit_code == 2, bad.output
    assert "expected measurement:threshold" in bad.output
    refused = runner.invoke(app, [*common, "--running", "rpm:500"])
    assert refused.exit_code == 1, refused.output
    assert "running.0.measurement" in refused.output
    if not platform.client().get("/api/v1/predict/models/motor").json()["versions"]:
        pytest.skip("needs the history posted by the HTTP test")
    ok = runner.invoke(app, [*common, "--running", "speed:500, temp:60"])
    assert ok.exit_code == 0, ok.output
    versions = platform.client().get("/api/v1/predict/models/motor").json()["versions"]
    assert versions[-1]["config"]["running"] == GATE
