"""Edge agent configuration, local rules, and the host's subject/telemetry helpers."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from ironbridge.codec.sparkplug import ResolvedMetric
from ironbridge.connect.sparkplug_host import (
    metrics_to_telemetry,
    subject_to_topic,
    topic_to_subject,
)
from ironbridge.edge.config import RuleConfig, load_config
from ironbridge.edge.rules import LocalRules
from ironbridge.model import InvalidInput


def test_load_config(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(
        'node_id = "gw-1"\n[uplink]\nusername = "gw-1"\npassword = "s3cret"\n'
        '[[sources]]\nkind = "candump"\npath = "t.log"\n'
        '[[rules]]\nname = "hot"\nmetric = "t"\nop = ">"\nthreshold = 90\n'
    )
    cfg = load_config(path)
    assert cfg.node_id == "gw-1"
    assert cfg.sources[0].kind == "candump"
    assert "s3cret" not in repr(cfg)
    path.write_text('node_id = "gw-1"\n[uplink]\nusername = "u"\npassword = "p"\nbogus = 1\n')
    with pytest.raises(InvalidInput) as err:
        load_config(path)
    assert err.value.field == "uplink.bogus"


def test_local_rule_raises_once_and_clears() -> None:
    rules = LocalRules([RuleConfig(name="hot", metric="t", op=">", threshold=90)])
    assert rules.evaluate("t", 1, 80.0) == []
    raised = rules.evaluate("t", 2, 95.0)
    assert [json.loads(e.body)["state"] for e in raised] == ["raised"]
    assert rules.evaluate("t", 3, 99.0) == []  # still active: no repeat
    assert rules.evaluate("other", 4, 1000.0) == []
    cleared = rules.evaluate("t", 5, 10.0)
    assert [json.loads(e.body)["code"] for e in cleared] == ["hot"]
    assert rules.evaluate("t", 6, None) == []


def test_subject_mapping_and_telemetry() -> None:
    assert subject_to_topic("spBv1//0.g.DDATA.n.d") == "spBv1.0/g/DDATA/n/d"
    assert topic_to_subject("spBv1.0/g/NCMD/n") == "spBv1//0.g.NCMD.n"
    metrics = (
        ResolvedMetric(device=None, name="t", timestamp=2, datatype=10, value=1.5),
        ResolvedMetric(device=None, name="t", timestamp=1, datatype=10, value=1.0),
        ResolvedMetric(device=None, name="Properties/x", timestamp=1, datatype=10, value=3.0),
        ResolvedMetric(device="d1", name="ok", timestamp=1, datatype=11, value=True),
        ResolvedMetric(device="d1", name="label", timestamp=1, datatype=12, value="x"),
    )
    bodies = [orjson.loads(b) for b in metrics_to_telemetry(metrics)]
    assert bodies == [
        {"ts": [1, 2], "values": {"t": [1.0, 1.5]}},
        {"ts": [1], "values": {"ok": [True]}, "asset": "d1"},
    ]
