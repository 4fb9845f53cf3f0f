"""The console's pages, language switch and live feeds, served by the real app factory.

A real SQLite registry and DuckDB store sit behind the app; only the bus publisher is a
stub (no page or feed here publishes).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from ironbridge.api import ApiContext, create_app
from ironbridge.api.auth import SESSION_COOKIE, issue_token
from ironbridge.ingest import RouteCache
from ironbridge.model import Asset, now_us, parse_asset_type
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore
from ironbridge.store.sql import SqlRegistry, bootstrap_admin, ensure_root
from ironbridge.web import fleet_summary, live
from ironbridge.web.i18n import catalogue, choose_language

WEB = Path(live.__file__).parent
SECRET = b"web-test-secret"
VEHICLE = {
    "name": "web_vehicle",
    "version": 1,
    "measurements": [
        {"name": "speed", "unit": "km/h", "min": 0, "max": 300},
        {"name": "latitude", "unit": "deg", "min": -90, "max": 90},
        {"name": "longitude", "unit": "deg", "min": -180, "max": 180},
    ],
}


class _NoPublisher:
    async def publish(self, subject: str, payload: bytes, headers: Any = None) -> int:
        raise AssertionError("the console never publishes")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[ApiContext]:
    registry = SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    ensure_root(registry)
    bootstrap_admin(registry, password="web-admin-password")
    registry.put_asset_type(None, "root", parse_asset_type(VEHICLE))
    for asset_id in ("v-moving", "v-silent", "v-never"):
        registry.create_asset(
            None, Asset(id=asset_id, tenant_id="root", type_name="web_vehicle", name=asset_id)
        )
    store = DuckDBTelemetryStore(tmp_path / "telemetry.duckdb")
    refs = {
        (r.asset_id, r.measurement): r.id
        for r in registry.series_of(None, ["v-moving", "v-silent"])
    }
    now = now_us()
    rows = [
        (refs["v-moving", "speed"], now - 5_000_000, 42.5),
        (refs["v-moving", "latitude"], now - 5_000_000, 36.65),
        (refs["v-moving", "longitude"], now - 5_000_000, 117.0),
        (refs["v-silent", "speed"], now - 3_600_000_000, 0.0),
    ]
    store.append(
        PointBatch(
            np.array([r[0] for r in rows], np.int64),
            np.array([r[1] for r in rows], np.int64),
            np.array([r[2] for r in rows], np.float64),
        )
    )
    yield ApiContext(
        registry=registry,
        store=store,
        publisher=_NoPublisher(),  # type: ignore[arg-type]
        routes=RouteCache(registry.device_route),
        secret_key=SECRET,
    )
    store.close()
    registry.close()


@pytest.fixture
async def client(ctx: ApiContext) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(ctx))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as c:
        yield c


def _token(ctx: ApiContext) -> str:
    who = ctx.registry.authenticate_user("admin", "web-admin-password")
    return issue_token(SECRET, who.user_id, 3600)


def test_fleet_summary_counts_online_offline_and_positions(ctx: ApiContext) -> None:
    summary = fleet_summary(ctx, ctx.registry.principal_for_user(1))
    counts = summary["counts"]
    assert (counts["total"], counts["online"], counts["offline"], counts["never"]) == (3, 1, 2, 1)
    assert counts["by_type"] == {"web_vehicle": {"total": 3, "online": 1}}
    by_id = {a["id"]: a for a in summary["assets"]}
    assert by_id["v-moving"]["online"] is True
    assert (by_id["v-moving"]["lat"], by_id["v-moving"]["lon"]) == (36.65, 117.0)
    assert by_id["v-silent"]["online"] is False
    assert by_id["v-silent"]["lat"] is None
    assert by_id["v-never"]["last_seen"] is None


async def test_live_api_needs_a_session_and_reads_the_store(
    client: httpx.AsyncClient, ctx: ApiContext
) -> None:
    assert (await client.get("/api/v1/live/fleet")).status_code == 401
    client.cookies.set(SESSION_COOKIE, _token(ctx))
    body = (await client.get("/api/v1/live/fleet")).json()
    assert body["counts"]["online"] == 1


async def _first_event(client: httpx.AsyncClient, url: str) -> tuple[str, dict[str, Any]]:
    r = await client.get(url)  # the stream ends after its (shortened) lifetime
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    match = re.search(r"event: (\w+)\ndata: (.*)\n\n", r.text)
    assert match, r.text
    return match.group(1), orjson.loads(match.group(2))


async def test_sse_feeds_send_the_current_state_first(
    client: httpx.AsyncClient, ctx: ApiContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "STREAM_LIFETIME_S", 0.3)
    client.cookies.set(SESSION_COOKIE, _token(ctx))
    name, data = await _first_event(client, "/api/v1/live/latest/stream?asset=v-moving")
    assert name == "latest"
    assert data["values"]["speed"]["value"] == 42.5
    name, data = await _first_event(client, "/api/v1/live/fleet/stream")
    assert name == "fleet"
    assert data["counts"]["total"] == 3
    assert (await client.get("/api/v1/live/latest/stream?asset=nope")).status_code == 404


async def test_pages_redirect_to_login_then_render_in_the_chosen_language(
    client: httpx.AsyncClient, ctx: ApiContext
) -> None:
    r = await client.get("/assets/v-moving")
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=/assets/v-moving"
    assert "login-form" in (await client.get("/login")).text
    client.cookies.set(SESSION_COOKIE, _token(ctx))
    for path in ("/", "/map", "/assets", "/assets/v-moving", "/asset-types", "/devices",
                 "/alarms", "/ingest", "/predict"):  # fmt: skip
        r = await client.get(path)
        assert r.status_code == 200, path
        assert 'data-page="' in r.text
    assert ">Overview<" in (await client.get("/")).text
    r = await client.get("/lang/zh", params={"next": "/assets"})
    assert r.status_code == 303
    assert r.headers["location"] == "/assets"
    client.cookies.set("ib_lang", "zh")
    assert ">总览<" in (await client.get("/")).text
    r = await client.get("/lang/en", params={"next": "//evil.example"})
    assert r.headers["location"] == "/"  # no open redirect


async def test_static_assets_are_vendored_and_served(client: httpx.AsyncClient) -> None:
    for path in (
        "/static/console.js",
        "/static/console.css",
        "/static/vendor/echarts-5.5.1/echarts.common.min.js",
        "/static/vendor/leaflet-1.9.4/leaflet.js",
        "/static/vendor/leaflet.markercluster-1.5.3/leaflet.markercluster.js",
        "/static/vendor/china-geojson-echarts-4.9.0/china-provinces.geojson",
    ):
        assert (await client.get(path)).status_code == 200, path
    total = sum(f.stat().st_size for f in (WEB / "static" / "vendor").rglob("*") if f.is_file())
    assert total < 5 * 1024 * 1024


def test_language_choice() -> None:
    assert choose_language("zh", "en-US") == "zh"
    assert choose_language(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert choose_language("xx", "fr-FR") == "en"


def test_every_console_string_is_in_both_catalogues() -> None:
    en, zh = catalogue("en"), catalogue("zh")
    assert set(en) == set(zh)
    english_files = list((WEB / "i18n").glob("*en.json"))
    assert len(english_files) >= 2, "the core catalogue and at least one area catalogue"
    for english in english_files:
        chinese = english.with_name(english.name[: -len("en.json")] + "zh.json")
        raw_zh = orjson.loads(chinese.read_bytes())
        assert set(raw_zh) == set(orjson.loads(english.read_bytes())), english.name
    used: set[str] = set()
    for template in (WEB / "templates").glob("*.html"):
        used |= set(re.findall(r"t\('([a-z_]+\.[a-z_.]+)'\)", template.read_text()))
    for script in (WEB / "static").glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z_]+\.[a-z_.]+)"\)', script.read_text()))
    assert used, "the scan found no strings"
    assert not sorted(used - set(en)), "strings missing from the catalogues"


def test_every_page_is_in_exactly_one_nav_section() -> None:
    from ironbridge.web.pages import PAGES, nav_sections

    listed = [name for _, names in nav_sections() for name in names]
    assert sorted(listed) == sorted(PAGES)
    assert len(listed) == len(set(listed))
    en = catalogue("en")
    assert all(title in en for title, _ in nav_sections())


async def test_chart_answers_every_series_in_one_request_with_extremes_kept(
    client: httpx.AsyncClient, ctx: ApiContext
) -> None:
    refs = {r.measurement: r.id for r in ctx.registry.series_of(None, ["v-never"])}
    end = (now_us() // 60_000_000) * 60_000_000
    ts = end - 86_400_000_000 + np.arange(86_400, dtype=np.int64) * 1_000_000
    speed = 50 + 10 * np.sin(np.arange(86_400) / 900.0)
    speed[40_000] = 299.0  # one second of a spike in a day
    lat = np.full(86_400, 36.5)
    ctx.store.append(
        PointBatch(
            np.concatenate((np.full(86_400, refs["speed"]), np.full(86_400, refs["latitude"]))),
            np.concatenate((ts, ts)),
            np.concatenate((speed, lat)),
        )
    )
    client.cookies.set(SESSION_COOKIE, _token(ctx))
    params = {"asset": "v-never", "start": str((end - 86_400_000_000) // 1000)}
    params.update(end=str(end // 1000), max_points="800")
    body = (await client.get("/api/v1/telemetry/chart", params=params)).json()
    by = {s["measurement"]: s for s in body["series"]}
    assert set(by) == {"speed", "latitude"}  # longitude has no points in the range
    assert all(len(s["ts"]) <= 800 for s in by.values())
    assert max(by["speed"]["value"]) == 299.0
    assert min(by["speed"]["value"]) == float(speed.min())
    assert by["speed"]["ts"] == sorted(by["speed"]["ts"])
    bad = await client.get("/api/v1/telemetry/chart", params={**params, "max_points": "2"})
    assert bad.status_code == 422
    assert "max_points" in bad.text
