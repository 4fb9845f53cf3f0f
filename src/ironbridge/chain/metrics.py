"""Chain metrics of domain.md section 5.3, vectorised over the arrays of a ChainFrame."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from ironbridge.chain.frame import BoolArray, ChainFrame, FloatArray, IntArray
from ironbridge.chain.model import RegionLevel
from ironbridge.model import InvalidInput

#: domain.md 5.3: HHI above 0.25 is "high" (US DoJ-style bands 0.15 / 0.25).
HHI_HIGH = 0.25


def _ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """Return num / den, NaN where den is 0 (no purchases: the rate is undefined)."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _wsum(index: IntArray, weights: npt.ArrayLike, n: int) -> FloatArray:
    """Sum ``weights`` per ``index`` value (a float bincount)."""
    return np.bincount(index, weights=np.asarray(weights, np.float64), minlength=n).astype(
        np.float64
    )


def _distinct(keys: IntArray) -> IntArray:
    """Sorted distinct values (sort-based; numpy's hash path is slower on 1M int64 keys)."""
    ordered = np.sort(keys)
    keep = np.ones(ordered.shape[0], np.bool_)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep]


def _group_hhi(
    group: IntArray, supplier: IntArray, value: FloatArray, n_groups: int, n_firms: int
) -> tuple[FloatArray, IntArray]:
    """HHI and distinct-supplier count per group from link rows.

    Shares are supplier value shares within the group; a group whose total value is 0
    falls back to equal shares per distinct supplier.
    """
    key = group * n_firms + supplier
    uniq, inverse = np.unique(key, return_inverse=True)
    val = _wsum(inverse, value, uniq.shape[0])
    ugroup = uniq // n_firms
    total = _wsum(ugroup, val, n_groups)
    n_sup = np.bincount(ugroup, minlength=n_groups)
    share = _ratio(val, total[ugroup])
    hhi_val = _wsum(ugroup, np.nan_to_num(share) ** 2, n_groups)
    hhi = np.where(total > 0, hhi_val, _ratio(np.ones(n_groups), n_sup.astype(np.float64)))
    return hhi, n_sup


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainSummary:
    """Chain-wide figures per component (index = position in ``components``)."""

    components: tuple[str, ...]
    value: FloatArray
    hhi: FloatArray
    n_suppliers: IntArray
    n_makers: IntArray
    single_source: tuple[str, ...]
    single_source_share: float


def chain_summary(frame: ChainFrame) -> ChainSummary:
    """Return HHI, supplier counts and single-source components over the whole chain.

    Single-source (domain.md 5.3) uses the number of distinct suppliers of the component
    in the supply links as ``qualified_sources_count``.
    """
    n_c = frame.n_comps
    hhi, n_sup = _group_hhi(frame.comp, frame.sup, frame.value, n_c, frame.n_firms)
    value = _wsum(frame.comp, frame.value, n_c)
    single = n_sup == 1
    total = float(value.sum())
    return ChainSummary(
        components=frame.comp_ids,
        value=value,
        hhi=hhi,
        n_suppliers=n_sup,
        n_makers=np.bincount(frame.make_comp, minlength=n_c),
        single_source=tuple(frame.comp_ids[i] for i in np.flatnonzero(single)),
        single_source_share=float(value[single].sum()) / total if total > 0 else math.nan,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionComponentTable:
    """Matrices indexed ``[region, component]``: the purchases of firms in the region.

    A purchase belongs to the region of its *customer*; it is local when the supplier is
    in the same region. NaN marks (region, component) pairs with no purchase.
    """

    level: RegionLevel
    regions: tuple[str, ...]
    components: tuple[str, ...]
    makers_local: IntArray
    purchase_value: FloatArray
    local_value: FloatArray
    purchase_links: IntArray
    local_links: IntArray
    n_suppliers: IntArray
    hhi: FloatArray
    dependence: FloatArray
    min_cover: FloatArray
    max_recovery: FloatArray

    @property
    def covered(self) -> BoolArray:
        """True where the region has at least one firm making the component."""
        return self.makers_local > 0


def component_table(frame: ChainFrame, level: RegionLevel) -> RegionComponentTable:
    """Compute the per-(region, component) matrices at ``level`` in one pass of bincounts."""
    region = frame.firm_region[level]
    n_r, n_c = len(frame.region_names[level]), frame.n_comps
    size = n_r * n_c
    makers = np.bincount(region[frame.make_firm] * n_c + frame.make_comp, minlength=size)
    cr = region[frame.cus]
    local = cr == region[frame.sup]
    rc = cr * n_c + frame.comp
    purchase = _wsum(rc, frame.value, size)
    local_value = _wsum(rc, np.where(local, frame.value, 0.0), size)
    links = np.bincount(rc, minlength=size)
    local_links = _wsum(rc, local, size).astype(np.int64)
    hhi, n_sup = _group_hhi(rc, frame.sup, frame.value, size, frame.n_firms)
    min_cover = np.full(size, np.inf)
    np.minimum.at(min_cover, rc, frame.cover)
    max_rec = np.zeros(size)
    np.maximum.at(max_rec, rc, frame.recovery)
    bought = links > 0
    shape = (n_r, n_c)
    return RegionComponentTable(
        level=level,
        regions=frame.region_names[level],
        components=frame.comp_ids,
        makers_local=makers.reshape(shape),
        purchase_value=purchase.reshape(shape),
        local_value=local_value.reshape(shape),
        purchase_links=links.reshape(shape),
        local_links=local_links.reshape(shape),
        n_suppliers=n_sup.reshape(shape),
        hhi=np.where(bought, hhi, np.nan).reshape(shape),
        dependence=np.where(bought, 1.0 - _ratio(local_value, purchase), np.nan).reshape(shape),
        min_cover=np.where(bought, min_cover, np.nan).reshape(shape),
        max_recovery=np.where(bought, max_rec, np.nan).reshape(shape),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionMetrics:
    """The headline figures of one region (domain.md 5.3); NaN when undefined."""

    region: str
    n_firms: int
    completeness: float
    completeness_weighted: float
    purchase_value: float
    local_rate_value: float
    local_rate_count: float
    local_rate_part: float
    external_dependence: float
    single_source_share: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RegionReport:
    """Every region's metrics at one level, plus the matrix they come from."""

    level: RegionLevel
    metrics: tuple[RegionMetrics, ...]
    table: RegionComponentTable
    summary: ChainSummary

    def get(self, region: str) -> RegionMetrics:
        """Return the metrics of ``region``; InvalidInput if no firm is there."""
        for m in self.metrics:
            if m.region == region:
                return m
        raise InvalidInput("region", f"no enterprise in {self.level.value} {region!r}")


def region_report(frame: ChainFrame, level: RegionLevel = RegionLevel.PROVINCE) -> RegionReport:
    """Compute completeness, local sourcing, dependence and single-source share per region.

    Definitions (domain.md 5.3):

    * completeness = #segments with >= 1 local maker / #segments; weighted by importance;
    * local sourcing by value = Σ value from suppliers in R / Σ value bought by firms in R;
    * by count = #distinct local suppliers / #distinct suppliers of firms in R;
    * by part = #components bought with >= 1 local source / #components bought;
    * external dependence = 1 − local sourcing by value;
    * single-source share = Σ value of components that firms in R buy from exactly one
      supplier / Σ value bought.
    """
    table = component_table(frame, level)
    region = frame.firm_region[level]
    n_r = len(table.regions)
    imp = frame.comp_importance
    covered = table.covered
    completeness = covered.mean(axis=1) if frame.n_comps else np.full(n_r, np.nan)
    weighted = _ratio(covered @ imp, np.full(n_r, imp.sum()))
    purchase = table.purchase_value.sum(axis=1)
    local_value = table.local_value.sum(axis=1)
    # distinct (customer region, supplier) pairs for the by-count rate
    pairs = _distinct(region[frame.cus] * frame.n_firms + frame.sup)
    pr, ps = pairs // frame.n_firms, pairs % frame.n_firms
    n_sup = np.bincount(pr, minlength=n_r).astype(np.float64)
    n_local = _wsum(pr, region[ps] == pr, n_r)
    bought = table.purchase_links > 0
    n_parts = bought.sum(axis=1).astype(np.float64)
    n_local_parts = (table.local_links > 0).sum(axis=1).astype(np.float64)
    single = np.where(table.n_suppliers == 1, table.purchase_value, 0.0).sum(axis=1)
    n_firms = np.bincount(region, minlength=n_r)
    rate_value = _ratio(local_value, purchase)
    rate_count = _ratio(n_local, n_sup)
    rate_part = _ratio(n_local_parts, n_parts)
    single_share = _ratio(single, purchase)
    metrics = tuple(
        RegionMetrics(
            region=table.regions[r],
            n_firms=int(n_firms[r]),
            completeness=float(completeness[r]),
            completeness_weighted=float(weighted[r]),
            purchase_value=float(purchase[r]),
            local_rate_value=float(rate_value[r]),
            local_rate_count=float(rate_count[r]),
            local_rate_part=float(rate_part[r]),
            external_dependence=float(1.0 - rate_value[r]),
            single_source_share=float(single_share[r]),
        )
        for r in range(n_r)
    )
    return RegionReport(level=level, metrics=metrics, table=table, summary=chain_summary(frame))


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaderLocalisation:
    """How much of a chain leader's (链主) purchases come from its region."""

    leader_id: str
    region: str
    total_value: float
    local_value: float
    rate_value: float
    n_suppliers: int
    n_local_suppliers: int
    rate_count: float
    n_parts: int
    n_local_parts: int
    rate_part: float


def leader_localisation(
    frame: ChainFrame,
    leader_id: str,
    level: RegionLevel = RegionLevel.PROVINCE,
    region: str | None = None,
) -> LeaderLocalisation:
    """Local sourcing of one firm's purchases (domain.md 5.3, "for a 链主").

    ``region`` defaults to the leader's own region at ``level``; pass ``China``-wide
    keys via a coarser level to get 国产化率-style figures.
    """
    leader = frame.firm_index(leader_id)
    codes = frame.firm_region[level]
    r = codes[leader] if region is None else frame.region_index(level, region)
    mine = frame.cus == leader
    sup, comp, value = frame.sup[mine], frame.comp[mine], frame.value[mine]
    local = codes[sup] == r
    suppliers = np.unique(sup)
    parts = np.unique(comp)
    local_parts = np.unique(comp[local])
    total, local_value = float(value.sum()), float(value[local].sum())
    n_local_sup = int((codes[suppliers] == r).sum())
    return LeaderLocalisation(
        leader_id=leader_id,
        region=frame.region_names[level][r],
        total_value=total,
        local_value=local_value,
        rate_value=local_value / total if total > 0 else math.nan,
        n_suppliers=int(suppliers.shape[0]),
        n_local_suppliers=n_local_sup,
        rate_count=n_local_sup / suppliers.shape[0] if suppliers.shape[0] else math.nan,
        n_parts=int(parts.shape[0]),
        n_local_parts=int(local_parts.shape[0]),
        rate_part=local_parts.shape[0] / parts.shape[0] if parts.shape[0] else math.nan,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceRegion:
    """One outside region a region buys from."""

    region: str
    value: float
    share: float


def outside_dependence(
    frame: ChainFrame, level: RegionLevel, region: str
) -> tuple[SourceRegion, ...]:
    """Return the outside regions that firms in ``region`` buy from, largest first.

    ``share`` is the value share of the region's total purchases (domain.md 5.3,
    external dependence 对外依存度, broken down by source region).
    """
    codes = frame.firm_region[level]
    r = frame.region_index(level, region)
    mine = codes[frame.cus] == r
    total = float(frame.value[mine].sum())
    src = codes[frame.sup[mine]]
    outside = src != r
    names = frame.region_names[level]
    flow = _wsum(src[outside], frame.value[mine][outside], len(names))
    order = np.argsort(-flow, kind="stable")
    return tuple(
        SourceRegion(region=names[i], value=float(flow[i]), share=float(flow[i]) / total)
        for i in order
        if flow[i] > 0
    )


class WeakFlag(StrEnum):
    """Why a segment is a weak link (domain.md 5.3 "Weak link" and "Resilience")."""

    GAP = "gap"  # 断点: no maker in the region
    CHOKE = "choke"  # 卡点: single supplier and critical
    EXTERNAL = "external"  # external dependence above the threshold
    RESILIENCE = "resilience"  # time-to-recover exceeds time-to-survive


@dataclass(frozen=True, slots=True, kw_only=True)
class WeakLink:
    """A weak segment of a region's chain with its score and the reason in words."""

    component_id: str
    component: str
    score: float
    flags: tuple[WeakFlag, ...]
    hhi: float
    dependence: float
    local_coverage: float
    n_suppliers: int
    min_cover_days: float
    max_recovery_days: float
    reason: str


def weak_links(
    frame: ChainFrame,
    region: str,
    level: RegionLevel = RegionLevel.PROVINCE,
    *,
    dependence_threshold: float = 0.5,
    report: RegionReport | None = None,
) -> tuple[WeakLink, ...]:
    """Rank the weak links of ``region``, highest score first.

    Score (domain.md 5.3) = importance × dependence × (1 − local coverage) × HHI, where
    local coverage is the share of the segment's makers located in the region. A
    resilience term extends it so that local but fragile supply ranks too: the score is
    importance × HHI × max(dependence × (1 − local coverage), exposure) with exposure =
    max(0, 1 − min inventory cover / max recovery days) (TTR vs TTS, domain.md 5.3).
    Segments the region does not buy count as fully dependent, with the chain-wide HHI.
    """
    if report is None or report.level is not level:
        report = region_report(frame, level)
    t, s = report.table, report.summary
    r = frame.region_index(level, region)
    imp, critical = frame.comp_importance, frame.comp_critical
    makers_local = t.makers_local[r]
    local_cov = _ratio(makers_local.astype(np.float64), s.n_makers.astype(np.float64))
    local_cov = np.nan_to_num(local_cov)
    bought = t.purchase_links[r] > 0
    dep = np.where(bought, t.dependence[r], 1.0)
    hhi = np.where(bought, t.hhi[r], np.where(s.n_suppliers > 0, s.hhi, 1.0))
    n_sup = np.where(bought, t.n_suppliers[r], s.n_suppliers)
    cover, rec = t.min_cover[r], t.max_recovery[r]
    exposure = np.where(bought & (rec > 0), np.clip(1.0 - _ratio(cover, rec), 0.0, 1.0), 0.0)
    exposure = np.nan_to_num(exposure)
    score = imp * hhi * np.maximum(dep * (1.0 - local_cov), exposure)
    items: list[WeakLink] = []
    for c in range(frame.n_comps):
        flags: list[WeakFlag] = []
        if makers_local[c] == 0:
            flags.append(WeakFlag.GAP)
        if critical[c] and n_sup[c] == 1:
            flags.append(WeakFlag.CHOKE)
        if bought[c] and dep[c] > dependence_threshold:
            flags.append(WeakFlag.EXTERNAL)
        if bought[c] and rec[c] > cover[c]:
            flags.append(WeakFlag.RESILIENCE)
        if not flags:
            continue
        items.append(
            WeakLink(
                component_id=frame.comp_ids[c],
                component=frame.comp_names[c],
                score=float(score[c]),
                flags=tuple(flags),
                hhi=float(hhi[c]),
                dependence=float(dep[c]),
                local_coverage=float(local_cov[c]),
                n_suppliers=int(n_sup[c]),
                min_cover_days=float(cover[c]),
                max_recovery_days=float(rec[c]),
                reason=_reason(
                    frame.comp_names[c],
                    region,
                    bool(bought[c]),
                    int(n_sup[c]),
                    float(hhi[c]),
                    float(dep[c]),
                    int(makers_local[c]),
                    float(cover[c]),
                    float(rec[c]),
                    bool(critical[c]),
                ),
            )
        )
    items.sort(key=lambda w: (-w.score, w.component_id))
    return tuple(items)


def _reason(
    name: str,
    region: str,
    bought: bool,
    n_sup: int,
    hhi: float,
    dep: float,
    makers_local: int,
    cover: float,
    rec: float,
    critical: bool,
) -> str:
    parts = []
    if not bought:
        parts.append(f"{name} is not bought in {region}")
    elif n_sup == 1:
        parts.append(f"single supplier for {name} (HHI {hhi:.2f})")
    else:
        parts.append(f"{n_sup} suppliers for {name} (HHI {hhi:.2f})")
    if bought:
        if dep >= 1.0:
            parts.append(
                f"located outside {region}" if n_sup == 1 else f"all from outside {region}"
            )
        elif dep > 0:
            parts.append(f"{dep:.0%} of value from outside {region}")
        else:
            parts.append(f"all from inside {region}")
    if makers_local == 0:
        parts.append(f"no maker in {region}")
    if bought:
        parts.append(f"{cover:g} days inventory cover vs {rec:g} days to recover")
    if critical:
        parts.append("critical segment")
    return ", ".join(parts)
