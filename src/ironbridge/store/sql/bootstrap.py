"""First start: the root tenant and an administrator with a one-time password."""

from __future__ import annotations

import logging
import secrets

from ironbridge.model import Conflict, NotFound, Role, Tenant
from ironbridge.store.ports import Registry

_LOGGER = logging.getLogger(__name__)


def ensure_root(registry: Registry, tenant_id: str = "root", name: str = "Root") -> Tenant:
    """Return the root tenant, creating it on first start."""
    try:
        return registry.get_tenant(None, tenant_id)
    except NotFound:
        pass
    try:
        tenant = registry.create_tenant(None, tenant_id, name, None)
    except Conflict:  # another process created it in between
        return registry.get_tenant(None, tenant_id)
    _LOGGER.info("created root tenant %s", tenant_id)
    return tenant


def bootstrap_admin(
    registry: Registry,
    username: str = "admin",
    tenant_id: str = "root",
    *,
    password: str | None = None,
) -> str | None:
    """Create the first administrator, with ``password`` or a random one-time one.

    Returns:
        The password (show a generated one once, never log it), or ``None`` if users
        already exist.
    """
    if registry.has_users():
        return None
    ensure_root(registry, tenant_id)
    password = password or secrets.token_urlsafe(16)
    try:
        registry.create_user(None, tenant_id, username, password, Role.ADMIN)
    except Conflict:  # another process bootstrapped first
        return None
    _LOGGER.info("created administrator %s", username)
    return password
