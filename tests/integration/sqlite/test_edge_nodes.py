"""Edge node registry on a migrated SQLite registry: approval policy, tenant scoping,
agent status, configuration versions and rollback, state surviving a reload."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from ironbridge.connect.edge_nodes import EdgeNodes
from ironbridge.model import Conflict, InvalidInput, NotFound
from ironbridge.store.sql.engine import migrate

pytestmark = pytest.mark.integration

TENANTS = {"gw-a": ("acme", "/root/acme/"), "gw-b": ("bolt", "/root/bolt/")}


@dataclass(frozen=True)
class Who:
    tenant_path: str


@pytest.fixture
def engine(tmp_path: Path) -> sa.Engine:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    migrate(url)
    return sa.create_engine(url)


def _nodes(engine: sa.Engine, policy: str = "approve") -> EdgeNodes:
    clock = iter(range(1000, 10**6, 10))
    return EdgeNodes(engine, policy=policy, tenant_of=TENANTS.get, clock_ms=lambda: next(clock))  # type: ignore[arg-type]


def test_approve_policy_holds_new_nodes_pending(engine: sa.Engine) -> None:
    nodes = _nodes(engine)
    assert nodes.born("plant", "unknown") is None  # no such device: not recorded
    node = nodes.born("plant", "gw-a")
    assert node is not None
    assert node.state == "pending"
    assert node.online
    assert not nodes.accepts("plant", "gw-a", points=5)
    assert not nodes.accepts("plant", "gw-a", points=2)
    assert nodes.get(None, "gw-a").dropped_points == 7
    nodes.device_born("plant", "gw-a", "press-1")
    assert [n.node_id for n in nodes.all(Who("/root/"), "pending")] == ["gw-a"]
    assert nodes.all(Who("/root/bolt/")) == []
    with pytest.raises(NotFound):
        nodes.decide(Who("/root/bolt/"), "gw-a", "approved", by="eve")
    done = nodes.decide(Who("/root/acme/"), "gw-a", "approved", by="op", assets={"press-1": "p1"})
    assert done.state == "approved"
    assert done.approved_by == "op"
    assert nodes.accepts("plant", "gw-a")
    assert nodes.asset_for("gw-a", "press-1") == "p1"
    assert nodes.asset_for("gw-a", "other") == "other"
    nodes.died("plant", "gw-a")
    assert not nodes.get(None, "gw-a").online
    again = _nodes(engine)  # approval and mapping survive a platform restart
    assert again.get(None, "gw-a").state == "approved"
    assert again.asset_for("gw-a", "press-1") == "p1"
    again.decide(None, "gw-a", "rejected", by="op")
    assert not again.accepts("plant", "gw-a")


def test_auto_policy_approves_on_first_birth(engine: sa.Engine) -> None:
    nodes = _nodes(engine, "auto")
    node = nodes.born("g", "gw-b")
    assert node is not None
    assert node.state == "approved"
    assert node.approved_by == "auto"
    assert nodes.accepts("g", "gw-b", 3)


def test_configuration_versions_and_rollback(engine: sa.Engine) -> None:
    nodes = _nodes(engine, "auto")
    nodes.born("g", "gw-a")
    assert nodes.desired("gw-a") is None
    v1 = nodes.add_version(None, "gw-a", '{"batch_points": 10}', comment="first", by="op")
    v2 = nodes.add_version(Who("/root/"), "gw-a", '{"batch_points": 20}', comment="", by="op")
    assert (v1.version, v2.version) == (1, 2)
    assert nodes.desired("gw-a") == v2
    with pytest.raises(InvalidInput):
        nodes.add_version(None, "gw-a", "[1]", comment="", by="op")
    with pytest.raises(NotFound):
        nodes.add_version(Who("/root/bolt/"), "gw-a", "{}", comment="", by="op")
    nodes.report("gw-a", {"config_version": 2, "health": "ok"})
    view = nodes.get(None, "gw-a").public()
    assert view["kind"] == "agent"
    assert view["in_sync"]
    assert view["reported_version"] == 2
    assert nodes.roll_back(None, "gw-a", 1) == v1
    assert nodes.get(None, "gw-a").public()["in_sync"] is False
    with pytest.raises(Conflict):
        nodes.roll_back(None, "gw-a", 1)
    with pytest.raises(NotFound):
        nodes.roll_back(None, "gw-a", 9)
    assert [v.version for v in nodes.versions(None, "gw-a")] == [2, 1]
    assert _nodes(engine).desired("gw-a") == v1  # survives a restart
