"""Request and response bodies of the REST API (``XCreate`` / ``XUpdate`` / ``XPublic``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ironbridge.model import ApiKey, Asset, Device, Role, Tenant, User


class LoginRequest(BaseModel):
    """Username and password."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)


class TokenPublic(BaseModel):
    """A session token."""

    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int


class MePublic(BaseModel):
    """Who the caller is."""

    user_id: int
    username: str
    tenant_id: str
    role: Role


class TenantCreate(BaseModel):
    """A new tenant under an existing one."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str = Field(min_length=1, max_length=200)
    parent_id: str


class TenantPublic(BaseModel):
    """A tenant."""

    id: str
    name: str
    parent_id: str | None
    path: str

    @classmethod
    def of(cls, t: Tenant) -> TenantPublic:
        """Convert from the domain value."""
        return cls(id=t.id, name=t.name, parent_id=t.parent_id, path=t.path)


class UserCreate(BaseModel):
    """A new user."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=8, max_length=1024)
    role: Role = Role.VIEWER
    tenant_id: str | None = None


class UserPublic(BaseModel):
    """A user (never with its password hash)."""

    id: int
    tenant_id: str
    username: str
    role: Role
    disabled: bool

    @classmethod
    def of(cls, u: User) -> UserPublic:
        """Convert from the domain value."""
        return cls(
            id=u.id, tenant_id=u.tenant_id, username=u.username, role=u.role, disabled=u.disabled
        )


class ApiKeyCreate(BaseModel):
    """A new API key."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class ApiKeyPublic(BaseModel):
    """An API key (its secret is shown once, at creation)."""

    id: int
    name: str
    prefix: str
    created_at: datetime
    revoked: bool
    secret: str | None = None

    @classmethod
    def of(cls, k: ApiKey, secret: str | None = None) -> ApiKeyPublic:
        """Convert from the domain value."""
        return cls(
            id=k.id,
            name=k.name,
            prefix=k.prefix,
            created_at=k.created_at,
            revoked=k.revoked,
            secret=secret,
        )


class AssetCreate(BaseModel):
    """A new asset."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str = Field(default="", max_length=200)
    type_name: str
    parent_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tenant_id: str | None = None


class AssetUpdate(BaseModel):
    """Changes to an asset."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=200)
    parent_id: str | None = None
    attributes: dict[str, Any] | None = None


class AssetPublic(BaseModel):
    """An asset."""

    id: str
    tenant_id: str
    type_name: str
    name: str
    parent_id: str | None
    attributes: dict[str, Any]

    @classmethod
    def of(cls, a: Asset) -> AssetPublic:
        """Convert from the domain value."""
        return cls(
            id=a.id,
            tenant_id=a.tenant_id,
            type_name=a.type_name,
            name=a.name,
            parent_id=a.parent_id,
            attributes=dict(a.attributes),
        )


class DeviceCreate(BaseModel):
    """A new device bound to one or more assets (the first is its default)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str = Field(default="", max_length=200)
    asset_ids: list[str] = Field(min_length=1)
    tenant_id: str | None = None


class DevicePublic(BaseModel):
    """A device (its credential is shown once, at creation or rotation)."""

    id: str
    tenant_id: str
    name: str
    asset_ids: list[str]
    revoked: bool
    credential: str | None = None
    examples: dict[str, str] | None = None

    @classmethod
    def of(cls, d: Device) -> DevicePublic:
        """Convert from the domain value."""
        return cls(
            id=d.id,
            tenant_id=d.tenant_id,
            name=d.name,
            asset_ids=list(d.asset_ids),
            revoked=d.revoked,
        )


class TelemetryAccepted(BaseModel):
    """What the HTTP telemetry endpoint accepted."""

    accepted_points: int
    stream_seq: int
