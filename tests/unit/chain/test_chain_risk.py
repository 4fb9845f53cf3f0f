"""Supplier risk on the hand-computed six-firm chain, with and without live inputs."""

from __future__ import annotations

import pytest
from chain_fixtures import small_chain

from ironbridge.chain import ChainFrame, LiveInputs, supplier_risk
from ironbridge.model import InvalidInput


def test_structural_scores_by_hand() -> None:
    ranked = supplier_risk(ChainFrame.from_chain(small_chain()))
    scores = {r.firm_id: r for r in ranked}
    # motW supplies nobody and the OEM supplies nobody: not suppliers
    assert set(scores) == {"packA", "motZ", "cellX", "cellY"}
    # packA: 100 x 1.0 x importance 2 / 100 = 2, clipped to 1; motZ: 50 x 1 x 1 / 50 = 1
    assert scores["packA"].exposure == 1.0
    assert scores["motZ"].exposure == 1.0
    assert scores["cellX"].exposure == pytest.approx(0.75)
    assert scores["cellY"].exposure == pytest.approx(0.25)
    # no live data: (1 - P) taken as 0.5 -> 100 x exposure x 0.75
    assert [r.score for r in ranked] == [75.0, 75.0, 56.25, 18.75]
    assert [r.firm_id for r in ranked] == ["motZ", "packA", "cellX", "cellY"]
    assert not any(r.live for r in ranked)
    assert scores["motZ"].sole_source_inputs == 1
    assert scores["cellX"].sole_source_inputs == 0
    assert "no live data" in scores["cellX"].reason


def test_live_performance_moves_the_score() -> None:
    live = {
        "cellX": LiveInputs(assets=("plant-x",), oee=0.9, delivery_performance=0.7),
        "motZ": LiveInputs(assets=("plant-z",), oee=0.3, fault_events=4),
        "cellY": LiveInputs(assets=("plant-y",)),
    }
    scores = {r.firm_id: r for r in supplier_risk(ChainFrame.from_chain(small_chain()), live)}
    # cellX: P = 0.8 -> 100 x 0.75 x (0.5 + 0.5 x 0.2) = 45
    assert scores["cellX"].score == pytest.approx(45.0)
    assert scores["cellX"].live
    assert scores["cellX"].performance == pytest.approx(0.8)
    # motZ: P = 0.3 (OEE only) -> 100 x 1 x (0.5 + 0.35) = 85
    assert scores["motZ"].score == pytest.approx(85.0)
    assert "live OEE 30%" in scores["motZ"].reason
    assert "4 fault events" in scores["motZ"].reason
    # linked but silent plants count as unknown
    assert not scores["cellY"].live
    assert scores["cellY"].score == pytest.approx(18.75)
    assert "linked, no OEE/delivery data" in scores["cellY"].reason


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_live_inputs_are_fractions(bad: float) -> None:
    with pytest.raises(InvalidInput):
        LiveInputs(oee=bad)
