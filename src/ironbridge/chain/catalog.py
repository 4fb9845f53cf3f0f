"""Tenant-scoped chain repository: the port, and an in-memory implementation."""

from __future__ import annotations

from typing import Protocol

from ironbridge.chain.model import Chain
from ironbridge.model import Conflict, NotFound, check_id


class ChainRepository(Protocol):
    """Where chains live; every call is made on behalf of a caller's tenant path.

    A caller sees chains of its own tenant and of the tenants below it, never above or
    beside it. A chain another tenant owns is reported as :class:`NotFound`, so its
    existence does not leak.
    """

    def put(self, chain: Chain, *, caller_path: str) -> None:
        """Store ``chain`` (replacing one of the same owner and name)."""
        ...

    def get(self, tenant_id: str, name: str, *, caller_path: str) -> Chain:
        """Return the chain ``name`` of ``tenant_id``; NotFound if absent or not visible."""
        ...

    def list(self, *, caller_path: str) -> list[Chain]:
        """Return every chain visible to the caller, by tenant path then name."""
        ...

    def delete(self, tenant_id: str, name: str, *, caller_path: str) -> None:
        """Remove a chain; NotFound if absent or not visible."""
        ...


class ChainCatalog:
    """In-memory :class:`ChainRepository` keyed by (owner tenant id, chain name)."""

    def __init__(self) -> None:
        """Start empty."""
        self._chains: dict[tuple[str, str], Chain] = {}

    def put(self, chain: Chain, *, caller_path: str) -> None:
        """Store ``chain``; the caller must own it or be an ancestor of its owner."""
        if not chain.visible_to(caller_path):
            raise NotFound("tenant", chain.tenant_id)
        current = self._chains.get((chain.tenant_id, chain.name))
        if current is not None and current.tenant_path != chain.tenant_path:
            raise Conflict(
                f"chain {chain.name!r} of tenant {chain.tenant_id!r} has another tenant path"
            )
        self._chains[(chain.tenant_id, chain.name)] = chain

    def get(self, tenant_id: str, name: str, *, caller_path: str) -> Chain:
        """Return a visible chain, else NotFound (also for chains of other tenants)."""
        check_id(tenant_id, "tenant_id")
        chain = self._chains.get((tenant_id, name))
        if chain is None or not chain.visible_to(caller_path):
            raise NotFound("chain", f"{tenant_id}/{name}")
        return chain

    def list(self, *, caller_path: str) -> list[Chain]:
        """Return the chains visible to the caller."""
        seen = [c for c in self._chains.values() if c.visible_to(caller_path)]
        return sorted(seen, key=lambda c: (c.tenant_path, c.name))

    def delete(self, tenant_id: str, name: str, *, caller_path: str) -> None:
        """Remove a visible chain, else NotFound."""
        self.get(tenant_id, name, caller_path=caller_path)
        del self._chains[(tenant_id, name)]
