"""Asset types and assets."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.schemas import AssetCreate, AssetPublic, AssetUpdate
from ironbridge.model import Asset, InvalidInput, parse_asset_type
from ironbridge.store.sql import export_yaml, import_yaml

router = APIRouter(prefix="/api/v1", tags=["assets"])


async def _document(request: Request) -> Any:
    """Read a JSON or YAML request body."""
    body = await request.body()
    try:
        return yaml.safe_load(body)  # JSON is YAML, so one parser serves both
    except yaml.YAMLError as exc:
        raise InvalidInput("", f"body is not valid YAML or JSON: {exc}") from exc


@router.get("/asset-types")
def list_asset_types(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List the asset types visible to the caller (latest versions)."""
    return [
        {"tenant_id": tenant_id, **t.to_dict()}
        for tenant_id, t in ctx.registry.list_asset_types(who)
    ]


@router.get("/asset-types/{name}")
def get_asset_type(name: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Return the latest version of an asset type."""
    return ctx.registry.get_asset_type(who, name).to_dict()


@router.post("/asset-types", status_code=201)
async def put_asset_type(
    request: Request, ctx: Ctx, who: Operator, tenant_id: str | None = None
) -> dict[str, Any]:
    """Create an asset type, or a new version of one (body: JSON or YAML)."""
    asset_type = parse_asset_type(await _document(request))
    saved = await run_in_threadpool(
        ctx.registry.put_asset_type, who, tenant_id or who.tenant_id, asset_type
    )
    return saved.to_dict()


@router.delete("/asset-types/{name}", status_code=204)
def delete_asset_type(name: str, ctx: Ctx, who: Operator) -> None:
    """Delete an asset type that no asset uses."""
    ctx.registry.delete_asset_type(who, name)


@router.get("/assets")
def list_assets(
    ctx: Ctx,
    who: CurrentUser,
    type_name: Annotated[str | None, Query(alias="type")] = None,
    parent_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AssetPublic]:
    """List visible assets, optionally of one type or under one parent."""
    assets = ctx.registry.list_assets(
        who, type_name=type_name, parent_id=parent_id, limit=limit, offset=offset
    )
    return [AssetPublic.of(a) for a in assets]


@router.post("/assets", status_code=201)
def create_asset(body: AssetCreate, ctx: Ctx, who: Operator) -> AssetPublic:
    """Create an asset of an existing type."""
    asset = Asset(
        id=body.id,
        tenant_id=body.tenant_id or who.tenant_id,
        type_name=body.type_name,
        name=body.name or body.id,
        parent_id=body.parent_id,
        attributes=body.attributes,
    )
    return AssetPublic.of(ctx.registry.create_asset(who, asset))


@router.get("/assets/{asset_id}")
def get_asset(asset_id: str, ctx: Ctx, who: CurrentUser) -> AssetPublic:
    """Return one asset."""
    return AssetPublic.of(ctx.registry.get_asset(who, asset_id))


@router.patch("/assets/{asset_id}")
def update_asset(asset_id: str, body: AssetUpdate, ctx: Ctx, who: Operator) -> AssetPublic:
    """Change an asset's name, parent or attributes."""
    asset = ctx.registry.update_asset(
        who, asset_id, name=body.name, parent_id=body.parent_id, attributes=body.attributes
    )
    return AssetPublic.of(asset)


@router.delete("/assets/{asset_id}", status_code=204)
def delete_asset(asset_id: str, ctx: Ctx, who: Operator) -> None:
    """Delete an asset with no children and no bound devices."""
    ctx.registry.delete_asset(who, asset_id)


@router.get("/registry/export")
def export_registry(ctx: Ctx, who: CurrentUser) -> Response:
    """Asset types and assets visible to the caller, as one YAML document."""
    return Response(export_yaml(ctx.registry, who), media_type="application/yaml")


@router.post("/registry/import")
async def import_registry(
    request: Request, ctx: Ctx, who: Operator, tenant_id: str | None = None
) -> dict[str, Any]:
    """Import asset types and assets from YAML (errors name the document path)."""
    text = (await request.body()).decode("utf-8", errors="replace")
    report = await run_in_threadpool(
        lambda: import_yaml(ctx.registry, who, text, tenant_id=tenant_id or who.tenant_id)
    )
    return dataclasses.asdict(report)
