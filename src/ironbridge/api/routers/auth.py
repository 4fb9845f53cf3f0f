"""Login, the caller's identity and API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from ironbridge.api.auth import SESSION_COOKIE, Ctx, CurrentUser, issue_token
from ironbridge.api.schemas import ApiKeyCreate, ApiKeyPublic, LoginRequest, MePublic, TokenPublic

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post("/login")
async def login(body: LoginRequest, response: Response, ctx: Ctx) -> TokenPublic:
    """Exchange a username and password for a session token (also set as a cookie)."""
    who = await run_in_threadpool(ctx.registry.authenticate_user, body.username, body.password)
    token = issue_token(ctx.secret_key, who.user_id, ctx.session_ttl_s)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=ctx.session_ttl_s, httponly=True, samesite="strict"
    )
    return TokenPublic(token=token, expires_in=ctx.session_ttl_s)


@router.post("/logout", status_code=204)
async def logout(response: Response, who: CurrentUser) -> None:
    """Forget the session cookie."""
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me")
async def me(who: CurrentUser) -> MePublic:
    """Return who the caller is."""
    return MePublic(
        user_id=who.user_id, username=who.username, tenant_id=who.tenant_id, role=who.role
    )


@router.get("/api-keys")
def list_api_keys(ctx: Ctx, who: CurrentUser) -> list[ApiKeyPublic]:
    """List the caller's API keys."""
    return [ApiKeyPublic.of(k) for k in ctx.registry.list_api_keys(who)]


@router.post("/api-keys", status_code=201)
def create_api_key(body: ApiKeyCreate, ctx: Ctx, who: CurrentUser) -> ApiKeyPublic:
    """Create an API key; its secret is returned this once."""
    key, secret = ctx.registry.create_api_key(who, body.name)
    return ApiKeyPublic.of(key, secret)


@router.delete("/api-keys/{key_id}", status_code=204)
def revoke_api_key(key_id: int, ctx: Ctx, who: CurrentUser) -> None:
    """Revoke one of the caller's API keys."""
    ctx.registry.revoke_api_key(who, key_id)
