"""What-if: remove a supplier, a region or a component source and follow the loss downstream."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import rustworkx as rx

from ironbridge.chain.frame import BoolArray, ChainFrame, FloatArray, IntArray
from ironbridge.chain.model import RegionLevel, SizeClass
from ironbridge.model import InvalidInput

_SIZES = (SizeClass.MICRO, SizeClass.SMALL, SizeClass.MEDIUM, SizeClass.LARGE)
_EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class Removal:
    """What is taken out: whole firms, every firm of a region, or single sources.

    A source is a ``(supplier_id, component_id)`` pair: that supplier stops delivering
    that component to everyone but keeps making the rest.
    """

    firms: tuple[str, ...] = ()
    region: str | None = None
    level: RegionLevel = RegionLevel.PROVINCE
    sources: tuple[tuple[str, str], ...] = ()

    @classmethod
    def supplier(cls, firm_id: str) -> Removal:
        """Remove one enterprise."""
        return cls(firms=(firm_id,))

    @classmethod
    def of_region(cls, region: str, level: RegionLevel = RegionLevel.PROVINCE) -> Removal:
        """Remove every enterprise located in ``region``."""
        return cls(region=region, level=level)

    @classmethod
    def source(cls, supplier_id: str, component_id: str) -> Removal:
        """Remove one supplier's deliveries of one component."""
        return cls(sources=((supplier_id, component_id),))


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductImpact:
    """A product maker that loses supply: when it stops and for how long."""

    firm_id: str
    firm: str
    products: tuple[str, ...]
    lost_inputs: tuple[str, ...]
    time_to_survive_days: float
    time_to_recover_days: float

    @property
    def outage_days(self) -> float:
        """Days without supply: recovery beyond what inventory bridges (0 if none)."""
        return max(0.0, self.time_to_recover_days - self.time_to_survive_days)


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialLoss:
    """A firm that keeps running but loses part of one input."""

    firm_id: str
    component_id: str
    lost_share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Alternative:
    """Another maker of a lost component, local ones first."""

    firm_id: str
    firm: str
    region: str
    local: bool
    size: SizeClass
    current_customers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class WhatIfResult:
    """Outcome of a removal: halted firms, products hit, partial losses, alternatives."""

    removed: tuple[str, ...]
    failed_links: int
    halted: tuple[str, ...]
    time_to_survive: dict[str, float]
    time_to_recover: dict[str, float]
    products: tuple[ProductImpact, ...]
    partial: tuple[PartialLoss, ...]
    alternatives: dict[str, tuple[Alternative, ...]] = field(default_factory=dict)


class WhatIf:
    """Runs removals against one chain; index arrays are built once per chain.

    Not thread-safe: a run briefly adds edges to the shared graph; use one per thread.
    """

    def __init__(self, frame: ChainFrame) -> None:
        """Index ``frame``: (customer, component) input groups and product makers."""
        self.frame = frame
        n_c = frame.n_comps
        key = frame.cus * n_c + frame.comp
        uniq, inverse = np.unique(key, return_inverse=True)
        self._grp: IntArray = inverse.astype(np.int64)
        self._grp_cus: IntArray = uniq // n_c
        self._grp_comp: IntArray = uniq % n_c
        n_g = uniq.shape[0]
        total_share = np.bincount(self._grp, weights=frame.share, minlength=n_g)
        # inputs whose shares are all zero count each link equally
        self._weight: FloatArray = np.where(total_share[self._grp] > 0, frame.share, 1.0)
        self._grp_total: FloatArray = np.bincount(
            self._grp, weights=self._weight, minlength=n_g
        ).astype(np.float64)
        roots = np.flatnonzero(frame.comp_parent < 0)
        is_product = np.isin(frame.make_comp, roots)
        self._product_firms: IntArray = np.unique(frame.make_firm[is_product])
        self._makes = (frame.make_firm[is_product], frame.make_comp[is_product])
        self._by_comp: IntArray = np.argsort(frame.comp, kind="stable")
        by_maker = np.argsort(frame.make_comp, kind="stable")
        self._maker_by_comp: IntArray = frame.make_firm[by_maker]
        self._maker_start: IntArray = np.searchsorted(frame.make_comp[by_maker], np.arange(n_c + 1))
        self._comp_start: IntArray = np.searchsorted(frame.comp[self._by_comp], np.arange(n_c + 1))
        # firm -> firm supply graph, one edge per (supplier, customer) pair; reachability
        # from a removal bounds what it can hit
        pairs = np.unique(frame.sup * frame.n_firms + frame.cus)
        self._graph: rx.PyDiGraph[None, None] = rx.PyDiGraph(multigraph=True)
        self._graph.add_nodes_from([None] * frame.n_firms)
        self._graph.extend_from_edge_list(
            list(
                zip(
                    (pairs // frame.n_firms).tolist(), (pairs % frame.n_firms).tolist(), strict=True
                )
            )
        )

    def _downstream(self, initial: BoolArray) -> BoolArray:
        """Firms reachable downstream of the failed links (rustworkx descendants)."""
        frame = self.frame
        starts = np.unique(frame.cus[initial]).tolist()
        source = self._graph.add_node(None)  # the removal, as one virtual source
        try:
            self._graph.add_edges_from_no_data([(source, s) for s in starts])
            reach = rx.descendants(self._graph, source)
        finally:
            self._graph.remove_node(source)  # drops its edges too
        mask = np.zeros(frame.n_firms, np.bool_)
        mask[np.fromiter(reach, np.int64, len(reach))] = True
        return mask

    def _removed(self, removal: Removal) -> tuple[BoolArray, BoolArray]:
        frame = self.frame
        removed = np.zeros(frame.n_firms, np.bool_)
        for firm_id in removal.firms:
            removed[frame.firm_index(firm_id)] = True
        if removal.region is not None:
            removed |= frame.firm_region[removal.level] == frame.region_index(
                removal.level, removal.region
            )
        initial = removed[frame.sup].copy()
        for supplier_id, component_id in removal.sources:
            s, c = frame.firm_index(supplier_id), frame.comp_index(component_id)
            hit = (frame.sup == s) & (frame.comp == c)
            if not hit.any():
                raise InvalidInput("sources", f"{supplier_id!r} does not supply {component_id!r}")
            initial |= hit
        if not initial.any() and not removed.any():
            raise InvalidInput("removal", "removes nothing")
        return removed, initial

    def run(
        self, removal: Removal, *, halt_share: float = 1.0, home_region: str | None = None
    ) -> WhatIfResult:
        """Propagate ``removal`` downstream.

        A firm halts when, for some input component, the failed links carry at least
        ``halt_share`` of its volume (1.0: it lost every source of that input); a halted
        firm's deliveries fail in turn. Time-to-survive of a halted firm is the shortest
        path from the removal over failed links weighted by inventory cover (covers add
        up along a path; the earliest path wins), computed with rustworkx Dijkstra.
        Time-to-recover: an input returns when its first failed source returns (a removed
        source after its ``recovery_days``, a halted supplier when it recovers); a firm
        restarts when all its halted inputs are back.
        """
        if not 0.0 < halt_share <= 1.0:
            raise InvalidInput("halt_share", "must be in (0, 1]")
        frame = self.frame
        removed, initial = self._removed(removal)
        halted = np.zeros(frame.n_firms, np.bool_)
        n_g = self._grp_cus.shape[0]
        # only links into firms downstream of the removal can change
        sub = np.flatnonzero(self._downstream(initial)[frame.cus])
        sub_sup, sub_grp, sub_weight = frame.sup[sub], self._grp[sub], self._weight[sub]
        sub_initial = initial[sub]
        while True:
            sub_failed = sub_initial | halted[sub_sup]
            lost = np.bincount(sub_grp, weights=sub_weight * sub_failed, minlength=n_g)
            frac = lost / np.maximum(self._grp_total, _EPS)
            halting = (frac >= halt_share - _EPS) & ~removed[self._grp_cus]
            now = np.zeros(frame.n_firms, np.bool_)
            now[self._grp_cus[halting]] = True
            if np.array_equal(now, halted):
                break
            halted = now
        failed = initial | halted[frame.sup]
        edges = np.flatnonzero(failed & halting[self._grp])
        tts = self._time_to_survive(edges, initial, halted)
        ttr = self._time_to_recover(edges, initial, halted)
        ids = frame.firm_ids
        halted_idx = np.flatnonzero(halted)
        products = self._products(halted, halting, tts, ttr)
        partial_grp = np.flatnonzero(
            (frac > _EPS) & ~halting & ~removed[self._grp_cus] & ~halted[self._grp_cus]
        )
        partial = tuple(
            PartialLoss(
                firm_id=ids[self._grp_cus[g]],
                component_id=frame.comp_ids[self._grp_comp[g]],
                lost_share=float(frac[g]),
            )
            for g in partial_grp
        )
        return WhatIfResult(
            removed=tuple(ids[i] for i in np.flatnonzero(removed)),
            failed_links=int(failed.sum()),
            halted=tuple(ids[i] for i in halted_idx),
            time_to_survive={ids[i]: float(tts[i]) for i in halted_idx},
            time_to_recover={ids[i]: float(ttr[i]) for i in halted_idx},
            products=products,
            partial=partial,
            alternatives=self._alternatives(initial, removed, halted, home_region),
        )

    def _time_to_survive(
        self, edges: IntArray, initial: BoolArray, halted: BoolArray
    ) -> FloatArray:
        frame = self.frame
        tts = np.full(frame.n_firms, np.inf)
        if edges.shape[0] == 0:
            return tts
        source = frame.n_firms  # a virtual node standing for "the removal"
        graph: rx.PyDiGraph[None, float] = rx.PyDiGraph(multigraph=True)
        graph.add_nodes_from([None] * (frame.n_firms + 1))
        tail = np.where(initial[edges], source, frame.sup[edges])
        graph.extend_from_weighted_edge_list(
            list(
                zip(
                    tail.tolist(),
                    frame.cus[edges].tolist(),
                    frame.cover[edges].tolist(),
                    strict=True,
                )
            )
        )
        lengths = rx.digraph_dijkstra_shortest_path_lengths(graph, source, float)
        for node, length in lengths.items():
            tts[node] = length
        tts[~halted] = np.inf
        return tts

    def _time_to_recover(
        self, edges: IntArray, initial: BoolArray, halted: BoolArray
    ) -> FloatArray:
        frame = self.frame
        ttr = np.zeros(frame.n_firms)
        if edges.shape[0] == 0:
            return ttr
        sup, grp = frame.sup[edges], self._grp[edges]
        first, rec = initial[edges], frame.recovery[edges]
        groups, local_grp = np.unique(grp, return_inverse=True)
        grp_cus = self._grp_cus[groups]
        for _ in range(frame.n_firms + 1):  # monotone, converges within the path depth
            edge_rec = np.where(first, rec, ttr[sup])
            back = np.full(groups.shape[0], np.inf)
            np.minimum.at(back, local_grp, edge_rec)
            new = np.zeros(frame.n_firms)
            np.maximum.at(new, grp_cus, back)
            if np.array_equal(new, ttr):
                break
            ttr = new
        return np.where(halted, ttr, 0.0)

    def _products(
        self, halted: BoolArray, halting: BoolArray, tts: FloatArray, ttr: FloatArray
    ) -> tuple[ProductImpact, ...]:
        frame = self.frame
        make_firm, make_comp = self._makes
        hit_grp = np.flatnonzero(halting)
        lost_by_firm: dict[int, list[int]] = {}
        for g_cus, g_comp in zip(
            self._grp_cus[hit_grp].tolist(), self._grp_comp[hit_grp].tolist(), strict=True
        ):
            lost_by_firm.setdefault(g_cus, []).append(g_comp)
        makes: dict[int, list[int]] = {}
        for m_firm, m_comp in zip(make_firm.tolist(), make_comp.tolist(), strict=True):
            makes.setdefault(m_firm, []).append(m_comp)
        out = []
        for f in self._product_firms[halted[self._product_firms]].tolist():
            lost = lost_by_firm.get(f, [])
            out.append(
                ProductImpact(
                    firm_id=frame.firm_ids[f],
                    firm=frame.firm_names[f],
                    products=tuple(frame.comp_ids[c] for c in makes[f]),
                    lost_inputs=tuple(frame.comp_ids[c] for c in sorted(set(lost))),
                    time_to_survive_days=float(tts[f]),
                    time_to_recover_days=float(ttr[f]),
                )
            )
        out.sort(key=lambda p: (p.time_to_survive_days, p.firm_id))
        return tuple(out)

    def _alternatives(
        self, initial: BoolArray, removed: BoolArray, halted: BoolArray, home_region: str | None
    ) -> dict[str, tuple[Alternative, ...]]:
        """Other makers of each directly lost component, local first, then bigger first."""
        frame = self.frame
        level = RegionLevel.PROVINCE
        codes, names = frame.firm_region[level], frame.region_names[level]
        lost = np.flatnonzero(initial & ~removed[frame.cus])
        if lost.shape[0] == 0:
            return {}
        if home_region is None:
            by_region = np.bincount(
                codes[frame.cus[lost]], weights=frame.value[lost], minlength=len(names)
            )
            home = int(np.argmax(by_region))
        else:
            home = frame.region_index(level, home_region)
        out: dict[str, tuple[Alternative, ...]] = {}
        for c in np.unique(frame.comp[lost]):
            gone = np.unique(frame.sup[lost[frame.comp[lost] == c]])
            makers = self._maker_by_comp[self._maker_start[c] : self._maker_start[c + 1]]
            makers = makers[~removed[makers] & ~halted[makers] & ~np.isin(makers, gone)]
            links_c = self._by_comp[self._comp_start[c] : self._comp_start[c + 1]]
            sellers, n_cust = np.unique(frame.sup[links_c], return_counts=True)
            pos = np.minimum(np.searchsorted(sellers, makers), max(sellers.shape[0] - 1, 0))
            cust = (
                np.where(sellers[pos] == makers, n_cust[pos], 0) if sellers.shape[0] else makers * 0
            )
            # local first, then larger size class, then more current customers
            order = np.lexsort((makers, -cust, -frame.firm_size[makers], codes[makers] != home))[
                :10
            ]
            out[frame.comp_ids[c]] = tuple(
                Alternative(
                    firm_id=frame.firm_ids[m],
                    firm=frame.firm_names[m],
                    region=names[codes[m]],
                    local=bool(codes[m] == home),
                    size=_SIZES[frame.firm_size[m]],
                    current_customers=int(n),
                )
                for m, n in zip(makers[order].tolist(), cust[order].tolist(), strict=True)
            )
        return out


def what_if(frame: ChainFrame, removal: Removal, *, halt_share: float = 1.0) -> WhatIfResult:
    """One-shot :meth:`WhatIf.run` (index the chain, then run ``removal``)."""
    return WhatIf(frame).run(removal, halt_share=halt_share)
