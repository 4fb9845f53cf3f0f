"""What-if removals on chains with known single points of failure."""

from __future__ import annotations

import pytest
from chain_fixtures import small_chain

from ironbridge.chain import (
    DEMO_REGION,
    ChainFrame,
    Removal,
    WhatIf,
    demo_chain,
)
from ironbridge.model import InvalidInput


@pytest.fixture
def engine() -> WhatIf:
    return WhatIf(ChainFrame.from_chain(small_chain()))


def test_single_source_supplier_stops_the_product(engine: WhatIf) -> None:
    r = engine.run(Removal.supplier("packA"))
    assert r.removed == ("packA",)
    assert r.halted == ("oem",)
    (p,) = r.products
    assert (p.firm_id, p.products, p.lost_inputs) == ("oem", ("V",), ("P",))
    # oem holds 10 days of packs; packA needs 30 days to recover -> 20 days without supply
    assert (p.time_to_survive_days, p.time_to_recover_days, p.outage_days) == (10, 30, 20)
    assert r.alternatives == {"P": ()}  # nobody else makes packs


def test_removed_motor_maker_has_a_local_alternative(engine: WhatIf) -> None:
    r = engine.run(Removal.supplier("motZ"))
    (p,) = r.products
    assert (p.time_to_survive_days, p.time_to_recover_days, p.outage_days) == (5, 20, 15)
    (alt,) = r.alternatives["M"]
    assert (alt.firm_id, alt.region, alt.local, alt.current_customers) == (
        "motW",
        "Shandong",
        True,
        0,
    )


def test_partial_loss_does_not_halt_by_default(engine: WhatIf) -> None:
    r = engine.run(Removal.source("cellX", "C"))
    assert r.halted == ()
    assert r.products == ()
    (loss,) = r.partial
    assert (loss.firm_id, loss.component_id, loss.lost_share) == ("packA", "C", 0.75)
    assert [a.firm_id for a in r.alternatives["C"]] == ["cellY"]


def test_halt_share_propagates_two_tiers(engine: WhatIf) -> None:
    r = engine.run(Removal.source("cellX", "C"), halt_share=0.5)
    assert set(r.halted) == {"packA", "oem"}
    # packA runs 7 days on its cells from cellX, then oem 10 more on its packs: 17
    assert r.time_to_survive == {"packA": 7, "oem": 17}
    # cells return when cellX does (40 days); packA and then oem restart then
    assert r.time_to_recover == {"packA": 40, "oem": 40}
    (p,) = r.products
    assert p.outage_days == 23


def test_losing_every_cell_source(engine: WhatIf) -> None:
    r = engine.run(Removal(firms=("cellX", "cellY")))
    assert set(r.halted) == {"packA", "oem"}
    # earliest path: cellX's 7 days (cellY's 14 days run out later); + 10 days of packs at oem
    assert r.time_to_survive["oem"] == 17
    # cells are back when the first source returns: cellY after 10 days
    assert r.time_to_recover["oem"] == 10
    assert r.products[0].outage_days == 0  # inventory bridges the gap


def test_region_removal(engine: WhatIf) -> None:
    r = engine.run(Removal.of_region("Jiangsu"))
    assert set(r.removed) == {"cellX", "motZ"}
    assert r.halted == ("oem",)  # loses its only motor source
    assert [(x.firm_id, x.component_id) for x in r.partial] == [("packA", "C")]
    assert r.products[0].time_to_survive_days == 5


def test_bad_removals(engine: WhatIf) -> None:
    with pytest.raises(InvalidInput) as exc:
        engine.run(Removal.source("motW", "M"))  # makes motors but supplies nobody
    assert exc.value.field == "sources"
    with pytest.raises(InvalidInput):
        engine.run(Removal.supplier("ghost"))
    with pytest.raises(InvalidInput):
        engine.run(Removal.supplier("motZ"), halt_share=0)


def test_demo_single_points_of_failure() -> None:
    engine = WhatIf(ChainFrame.from_chain(demo_chain()))
    leaders = {"L-JN-TRUCK", "L-LC-BUS", "L-QD-CAR"}
    chips = engine.run(Removal.source("POWER-CHIP-01", "power_chip"))
    assert {p.firm_id for p in chips.products} == leaders
    assert all(p.lost_inputs == ("e_drive",) for p in chips.products)
    assert all(p.time_to_recover_days == 180 and p.outage_days > 0 for p in chips.products)
    assert chips.alternatives == {"power_chip": ()}
    bms = engine.run(Removal.supplier("BMS-01"))
    assert {p.firm_id for p in bms.products} == leaders
    # 3 days of BMS at the pack makers plus the leaders' pack cover
    assert all(p.time_to_survive_days > 3 for p in bms.products)
    # a multi-sourced supplier is no single point of failure
    tyres = engine.run(Removal.supplier("TYRE-01"))
    assert tyres.products == ()
    assert tyres.alternatives["tyre"]
    assert all(a.local and a.region == DEMO_REGION for a in tyres.alternatives["tyre"])
