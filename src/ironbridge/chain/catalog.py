"""Tenant-scoped chain repository: the port, and an in-memory implementation."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from ironbridge.chain.model import Chain
from ironbridge.model import Conflict, NotFound, check_id


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainHeader:
    """What a listing shows of a chain without loading it."""

    tenant_id: str
    tenant_path: str
    name: str
    revision: int
    updated_at: datetime
    n_components: int
    n_enterprises: int
    n_links: int


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

    def header(self, tenant_id: str, name: str, *, caller_path: str) -> ChainHeader:
        """Return the header of a visible chain; NotFound if absent or not visible."""
        ...

    def list(self, *, caller_path: str) -> list[Chain]:
        """Return every chain visible to the caller, by tenant path then name."""
        ...

    def summaries(self, *, caller_path: str) -> builtins.list[ChainHeader]:
        """Return the headers of the chains visible to the caller, by tenant path then name."""
        ...

    def delete(self, tenant_id: str, name: str, *, caller_path: str) -> None:
        """Remove a chain; NotFound if absent or not visible."""
        ...

    def asset_links(
        self, tenant_id: str, name: str, *, caller_path: str
    ) -> dict[str, tuple[str, ...]]:
        """Return enterprise id -> linked platform asset ids."""
        ...

    def set_asset_links(
        self,
        tenant_id: str,
        name: str,
        enterprise_id: str,
        asset_ids: Sequence[str],
        *,
        caller_path: str,
    ) -> None:
        """Replace the platform assets linked to one enterprise of the chain."""
        ...


class ChainCatalog:
    """In-memory :class:`ChainRepository` keyed by (owner tenant id, chain name)."""

    def __init__(self) -> None:
        """Start empty."""
        self._chains: dict[tuple[str, str], Chain] = {}
        self._headers: dict[tuple[str, str], ChainHeader] = {}
        self._assets: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {}

    def put(self, chain: Chain, *, caller_path: str) -> None:
        """Store ``chain``; the caller must own it or be an ancestor of its owner."""
        if not chain.visible_to(caller_path):
            raise NotFound("tenant", chain.tenant_id)
        key = (chain.tenant_id, chain.name)
        current = self._chains.get(key)
        if current is not None and current.tenant_path != chain.tenant_path:
            raise Conflict(
                f"chain {chain.name!r} of tenant {chain.tenant_id!r} has another tenant path"
            )
        self._chains[key] = chain
        old = self._headers.get(key)
        self._headers[key] = ChainHeader(
            tenant_id=chain.tenant_id,
            tenant_path=chain.tenant_path,
            name=chain.name,
            revision=1 if old is None else old.revision + 1,
            updated_at=datetime.now(UTC),
            n_components=len(chain.components),
            n_enterprises=len(chain.enterprises),
            n_links=len(chain.links),
        )
        firms = {f.id for f in chain.enterprises}
        links = self._assets.get(key, {})
        self._assets[key] = {k: v for k, v in links.items() if k in firms}

    def get(self, tenant_id: str, name: str, *, caller_path: str) -> Chain:
        """Return a visible chain, else NotFound (also for chains of other tenants)."""
        check_id(tenant_id, "tenant_id")
        chain = self._chains.get((tenant_id, name))
        if chain is None or not chain.visible_to(caller_path):
            raise NotFound("chain", f"{tenant_id}/{name}")
        return chain

    def header(self, tenant_id: str, name: str, *, caller_path: str) -> ChainHeader:
        """Return the header of a visible chain, else NotFound."""
        self.get(tenant_id, name, caller_path=caller_path)
        return self._headers[(tenant_id, name)]

    def list(self, *, caller_path: str) -> list[Chain]:
        """Return the chains visible to the caller."""
        seen = [c for c in self._chains.values() if c.visible_to(caller_path)]
        return sorted(seen, key=lambda c: (c.tenant_path, c.name))

    def summaries(self, *, caller_path: str) -> builtins.list[ChainHeader]:
        """Return the headers of the chains visible to the caller."""
        return [self._headers[(c.tenant_id, c.name)] for c in self.list(caller_path=caller_path)]

    def delete(self, tenant_id: str, name: str, *, caller_path: str) -> None:
        """Remove a visible chain, else NotFound."""
        self.get(tenant_id, name, caller_path=caller_path)
        del self._chains[(tenant_id, name)]
        del self._headers[(tenant_id, name)]
        self._assets.pop((tenant_id, name), None)

    def asset_links(
        self, tenant_id: str, name: str, *, caller_path: str
    ) -> dict[str, tuple[str, ...]]:
        """Return enterprise id -> linked asset ids of a visible chain."""
        self.get(tenant_id, name, caller_path=caller_path)
        return dict(sorted(self._assets.get((tenant_id, name), {}).items()))

    def set_asset_links(
        self,
        tenant_id: str,
        name: str,
        enterprise_id: str,
        asset_ids: Sequence[str],
        *,
        caller_path: str,
    ) -> None:
        """Replace the assets linked to one enterprise (empty: unlink)."""
        chain = self.get(tenant_id, name, caller_path=caller_path)
        if enterprise_id not in {f.id for f in chain.enterprises}:
            raise NotFound("enterprise", enterprise_id)
        for i, asset_id in enumerate(asset_ids):
            check_id(asset_id, f"asset_ids[{i}]")
        links = self._assets.setdefault((tenant_id, name), {})
        if asset_ids:
            links[enterprise_id] = tuple(sorted(dict.fromkeys(asset_ids)))
        else:
            links.pop(enterprise_id, None)
