"""A six-firm chain small enough to compute every metric by hand."""

from __future__ import annotations

from ironbridge.chain import Chain, Component, Enterprise, SupplyLink


def small_chain(tenant_id: str = "acme", tenant_path: str = "/acme/") -> Chain:
    """Vehicle V <- pack P (<- cell C) and motor M.

    Shandong: oem (V, leader, Jinan), packA (P, Qingdao), cellY (C, Yantai), motW (M, Jinan).
    Jiangsu:  cellX (C, Suzhou), motZ (M, Suzhou).

    Links (supplier -> customer, component, share, value, cover, recovery):
      1 packA -> oem   P 1.00 100 cover 10 recovery 30
      2 motZ  -> oem   M 1.00  50 cover  5 recovery 20
      3 cellX -> packA C 0.75  60 cover  7 recovery 40
      4 cellY -> packA C 0.25  20 cover 14 recovery 10
    motW makes motors but supplies nobody: an alternative.
    """
    comps = (
        Component(id="V", name="vehicle", level=0, importance=1.0),
        Component(
            id="P", name="battery pack", parent_id="V", level=1, importance=2.0, critical=True
        ),
        Component(
            id="C", name="battery cells", parent_id="P", level=2, importance=1.0, critical=True
        ),
        Component(id="M", name="motor", parent_id="V", level=1, importance=1.0),
    )
    sd, js = "Shandong", "Jiangsu"
    firms = (
        Enterprise(
            id="oem", name="OEM", province=sd, city="Jinan", components=("V",), is_leader=True
        ),
        Enterprise(id="packA", name="Pack A", province=sd, city="Qingdao", components=("P",)),
        Enterprise(id="cellX", name="Cell X", province=js, city="Suzhou", components=("C",)),
        Enterprise(id="cellY", name="Cell Y", province=sd, city="Yantai", components=("C",)),
        Enterprise(id="motZ", name="Motor Z", province=js, city="Suzhou", components=("M",)),
        Enterprise(id="motW", name="Motor W", province=sd, city="Jinan", components=("M",)),
    )

    def link(
        s: str, c: str, comp: str, share: float, value: float, cover: float, rec: float
    ) -> SupplyLink:
        return SupplyLink(
            supplier_id=s,
            customer_id=c,
            component_id=comp,
            volume_share=share,
            value_cny=value,
            lead_time_days=3,
            inventory_cover_days=cover,
            recovery_days=rec,
        )

    links = (
        link("packA", "oem", "P", 1.0, 100, 10, 30),
        link("motZ", "oem", "M", 1.0, 50, 5, 20),
        link("cellX", "packA", "C", 0.75, 60, 7, 40),
        link("cellY", "packA", "C", 0.25, 20, 14, 10),
    )
    return Chain(
        name="small",
        tenant_id=tenant_id,
        tenant_path=tenant_path,
        components=comps,
        enterprises=firms,
        links=links,
    )
