"""``ironbridge admin migrate --to postgresql://…`` moves an embedded installation intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from cluster_testkit import SENSOR_TYPE
from typer.testing import CliRunner

from ironbridge.cli import app
from ironbridge.model import Asset, Device, Event, Role, parse_asset_type
from ironbridge.store import Agg, Checkpoint, PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore
from ironbridge.store.postgres import PostgresTelemetryStore
from ironbridge.store.sql import SqlRegistry, ensure_root

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

S = 1_000_000
T0 = 1_699_920_000 * S


def test_migrate_embedded_to_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    reg = SqlRegistry.open(f"sqlite:///{data / 'registry.sqlite3'}")
    ensure_root(reg)
    reg.put_asset_type(None, "root", parse_asset_type(yaml.safe_load(SENSOR_TYPE)))
    reg.create_asset(None, Asset(id="a1", tenant_id="root", type_name="test_sensor", name="a1"))
    reg.create_device(None, Device(id="d1", tenant_id="root", asset_ids=("a1",)))
    reg.create_user(None, "root", "ops", "correct horse battery", Role.ADMIN)
    (sid,) = [r.id for r in reg.series_of(None, ["a1"])]
    reg.close()
    n = 50_000
    ts = T0 + np.arange(n, dtype=np.int64) * S
    values = np.sin(np.arange(n) / 50.0)
    with DuckDBTelemetryStore(data / "telemetry.duckdb") as duck:
        duck.append(
            PointBatch(np.full(n, sid, np.int64), ts, values),
            [Event(asset_id="a1", ts_us=T0, kind="fault", code="F1", payload={"spn": 110})],
            Checkpoint(consumer="ingest", seq=1234),
        )
        want_agg = duck.aggregate([sid], T0, T0 + n * S, 3_600 * S, [Agg.AVG, Agg.COUNT])

    monkeypatch.setenv("IRONBRIDGE_CONFIG", str(tmp_path / "absent.toml"))
    result = CliRunner().invoke(app, ["admin", "migrate", "--to", pg_url, "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"{n} points, 1 events, 1 checkpoints; counts verified" in said

    with PostgresTelemetryStore(pg_url) as pg:
        assert pg.count() == n
        assert pg.checkpoint("ingest") == 1234
        assert pg.raw([sid], T0, T0 + n * S).column("value").to_numpy().tolist() == values.tolist()
        got = pg.aggregate([sid], T0, T0 + n * S, 3_600 * S, [Agg.AVG, Agg.COUNT])
        assert got.column("count").to_pylist() == want_agg.column("count").to_pylist()
        assert np.allclose(got.column("avg").to_numpy(), want_agg.column("avg").to_numpy())
        assert pg.events(["a1"], T0, T0 + S).column("code").to_pylist() == ["F1"]
    pg_reg = SqlRegistry.open(pg_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert pg_reg.authenticate_user("ops", "correct horse battery").username == "ops"
        assert pg_reg.device_route("d1").series["a1"]["temperature"] == sid
        # sequences moved past the copied ids: new rows get fresh ones
        pg_reg.create_asset(
            None, Asset(id="a2", tenant_id="root", type_name="test_sensor", name="a2")
        )
        assert pg_reg.series_of(None, ["a2"])[0].id > sid
    finally:
        pg_reg.close()
    # a second run refuses to merge into a non-empty target
    again = CliRunner().invoke(app, ["admin", "migrate", "--to", pg_url, "--data-dir", str(data)])
    assert again.exit_code == 1
    assert "not empty" in " ".join(again.output.split())
