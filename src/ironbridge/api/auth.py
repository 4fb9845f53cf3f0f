"""Authentication: user sessions (signed tokens), API keys and device credentials."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from ironbridge.api.context import ApiContext
from ironbridge.model import AuthenticationFailed, Device, PermissionDenied, Principal, Role

SESSION_COOKIE = "ib_session"
API_KEY_PREFIX = "ib_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: bytes, user_id: int, ttl_s: int, now: float | None = None) -> str:
    """Return a signed session token for ``user_id`` valid for ``ttl_s`` seconds."""
    expires = int((now if now is not None else time.time()) + ttl_s)
    body = _b64(f"{user_id}:{expires}".encode())
    sig = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
    return f"s.{body}.{sig}"


def verify_token(secret: bytes, token: str, now: float | None = None) -> int:
    """Return the user id of a valid, unexpired session token."""
    try:
        kind, body, sig = token.split(".")
        want = _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest())
        if kind != "s" or not hmac.compare_digest(sig, want):
            raise AuthenticationFailed("invalid session token")
        user_text, expires_text = _unb64(body).decode().split(":")
        user_id, expires = int(user_text), int(expires_text)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("invalid session token") from exc
    if expires < (now if now is not None else time.time()):
        raise AuthenticationFailed("session expired, log in again")
    return user_id


def get_context(request: Request) -> ApiContext:
    """Return the API context of the running app."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(get_context)]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie or None


async def current_principal(request: Request, ctx: Ctx) -> Principal:
    """Authenticate the caller by session token (header or cookie) or API key."""
    token = _bearer(request)
    if not token:
        raise AuthenticationFailed("authentication required: send 'Authorization: Bearer <token>'")
    if token.startswith(API_KEY_PREFIX):
        return await run_in_threadpool(ctx.registry.authenticate_api_key, token)
    user_id = verify_token(ctx.secret_key, token)
    return await run_in_threadpool(ctx.registry.principal_for_user, user_id)


CurrentUser = Annotated[Principal, Depends(current_principal)]


def require(role: Role) -> object:
    """Dependency: the caller must hold at least ``role``."""

    async def check(who: CurrentUser) -> Principal:
        if not who.role.allows(role):
            raise PermissionDenied(f"this needs the {role.value} role")
        return who

    return Depends(check)


async def current_device(request: Request, ctx: Ctx) -> Device:
    """Authenticate a device by HTTP Basic auth: user = device id, password = credential."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        raise AuthenticationFailed(
            "device authentication required: HTTP Basic with device id and credential"
        )
    try:
        device_id, _, credential = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("malformed Basic authorization header") from exc
    return await run_in_threadpool(ctx.registry.verify_device, device_id, credential)


CurrentDevice = Annotated[Device, Depends(current_device)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
