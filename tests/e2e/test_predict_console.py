"""The predictive-maintenance page in headless Chromium against a real platform.

Run-to-failure history goes in as device telemetry over HTTP; a model is trained and
deployed through the API; the platform's scorer writes real predictions (back-filled
over the recent history) as series. One pump's device is deleted after its history is
stored: it must still be scored and ranked.
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
from browser_kit import shot, signed_in_page

from harness import PlatformProcess, basic, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.integration]
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
#: pump -> failure hour (None: still healthy after 24 h); p5 loses its device
FAILS: dict[str, float | None] = {
    "p0": 18.0,
    "p1": 20.0,
    "p2": 22.0,
    "p3": 16.0,
    "p4": None,
    "p5": None,
}


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


def _train(api: httpx.Client, body: dict[str, Any]) -> int:
    r = api.post("/api/v1/predict/train", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]

    def done() -> dict[str, Any] | None:
        j = api.get(f"/api/v1/predict/jobs/{job_id}").json()
        return j if j["state"] in ("succeeded", "failed") else None

    job: dict[str, Any] = wait_for(done, timeout=300, interval=0.2, what="training job")
    assert job["state"] == "succeeded", job
    return int(job["version"]["version"])


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("predict_console")) / "data",
        extra_env={"IRONBRIDGE_PREDICT_INTERVAL_S": "1"},
    ).start()
    api = p.client()
    r = api.post("/api/v1/asset-types", content=PUMP, headers={"Content-Type": "text/yaml"})
    assert r.status_code == 201, r.text
    t0 = (int(time.time() * 1000) - 30 * H_MS) // H_MS * H_MS
    for asset, body in _history(t0).items():
        r = api.post(
            "/api/v1/assets", json={"id": asset, "name": f"Pump {asset[1:]}", "type_name": "pump"}
        )
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/devices", json={"id": f"dev-{asset}", "asset_ids": [asset]})
        assert r.status_code == 201, r.text
        r = httpx.post(
            f"{p.url}/api/v1/telemetry",
            content=orjson.dumps(body),
            headers=basic(f"dev-{asset}", r.json()["credential"]),
        )
        assert r.status_code == 202, r.text
    stored = {a: t0 + int((f or 24.0) * H_MS) - 300_000 for a, f in FAILS.items()}

    def all_stored() -> bool:
        r = api.get("/api/v1/telemetry/latest", params={"asset": list(FAILS)})
        got = {v["asset"]: v["ts"] for v in r.json()["values"] if v["measurement"] == "vib"}
        return got == stored

    wait_for(all_stored, timeout=90, what="the history to be stored")
    assert api.delete("/api/v1/devices/dev-p5").status_code == 204
    common = {
        "asset_type": "pump",
        "start": t0,
        "end": t0 + 25 * H_MS,
        "bucket_s": 300,
        "rul_cap_h": 8,
        "rounds": 150,
        "failures": {a: [t0 + int(f * H_MS)] for a, f in FAILS.items() if f is not None},
    }
    assert _train(api, {**common, "deploy": True}) == 1
    assert _train(api, {**common, "measurements": ["temp"]}) == 2

    def scored() -> list[dict[str, Any]] | None:
        rows: list[dict[str, Any]] = api.get(
            "/api/v1/predict/scores", params={"asset_type": "pump"}
        ).json()
        return rows if len(rows) == len(FAILS) and all(x["rul"] is not None for x in rows) else None

    wait_for(scored, timeout=90, interval=0.2, what="predictions of every pump")
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture
def page(browser: Any, platform: PlatformProcess) -> Iterator[Any]:
    with signed_in_page(browser, platform.url, viewport={"width": 1440, "height": 1000}) as pg:
        pg.on("dialog", lambda d: d.accept())
        yield pg


def _shot(pg: Any, name: str) -> None:
    shot(pg, name, full_page=True)


def test_ranking_chart_and_registry(page: Any, platform: PlatformProcess) -> None:
    page.click("[data-nav='predict']")
    page.wait_for_selector("body[data-ready='1']", timeout=20_000)
    rows = page.locator("#rank-body tr").all_inner_texts()
    assert len(rows) == len(FAILS)
    names = [r.split("\t")[1] for r in rows]
    # Worst first: the four pumps that ran to failure, then the healthy ones, p5 included
    # although no device is bound to it any more.
    assert {n.split()[-1] for n in names[:4]} == {"p0", "p1", "p2", "p3"}
    assert {n.split()[-1] for n in names[4:]} == {"p4", "p5"}
    assert all("pump/v1" in r for r in rows)
    api_rows = platform.client().get("/api/v1/predict/scores").json()
    first = rows[0].split("\t")
    assert round(api_rows[0]["health_index"]) == int(first[3])
    assert "–" in first[6]  # the 90 % interval lo – hi
    # The registry lists both versions, v1 deployed.
    v1 = page.locator(".reg-type[data-type='pump'] tr[data-version-row='1']")
    assert "deployed" in v1.inner_text()
    _shot(page, "predict")

    page.locator("#rank-body tr").first.click()
    page.wait_for_selector("#detail[data-ready='1']", timeout=20_000)
    detail = page.locator("#detail")
    # The back-filled history: one prediction per 5-min bucket, with a RUL band.
    assert int(detail.get_attribute("data-points")) > 50
    assert int(detail.get_attribute("data-rul-points")) > 50
    assert page.locator("#c-health canvas").count() == 1
    assert page.locator("#c-rul canvas").count() == 1
    assert "asset=" in page.url
    page.click("[data-range='7d']")
    page.wait_for_selector("#detail[data-ready='1']")
    _shot(page, "predict-asset")

    # Deploy v2 from the registry, then roll back to v1.
    page.click(".reg-type[data-type='pump'] [data-deploy='pump'][data-version='2']")
    page.wait_for_function(
        "document.querySelector(\".reg-type[data-type='pump'] tr[data-version-row='2']\")"
        ".innerText.includes('deployed')"
    )
    assert platform.client().get("/api/v1/predict/models/pump").json()["active"] == 2
    page.click(".reg-type[data-type='pump'] [data-rollback='pump']")
    page.wait_for_function(
        "document.querySelector(\".reg-type[data-type='pump'] tr[data-version-row='1']\")"
        ".innerText.includes('deployed')"
    )
    assert platform.client().get("/api/v1/predict/models/pump").json()["active"] == 1
