"""Import and export of asset types and assets as one YAML document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ironbridge.model import (
    Asset,
    AssetType,
    Conflict,
    InvalidInput,
    NotFound,
    Principal,
    check_id,
    parse_asset_type,
)
from ironbridge.store.ports import Registry

_SECTIONS = ("asset_types", "assets")
_ASSET_FIELDS = ("id", "tenant_id", "type_name", "name", "parent_id", "attributes")
_PAGE = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportReport:
    """What an import did, by asset type name and asset id."""

    asset_types_created: tuple[str, ...] = ()
    asset_types_upgraded: tuple[str, ...] = ()
    asset_types_unchanged: tuple[str, ...] = ()
    assets_created: tuple[str, ...] = ()
    assets_updated: tuple[str, ...] = ()
    assets_unchanged: tuple[str, ...] = ()


def _at(path: str, exc: InvalidInput) -> InvalidInput:
    """Re-anchor an error at a place in the document."""
    return InvalidInput(f"{path}.{exc.field}" if exc.field else path, exc.reason)


def _parents_first(docs: list[Asset]) -> list[int]:
    """Indices of ``docs`` with every parent before its children (document order kept)."""
    index = {a.id: i for i, a in enumerate(docs)}
    order: list[int] = []
    state: dict[int, int] = {}  # 1: in progress, 2: done
    for start in range(len(docs)):
        stack = [start]
        while stack:
            i = stack[-1]
            if state.get(i) == 2:
                stack.pop()
                continue
            state[i] = 1
            parent = docs[i].parent_id
            j = index.get(parent) if parent is not None else None
            if j is not None and state.get(j) != 2:
                if state.get(j) == 1:
                    raise InvalidInput(f"assets[{i}].parent_id", "the document has a cycle here")
                stack.append(j)
                continue
            state[i] = 2
            order.append(i)
            stack.pop()
    return order


def export_yaml(registry: Registry, who: Principal | None) -> str:
    """Return the asset types (latest versions) and assets visible to ``who`` as YAML.

    Assets come parent before child, so the document imports in one pass.
    """
    types = [{"tenant_id": t, **at.to_dict()} for t, at in registry.list_asset_types(who)]
    found: list[Asset] = []
    while True:
        page = registry.list_assets(who, limit=_PAGE, offset=len(found))
        found.extend(page)
        if len(page) < _PAGE:
            break
    assets: list[dict[str, Any]] = []
    for i in _parents_first(found):
        a = found[i]
        doc: dict[str, Any] = {
            "id": a.id,
            "tenant_id": a.tenant_id,
            "type_name": a.type_name,
            "name": a.name,
        }
        if a.parent_id is not None:
            doc["parent_id"] = a.parent_id
        doc["attributes"] = dict(a.attributes)
        assets.append(doc)
    return yaml.safe_dump(
        {"asset_types": types, "assets": assets}, sort_keys=False, allow_unicode=True
    )


def _load(text: str) -> dict[str, list[Any]]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidInput("", f"not valid YAML{where}") from None
    if raw is None:
        return {s: [] for s in _SECTIONS}
    if not isinstance(raw, Mapping):
        raise InvalidInput("", "the document must be a mapping with asset_types and assets")
    for key in raw:
        if key not in _SECTIONS:
            raise InvalidInput(str(key), "unknown section (expected asset_types, assets)")
    out: dict[str, list[Any]] = {}
    for section in _SECTIONS:
        value = raw.get(section) or []
        if not isinstance(value, list):
            raise InvalidInput(section, "must be a list")
        out[section] = value
    return out


def _tenant_field(raw: Mapping[str, Any], default: str | None, path: str) -> str:
    value = raw.get("tenant_id", default)
    if value is None:
        raise InvalidInput(f"{path}.tenant_id", "is required")
    return check_id(str(value), f"{path}.tenant_id")


def _parse_types(items: list[Any], default_tenant: str | None) -> list[tuple[str, AssetType]]:
    out: list[tuple[str, AssetType]] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        path = f"asset_types[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidInput(path, "must be a mapping")
        tenant_id = _tenant_field(raw, default_tenant, path)
        try:
            asset_type = parse_asset_type({k: v for k, v in raw.items() if k != "tenant_id"})
        except InvalidInput as exc:
            raise _at(path, exc) from None
        if asset_type.name in seen:
            raise InvalidInput(f"{path}.name", f"asset type {asset_type.name!r} appears twice")
        seen.add(asset_type.name)
        out.append((tenant_id, asset_type))
    return out


def _parse_assets(items: list[Any], default_tenant: str | None) -> list[Asset]:
    out: list[Asset] = []
    seen: set[str] = set()
    for i, raw in enumerate(items):
        path = f"assets[{i}]"
        if not isinstance(raw, Mapping):
            raise InvalidInput(path, "must be a mapping")
        for key in raw:
            if key not in _ASSET_FIELDS:
                raise InvalidInput(f"{path}.{key}", "unknown field")
        asset_id = check_id(str(raw.get("id", "")), f"{path}.id")
        if asset_id in seen:
            raise InvalidInput(f"{path}.id", f"asset {asset_id!r} appears twice")
        seen.add(asset_id)
        type_name = raw.get("type_name")
        if not isinstance(type_name, str) or not type_name:
            raise InvalidInput(f"{path}.type_name", "is required")
        attributes = raw.get("attributes") or {}
        if not isinstance(attributes, Mapping):
            raise InvalidInput(f"{path}.attributes", "must be a mapping")
        parent = raw.get("parent_id")
        out.append(
            Asset(
                id=asset_id,
                tenant_id=_tenant_field(raw, default_tenant, path),
                type_name=type_name,
                name=str(raw.get("name") or asset_id),
                parent_id=None if parent is None else str(parent),
                attributes=dict(attributes),
            )
        )
    return out


def _check_references(
    registry: Registry,
    who: Principal | None,
    types: list[tuple[str, AssetType]],
    assets: list[Asset],
) -> None:
    """Check, before anything is written, what can be checked without writing."""
    in_doc = {t.name: t for _, t in types}
    ids = {a.id for a in assets}
    tenants_ok: set[str] = set()
    for path, tenant_id in [(f"asset_types[{i}]", t) for i, (t, _) in enumerate(types)] + [
        (f"assets[{i}]", a.tenant_id) for i, a in enumerate(assets)
    ]:
        if tenant_id in tenants_ok:
            continue
        try:
            registry.get_tenant(who, tenant_id)
        except NotFound:
            raise InvalidInput(f"{path}.tenant_id", f"tenant {tenant_id!r} not found") from None
        tenants_ok.add(tenant_id)
    for i, a in enumerate(assets):
        path = f"assets[{i}]"
        asset_type = in_doc.get(a.type_name)
        if asset_type is None:
            try:
                asset_type = registry.get_asset_type(who, a.type_name)
            except NotFound:
                raise InvalidInput(
                    f"{path}.type_name", f"asset type {a.type_name!r} not found"
                ) from None
        try:
            asset_type.check_attributes(a.attributes)
        except InvalidInput as exc:
            raise _at(path, exc) from None
        if a.parent_id is not None and a.parent_id not in ids:
            try:
                registry.get_asset(who, a.parent_id)
            except NotFound:
                raise InvalidInput(
                    f"{path}.parent_id", f"asset {a.parent_id!r} not found"
                ) from None


def import_yaml(
    registry: Registry,
    who: Principal | None,
    text: str,
    *,
    tenant_id: str | None = None,
) -> ImportReport:
    """Create or update the asset types and assets of a YAML document.

    Entries without a ``tenant_id`` go to ``tenant_id``, else to ``who``'s tenant (an
    internal import, ``who=None``, then needs one of the two).

    Asset types go first, then assets, parents before children. The whole document is
    parsed and its references checked before anything is written; an import is
    idempotent (unchanged entries are left alone). Errors name the place in the
    document, e.g. ``assets[3].type_name: asset type 'x' not found``.

    Raises:
        InvalidInput: a bad field, anchored at its document path.
        Conflict: an entry clashes with the registry (prefixed with its document path).
        PermissionDenied: ``who`` may not write.
    """
    sections = _load(text)
    default_tenant = tenant_id or (who.tenant_id if who is not None else None)
    types = _parse_types(sections["asset_types"], default_tenant)
    assets = _parse_assets(sections["assets"], default_tenant)
    order = _parents_first(assets)
    _check_references(registry, who, types, assets)

    created: list[str] = []
    upgraded: list[str] = []
    same: list[str] = []
    for i, (tenant_id, asset_type) in enumerate(types):
        path = f"asset_types[{i}]"
        try:
            current: AssetType | None = registry.get_asset_type(who, asset_type.name)
        except NotFound:
            current = None
        if current == asset_type:
            same.append(asset_type.name)
            continue
        try:
            registry.put_asset_type(who, tenant_id, asset_type)
        except InvalidInput as exc:
            raise _at(path, exc) from None
        except Conflict as exc:
            raise Conflict(f"{path}: {exc}") from None
        (created if current is None else upgraded).append(asset_type.name)

    a_created: list[str] = []
    a_updated: list[str] = []
    a_same: list[str] = []
    for i in order:
        a, path = assets[i], f"assets[{i}]"
        try:
            try:
                old = registry.get_asset(who, a.id)
            except NotFound:
                registry.create_asset(who, a)
                a_created.append(a.id)
                continue
            if (old.tenant_id, old.type_name) != (a.tenant_id, a.type_name):
                raise Conflict(
                    f"asset {a.id!r} exists in tenant {old.tenant_id!r} with type {old.type_name!r}"
                )
            if (old.name, old.parent_id, old.attributes) == (a.name, a.parent_id, a.attributes):
                a_same.append(a.id)
                continue
            registry.update_asset(
                who,
                a.id,
                name=a.name,
                parent_id="" if a.parent_id is None else a.parent_id,
                attributes=a.attributes,
            )
            a_updated.append(a.id)
        except InvalidInput as exc:
            raise _at(path, exc) from None
        except Conflict as exc:
            raise Conflict(f"{path}: {exc}") from None
    return ImportReport(
        asset_types_created=tuple(created),
        asset_types_upgraded=tuple(upgraded),
        asset_types_unchanged=tuple(same),
        assets_created=tuple(a_created),
        assets_updated=tuple(a_updated),
        assets_unchanged=tuple(a_same),
    )
