"""Shared values of the SQL registry tests (a uniquely named module, not conftest)."""

from __future__ import annotations

from dataclasses import dataclass

from ironbridge.model import Principal, Role, Tenant, parse_asset_type

TRUCK = parse_asset_type(
    {
        "name": "truck",
        "version": 1,
        "measurements": [
            {"name": "speed", "unit": "km/h", "min": 0, "max": 200},
            {"name": "rpm", "unit": "1/min"},
        ],
        "attributes": [
            {"name": "vin", "type": "string", "required": True},
            {"name": "year", "type": "integer"},
        ],
    }
)
SITE = parse_asset_type({"name": "site", "attributes": [{"name": "city"}]})


def principal(tenant: Tenant, role: Role = Role.ADMIN, user_id: int = 0) -> Principal:
    """A caller in ``tenant`` (not backed by a user row: enough for scoping tests)."""
    return Principal(
        user_id=user_id,
        username=f"{tenant.id}-{role.value}",
        tenant_id=tenant.id,
        tenant_path=tenant.path,
        role=role,
    )


@dataclass
class Tree:
    """root -> acme -> acme_sub, and root -> other (a sibling of acme)."""

    root: Tenant
    acme: Tenant
    acme_sub: Tenant
    other: Tenant
    system_admin: Principal
    acme_admin: Principal
    acme_operator: Principal
    acme_viewer: Principal
    sub_operator: Principal
    other_operator: Principal
