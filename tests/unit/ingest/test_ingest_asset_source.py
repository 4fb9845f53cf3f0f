"""Readings the platform computes for an asset (``ib.v1._asset-<id>.telemetry``), device or not.

Real SQLite registry and DuckDB store; the bus is faked at its I/O seam as in
test_ingest_worker.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from ironbridge.ingest import IngestWorker, RouteCache, asset_source, platform_routes
from ironbridge.model import Asset, InvalidInput, NotFound, check_id, parse_asset_type
from ironbridge.store.duckdb import DuckDBTelemetryStore
from ironbridge.store.sql import SqlRegistry, ensure_root

T0_MS = 1_795_000_000_000
NOW_US = (T0_MS + 60_000) * 1000

PUMP = parse_asset_type(
    {
        "name": "pump",
        "measurements": [
            {"name": "flow", "min": 0, "max": 100},
            {"name": "health_index", "min": 0, "max": 100},
        ],
    }
)


@dataclass
class Msg:
    subject: str
    data: bytes
    stream_seq: int
    headers: Mapping[str, str] | None = None
    timestamp_us: int = NOW_US


@dataclass
class FakeBus:
    """Records publishes and acks (dead letters and normalised batches)."""

    published: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.published.append((subject, payload, dict(headers or {})))
        return len(self.published)

    async def fetch(self, batch: int, timeout: float) -> Sequence[Msg]:
        return []

    async def ack_all(self, messages: Sequence[Msg]) -> None:
        self.acked.extend(m.stream_seq for m in messages)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[SqlRegistry, DuckDBTelemetryStore]]:
    registry = SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}")
    ensure_root(registry)
    registry.put_asset_type(None, "root", PUMP)
    # No device is bound to this asset.
    registry.create_asset(None, Asset(id="pump-1", tenant_id="root", type_name="pump", name="p"))
    store = DuckDBTelemetryStore(tmp_path / "t.duckdb")
    yield registry, store
    store.close()
    registry.close()


def test_no_device_can_take_the_asset_source_token() -> None:
    with pytest.raises(InvalidInput):
        check_id(asset_source("pump-1"), "device_id")


def test_asset_source_routes_only_computed_measurements(
    env: tuple[SqlRegistry, DuckDBTelemetryStore],
) -> None:
    registry, _ = env
    lookup = platform_routes(registry, computed=("health_index",))
    route = lookup(asset_source("pump-1"))
    assert route.asset_ids == ("pump-1",)
    assert route.tenant_id == "root"
    assert set(route.series["pump-1"]) == {"health_index"}
    assert set(platform_routes(registry)(asset_source("pump-1")).series["pump-1"]) == {
        "flow",
        "health_index",
    }
    with pytest.raises(NotFound):
        lookup(asset_source("nope"))
    with pytest.raises(NotFound):
        lookup("dev-unknown")  # device ids still go to the device registry


async def test_worker_stores_computed_readings_of_an_unbound_asset(
    env: tuple[SqlRegistry, DuckDBTelemetryStore],
) -> None:
    registry, store = env
    bus = FakeBus()
    worker = IngestWorker(
        source=bus,
        publisher=bus,
        store=store,
        routes=RouteCache(platform_routes(registry, computed=("health_index",))),
        clock=lambda: NOW_US,
    )
    subject = f"ib.v1.{asset_source('pump-1')}.telemetry"
    ok = orjson.dumps(
        {"asset": "pump-1", "ts": [T0_MS, T0_MS + 1000], "values": {"health_index": [90.0, 80.5]}}
    )
    sensor = orjson.dumps({"asset": "pump-1", "ts": T0_MS, "values": {"flow": 5.0}})
    await worker.process(
        [
            Msg(subject=subject, data=ok, stream_seq=1),
            Msg(subject=subject, data=sensor, stream_seq=2),
        ]
    )
    [sid] = [s.id for s in registry.series_of(None, ["pump-1"]) if s.measurement == "health_index"]
    got = store.raw([sid], 0, NOW_US)
    assert got.column("value").to_pylist() == [90.0, 80.5]
    assert store.count() == 2
    # A sensor reading on the platform's source is refused like an unknown measurement.
    [dead] = [p for p in bus.published if p[0].startswith("ib.dead.")]
    assert dead[2]["Ib-Field"] == "values.flow"
    assert bus.acked == [1, 2]
