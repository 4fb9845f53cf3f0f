"""Registry entities: tenants, assets, devices, users and API keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """What a user may do inside their tenant subtree."""

    ADMIN = "admin"  # everything, including users, tenants and API keys
    OPERATOR = "operator"  # manage assets, devices, rules; act on alarms
    VIEWER = "viewer"  # read only

    def allows(self, needed: Role) -> bool:
        """Return True if this role includes the ``needed`` role."""
        order = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tenant:
    """A node of the tenant tree (group -> subsidiary -> dealer -> customer).

    ``path`` is the materialised path of ids from the root, ``/root/child/``, so that
    "this tenant and everything below it" is a prefix match.
    """

    id: str
    name: str
    parent_id: str | None
    path: str

    def contains(self, other_path: str) -> bool:
        """Return True if the tenant with ``other_path`` is this one or below it."""
        return other_path.startswith(self.path)


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """A machine, vehicle, line or site in the asset hierarchy."""

    id: str
    tenant_id: str
    type_name: str
    name: str
    parent_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Device:
    """A connection identity bound to one or more assets (the first is the default)."""

    id: str
    tenant_id: str
    asset_ids: tuple[str, ...]
    name: str = ""
    revoked: bool = False
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A person (or service) who logs in to the API and console."""

    id: int
    tenant_id: str
    username: str
    role: Role
    disabled: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """A long-lived credential for scripts; only its hash is stored."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    revoked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: a user acting within their tenant subtree."""

    user_id: int
    username: str
    tenant_id: str
    tenant_path: str
    role: Role

    def can_see(self, tenant_path: str) -> bool:
        """Return True if an entity of the tenant at ``tenant_path`` is visible."""
        return tenant_path.startswith(self.tenant_path)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeriesRef:
    """A stored series: one measurement of one asset, with its compact integer id."""

    id: int
    asset_id: str
    measurement: str
