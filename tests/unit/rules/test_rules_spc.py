"""SPC rules: Nelson violations on a stored control chart raise one ISA-18.2 alarm each.

Real DuckDB telemetry store and SQLite alarm store; the registry is a stand-in that only
answers which series holds (asset, measurement).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from ironbridge.analytics.spc import fit_i_mr
from ironbridge.model import InvalidInput, NotFound, SeriesRef
from ironbridge.rules import AlarmState, AlarmStore, RulesWorker, SpcWatcher, parse_rule
from ironbridge.rules.spc import spc_condition
from ironbridge.rules.tables import metadata
from ironbridge.store import PointBatch
from ironbridge.store.duckdb import DuckDBTelemetryStore

S = 1_000_000
T0 = 1_767_571_200 * S
MS = 1000
SID = 7


class _Series:
    """Which series holds (asset, measurement); the rest of the registry is not used."""

    def series_of(self, who: object, asset_ids: Sequence[str]) -> list[SeriesRef]:
        return [SeriesRef(id=SID, asset_id="inspect-01", measurement="panel_gap")]

    def series_by_id(self, who: object, ids: Sequence[int]) -> list[SeriesRef]:
        return []

    def device_route(self, device_id: str) -> Any:
        raise NotFound("device", device_id)


class _NoMessages:
    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        return []

    async def ack_all(self, messages: Sequence[Any]) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def _rule(**params: Any) -> dict[str, Any]:
    return {
        "id": "gap-spc",
        "name": "Door gap",
        "kind": "spc",
        "asset_id": "inspect-01",
        "severity": "minor",
        "params": {
            "measurement": "panel_gap",
            "chart": "i-mr",
            "reference_start": T0 // MS,
            "reference_end": (T0 + 100 * S) // MS,
            "rules": [1, 2],
            **params,
        },
    }


def test_parse_spc_rule_checks_fields() -> None:
    rule = parse_rule(_rule(reference_start="2026-01-05T00:00:00"), tenant_id="root")
    assert rule.params["reference_start"] == T0 // MS
    assert rule.params["subgroup"] == 5
    assert rule.params["window"] == 200
    assert rule.inputs == ("panel_gap",)
    for bad, field in [
        ({"chart": "p"}, "params.chart"),
        ({"rules": [9]}, "params.rules"),
        ({"subgroup": 30}, "params.subgroup"),
        ({"reference_end": T0 // MS - 1}, "params.reference_end"),
        ({"reference_start": "yesterday"}, "params.reference_start"),
    ]:
        with pytest.raises(InvalidInput) as err:
            parse_rule(_rule(**bad), tenant_id="root")
        assert err.value.field == field
    doc = _rule()
    del doc["asset_id"]
    doc["asset_type"] = "plant_station"
    with pytest.raises(InvalidInput) as err:
        parse_rule(doc, tenant_id="root")
    assert err.value.field == "asset_id"


def test_condition_looks_only_at_new_points() -> None:
    rng = np.random.default_rng(1)
    limits = fit_i_mr(4 + 0.05 * rng.standard_normal(100))
    values = 4 + 0.02 * rng.standard_normal(30)
    values[20] = 5.0  # rule 1
    stamps = np.arange(30, dtype=np.int64) * S
    chart = limits.chart(values)
    hit = spc_condition(chart, stamps, since_us=10 * S, enabled=[1, 2])
    assert hit is not None
    assert hit.active
    assert hit.rules == (1,)
    assert (hit.index, hit.ts_us, hit.value) == (20, 20 * S, 5.0)
    calm = spc_condition(chart, stamps, since_us=21 * S, enabled=[1, 2])
    assert calm is not None
    assert not calm.active
    assert calm.ts_us == 29 * S
    assert spc_condition(chart, stamps, since_us=29 * S, enabled=[1]) is None
    only_two = spc_condition(chart, stamps, since_us=0, enabled=[2])  # rule 1 not enabled
    assert only_two is not None
    assert not only_two.active


@pytest.fixture
def telemetry(tmp_path: Path) -> Iterator[DuckDBTelemetryStore]:
    store = DuckDBTelemetryStore(tmp_path / "t.duckdb", threads=1)
    yield store
    store.close()


def _write(store: DuckDBTelemetryStore, start_s: float, values: Sequence[float]) -> None:
    ts = T0 + ((start_s + np.arange(len(values))) * S).astype(np.int64)
    store.append(PointBatch(np.full(len(values), SID, np.int64), ts, np.asarray(values, float)))


def test_violations_raise_update_and_clear_one_alarm(
    telemetry: DuckDBTelemetryStore, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    _write(telemetry, 0, 4 + 0.05 * rng.standard_normal(100))  # reference period
    _write(telemetry, 100, 4 + 0.05 * rng.standard_normal(20))  # in control
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    metadata.create_all(engine)
    alarms = AlarmStore(engine)
    rule = parse_rule(_rule(), tenant_id="root", tenant_path="/root/")
    alarms.put_rule(None, rule, create=True)
    clock = Clock()
    clock.now = T0 + 120 * S
    registry: Any = _Series()
    watcher = SpcWatcher(telemetry, registry, clock=clock)
    worker = RulesWorker(source=_NoMessages(), store=alarms, registry=registry, spc=watcher)
    worker._asset = lambda a: ("root", "/root/", "plant_station")  # type: ignore[method-assign]

    async def run() -> None:
        await worker.start()
        assert await worker.check_spc(force=True) == []  # in control: nothing raised
        _write(telemetry, 120, [4.6])  # beyond 3σ
        clock.now = T0 + 121 * S
        changed = await worker.check_spc(force=True)
        assert len(changed) == 1
        alarm = changed[0][0]
        assert alarm.state is AlarmState.UNACKNOWLEDGED
        assert alarm.rule_id == "gap-spc"
        assert alarm.value == pytest.approx(4.6)
        assert "rule 1" in alarm.message
        assert "I-MR panel_gap" in alarm.message
        _write(telemetry, 121, [4.7] + [4.2] * 9)  # again beyond, then nine high: rule 2
        clock.now = T0 + 131 * S
        await worker.check_spc(force=True)
        (again,) = alarms.list_alarms(None)
        assert again.id == alarm.id
        assert again.active
        assert "rule 2" in again.message
        assert again.value == pytest.approx(4.2)
        _write(telemetry, 131, 4 + 0.01 * rng.standard_normal(3))  # back in control
        clock.now = T0 + 134 * S
        await worker.check_spc(force=True)
        (cleared,) = alarms.list_alarms(None)
        assert cleared.id == alarm.id
        assert not cleared.active
        assert cleared.state is AlarmState.RTN_UNACKNOWLEDGED

    asyncio.run(run())


def test_a_chart_that_cannot_be_drawn_raises_nothing(telemetry: DuckDBTelemetryStore) -> None:
    _write(telemetry, 0, [4.0])  # one reference sample: no limits
    registry: Any = _Series()
    watcher = SpcWatcher(telemetry, registry, clock=lambda: T0 + 10 * S)
    rule = parse_rule(_rule(), tenant_id="root", tenant_path="/root/")
    assert watcher.evaluate([rule]) == []
