"""Tenants, asset types, assets, series and device routes in the SQL registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sql_registry_support import SITE, TRUCK, Tree, principal

from ironbridge.model import (
    Asset,
    Conflict,
    Device,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Role,
    parse_asset_type,
)
from ironbridge.store.sql import SqlRegistry, migrate
from ironbridge.store.sql.engine import alembic_config

pytestmark = pytest.mark.integration


def truck(asset_id: str, tenant_id: str, **kw: Any) -> Asset:
    attributes = kw.pop("attributes", {"vin": f"VIN-{asset_id}"})
    return Asset(
        id=asset_id,
        tenant_id=tenant_id,
        type_name="truck",
        name=kw.pop("name", asset_id),
        attributes=attributes,
        **kw,
    )


# -- schema --------------------------------------------------------------------------
def test_migrations_reach_head_on_an_empty_database(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # a second run is a no-op
    engine = sa.create_engine(db_url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = {
                row[0] for row in conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            }
    finally:
        engine.dispose()
    assert {
        "tenants",
        "asset_types",
        "assets",
        "devices",
        "device_assets",
        "series",
        "users",
        "api_keys",
    } <= tables
    # every package's migration branch is at its head (one row per branch)
    script = ScriptDirectory.from_config(alembic_config())
    heads = set(script.get_heads())
    assert versions == heads
    # every branch grows from the core schema
    assert all("0001" in {r.revision for r in script.iterate_revisions(h, "base")} for h in heads)


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    registry = SqlRegistry.open(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    try:
        with registry.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        registry.close()


# -- tenants -------------------------------------------------------------------------
def test_tenant_tree_paths_and_visibility(registry: SqlRegistry, tree: Tree) -> None:
    assert tree.acme_sub.path == "/root/acme/acme_sub/"
    assert registry.get_tenant(None, "acme_sub") == tree.acme_sub
    assert [t.id for t in registry.list_tenants(tree.acme_admin)] == ["acme", "acme_sub"]
    assert len(registry.list_tenants(tree.system_admin)) == 4
    assert registry.get_tenant(tree.acme_admin, "acme_sub").parent_id == "acme"
    with pytest.raises(NotFound):
        registry.get_tenant(tree.acme_admin, "root")  # a child never sees its parent
    with pytest.raises(NotFound):
        registry.get_tenant(tree.acme_admin, "other")


def test_tenant_writes_need_admin_and_valid_input(registry: SqlRegistry, tree: Tree) -> None:
    made = registry.create_tenant(tree.acme_admin, "dealer-1", "Dealer", "acme_sub")
    assert made.path == "/root/acme/acme_sub/dealer-1/"
    with pytest.raises(PermissionDenied):
        registry.create_tenant(tree.acme_operator, "x", "X", "acme")
    with pytest.raises(PermissionDenied):
        registry.create_tenant(tree.acme_admin, "newroot", "X", None)
    with pytest.raises(Conflict):
        registry.create_tenant(None, "acme", "again", "root")
    with pytest.raises(InvalidInput) as bad:
        registry.create_tenant(tree.acme_admin, "x", "X", "other")  # invisible parent
    assert bad.value.field == "parent_id"
    with pytest.raises(InvalidInput) as bad:
        registry.create_tenant(None, "a.b", "X", "root")
    assert bad.value.field == "tenant_id"
    with pytest.raises(InvalidInput) as bad:
        registry.create_tenant(None, "ok", "  ", "root")
    assert bad.value.field == "name"


def test_underscore_in_a_tenant_id_is_not_a_wildcard(registry: SqlRegistry, tree: Tree) -> None:
    a_b = registry.create_tenant(None, "a_b", "A B", "root")
    axb = registry.create_tenant(None, "aXb", "A X B", "root")
    registry.create_asset(None, truck("t-axb", axb.id))
    registry.create_asset(None, truck("t-a_b", a_b.id))
    who = principal(a_b)
    assert [a.id for a in registry.list_assets(who)] == ["t-a_b"]
    with pytest.raises(NotFound):
        registry.get_asset(who, "t-axb")


# -- asset types ---------------------------------------------------------------------
def test_asset_type_versions_and_visibility(registry: SqlRegistry, tree: Tree) -> None:
    cab = parse_asset_type({"name": "cab", "measurements": [{"name": "temp"}]})
    registry.put_asset_type(tree.acme_operator, "acme", cab)
    # defined in acme: visible to acme, its subsidiary (ancestor's type) and root
    # (descendant's type); never to the sibling
    for who in (tree.acme_viewer, tree.sub_operator, tree.system_admin):
        assert registry.get_asset_type(who, "cab") == cab
    with pytest.raises(NotFound):
        registry.get_asset_type(tree.other_operator, "cab")
    assert [
        n for _, n in [(t, a.name) for t, a in registry.list_asset_types(tree.sub_operator)]
    ] == [
        "cab",
        "truck",
    ]
    assert [t.name for _, t in registry.list_asset_types(tree.other_operator)] == ["truck"]

    v2 = parse_asset_type({"name": "cab", "version": 2, "measurements": [{"name": "humidity"}]})
    registry.put_asset_type(tree.acme_operator, "acme", v2)
    assert registry.get_asset_type(tree.acme_viewer, "cab").version == 2
    assert dict(registry.list_asset_types(tree.acme_viewer))["acme"].version == 2
    with pytest.raises(Conflict, match="greater"):
        registry.put_asset_type(tree.acme_operator, "acme", v2)
    with pytest.raises(Conflict, match="another tenant"):
        registry.put_asset_type(tree.other_operator, "other", cab)
    with pytest.raises(PermissionDenied):
        registry.put_asset_type(tree.acme_viewer, "acme", v2)
    with pytest.raises(InvalidInput) as bad:
        registry.put_asset_type(tree.acme_operator, "root", v2)  # root is not acme's
    assert bad.value.field == "tenant_id"


def test_delete_asset_type(registry: SqlRegistry, tree: Tree) -> None:
    registry.put_asset_type(tree.acme_operator, "acme", SITE)
    registry.create_asset(
        tree.acme_operator, Asset(id="s1", tenant_id="acme", type_name="site", name="S")
    )
    with pytest.raises(Conflict, match="used by 1 asset"):
        registry.delete_asset_type(tree.acme_operator, "site")
    with pytest.raises(PermissionDenied):  # truck is a root (ancestor) type
        registry.delete_asset_type(tree.acme_operator, "truck")
    with pytest.raises(NotFound):
        registry.delete_asset_type(tree.other_operator, "site")
    registry.delete_asset(tree.acme_operator, "s1")
    registry.delete_asset_type(tree.acme_operator, "site")
    with pytest.raises(NotFound):
        registry.get_asset_type(None, "site")


# -- assets --------------------------------------------------------------------------
def test_asset_crud_and_series(registry: SqlRegistry, tree: Tree) -> None:
    who = tree.acme_operator
    made = registry.create_asset(
        who, truck("t1", "acme_sub", attributes={"vin": "V1", "year": 2020})
    )
    assert made.created_at is not None
    assert made.created_at.tzinfo is not None
    got = registry.get_asset(who, "t1")
    assert got == made
    assert {s.measurement for s in registry.series_of(who, ["t1"])} == {"speed", "rpm"}

    registry.put_asset_type(who, "acme", SITE)
    registry.create_asset(who, Asset(id="depot", tenant_id="acme", type_name="site", name="Depot"))
    moved = registry.update_asset(
        who, "t1", name="Truck one", parent_id="depot", attributes={"vin": "V1b"}
    )
    assert (moved.name, moved.parent_id, moved.attributes) == ("Truck one", "depot", {"vin": "V1b"})
    assert registry.get_asset(who, "t1") == moved
    assert [a.id for a in registry.list_assets(who, parent_id="depot")] == ["t1"]
    assert [a.id for a in registry.list_assets(who, parent_id="")] == ["depot"]
    assert [a.id for a in registry.list_assets(who, type_name="truck")] == ["t1"]
    top = registry.update_asset(who, "t1", parent_id="")
    assert top.parent_id is None

    for i in range(5):
        registry.create_asset(who, truck(f"p{i}", "acme"))
    page = registry.list_assets(who, type_name="truck", limit=2, offset=1)
    assert [a.id for a in page] == ["p1", "p2"]

    registry.delete_asset(who, "t1")
    with pytest.raises(NotFound):
        registry.get_asset(who, "t1")
    assert registry.series_of(who, ["t1"]) == []


def test_tenant_isolation_of_assets(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(tree.acme_operator, truck("parent-truck", "acme"))
    registry.create_asset(tree.sub_operator, truck("child-truck", "acme_sub"))
    registry.create_asset(tree.other_operator, truck("other-truck", "other"))

    # the subsidiary never sees its parent's assets
    assert [a.id for a in registry.list_assets(tree.sub_operator)] == ["child-truck"]
    with pytest.raises(NotFound):
        registry.get_asset(tree.sub_operator, "parent-truck")
    with pytest.raises(NotFound):
        registry.update_asset(tree.sub_operator, "parent-truck", name="mine")
    with pytest.raises(NotFound):
        registry.delete_asset(tree.sub_operator, "parent-truck")
    # the parent sees its subsidiary's
    assert [a.id for a in registry.list_assets(tree.acme_viewer)] == ["child-truck", "parent-truck"]
    assert registry.get_asset(tree.acme_viewer, "child-truck").tenant_id == "acme_sub"
    assert len(registry.list_assets(tree.system_admin)) == 3
    # invisible series are left out
    assert registry.series_of(
        tree.sub_operator, ["parent-truck", "child-truck"]
    ) == registry.series_of(None, ["child-truck"])
    all_ids = [s.id for s in registry.series_of(None, ["parent-truck", "child-truck"])]
    assert {s.asset_id for s in registry.series_by_id(tree.sub_operator, all_ids)} == {
        "child-truck"
    }
    assert len(registry.series_by_id(tree.acme_viewer, all_ids)) == 4


def test_a_viewer_cannot_write(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(tree.acme_operator, truck("t1", "acme"))
    viewer = tree.acme_viewer
    attempts: list[Callable[[], object]] = [
        lambda: registry.create_asset(viewer, truck("t2", "acme")),
        lambda: registry.update_asset(viewer, "t1", name="x"),
        lambda: registry.delete_asset(viewer, "t1"),
        lambda: registry.put_asset_type(viewer, "acme", SITE),
        lambda: registry.delete_asset_type(viewer, "truck"),
        lambda: registry.create_device(viewer, Device(id="d", tenant_id="acme", asset_ids=("t1",))),
        lambda: registry.create_tenant(viewer, "x", "X", "acme"),
        lambda: registry.create_user(viewer, "acme", "bob", "password123", Role.VIEWER),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied):
            attempt()
    assert registry.get_asset(viewer, "t1").name == "t1"


@pytest.mark.parametrize(
    ("asset", "field"),
    [
        (truck("bad.id", "acme"), "id"),
        (truck("t1", "acme", name=""), "name"),
        (truck("t1", "nowhere"), "tenant_id"),
        (truck("t1", "other"), "tenant_id"),  # exists but invisible
        (Asset(id="t1", tenant_id="acme", type_name="boat", name="b"), "type_name"),
        (truck("t1", "acme", attributes={}), "attributes.vin"),
        (truck("t1", "acme", attributes={"vin": "v", "year": "2020"}), "attributes.year"),
        (truck("t1", "acme", attributes={"vin": "v", "when": object()}), "attributes.when"),
        (truck("t1", "acme", parent_id="ghost"), "parent_id"),
    ],
)
def test_asset_validation_names_the_field(
    registry: SqlRegistry, tree: Tree, asset: Asset, field: str
) -> None:
    with pytest.raises(InvalidInput) as bad:
        registry.create_asset(tree.acme_operator, asset)
    assert bad.value.field == field
    assert registry.list_assets(None) == []


def test_asset_hierarchy_rules(registry: SqlRegistry, tree: Tree) -> None:
    who = tree.acme_operator
    registry.create_asset(who, truck("a", "acme"))
    registry.create_asset(who, truck("b", "acme", parent_id="a"))
    registry.create_asset(who, truck("c", "acme", parent_id="b"))
    registry.create_asset(who, truck("d", "acme_sub", parent_id="c"))
    for parent in ("c", "a"):
        with pytest.raises(InvalidInput, match="cycle") as bad:
            registry.update_asset(who, "a", parent_id=parent)
        assert bad.value.field == "parent_id"
    # a child asset lies in the parent's tenant or below, never above it
    with pytest.raises(InvalidInput, match="outside") as bad:
        registry.create_asset(who, truck("e", "acme", parent_id="d"))
    assert bad.value.field == "parent_id"
    with pytest.raises(Conflict, match="child"):
        registry.delete_asset(who, "b")
    with pytest.raises(Conflict, match="already exists"):
        registry.create_asset(tree.other_operator, truck("a", "other"))  # ids are global
    with pytest.raises(InvalidInput) as bad:
        registry.update_asset(who, "a", attributes={"year": 1})
    assert bad.value.field == "attributes.vin"


# -- series and routes ---------------------------------------------------------------
def test_new_type_version_creates_missing_series(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, truck("t1", "acme"))
    registry.create_asset(None, truck("t2", "other"))
    before = {(s.asset_id, s.measurement): s.id for s in registry.series_of(None, ["t1", "t2"])}
    v2 = parse_asset_type(
        {
            "name": "truck",
            "version": 2,
            "measurements": [{"name": "speed"}, {"name": "fuel_level", "unit": "%"}],
            "attributes": [{"name": "vin", "required": True}],
        }
    )
    registry.put_asset_type(tree.system_admin, "root", v2)
    after = {(s.asset_id, s.measurement): s.id for s in registry.series_of(None, ["t1", "t2"])}
    # old series keep their ids (rpm is kept although v2 dropped it); fuel_level is new
    assert {k: after[k] for k in before} == before
    assert set(after) - set(before) == {("t1", "fuel_level"), ("t2", "fuel_level")}
    registry.create_asset(None, truck("t3", "acme"))
    assert {s.measurement for s in registry.series_of(None, ["t3"])} == {"speed", "fuel_level"}


def test_series_ids_are_never_reused(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, truck("t1", "acme"))
    first = max(s.id for s in registry.series_of(None, ["t1"]))
    registry.delete_asset(None, "t1")
    registry.create_asset(None, truck("t1", "acme"))
    assert min(s.id for s in registry.series_of(None, ["t1"])) > first


def test_device_route(registry: SqlRegistry, tree: Tree) -> None:
    registry.put_asset_type(tree.acme_operator, "acme", SITE)
    registry.create_asset(None, truck("t1", "acme_sub"))
    registry.create_asset(None, Asset(id="depot", tenant_id="acme", type_name="site", name="D"))
    registry.create_device(
        tree.acme_operator, Device(id="gw-1", tenant_id="acme", asset_ids=("t1", "depot"))
    )
    route = registry.device_route("gw-1")
    assert (route.device_id, route.tenant_id, route.revoked) == ("gw-1", "acme", False)
    assert route.asset_ids == ("t1", "depot")
    assert route.types["t1"] == TRUCK
    assert route.types["depot"] == SITE
    expected = {s.measurement: s.id for s in registry.series_of(None, ["t1"])}
    assert dict(route.series["t1"]) == expected
    assert dict(route.series["depot"]) == {}
    registry.set_device_revoked(tree.acme_operator, "gw-1", True)
    assert registry.device_route("gw-1").revoked
    with pytest.raises(NotFound):
        registry.device_route("nope")


def test_device_route_follows_the_latest_type(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, truck("t1", "acme"))
    registry.create_device(None, Device(id="d1", tenant_id="acme", asset_ids=("t1",)))
    v2 = parse_asset_type({"name": "truck", "version": 2, "measurements": [{"name": "odo"}]})
    registry.put_asset_type(None, "root", v2)
    route = registry.device_route("d1")
    assert route.types["t1"].version == 2
    assert set(route.series["t1"]) == {"speed", "rpm", "odo"}
