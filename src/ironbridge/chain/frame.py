"""Columnar form of a chain: integer index arrays built once, used by metrics and what-if."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ironbridge.chain.model import Chain, RegionLevel, SizeClass
from ironbridge.model import InvalidInput

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_SIZES = (SizeClass.MICRO, SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE)


def _index(values: list[str]) -> tuple[tuple[str, ...], IntArray]:
    names: dict[str, int] = {}
    codes = np.fromiter((names.setdefault(v, len(names)) for v in values), np.int64, len(values))
    return tuple(names), codes


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFrame:
    """A chain as arrays: firms, components and links are integer positions.

    Region keys are held per level (``province``, ``province/city``,
    ``province/city/district``) as a code array per firm plus the names the codes
    index. ``make_firm``/``make_comp`` list which firm makes which component.
    """

    comp_ids: tuple[str, ...]
    comp_names: tuple[str, ...]
    comp_parent: IntArray
    comp_importance: FloatArray
    comp_critical: BoolArray
    firm_ids: tuple[str, ...]
    firm_names: tuple[str, ...]
    firm_size: IntArray
    firm_leader: BoolArray
    region_names: dict[RegionLevel, tuple[str, ...]]
    firm_region: dict[RegionLevel, IntArray]
    make_firm: IntArray
    make_comp: IntArray
    sup: IntArray
    cus: IntArray
    comp: IntArray
    share: FloatArray
    value: FloatArray
    lead: FloatArray
    cover: FloatArray
    recovery: FloatArray

    @property
    def n_firms(self) -> int:
        """Number of enterprises."""
        return len(self.firm_ids)

    @property
    def n_comps(self) -> int:
        """Number of components in the tree."""
        return len(self.comp_ids)

    @property
    def n_links(self) -> int:
        """Number of supply links."""
        return int(self.sup.shape[0])

    def firm_index(self, firm_id: str) -> int:
        """Return the position of ``firm_id``; InvalidInput if unknown."""
        try:
            return self.firm_ids.index(firm_id)
        except ValueError:
            raise InvalidInput("enterprise_id", f"unknown enterprise {firm_id!r}") from None

    def comp_index(self, comp_id: str) -> int:
        """Return the position of ``comp_id``; InvalidInput if unknown."""
        try:
            return self.comp_ids.index(comp_id)
        except ValueError:
            raise InvalidInput("component_id", f"unknown component {comp_id!r}") from None

    def region_index(self, level: RegionLevel, region: str) -> int:
        """Return the code of ``region`` at ``level``; InvalidInput if no firm is there."""
        try:
            return self.region_names[level].index(region)
        except ValueError:
            raise InvalidInput("region", f"no enterprise in {level.value} {region!r}") from None

    @classmethod
    def from_chain(cls, chain: Chain) -> ChainFrame:
        """Build the arrays of ``chain`` (validated already by :class:`Chain`)."""
        comp_pos = {c.id: i for i, c in enumerate(chain.components)}
        firm_pos = {f.id: i for i, f in enumerate(chain.enterprises)}
        firms = chain.enterprises
        region_names: dict[RegionLevel, tuple[str, ...]] = {}
        firm_region: dict[RegionLevel, IntArray] = {}
        for level in RegionLevel:
            region_names[level], firm_region[level] = _index([f.region(level) for f in firms])
        make = [(i, comp_pos[c]) for i, f in enumerate(firms) for c in f.components]
        links = chain.links
        return cls(
            comp_ids=tuple(comp_pos),
            comp_names=tuple(c.name for c in chain.components),
            comp_parent=np.array(
                [-1 if c.parent_id is None else comp_pos[c.parent_id] for c in chain.components],
                np.int64,
            ),
            comp_importance=np.array([c.importance for c in chain.components], np.float64),
            comp_critical=np.array([c.critical for c in chain.components], np.bool_),
            firm_ids=tuple(firm_pos),
            firm_names=tuple(f.name for f in firms),
            firm_size=np.array([_SIZES.index(f.size) for f in firms], np.int64),
            firm_leader=np.array([f.is_leader for f in firms], np.bool_),
            region_names=region_names,
            firm_region=firm_region,
            make_firm=np.array([m[0] for m in make], np.int64),
            make_comp=np.array([m[1] for m in make], np.int64),
            sup=np.array([firm_pos[lk.supplier_id] for lk in links], np.int64),
            cus=np.array([firm_pos[lk.customer_id] for lk in links], np.int64),
            comp=np.array([comp_pos[lk.component_id] for lk in links], np.int64),
            share=np.array([lk.volume_share for lk in links], np.float64),
            value=np.array([lk.value_cny for lk in links], np.float64),
            lead=np.array([lk.lead_time_days for lk in links], np.float64),
            cover=np.array([lk.inventory_cover_days for lk in links], np.float64),
            recovery=np.array([lk.recovery_days for lk in links], np.float64),
        )
