"""Every metric of domain.md 5.3 against the hand-computed small chain (see chain_fixtures)."""

from __future__ import annotations

import math

import pytest
from chain_fixtures import small_chain

from ironbridge.chain import (
    ChainFrame,
    RegionLevel,
    WeakFlag,
    chain_summary,
    leader_localisation,
    outside_dependence,
    region_report,
    weak_links,
)
from ironbridge.model import InvalidInput


@pytest.fixture
def frame() -> ChainFrame:
    return ChainFrame.from_chain(small_chain())


def test_completeness_per_region(frame: ChainFrame) -> None:
    report = region_report(frame, RegionLevel.PROVINCE)
    sd, js = report.get("Shandong"), report.get("Jiangsu")
    # Shandong makes V (oem), P (packA), C (cellY), M (motW): 4 / 4; weighted (1+2+1+1)/5
    assert sd.completeness == 1.0
    assert sd.completeness_weighted == 1.0
    # Jiangsu makes C and M: 2 / 4; weighted (1 + 1) / (1 + 2 + 1 + 1) = 0.4
    assert js.completeness == 0.5
    assert js.completeness_weighted == pytest.approx(0.4)
    assert (sd.n_firms, js.n_firms) == (4, 2)


def test_local_sourcing_rates(frame: ChainFrame) -> None:
    sd = region_report(frame).get("Shandong")
    # bought by Shandong firms: links 1..4 = 100 + 50 + 60 + 20 = 230; local: 100 + 20 = 120
    assert sd.purchase_value == 230
    assert sd.local_rate_value == pytest.approx(120 / 230)
    assert sd.external_dependence == pytest.approx(110 / 230)
    # suppliers packA, motZ, cellX, cellY; local packA, cellY -> 2 / 4
    assert sd.local_rate_count == 0.5
    # parts bought P, M, C; with a local source P, C -> 2 / 3
    assert sd.local_rate_part == pytest.approx(2 / 3)
    # single-sourced in Shandong: P (packA, 100) and M (motZ, 50) -> 150 / 230
    assert sd.single_source_share == pytest.approx(150 / 230)


def test_region_without_purchases_is_nan(frame: ChainFrame) -> None:
    js = region_report(frame).get("Jiangsu")
    assert js.purchase_value == 0
    assert math.isnan(js.local_rate_value)
    assert math.isnan(js.local_rate_count)
    assert math.isnan(js.single_source_share)


def test_city_level_changes_what_is_local(frame: ChainFrame) -> None:
    jinan = region_report(frame, RegionLevel.CITY).get("Shandong/Jinan")
    # oem buys P from Qingdao (100) and M from Suzhou (50): nothing local to Jinan
    assert jinan.local_rate_value == 0.0
    # Jinan makes V and M: 2 / 4
    assert jinan.completeness == 0.5


def test_hhi_and_single_source_chain_wide(frame: ChainFrame) -> None:
    s = chain_summary(frame)
    hhi = dict(zip(s.components, s.hhi, strict=True))
    # C: cellX 60 / 80 = 0.75, cellY 0.25 -> 0.5625 + 0.0625
    assert hhi["C"] == pytest.approx(0.625)
    assert hhi["P"] == 1.0
    assert hhi["M"] == 1.0
    assert math.isnan(hhi["V"])  # nobody supplies the finished vehicle
    assert dict(zip(s.components, s.n_suppliers.tolist(), strict=True)) == {
        "V": 0,
        "P": 1,
        "C": 2,
        "M": 1,
    }
    assert dict(zip(s.components, s.n_makers.tolist(), strict=True)) == {
        "V": 1,
        "P": 1,
        "C": 2,
        "M": 2,
    }
    assert s.single_source == ("P", "M")
    assert s.single_source_share == pytest.approx(150 / 230)


def test_hhi_per_region_and_component(frame: ChainFrame) -> None:
    t = region_report(frame, RegionLevel.CITY).table
    qd = t.regions.index("Shandong/Qingdao")
    c = t.components.index("C")
    # only packA (Qingdao) buys cells: same 0.625;
    # dependence: Suzhou 60 + Yantai 20 of 80 are all outside Qingdao
    assert t.hhi[qd, c] == pytest.approx(0.625)
    assert t.dependence[qd, c] == 1.0
    assert t.min_cover[qd, c] == 7
    assert t.max_recovery[qd, c] == 40
    assert t.n_suppliers[qd, c] == 2


def test_leader_localisation(frame: ChainFrame) -> None:
    loc = leader_localisation(frame, "oem")
    # oem buys P 100 from packA (Shandong) and M 50 from motZ (Jiangsu)
    assert loc.region == "Shandong"
    assert (loc.total_value, loc.local_value) == (150, 100)
    assert loc.rate_value == pytest.approx(2 / 3)
    assert (loc.n_suppliers, loc.n_local_suppliers, loc.rate_count) == (2, 1, 0.5)
    assert (loc.n_parts, loc.n_local_parts, loc.rate_part) == (2, 1, 0.5)
    jiangsu = leader_localisation(frame, "oem", region="Jiangsu")
    assert jiangsu.rate_value == pytest.approx(1 / 3)


def test_outside_dependence(frame: ChainFrame) -> None:
    (src,) = outside_dependence(frame, RegionLevel.PROVINCE, "Shandong")
    # motZ 50 + cellX 60 from Jiangsu, of 230
    assert (src.region, src.value) == ("Jiangsu", 110)
    assert src.share == pytest.approx(110 / 230)


def test_weak_links_scores_and_order(frame: ChainFrame) -> None:
    ranked = weak_links(frame, "Shandong")
    by_id = {w.component_id: w for w in ranked}
    # score = importance x HHI x max(dependence x (1 - local coverage),
    #                                max(0, 1 - cover / recovery))
    # P: 2 x 1 x max(0 x 0, 1 - 10/30) = 4/3; single supplier and critical -> choke
    assert by_id["P"].score == pytest.approx(4 / 3)
    assert by_id["P"].flags == (WeakFlag.CHOKE, WeakFlag.RESILIENCE)
    # M: 1 x 1 x max(1 x (1 - 1/2), 1 - 5/20) = 0.75
    assert by_id["M"].score == pytest.approx(0.75)
    assert by_id["M"].flags == (WeakFlag.EXTERNAL, WeakFlag.RESILIENCE)
    # C: 1 x 0.625 x max(0.75 x (1 - 1/2), 1 - 7/40) = 0.625 x 0.825
    assert by_id["C"].score == pytest.approx(0.625 * 0.825)
    assert by_id["C"].dependence == pytest.approx(0.75)
    assert by_id["C"].local_coverage == 0.5
    assert [w.component_id for w in ranked] == ["P", "M", "C"]  # V: made locally, not bought
    assert by_id["M"].reason == (
        "single supplier for motor (HHI 1.00), located outside Shandong, "
        "5 days inventory cover vs 20 days to recover"
    )


def test_weak_links_gaps(frame: ChainFrame) -> None:
    ranked = weak_links(frame, "Jiangsu")
    # Jiangsu buys nothing; P and V have no maker there -> gaps; P: 2 x 1 x 1 x 1, V: 1 x 1 x 1 x 1
    assert [(w.component_id, w.score) for w in ranked] == [("P", 2.0), ("V", 1.0)]
    # P is also critical and single-sourced chain-wide (packA) -> choke
    assert [w.flags for w in ranked] == [(WeakFlag.GAP, WeakFlag.CHOKE), (WeakFlag.GAP,)]
    assert "no maker in Jiangsu" in ranked[0].reason


def test_unknown_region_and_leader_are_invalid(frame: ChainFrame) -> None:
    with pytest.raises(InvalidInput) as exc:
        weak_links(frame, "Atlantis")
    assert exc.value.field == "region"
    with pytest.raises(InvalidInput):
        leader_localisation(frame, "nobody")
