"""Console speed: time to first meaningful paint in headless Chromium over a big store.

Builds a platform data directory whose DuckDB store holds ``--points`` points (default
100 M; ``--quick`` = 5 M), written with DuckDB SQL straight into the store's tables:

* ``--assets`` assets (default 1000) of a type with 8 measurements (6 signals, latitude,
  longitude), each reporting over the last 90 days;
* one "hero" asset whose 8 series are 1 Hz for the last 30 days (20.7 M points; with
  ``--quick`` one point every 20 s).

Then it starts ``ironbridge up`` on that directory and measures, in headless Chromium
(Debian chromium + Playwright), the time from navigation start until the page has drawn
its data (the ``data-ready`` mark the console sets in the frame after drawing):

* the fleet overview (``/``): counts, types chart, silent machines, ingest;
* the hero asset page over 30 days (``/assets/hero?range=30d``): 8 charts.

Baseline, same run: the raw API calls behind each page (``/api/v1/live/fleet``;
``/api/v1/telemetry/chart`` for the 8 series over 30 days), timed with httpx.

The dataset is built once into bench/.data (gitignored, ~17 min for 100 M points on
the shared 2-core machine) and reused by later runs; the asset page is opened over the
30 days that end where the stored data ends (``?end=``), so a rerun days later sees
the same data. The load average before and after the measurement is printed and saved.

Run: .venv/bin/python bench/console.py [--quick] [--points N] [--repeat R]
     [--screenshots DIR]; or against a running platform:
     .venv/bin/python bench/console.py --url http://127.0.0.1:8080 --password PW --asset truck-0001
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "e2e")]

from browser_kit import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

DATA = HERE / ".data"
RESULTS = HERE / "results" / "console.json"
PASSWORD = "bench-console-password"
S = 1_000_000
DAY = 86_400 * S
MEASUREMENTS = [
    "engine_speed",
    "engine_load",
    "coolant_temp",
    "oil_pressure",
    "fuel_rate",
    "vehicle_speed",
    "latitude",
    "longitude",
]
ASSET_TYPE = {
    "name": "bench_machine",
    "version": 1,
    "measurements": [{"name": m, "unit": "", "min": -1e9, "max": 1e9} for m in MEASUREMENTS],
}
LAYOUT = 1
#: further pages saved with ``--screenshots`` (path, file name)
MORE_SHOTS = [
    ("/map", "map"),
    ("/assets", "assets"),
    ("/asset-types", "asset-types"),
    ("/devices", "devices"),
    ("/alarms", "alarms"),
    ("/ingest", "ingest"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Platform:
    """``python -m ironbridge up`` on a data directory, on free ports."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("IRONBRIDGE_")}
        env.update(
            IRONBRIDGE_DATA_DIR=str(data_dir),
            IRONBRIDGE_HTTP_PORT=str(self.port),
            IRONBRIDGE_NATS__PORT=str(_free_port()),
            IRONBRIDGE_NATS__MQTT_PORT=str(_free_port()),
            IRONBRIDGE_NATS__MONITOR_PORT=str(_free_port()),
            IRONBRIDGE_ADMIN_PASSWORD=PASSWORD,
            IRONBRIDGE_CONFIG=str(data_dir / "absent.toml"),
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = (data_dir.parent / "platform.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ironbridge", "up"],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"platform exited; see {data_dir.parent / 'platform.log'}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("platform did not start")

    def stop(self) -> None:
        """Ctrl-C the platform and wait for it."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def login(url: str, password: str, username: str = "admin") -> str:
    """Return a session token."""
    r = httpx.post(
        url + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=60
    )
    r.raise_for_status()
    return str(r.json()["token"])


def build(points: int, assets: int, quick: bool) -> tuple[Path, dict[str, Any]]:
    """Return a data directory holding the dataset, building it unless already there."""
    hero_period_s = 20 if quick else 1
    hero_points = 8 * (30 * 86_400 // hero_period_s)
    per_series = max(1, (points - hero_points) // (assets * 8))
    spec = {
        "layout": LAYOUT,
        "assets": assets,
        "hero_period_s": hero_period_s,
        "per_series": per_series,
        "points": hero_points + per_series * assets * 8,
    }
    root = DATA / f"console-{spec['points']}"
    data = root / "data"
    meta = root / "spec.json"
    if meta.exists() and json.loads(meta.read_text()) == spec:
        return data, spec
    print(f"building {root} ({spec['points']:,} points) ...", file=sys.stderr)
    if data.exists():
        import shutil

        shutil.rmtree(data)
    platform = Platform(data)
    try:
        api = httpx.Client(
            base_url=platform.url,
            headers={"Authorization": "Bearer " + login(platform.url, PASSWORD)},
            timeout=120,
        )
        api.post("/api/v1/asset-types", json=ASSET_TYPE).raise_for_status()
        api.post(
            "/api/v1/assets",
            json={"id": "hero", "type_name": "bench_machine", "name": "Hero machine"},
        ).raise_for_status()
        for i in range(assets):
            api.post(
                "/api/v1/assets",
                json={"id": f"m-{i:05d}", "type_name": "bench_machine"},
            ).raise_for_status()
        ids = [a["id"] for a in api.get("/api/v1/assets", params={"limit": 10_000}).json()]
        api.close()
    finally:
        platform.stop()
    from ironbridge.store.duckdb import DuckDBTelemetryStore
    from ironbridge.store.sql import SqlRegistry

    registry = SqlRegistry.open(f"sqlite:///{data / 'registry.sqlite3'}")
    refs = registry.series_of(None, ids)
    registry.close()
    hero = sorted(r.id for r in refs if r.asset_id == "hero")
    others = sorted(r.id for r in refs if r.asset_id != "hero")
    end = (int(time.time()) // 60) * 60 * S
    t = time.perf_counter()
    con = duckdb.connect(str(data / "telemetry.duckdb"))
    con.execute("CREATE TEMP TABLE hero(k INT, series BIGINT)")
    con.executemany("INSERT INTO hero VALUES (?, ?)", list(enumerate(hero)))
    per_day = 86_400 // hero_period_s
    for day in range(30):
        d0 = end - (30 - day) * DAY
        con.execute(
            "INSERT INTO points SELECT h.series, make_timestamp($d0 + i * $p),"
            " 50 + 30 * sin(($d0 + i * $p) / 3.6e9 + h.k) + (hash(i + h.k) % 100) / 20.0"
            " FROM range($n) r(i), hero h",
            {"d0": d0, "p": hero_period_s * S, "n": per_day},
        )
    con.execute("CREATE TEMP TABLE others(k INT, series BIGINT)")
    con.executemany("INSERT INTO others VALUES (?, ?)", list(enumerate(others)))
    period = 90 * DAY // per_series
    n = len(others)
    chunk = max(1, 5_000_000 // n)
    for lo in range(0, per_series, chunk):
        hi = min(per_series, lo + chunk)
        # latitude/longitude (k % 8 in 6, 7) stay inside Shandong
        con.execute(
            "INSERT INTO points SELECT o.series, make_timestamp($start + j * $p + o.k * 997),"
            " CASE o.k % 8 WHEN 6 THEN 35 + (o.k // 8 % 100) / 40.0"
            " WHEN 7 THEN 115.5 + (o.k // 8 % 97) / 22.0"
            " ELSE (j % 997) / 10.0 + o.k % 24 END"
            " FROM range($lo, $hi) r(j), others o",
            {"start": end - 90 * DAY, "p": period, "lo": lo, "hi": hi},
        )
        print(f"  {hi}/{per_series} steps", file=sys.stderr)
    con.execute("CHECKPOINT")
    con.close()
    with DuckDBTelemetryStore(data / "telemetry.duckdb") as store:
        store.rebuild_latest()
        assert store.count() == spec["points"], (store.count(), spec["points"])
    meta.write_text(json.dumps(spec))
    print(f"  generated in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return data, spec


def data_end_ms(data: Path) -> int:
    """Open the store once (applying any schema migration) and return where its data ends.

    The end is the minute after the newest point, in epoch milliseconds.
    """
    from ironbridge.store.duckdb import DuckDBTelemetryStore

    with DuckDBTelemetryStore(data / "telemetry.duckdb") as store:
        del store  # opening migrates (roll-ups of a file built before they existed)
    con = duckdb.connect(str(data / "telemetry.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT epoch_us(max(ts)) FROM latest").fetchall()
    finally:
        con.close()
    newest = int(rows[0][0]) if rows and rows[0][0] is not None else int(time.time()) * S
    return (newest // (60 * S) + 1) * 60_000


def _stats(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    return {
        "median_ms": round(statistics.median(xs), 1),
        "p95_ms": round(xs[min(len(xs) - 1, int(0.95 * len(xs)))], 1),
        "min_ms": round(xs[0], 1),
    }


def measure(
    url: str,
    token: str,
    asset: str,
    repeat: int,
    shots: Path | None,
    span: str = "30d",
    end_ms: int | None = None,
) -> list[dict[str, Any]]:
    """Time each page in Chromium and its API calls with httpx."""
    from playwright.sync_api import sync_playwright

    api = httpx.Client(base_url=url, headers={"Authorization": "Bearer " + token}, timeout=120)
    kind = api.get(f"/api/v1/assets/{asset}").json()["type_name"]
    names = [
        m["name"]
        for m in api.get(f"/api/v1/asset-types/{kind}").json()["measurements"]
        if m.get("dtype", "float") != "bool"
    ]

    def api_fleet() -> None:
        api.get("/api/v1/live/fleet").raise_for_status()

    def api_chart() -> None:
        now = end_ms or int(time.time() * 1000)
        params: list[tuple[str, str | int]] = [
            ("asset", asset),
            ("start", now - 30 * 86_400_000),
            ("end", now),
            ("max_points", 1280),
        ]
        params += [("measurement", n) for n in names]
        api.get("/api/v1/telemetry/chart", params=params).raise_for_status()

    def api_time(fn: Any) -> list[float]:
        fn()  # warm
        out = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t0) * 1000)
        return out

    pages = [
        ("fleet overview", "/", "overview", api_fleet, "GET /live/fleet"),
        (
            f"asset page, {len(names)} series x 30 d",
            f"/assets/{asset}?range={span}" + (f"&end={end_ms}" if end_ms else ""),
            "asset",
            api_chart,
            f"GET /telemetry/chart ({len(names)} series, 30 d)",
        ),
    ]
    rows = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies([{"name": "ib_session", "value": token, "url": url}])
        for label, path, shot, fn, api_label in pages:
            times = []
            for i in range(repeat + 1):
                pg = context.new_page()
                pg.goto(url + path)
                pg.wait_for_selector("body[data-ready='1']", timeout=120_000)
                ready_ms = float(pg.get_attribute("body", "data-ready-ms") or "nan")
                if i:  # the first load warms caches (static files, DuckDB pages)
                    times.append(ready_ms)
                elif shots is not None:
                    shots.mkdir(parents=True, exist_ok=True)
                    pg.wait_for_timeout(500)
                    pg.screenshot(path=str(shots / f"{shot}.png"))
                pg.close()
            rows.append(
                {
                    "page": label,
                    "path": path,
                    "browser": _stats(times),
                    "api": api_label,
                    "api_only": _stats(api_time(fn)),
                }
            )
        if shots is not None:
            for path, name in MORE_SHOTS:
                pg = context.new_page()
                pg.goto(url + path)
                pg.wait_for_selector("body[data-ready='1']", timeout=120_000)
                pg.wait_for_timeout(800)  # let map tiles of GeoJSON and clusters settle
                pg.screenshot(path=str(shots / f"{name}.png"))
                pg.close()
        browser.close()
    api.close()
    return rows


def main() -> None:
    """Build or reuse the dataset, start the platform, time the pages, print a table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 M points, 200 assets")
    ap.add_argument("--points", type=int, default=None)
    ap.add_argument("--assets", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--screenshots", type=Path, default=None)
    ap.add_argument("--url", default=None, help="measure a running platform instead")
    ap.add_argument("--password", default=None)
    ap.add_argument("--asset", default="hero")
    ap.add_argument("--range", default="30d", help="time range of the asset page")
    args = ap.parse_args()
    spec: dict[str, Any] = {}
    platform = None
    end_ms = None
    if args.url:
        url, token = args.url, login(args.url, args.password)
    else:
        points = args.points or (5_000_000 if args.quick else 100_000_000)
        assets = args.assets or (200 if args.quick else 1000)
        data, spec = build(points, assets, args.quick)
        end_ms = data_end_ms(data)
        platform = Platform(data)
        url, token = platform.url, login(platform.url, PASSWORD)
    load_before = os.getloadavg()
    try:
        rows = measure(url, token, args.asset, args.repeat, args.screenshots, args.range, end_ms)
    finally:
        if platform is not None:
            platform.stop()
    load_after = os.getloadavg()
    load = f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    print(
        f"\nconsole first meaningful paint, {spec.get('points', 0):,} points stored "
        f"(median of {args.repeat}, headless Chromium, {os.cpu_count()} cores, {load})"
    )
    print(f"{'page':<34} {'paint ms':>9} {'p95':>7} | {'API call':<40} {'ms':>7} {'ratio':>6}")
    for r in rows:
        b, a = r["browser"], r["api_only"]
        ratio = b["median_ms"] / a["median_ms"] if a["median_ms"] else float("nan")
        print(
            f"{r['page']:<34} {b['median_ms']:>9.0f} {b['p95_ms']:>7.0f} | "
            f"{r['api']:<40} {a['median_ms']:>7.0f} {ratio:>6.1f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "spec": spec,
                "repeat": args.repeat,
                "load_before": load_before,
                "load_after": load_after,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
