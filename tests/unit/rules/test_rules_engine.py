"""Each rule kind through the engine, delays across a restart, and rule validation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ironbridge.model import Event, InvalidInput
from ironbridge.rules import RuleEngine, SeriesInfo, Transition, parse_rule
from ironbridge.store.points import PointBatch

S = 1_000_000
SERIES = {"temp": 1, "rpm": 2, "oil": 3, "latitude": 4, "longitude": 5}


def _engine(*defs: dict[str, Any]) -> RuleEngine:
    rules = [
        parse_rule({"asset_type": "t", **d}, tenant_id="root", tenant_path="/root/") for d in defs
    ]
    e = RuleEngine()
    e.set_rules(rules, 0)
    e.add_series([SeriesInfo(i, "a", "t", m, "/root/") for m, i in SERIES.items()], 0)
    return e


def _batch(*pts: tuple[str, float, float]) -> PointBatch:
    return PointBatch(
        np.array([SERIES[m] for m, _, _ in pts], np.int64),
        np.array([int(t * S) for _, t, _ in pts], np.int64),
        np.array([v for _, _, v in pts], np.float64),
    )


def _flips(ts: list[Transition]) -> list[tuple[float, bool]]:
    return [(t.ts_us / S, t.active) for t in ts]


def test_rules_threshold_with_deadband() -> None:
    e = _engine(
        {
            "id": "hot",
            "kind": "threshold",
            "params": {"measurement": "temp", "limit": 100, "deadband": 5},
        }
    )
    out = e.process(
        _batch(*[("temp", i, v) for i, v in enumerate([90, 101, 97, 99, 96, 94, 102])]), 0
    )
    assert _flips(out) == [(1, True), (5, False), (6, True)]


def test_rules_rate_of_change_across_batches() -> None:
    e = _engine(
        {
            "id": "roc",
            "kind": "rate_of_change",
            "params": {"measurement": "temp", "limit_per_s": 2, "direction": "fall"},
        }
    )
    assert e.process(_batch(("temp", 0, 50), ("temp", 1, 49)), 0) == []
    assert _flips(e.process(_batch(("temp", 2, 40)), 0)) == [(2, True)]
    assert _flips(e.process(_batch(("temp", 3, 39.5)), 0)) == [(3, False)]


def test_rules_expression_over_two_measurements() -> None:
    e = _engine(
        {"id": "oil", "kind": "expression", "params": {"expression": "rpm > 400 && oil < 100"}}
    )
    out = e.process(_batch(("rpm", 1, 800), ("oil", 1, 300), ("oil", 2, 80), ("rpm", 3, 0)), 0)
    assert _flips(out) == [(2, True), (3, False)]


def test_rules_geofence_outside() -> None:
    e = _engine(
        {
            "id": "geo",
            "kind": "geofence",
            "params": {"polygon": [[0, 0], [10, 0], [10, 10], [0, 10]]},
        }
    )
    out = e.process(
        _batch(("latitude", 1, 5), ("longitude", 1, 5), ("latitude", 2, 5), ("longitude", 2, 12)), 0
    )
    assert _flips(out) == [(2, True)]


def test_rules_no_data_and_recovery() -> None:
    e = _engine({"id": "off", "kind": "no_data", "params": {"timeout_s": 60}})
    e.process(_batch(("temp", 1, 1)), 10 * S)
    assert e.tick(60 * S) == []
    assert _flips(e.tick(71 * S)) == [(70, True)]
    assert _flips(e.process(_batch(("temp", 80, 1)), 80 * S)) == [(80, False)]


def test_rules_fault_code_events() -> None:
    e = _engine(
        {
            "id": "dtc",
            "kind": "fault_code",
            "params": {"spn": 100, "fmi": [1, 17], "clear_after_s": 30},
        }
    )
    ev = [
        Event(asset_id="a", ts_us=5 * S, kind="dtc", code="SPN100-FMI1"),
        Event(asset_id="a", ts_us=6 * S, kind="dtc", code="SPN110-FMI0"),
    ]
    assert _flips(e.on_events(ev, 5 * S)) == [(5, True)]
    assert e.tick(20 * S) == []
    assert _flips(e.tick(36 * S)) == [(36, False)]


def test_rules_fault_code_matches_dm1_events_and_their_clearing() -> None:
    """The DM1 decoder's ``j1939_dtc`` events open and clear a default (``dtc``) rule."""
    e = _engine({"id": "dtc", "kind": "fault_code", "params": {"spn": 100, "fmi": [1]}})
    opened = Event(
        asset_id="a",
        ts_us=5 * S,
        kind="j1939_dtc",
        code="SPN100-FMI1",
        payload={"state": "opened", "spn": 100, "fmi": 1, "oc": 1},
    )
    cleared = Event(
        asset_id="a",
        ts_us=9 * S,
        kind="j1939_dtc",
        code="SPN100-FMI1",
        payload={"state": "cleared", "spn": 100, "fmi": 1, "oc": 1},
    )
    other = Event(asset_id="a", ts_us=6 * S, kind="gbt32960_fault", code="SPN100-FMI1")
    assert _flips(e.on_events([opened], 5 * S)) == [(5, True)]
    assert e.on_events([other], 6 * S) == []
    assert _flips(e.on_events([cleared], 9 * S)) == [(9, False)]


def test_rules_on_delay_survives_restart() -> None:
    rule = {
        "id": "hot",
        "kind": "threshold",
        "on_delay_s": 30,
        "params": {"measurement": "temp", "limit": 100},
    }
    e = _engine(rule)
    assert e.process(_batch(("temp", 0, 101), ("temp", 10, 105)), 10 * S) == []
    snap = e.snapshot()
    e2 = _engine(rule)
    e2.restore(snap)
    assert e2.tick(20 * S) == []
    assert _flips(e2.tick(31 * S)) == [(30, True)]


def test_rules_on_delay_needs_condition_to_hold() -> None:
    e = _engine(
        {
            "id": "hot",
            "kind": "threshold",
            "on_delay_s": 30,
            "params": {"measurement": "temp", "limit": 100},
        }
    )
    assert e.process(_batch(("temp", 0, 101), ("temp", 20, 90), ("temp", 25, 101)), 25 * S) == []
    assert e.tick(50 * S) == []
    assert _flips(e.tick(56 * S)) == [(55, True)]


def test_rules_flood_of_one_rule_gives_one_transition_per_change() -> None:
    e = _engine({"id": "hot", "kind": "threshold", "params": {"measurement": "temp", "limit": 1}})
    out = e.process(_batch(*[("temp", i, 5.0) for i in range(10_000)]), 0)
    assert len(out) == 1


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        (
            {"id": "x", "kind": "threshold", "asset_type": "t", "params": {"measurement": "t"}},
            "params.limit",
        ),
        ({"id": "x", "kind": "nope", "asset_type": "t"}, "kind"),
        (
            {
                "id": "x",
                "kind": "expression",
                "asset_type": "t",
                "params": {"expression": "__import__('os')"},
            },
            "params.expression",
        ),
        (
            {
                "id": "x",
                "kind": "expression",
                "asset_type": "t",
                "params": {"expression": "a.b > 1"},
            },
            "params.expression",
        ),
        (
            {"id": "x", "kind": "geofence", "asset_type": "t", "params": {"polygon": [[0, 0]]}},
            "params.polygon",
        ),
        (
            {"id": "x", "kind": "threshold", "params": {"measurement": "t", "limit": 1}},
            "asset_type",
        ),
        (
            {
                "id": "x",
                "kind": "threshold",
                "asset_type": "t",
                "params": {"measurement": "t", "limit": 1, "limt": 2},
            },
            "params.limt",
        ),
        (
            {
                "id": "x",
                "kind": "threshold",
                "asset_type": "t",
                "on_delay_s": -1,
                "params": {"measurement": "t", "limit": 1},
            },
            "on_delay_s",
        ),
        *[
            (
                {
                    "id": "x",
                    "kind": "threshold",
                    "asset_type": "t",
                    "params": {"measurement": "t", "limit": 1},
                    "suppress_when": sw,
                },
                field,
            )
            for sw, field in [
                ({"parent_rule": "x"}, "suppress_when.parent_rule"),
                ({"parent_rule": 5}, "suppress_when.parent_rule"),
                ({"values": ["maintenance"]}, "suppress_when.asset_attribute"),
                ({"asset_attribute": "state", "values": []}, "suppress_when.values"),
                ({"asset_attribute": "state", "values": [{}]}, "suppress_when.values[0]"),
                ({"when": "always"}, "suppress_when.when"),
                ("always", "suppress_when"),
            ]
        ],
    ],
)
def test_rules_bad_definitions_name_the_field(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_rule(definition, tenant_id="root")
    assert err.value.field == field


def test_rules_points_of_unknown_series_are_ignored() -> None:
    e = _engine({"id": "hot", "kind": "threshold", "params": {"measurement": "temp", "limit": 1}})
    batch = PointBatch(
        np.array([-3, 1, 10**9, 99], np.int64),
        np.array([1, 2, 3, 4], np.int64) * S,
        np.array([5.0, 5.0, 5.0, 5.0]),
    )
    assert _flips(e.process(batch, 4 * S)) == [(2, True)]
    assert e.points_evaluated == 4


def test_rules_default_rules_parse_and_their_parents_exist() -> None:
    from ironbridge.rules import default_rules

    rules = [parse_rule(d, tenant_id="root", tenant_path="/root/") for d in default_rules()]
    ids = {r.id for r in rules}
    parents = {r.suppress_when["parent_rule"] for r in rules if "parent_rule" in r.suppress_when}
    assert parents
    assert parents <= ids


def test_rules_snapshot_keeps_only_read_slots_and_restores() -> None:
    rule = {"id": "oil", "kind": "expression", "params": {"expression": "rpm > 500 && oil < 1"}}
    e = _engine(rule)
    e.process(_batch(("rpm", 0, 900.0)), 0)
    snap = e.snapshot()
    assert snap["last_vals"] == [[900.0, None]]
    e2 = _engine(rule)
    e2.restore(json.loads(json.dumps(snap)))
    assert _flips(e2.process(_batch(("oil", 1, 0.5)), S)) == [(1, True)]
