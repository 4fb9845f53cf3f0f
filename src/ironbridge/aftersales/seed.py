"""Seed the demo's service network: stations, technicians, parts, stock, plans, warranty."""

from __future__ import annotations

from ironbridge.aftersales.scenario import PARTS, STATIONS, plan_documents, technicians
from ironbridge.aftersales.service import Aftersales


def seed_service_network(service: Aftersales, per_station: int = 5) -> int:
    """Create (or refresh) 20 Shandong stations, their technicians, stock and plans.

    Returns:
        the number of technicians.
    """
    service.put_station(
        None,
        {
            "id": "wh-central",
            "name": "Central warehouse Jinan",
            "region": "Jinan",
            "lat": 36.70,
            "lon": 117.05,
            "is_warehouse": True,
        },
    )
    for sid, city, lat, lon in STATIONS:
        service.put_station(
            None,
            {"id": sid, "name": f"{city} service station", "region": city, "lat": lat, "lon": lon},
        )
    techs = technicians(per_station)
    for tech in techs:
        service.put_technician(None, tech)
    for part_no, name, cost in PARTS:
        service.put_part(None, {"part_no": part_no, "name": name, "unit_cost": cost})
        service.set_stock(None, "wh-central", part_no, 200.0, reorder_point=50, reorder_qty=200)
        for sid, _, _, _ in STATIONS:
            service.set_stock(None, sid, part_no, 6.0, reorder_point=2, reorder_qty=6)
    for doc in plan_documents():
        service.put_plan(None, doc)
    if not service.list_warranty_terms(None):
        service.put_warranty_term(
            None, {"model": "*", "coverage": "standard", "months": 12, "hours_cap": 2000}
        )
    return len(techs)
