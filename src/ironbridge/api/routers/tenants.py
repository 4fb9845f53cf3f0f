"""Tenants and users."""

from __future__ import annotations

from fastapi import APIRouter

from ironbridge.api.auth import Admin, Ctx, CurrentUser
from ironbridge.api.schemas import TenantCreate, TenantPublic, UserCreate, UserPublic

router = APIRouter(prefix="/api/v1", tags=["tenants"])


@router.get("/tenants")
def list_tenants(ctx: Ctx, who: CurrentUser) -> list[TenantPublic]:
    """List the caller's tenant and every tenant below it."""
    return [TenantPublic.of(t) for t in ctx.registry.list_tenants(who)]


@router.post("/tenants", status_code=201)
def create_tenant(body: TenantCreate, ctx: Ctx, who: Admin) -> TenantPublic:
    """Create a tenant below one the caller administers."""
    return TenantPublic.of(ctx.registry.create_tenant(who, body.id, body.name, body.parent_id))


@router.get("/users")
def list_users(ctx: Ctx, who: Admin) -> list[UserPublic]:
    """List the users of the caller's tenant subtree."""
    return [UserPublic.of(u) for u in ctx.registry.list_users(who)]


@router.post("/users", status_code=201)
def create_user(body: UserCreate, ctx: Ctx, who: Admin) -> UserPublic:
    """Create a user in the caller's tenant subtree."""
    user = ctx.registry.create_user(
        who, body.tenant_id or who.tenant_id, body.username, body.password, body.role
    )
    return UserPublic.of(user)
