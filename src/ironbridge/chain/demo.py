"""A fictional Shandong new-energy-vehicle chain for the demo; random chains for benchmarks."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ironbridge.chain.catalog import ChainRepository
from ironbridge.chain.frame import ChainFrame
from ironbridge.chain.model import Chain, Component, Enterprise, RegionLevel, SizeClass, SupplyLink
from ironbridge.model import NotFound

# (id, name, parent, importance, critical, base annual value per buyer in CNY million)
_TREE: tuple[tuple[str, str, str | None, float, bool, float], ...] = (
    ("vehicle", "new-energy vehicle", None, 1.0, False, 0.0),
    ("battery_pack", "battery pack", "vehicle", 1.0, True, 2400.0),
    ("battery_cell", "battery cells", "battery_pack", 1.0, True, 1500.0),
    ("cathode", "cathode material", "battery_cell", 1.0, True, 600.0),
    ("anode", "anode material", "battery_cell", 0.7, False, 200.0),
    ("electrolyte", "electrolyte", "battery_cell", 0.6, False, 120.0),
    ("separator", "separator film", "battery_cell", 0.6, False, 100.0),
    ("bms", "battery management system", "battery_pack", 1.0, True, 160.0),
    ("pack_housing", "pack housing", "battery_pack", 0.4, False, 90.0),
    ("thermal_mgmt", "battery thermal management", "battery_pack", 0.5, False, 110.0),
    ("e_drive", "electric drive system", "vehicle", 1.0, True, 1300.0),
    ("motor", "traction motor", "e_drive", 0.9, True, 500.0),
    ("magnet", "rare-earth magnet", "motor", 0.8, False, 180.0),
    ("copper_winding", "copper winding wire", "motor", 0.4, False, 80.0),
    ("inverter", "motor controller (inverter)", "e_drive", 1.0, True, 420.0),
    ("power_chip", "power semiconductor chips", "inverter", 1.0, True, 160.0),
    ("mcu_chip", "microcontroller chips", "inverter", 0.8, True, 60.0),
    ("reducer", "reduction gearbox", "e_drive", 0.6, False, 200.0),
    ("chassis", "chassis", "vehicle", 0.8, False, 1100.0),
    ("axle", "axles", "chassis", 0.7, False, 300.0),
    ("suspension", "suspension", "chassis", 0.5, False, 180.0),
    ("brake", "brake system", "chassis", 0.7, True, 160.0),
    ("steering", "steering system", "chassis", 0.6, True, 150.0),
    ("tyre", "tyres", "chassis", 0.4, False, 140.0),
    ("body", "body", "vehicle", 0.6, False, 900.0),
    ("body_stamping", "body stampings", "body", 0.5, False, 320.0),
    ("cab", "cab and interior trim", "body", 0.4, False, 260.0),
    ("glass", "automotive glass", "body", 0.3, False, 70.0),
    ("seat", "seats", "body", 0.3, False, 110.0),
    ("electronics", "vehicle electronics", "vehicle", 0.8, False, 600.0),
    ("vcu", "vehicle control unit", "electronics", 0.9, True, 90.0),
    ("wiring_harness", "wiring harness", "electronics", 0.5, False, 160.0),
    ("obc_charger", "on-board charger", "electronics", 0.6, False, 120.0),
    ("lighting", "lighting", "electronics", 0.3, False, 60.0),
)

_SHANDONG = (
    ("Jinan", 36.65, 117.12), ("Qingdao", 36.07, 120.38), ("Yantai", 37.46, 121.45),
    ("Weifang", 36.71, 119.16), ("Zibo", 36.81, 118.05), ("Liaocheng", 36.46, 115.99),
    ("Linyi", 35.10, 118.36), ("Jining", 35.41, 116.59), ("Weihai", 37.51, 122.12),
    ("Dezhou", 37.45, 116.36), ("Binzhou", 37.38, 117.97), ("Dongying", 37.43, 118.67),
    ("Tai'an", 36.19, 117.09), ("Rizhao", 35.42, 119.53), ("Zaozhuang", 34.81, 117.32),
)  # fmt: skip
_OUTSIDE = {
    "Hunan/Zhuzhou": (27.83, 113.15), "Hunan/Changsha": (28.23, 112.94),
    "Guizhou/Guiyang": (26.65, 106.63), "Fujian/Ningde": (26.66, 119.55),
    "Jiangsu/Changzhou": (31.81, 119.97), "Shanghai/Shanghai": (31.23, 121.47),
    "Guangdong/Shenzhen": (22.54, 114.06), "Jiangxi/Ganzhou": (25.83, 114.93),
    "Inner Mongolia/Baotou": (40.66, 109.84), "Zhejiang/Ningbo": (29.87, 121.54),
}  # fmt: skip
# makers per component; names of out-of-province makers pin their location
_OUTSIDE_MAKERS = {
    "power_chip": ["Hunan/Zhuzhou"],
    "cathode": ["Hunan/Changsha", "Guizhou/Guiyang"],
    "battery_cell": ["Fujian/Ningde", "Jiangsu/Changzhou"],
    "mcu_chip": ["Shanghai/Shanghai", "Guangdong/Shenzhen"],
    "magnet": ["Jiangxi/Ganzhou", "Inner Mongolia/Baotou"],
    "separator": ["Zhejiang/Ningbo"],
}
_N_MAKERS = {"power_chip": 1, "cathode": 2, "bms": 1}
_SYLLABLES = (
    "Hua", "Tai", "Heng", "Xin", "Rui", "Sheng", "Da", "Lu", "Qi", "Yuan", "Tong", "Feng",
    "Jin", "Hai", "Long", "Bo", "Kai", "Chuang", "Li", "Wei", "Zhong", "Yu", "Ming", "Jia",
)  # fmt: skip
_SIZES = (SizeClass.LARGE, SizeClass.MEDIUM, SizeClass.MEDIUM, SizeClass.SMALL, SizeClass.SMALL)

#: The deliberate weak links of the demo chain, as component ids.
DEMO_WEAK_LINKS = ("power_chip", "bms", "cathode")
DEMO_REGION = "Shandong"


def demo_chain(*, seed: int = 7, tenant_id: str = "demo", tenant_path: str = "/demo/") -> Chain:
    """Return the fictional Shandong NEV chain (about 140 firms, 34 components).

    Deliberate weak links: power semiconductor chips single-sourced from Hunan with
    10 days cover and 180 days to recover; cathode material bought almost entirely
    (95 %) from one Hunan firm; a single local BMS maker with 3 days cover.
    """
    rng = np.random.default_rng(seed)
    components = tuple(
        Component(
            id=cid, name=name, parent_id=parent, level=_level(cid), importance=imp, critical=crit
        )
        for cid, name, parent, imp, crit, _ in _TREE
    )
    firms: list[Enterprise] = [
        _firm("L-JN-TRUCK", "Jinan Huanghe Heavy Truck Co.", "Jinan", rng, leader=True),
        _firm("L-LC-BUS", "Liaocheng Tongyun Bus Co.", "Liaocheng", rng, leader=True),
        _firm("L-QD-CAR", "Qingdao Haixin Automobile Co.", "Qingdao", rng, leader=True),
    ]
    makers: dict[str, list[str]] = {"vehicle": [f.id for f in firms]}
    used_names: set[str] = {f.name for f in firms}
    for cid, name, _parent, _imp, _crit, _val in _TREE[1:]:
        level = _level(cid)
        n = _N_MAKERS.get(cid, 3 if level == 1 else 5 if level == 2 else 4)
        outside = _OUTSIDE_MAKERS.get(cid, [])
        makers[cid] = []
        for k in range(n):
            where = outside[k] if k < len(outside) else None
            city = _SHANDONG[int(rng.integers(len(_SHANDONG)))][0] if where is None else where
            label = city.split("/")[-1]
            while True:
                a, b = (_SYLLABLES[int(i)] for i in rng.integers(len(_SYLLABLES), size=2))
                trade = f"{label} {a}{b.lower()}"
                full = f"{trade} {name.split(' (')[0].title()} Co."
                if full not in used_names:
                    break
            used_names.add(full)
            fid = f"{cid.upper().replace('_', '-')}-{k + 1:02d}"
            firms.append(_firm(fid, full, city, rng, components=(cid,)))
            makers[cid].append(fid)
    links: list[SupplyLink] = []
    for cid, _name, parent, _imp, _crit, base in _TREE[1:]:
        assert parent is not None
        for buyer in makers[parent]:
            links.extend(_buy(rng, cid, buyer, makers[cid], base))
    return Chain(
        name="Shandong new-energy vehicles",
        tenant_id=tenant_id,
        tenant_path=tenant_path,
        components=components,
        enterprises=tuple(firms),
        links=tuple(links),
    )


def _level(cid: str) -> int:
    parents = {c[0]: c[2] for c in _TREE}
    level, node = 0, parents[cid]
    while node is not None:
        level, node = level + 1, parents[node]
    return level


def _firm(
    fid: str,
    name: str,
    city: str,
    rng: np.random.Generator,
    *,
    leader: bool = False,
    components: tuple[str, ...] = ("vehicle",),
) -> Enterprise:
    if "/" in city:
        province, city_name = city.split("/")
        lat, lon = _OUTSIDE[city]
    else:
        province, city_name = "Shandong", city
        lat, lon = next((la, lo) for c, la, lo in _SHANDONG if c == city)
    return Enterprise(
        id=fid,
        name=name,
        province=province,
        city=city_name,
        district=f"{city_name} high-tech zone",
        lat=round(lat + float(rng.normal(0, 0.05)), 4),
        lon=round(lon + float(rng.normal(0, 0.05)), 4),
        size=SizeClass.LARGE if leader else _SIZES[int(rng.integers(len(_SIZES)))],
        components=components,
        is_leader=leader,
    )


def _buy(
    rng: np.random.Generator, cid: str, buyer: str, sellers: list[str], base: float
) -> list[SupplyLink]:
    need = base * 1e6 * float(rng.uniform(0.6, 1.4))
    if cid == "power_chip":
        return [_link(buyer, sellers[0], cid, 1.0, need, cover=10.0, recovery=180.0, lead=45.0)]
    if cid == "bms":
        return [_link(buyer, sellers[0], cid, 1.0, need, cover=3.0, recovery=60.0, lead=7.0)]
    if cid == "cathode":
        return [
            _link(buyer, sellers[0], cid, 0.95, need * 0.95, cover=20.0, recovery=90.0, lead=30.0),
            _link(buyer, sellers[1], cid, 0.05, need * 0.05, cover=20.0, recovery=90.0, lead=30.0),
        ]
    k = min(len(sellers), int(rng.integers(2, 4)))
    chosen = rng.choice(len(sellers), size=k, replace=False)
    shares = rng.dirichlet(np.full(k, 3.0))
    return [
        _link(
            buyer,
            sellers[int(s)],
            cid,
            round(float(sh), 4),
            need * float(sh),
            cover=float(rng.integers(20, 41)),
            recovery=float(rng.integers(7, 25)),
            lead=float(rng.integers(2, 21)),
        )
        for s, sh in zip(chosen, shares, strict=True)
    ]


def _link(
    customer: str,
    supplier: str,
    cid: str,
    share: float,
    value: float,
    *,
    cover: float,
    recovery: float,
    lead: float,
) -> SupplyLink:
    return SupplyLink(
        supplier_id=supplier,
        customer_id=customer,
        component_id=cid,
        volume_share=share,
        value_cny=round(value, -3),
        lead_time_days=lead,
        inventory_cover_days=cover,
        recovery_days=recovery,
    )


def generate_chain(n_firms: int, n_links: int, seed: int = 0, *, n_comps: int = 200) -> ChainFrame:
    """Return a random layered chain as arrays (for benchmarks; no per-link objects).

    Components form a 4-level tree; each firm makes one component; a link delivers a
    component from one of its makers to a maker of a component of a higher level, so the
    supply graph is a DAG of depth <= 3. Each input (customer, component) has a
    geometric number of sources (mean 2.5). Regions: 31 provinces x 10 cities x 3
    districts.
    """
    rng = np.random.default_rng(seed)
    sizes = np.array([max(1, n_comps // 40), max(2, n_comps // 10), max(4, n_comps // 4)])
    level = np.concatenate(
        [np.full(s, i) for i, s in enumerate(sizes)] + [np.full(n_comps - sizes.sum(), 3)]
    )
    starts = np.concatenate([[0], np.cumsum(sizes)])
    parent = np.full(n_comps, -1, np.int64)
    for lv in (1, 2, 3):
        idx = np.flatnonzero(level == lv)
        parent[idx] = rng.integers(starts[lv - 1], starts[lv], size=idx.shape[0])
    # every component gets at least one maker, the rest at random
    make_comp = np.concatenate(
        [np.arange(n_comps), rng.integers(0, n_comps, size=n_firms - n_comps)]
    )
    make_firm = np.arange(n_firms, dtype=np.int64)
    order = np.argsort(make_comp, kind="stable")
    firms_by_comp = make_firm[order]
    first = np.searchsorted(make_comp[order], np.arange(n_comps))
    count = np.bincount(make_comp, minlength=n_comps)
    # inputs (customer, component) with a geometric number of sources (mean 2.5), so
    # about 40 % of inputs are single-sourced, as in real purchasing data
    k = rng.geometric(0.4, size=n_links)
    n_inputs = int(np.searchsorted(np.cumsum(k), n_links)) + 1
    k = k[:n_inputs]
    k[-1] -= int(k.sum()) - n_links
    in_comp = rng.integers(starts[1], n_comps, size=n_inputs)
    # the buyer makes any component of a higher level (an OEM buys parts directly too)
    pc = (rng.random(n_inputs) * starts[level[in_comp]]).astype(np.int64)
    in_cus = firms_by_comp[first[pc] + (rng.random(n_inputs) * count[pc]).astype(np.int64)]
    comp, cus = np.repeat(in_comp, k), np.repeat(in_cus, k)
    sup = firms_by_comp[first[comp] + (rng.random(n_links) * count[comp]).astype(np.int64)]
    grp = np.unique(cus * n_comps + comp, return_inverse=True)[1]
    share = 1.0 / np.bincount(grp)[grp]
    province = rng.integers(0, 31, size=n_firms)
    city = province * 10 + rng.integers(0, 10, size=n_firms)
    district = city * 3 + rng.integers(0, 3, size=n_firms)
    return ChainFrame(
        comp_ids=tuple(f"c{i}" for i in range(n_comps)),
        comp_names=tuple(f"component {i}" for i in range(n_comps)),
        comp_parent=parent,
        comp_importance=rng.uniform(0.2, 1.0, size=n_comps),
        comp_critical=rng.random(n_comps) < 0.2,
        firm_ids=tuple(f"f{i}" for i in range(n_firms)),
        firm_names=tuple(f"firm {i}" for i in range(n_firms)),
        firm_size=rng.integers(0, 4, size=n_firms),
        firm_leader=make_comp < starts[1],
        region_names={
            RegionLevel.PROVINCE: tuple(f"p{i}" for i in range(31)),
            RegionLevel.CITY: tuple(f"p{i // 10}/c{i}" for i in range(310)),
            RegionLevel.DISTRICT: tuple(f"p{i // 30}/c{i // 3}/d{i}" for i in range(930)),
        },
        firm_region={
            RegionLevel.PROVINCE: province,
            RegionLevel.CITY: city,
            RegionLevel.DISTRICT: district,
        },
        make_firm=make_firm,
        make_comp=make_comp.astype(np.int64),
        sup=sup,
        cus=cus,
        comp=comp,
        share=share,
        value=np.round(rng.lognormal(13.0, 1.5, size=n_links), -2),
        lead=rng.integers(1, 60, size=n_links).astype(np.float64),
        cover=rng.integers(3, 60, size=n_links).astype(np.float64),
        recovery=rng.integers(5, 120, size=n_links).astype(np.float64),
    )


#: the name the demo chain is stored under (an id, so it reads well in URLs)
DEMO_CHAIN_NAME = "shandong-nev"


def install_demo_chain(repo: ChainRepository, *, tenant_id: str, tenant_path: str) -> bool:
    """Store the demo chain as ``shandong-nev`` of ``tenant_id`` unless it exists already.

    Returns:
        True if the chain was stored now, False if it was there (a user's edits stay).
    """
    try:
        repo.header(tenant_id, DEMO_CHAIN_NAME, caller_path=tenant_path)
        return False
    except NotFound:
        pass
    chain = replace(demo_chain(tenant_id=tenant_id, tenant_path=tenant_path), name=DEMO_CHAIN_NAME)
    repo.put(chain, caller_path=tenant_path)
    return True
