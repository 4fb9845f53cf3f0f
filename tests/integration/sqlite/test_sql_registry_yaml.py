"""YAML export and import of asset types and assets through the SQL registry."""

from __future__ import annotations

import pytest
import yaml
from sql_registry_support import SITE, Tree

from ironbridge.model import Asset, Conflict, InvalidInput, PermissionDenied, parse_asset_type
from ironbridge.store.sql import SqlRegistry, export_yaml, import_yaml

pytestmark = pytest.mark.integration


def _populate(registry: SqlRegistry, tree: Tree) -> None:
    who = tree.acme_operator
    registry.put_asset_type(who, "acme", SITE)
    registry.put_asset_type(
        who,
        "acme",
        parse_asset_type(
            {"name": "press", "version": 3, "measurements": [{"name": "force", "unit": "kN"}]}
        ),
    )
    registry.create_asset(who, Asset(id="plant", tenant_id="acme", type_name="site", name="Plant"))
    registry.create_asset(
        who,
        Asset(
            id="line-1", tenant_id="acme_sub", type_name="site", name="Line 1", parent_id="plant"
        ),
    )
    registry.create_asset(
        who,
        Asset(
            id="p-01",
            tenant_id="acme_sub",
            type_name="press",
            name="压力机 1",
            parent_id="line-1",
            attributes={"note": "ünïcode", "count": 3},
        ),
    )
    registry.create_asset(
        who,
        Asset(
            id="a-truck", tenant_id="acme", type_name="truck", name="T", attributes={"vin": "X1"}
        ),
    )


def test_export_import_round_trip(
    registry: SqlRegistry, tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _populate(registry, tree)
    text = export_yaml(registry, tree.system_admin)
    doc = yaml.safe_load(text)
    ids = [a["id"] for a in doc["assets"]]
    assert ids.index("plant") < ids.index("line-1") < ids.index("p-01")

    fresh = SqlRegistry.open(f"sqlite:///{tmp_path_factory.mktemp('fresh') / 'r.sqlite3'}")
    try:
        for tenant in registry.list_tenants(tree.system_admin):
            fresh.create_tenant(None, tenant.id, tenant.name, tenant.parent_id)
        report = import_yaml(fresh, tree.system_admin, text)
        assert sorted(report.asset_types_created) == ["press", "site", "truck"]
        assert sorted(report.assets_created) == sorted(ids)
        assert fresh.list_asset_types(tree.system_admin) == registry.list_asset_types(
            tree.system_admin
        )
        strip = [
            (a.id, a.tenant_id, a.type_name, a.name, a.parent_id, a.attributes)
            for a in registry.list_assets(None)
        ]
        assert strip == [
            (a.id, a.tenant_id, a.type_name, a.name, a.parent_id, a.attributes)
            for a in fresh.list_assets(None)
        ]
        assert {s.measurement for s in fresh.series_of(None, ["p-01"])} == {"force"}
        assert export_yaml(fresh, tree.system_admin) == text
        again = import_yaml(fresh, tree.system_admin, text)
        assert again.assets_created == ()
        assert sorted(again.assets_unchanged) == sorted(ids)
        assert sorted(again.asset_types_unchanged) == ["press", "site", "truck"]
    finally:
        fresh.close()


def test_import_updates_and_upgrades(registry: SqlRegistry, tree: Tree) -> None:
    text = """
asset_types:
  - name: site
    version: 2
    measurements: [{name: power, unit: kW}]
assets:
  - {id: child, type_name: site, name: Child, parent_id: plant}
  - {id: plant, type_name: site, name: Plant}
"""
    registry.put_asset_type(tree.acme_operator, "acme", SITE)
    registry.create_asset(None, Asset(id="plant", tenant_id="acme", type_name="site", name="Old"))
    report = import_yaml(registry, tree.acme_operator, text)  # tenant defaults to acme
    assert report.asset_types_upgraded == ("site",)
    assert report.assets_created == ("child",)
    assert report.assets_updated == ("plant",)
    assert registry.get_asset(None, "child").parent_id == "plant"
    assert registry.get_asset(None, "plant").name == "Plant"
    assert {s.measurement for s in registry.series_of(None, ["plant"])} == {"power"}


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (
            "assets: [{id: a, type_name: site}, {id: b, type_name: site},\n"
            "  {id: c, type_name: site}, {id: d, type_name: boat}]",
            "assets[3].type_name",
        ),
        ("assets: [{id: a, type_name: truck, attributes: {year: 1}}]", "assets[0].attributes.vin"),
        ("assets: [{id: 'a.b', type_name: site}]", "assets[0].id"),
        ("assets: [{id: a, type_name: site}, {id: a, type_name: site}]", "assets[1].id"),
        ("assets: [{id: a, type_name: site, parent_id: ghost}]", "assets[0].parent_id"),
        (
            "assets: [{id: a, type_name: site, parent_id: b},\n"
            "  {id: b, type_name: site, parent_id: a}]",
            "assets[1].parent_id",
        ),
        ("assets: [{id: a, type_name: site, colour: red}]", "assets[0].colour"),
        ("assets: [{id: a, type_name: site, tenant_id: other}]", "assets[0].tenant_id"),
        (
            "asset_types: [{name: x, measurements: [{name: ok}, {name: Bad}]}]",
            "asset_types[0].measurements[1].name",
        ),
        ("asset_types: [{name: x, version: 0}]", "asset_types[0].version"),
        ("asset_types: [{name: x}, {name: x}]", "asset_types[1].name"),
        ("asset_types: {name: x}", "asset_types"),
        ("devices: []", "devices"),
        ("assets: [1, 2", ""),
        ("- just a list", ""),
    ],
)
def test_import_errors_name_the_document_path(
    registry: SqlRegistry, tree: Tree, text: str, field: str
) -> None:
    registry.put_asset_type(tree.acme_operator, "acme", SITE)
    with pytest.raises(InvalidInput) as bad:
        import_yaml(registry, tree.acme_operator, text)
    assert bad.value.field == field
    assert registry.list_assets(None) == []  # checked before anything was written


def test_import_conflicts_and_permissions(registry: SqlRegistry, tree: Tree) -> None:
    registry.put_asset_type(tree.acme_operator, "acme", SITE)
    registry.create_asset(None, Asset(id="a", tenant_id="acme", type_name="site", name="A"))
    with pytest.raises(Conflict, match=r"assets\[0\]: asset 'a' exists"):
        import_yaml(
            registry,
            tree.acme_operator,
            "assets: [{id: a, type_name: truck, attributes: {vin: v}}]",
        )
    with pytest.raises(Conflict, match=r"asset_types\[0\]"):
        import_yaml(
            registry,
            tree.acme_operator,
            "asset_types: [{name: site, version: 1, description: new}]",
        )
    with pytest.raises(PermissionDenied):
        import_yaml(registry, tree.acme_viewer, "assets: [{id: b, type_name: site}]")
    assert import_yaml(registry, tree.acme_operator, "").assets_created == ()


def test_import_default_tenant(registry: SqlRegistry, tree: Tree) -> None:
    text = "asset_types: [{name: gen}]\nassets: [{id: g1, type_name: gen}]"
    with pytest.raises(InvalidInput) as bad:
        import_yaml(registry, None, text)  # the system has no tenant of its own
    assert bad.value.field == "asset_types[0].tenant_id"
    report = import_yaml(registry, None, text, tenant_id="acme_sub")
    assert report.assets_created == ("g1",)
    assert registry.get_asset(None, "g1").tenant_id == "acme_sub"
    assert dict(registry.list_asset_types(tree.sub_operator))["acme_sub"].name == "gen"
