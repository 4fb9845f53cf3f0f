"""``ironbridge predict ...``: train, list, deploy, roll back and read scores through the API.

The commands talk to a running platform's REST API (the DuckDB store belongs to that one
process while it runs), as any user with the operator role.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

console = Console()
predict_app = typer.Typer(help="Predictive maintenance: train, deploy, roll back, read scores.")

Api = Annotated[str, typer.Option(envvar="IRONBRIDGE_API", help="Platform API URL.")]
Username = Annotated[str, typer.Option(envvar="IRONBRIDGE_USERNAME", help="Operator user.")]
Password = Annotated[str, typer.Option(envvar="IRONBRIDGE_PASSWORD", prompt=True, hide_input=True)]
AssetType = Annotated[str, typer.Option("--asset-type", help="Asset type name.")]


@contextlib.contextmanager
def _client(api: str, username: str, password: str) -> Iterator[httpx.Client]:
    # Opened once, then logged in: httpx refuses to enter a client that already sent.
    with httpx.Client(base_url=api, timeout=60.0) as client:
        r = client.post("/api/v1/auth/login", json={"username": username, "password": password})
        if r.status_code != 200:
            console.print(f"[red]login to {api} failed:[/] {r.status_code} {r.text}")
            raise typer.Exit(1)
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        yield client


def _ok(r: httpx.Response) -> Any:
    if r.status_code >= 400:
        try:
            body = r.json()
            where = f" ({body['field']})" if body.get("field") else ""
            console.print(f"[red]{r.status_code}{where}:[/] {body.get('error', r.text)}")
        except ValueError:
            console.print(f"[red]{r.status_code}:[/] {r.text}")
        raise typer.Exit(1)
    return r.json()


def parse_running(text: str) -> list[dict[str, Any]]:
    """Parse ``--running``: ``measurement:threshold`` conditions, comma-separated.

    Returns the API body's ``running`` (a list of ``{"measurement", "above"}``).

    Raises:
        typer.BadParameter: a condition without ``:``, a name missing or a threshold
            that is not a finite number.
    """
    out: list[dict[str, Any]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.rpartition(":")
        name = name.strip()
        if not sep or not name:
            raise typer.BadParameter(f"{part!r}: expected measurement:threshold")
        try:
            above = float(value)
        except ValueError:
            raise typer.BadParameter(f"{part!r}: the threshold is not a number") from None
        if not math.isfinite(above):
            raise typer.BadParameter(f"{part!r}: the threshold must be finite")
        out.append({"measurement": name, "above": above})
    return out


def _left_out(version: dict[str, Any]) -> str:
    """The assets left out of the anomaly training, as shown next to the asset count."""
    excluded = (version.get("anomaly_trim") or {}).get("excluded") or []
    if not excluded:
        return ""
    return f" ({len(excluded)} left out: {', '.join(e['asset'] for e in excluded)})"


def _versions_table(asset_type: str, active: int | None, versions: list[dict[str, Any]]) -> Table:
    table = Table(title=f"{asset_type} models (deployed: {active or '-'})")
    for col in ("version", "created", "assets", "rows", "failures", "RUL", "metrics"):
        table.add_column(col)
    for v in versions:
        m = v["metrics"]
        shown = {k: round(x, 3) for k, x in m.items() if k not in ("assets", "rows", "failures")}
        table.add_row(
            f"{'* ' if v['version'] == active else ''}v{v['version']}",
            v["created_at"][:19],
            str(int(m.get("assets", 0))) + _left_out(v),
            str(int(m.get("rows", 0))),
            str(int(m.get("failures", 0))),
            "yes" if v["has_rul"] else "no",
            json.dumps(shown),
        )
    return table


@predict_app.command("train")
def train(
    asset_type: AssetType,
    password: Password = "",
    api: Api = "http://127.0.0.1:8080",
    username: Username = "admin",
    measurements: Annotated[str, typer.Option(help="Sensors, comma-separated.")] = "",
    settings: Annotated[str, typer.Option(help="Operating-condition measurements.")] = "",
    start: Annotated[str, typer.Option(help="ISO 8601, epoch ms or now-30d.")] = "now-30d",
    end: Annotated[str, typer.Option(help="ISO 8601, epoch ms or now.")] = "now",
    bucket_s: Annotated[int, typer.Option(help="Row width in seconds.")] = 60,
    rul_cap_h: Annotated[float, typer.Option(help="RUL target cap, hours.")] = 24.0,
    failures: Annotated[
        Path | None, typer.Option(help="JSON file: asset id -> list of failure times.")
    ] = None,
    rounds: Annotated[int, typer.Option(help="Boosting rounds per RUL booster.")] = 300,
    deploy: Annotated[bool, typer.Option(help="Deploy the new version when trained.")] = False,
    running: Annotated[
        str,
        typer.Option(
            help="Learn from and score only buckets where every condition holds: "
            "measurement:threshold (mean above it), comma-separated, e.g. "
            "engine_speed:700,coolant_temp:80.",
        ),
    ] = "",
) -> None:
    """Train a new version from the stored history and show its validation metrics."""
    gate = parse_running(running)
    body: dict[str, Any] = {
        "asset_type": asset_type,
        "measurements": [m.strip() for m in measurements.split(",") if m.strip()],
        "settings": [m.strip() for m in settings.split(",") if m.strip()],
        "start": start,
        "end": end,
        "bucket_s": bucket_s,
        "rul_cap_h": rul_cap_h,
        "rounds": rounds,
        "deploy": deploy,
        "failures": json.loads(failures.read_text()) if failures else {},
        "running": gate,
    }
    with _client(api, username, password) as client:
        job = _ok(client.post("/api/v1/predict/train", json=body))
        with console.status("training ...") as status:
            while job["state"] in ("queued", "running"):
                status.update(f"training: {job['stage']} ({job['progress']:.0%})")
                time.sleep(0.5)
                job = _ok(client.get(f"/api/v1/predict/jobs/{job['id']}"))
        if job["state"] != "succeeded":
            console.print(f"[red]training failed:[/] {job['error']}")
            raise typer.Exit(1)
        v = job["version"]
        models = _ok(client.get(f"/api/v1/predict/models/{asset_type}"))
        console.print(_versions_table(asset_type, models["active"], [v]))


@predict_app.command("list")
def list_versions(
    password: Password = "",
    api: Api = "http://127.0.0.1:8080",
    username: Username = "admin",
    asset_type: Annotated[str, typer.Option("--asset-type", help="Only this type.")] = "",
) -> None:
    """Model versions with their metrics, per asset type."""
    with _client(api, username, password) as client:
        if asset_type:
            listing = [_ok(client.get(f"/api/v1/predict/models/{asset_type}"))]
        else:
            listing = _ok(client.get("/api/v1/predict/models"))
    for m in listing:
        console.print(_versions_table(m["asset_type"], m["active"], m["versions"]))


@predict_app.command("deploy")
def deploy_version(
    asset_type: AssetType,
    version: Annotated[int, typer.Option(help="Version to deploy.", min=1)],
    password: Password = "",
    api: Api = "http://127.0.0.1:8080",
    username: Username = "admin",
) -> None:
    """Deploy a version: the scorer uses it from its next pass."""
    with _client(api, username, password) as client:
        v = _ok(
            client.post(f"/api/v1/predict/models/{asset_type}/deploy", json={"version": version})
        )
    console.print(f"{asset_type}: v{v['version']} deployed")


@predict_app.command("rollback")
def rollback(
    asset_type: AssetType,
    password: Password = "",
    api: Api = "http://127.0.0.1:8080",
    username: Username = "admin",
) -> None:
    """Re-deploy the version deployed before the current one."""
    with _client(api, username, password) as client:
        v = _ok(client.post(f"/api/v1/predict/models/{asset_type}/rollback"))
    console.print(f"{asset_type}: rolled back to v{v['version']}")


@predict_app.command("scores")
def scores(
    password: Password = "",
    api: Api = "http://127.0.0.1:8080",
    username: Username = "admin",
    asset_type: Annotated[str, typer.Option("--asset-type", help="Only this type.")] = "",
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The worst machines first: health, anomaly score, RUL and its interval."""
    params: dict[str, Any] = {"limit": limit}
    if asset_type:
        params["asset_type"] = asset_type
    with _client(api, username, password) as client:
        rows = _ok(client.get("/api/v1/predict/scores", params=params))
    table = Table(title="worst machines first")
    for col in ("asset", "type", "health", "anomaly", "RUL h (90 % interval)"):
        table.add_column(col)

    def fmt(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    for r in rows:
        rul = "-" if r["rul"] is None else f"{r['rul']:.1f} ({fmt(r['rul_lo'])}-{fmt(r['rul_hi'])})"
        table.add_row(
            r["asset_id"], r["asset_type"], fmt(r["health_index"]), fmt(r["anomaly_score"]), rul
        )
    console.print(table)
