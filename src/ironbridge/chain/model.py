"""Industrial-chain values: component tree, enterprises, supply links and the chain itself."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from ironbridge.model import InvalidInput, check_id


class SizeClass(StrEnum):
    """Enterprise size class (GB/T statistical bands; 规上 = large or medium)."""

    LARGE = "large"
    MEDIUM = "medium"
    SMALL = "small"
    MICRO = "micro"

    @property
    def rank(self) -> int:
        """Return 3 for large down to 0 for micro (bigger is more capacity)."""
        return (SizeClass.MICRO, SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE).index(self)


class RegionLevel(StrEnum):
    """Administrative level at which "local" is decided."""

    PROVINCE = "province"
    CITY = "city"
    DISTRICT = "district"


def _finite(
    value: float, field: str, *, minimum: float = 0.0, maximum: float | None = None
) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidInput(field, f"expected a finite number, got {value!r}")
    if value < minimum:
        raise InvalidInput(field, f"must be >= {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise InvalidInput(field, f"must be <= {maximum:g}, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """A segment (环节) of the chain's component tree (domain.md 5.2).

    ``level`` 0 is a finished product (a vehicle); its children are systems, their
    children parts and materials. ``importance`` weights completeness and the weak-link
    score; ``critical`` marks segments whose single sourcing is a choke point (卡点).
    """

    id: str
    name: str
    parent_id: str | None = None
    level: int = 0
    importance: float = 1.0
    critical: bool = False

    def __post_init__(self) -> None:
        check_id(self.id, "component.id")
        if not self.name.strip():
            raise InvalidInput("component.name", "must not be empty")
        if self.parent_id is not None:
            check_id(self.parent_id, "component.parent_id")
        if self.level < 0:
            raise InvalidInput("component.level", f"must be >= 0, got {self.level}")
        _finite(self.importance, "component.importance")


@dataclass(frozen=True, slots=True, kw_only=True)
class Enterprise:
    """A firm of the chain: where it is, how big, what it makes, whether it is a 链主."""

    id: str
    name: str
    province: str
    city: str = ""
    district: str = ""
    lat: float | None = None
    lon: float | None = None
    size: SizeClass = SizeClass.MEDIUM
    components: tuple[str, ...] = ()
    is_leader: bool = False

    def __post_init__(self) -> None:
        check_id(self.id, "enterprise.id")
        if not self.name.strip():
            raise InvalidInput("enterprise.name", "must not be empty")
        if not self.province.strip():
            raise InvalidInput("enterprise.province", "must not be empty")
        if self.lat is not None:
            _finite(self.lat, "enterprise.lat", minimum=-90.0, maximum=90.0)
        if self.lon is not None:
            _finite(self.lon, "enterprise.lon", minimum=-180.0, maximum=180.0)
        if not isinstance(self.size, SizeClass):
            raise InvalidInput("enterprise.size", f"must be one of {[s.value for s in SizeClass]}")
        for i, comp in enumerate(self.components):
            check_id(comp, f"enterprise.components[{i}]")

    def region(self, level: RegionLevel) -> str:
        """Return the region key at ``level``: ``Shandong``, ``Shandong/Jinan``, …."""
        if level is RegionLevel.PROVINCE:
            return self.province
        if level is RegionLevel.CITY:
            return f"{self.province}/{self.city}"
        return f"{self.province}/{self.city}/{self.district}"


@dataclass(frozen=True, slots=True, kw_only=True)
class SupplyLink:
    """One supplier delivering one component to one customer.

    ``volume_share`` is the share (0–1) of the customer's need of that component that
    this supplier covers; ``value_cny`` the annual purchase value; the three day
    figures drive the what-if: lead time, the customer's inventory cover of this
    supply (time-to-survive) and the time to restore it (time-to-recover).
    """

    supplier_id: str
    customer_id: str
    component_id: str
    volume_share: float = 1.0
    value_cny: float = 0.0
    lead_time_days: float = 0.0
    inventory_cover_days: float = 0.0
    recovery_days: float = 0.0

    def __post_init__(self) -> None:
        check_id(self.supplier_id, "link.supplier_id")
        check_id(self.customer_id, "link.customer_id")
        check_id(self.component_id, "link.component_id")
        if self.supplier_id == self.customer_id:
            raise InvalidInput("link.customer_id", "a firm cannot supply itself")
        _finite(self.volume_share, "link.volume_share", maximum=1.0)
        _finite(self.value_cny, "link.value_cny")
        _finite(self.lead_time_days, "link.lead_time_days")
        _finite(self.inventory_cover_days, "link.inventory_cover_days")
        _finite(self.recovery_days, "link.recovery_days")


@dataclass(frozen=True, slots=True, kw_only=True)
class Chain:
    """An industrial chain owned by one tenant: its tree, firms and supply links.

    ``tenant_path`` is the owner's materialised tenant path (``/group/sub/``); a caller
    sees the chain when their own path is a prefix of it (a parent sees its children's
    chains, never the reverse).
    """

    name: str
    tenant_id: str
    tenant_path: str
    components: tuple[Component, ...]
    enterprises: tuple[Enterprise, ...]
    links: tuple[SupplyLink, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInput("chain.name", "must not be empty")
        check_id(self.tenant_id, "chain.tenant_id")
        if not (
            self.tenant_path.startswith("/") and self.tenant_path.endswith(f"/{self.tenant_id}/")
        ):
            raise InvalidInput("chain.tenant_path", "must look like /…/<tenant_id>/")
        comp_ids: set[str] = set()
        for i, comp in enumerate(self.components):
            if comp.id in comp_ids:
                raise InvalidInput(f"components[{i}].id", f"duplicate component id {comp.id!r}")
            comp_ids.add(comp.id)
        parents = {c.id: c.parent_id for c in self.components}
        for i, comp in enumerate(self.components):
            if comp.parent_id is not None and comp.parent_id not in comp_ids:
                raise InvalidInput(
                    f"components[{i}].parent_id", f"unknown component {comp.parent_id!r}"
                )
            seen = {comp.id}
            node = comp.parent_id
            while node is not None:
                if node in seen:
                    raise InvalidInput(
                        f"components[{i}].parent_id", "the component tree has a cycle"
                    )
                seen.add(node)
                node = parents[node]
        firms: dict[str, Enterprise] = {}
        for i, firm in enumerate(self.enterprises):
            if firm.id in firms:
                raise InvalidInput(f"enterprises[{i}].id", f"duplicate enterprise id {firm.id!r}")
            firms[firm.id] = firm
            for comp_id in firm.components:
                if comp_id not in comp_ids:
                    raise InvalidInput(
                        f"enterprises[{i}].components", f"unknown component {comp_id!r}"
                    )
        for i, link in enumerate(self.links):
            for attr in ("supplier_id", "customer_id"):
                if getattr(link, attr) not in firms:
                    raise InvalidInput(
                        f"links[{i}].{attr}", f"unknown enterprise {getattr(link, attr)!r}"
                    )
            if link.component_id not in comp_ids:
                raise InvalidInput(
                    f"links[{i}].component_id", f"unknown component {link.component_id!r}"
                )
            if link.component_id not in firms[link.supplier_id].components:
                raise InvalidInput(
                    f"links[{i}].component_id",
                    f"supplier {link.supplier_id!r} does not make {link.component_id!r}",
                )

    def visible_to(self, tenant_path: str) -> bool:
        """Return True if a caller whose tenant path is ``tenant_path`` may see this chain.

        Paths must be well formed (``/a/b/``): ``/group/sub`` is not a tenant and must
        not match ``/group/sub_a/`` as a raw prefix would.
        """
        well_formed = tenant_path.startswith("/") and tenant_path.endswith("/")
        return well_formed and self.tenant_path.startswith(tenant_path)

    def component(self, component_id: str) -> Component:
        """Return the component with ``component_id`` (KeyError if absent)."""
        for comp in self.components:
            if comp.id == component_id:
                return comp
        raise KeyError(component_id)

    def enterprise(self, enterprise_id: str) -> Enterprise:
        """Return the enterprise with ``enterprise_id`` (KeyError if absent)."""
        for firm in self.enterprises:
            if firm.id == enterprise_id:
                return firm
        raise KeyError(enterprise_id)
