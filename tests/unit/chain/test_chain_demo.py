"""The demo chain: realistic size, deterministic, and its deliberate weak links rank first."""

from __future__ import annotations

import numpy as np
import pytest

from ironbridge.chain import (
    DEMO_REGION,
    DEMO_WEAK_LINKS,
    ChainFrame,
    RegionLevel,
    WeakFlag,
    demo_chain,
    generate_chain,
    leader_localisation,
    region_report,
    weak_links,
)
from ironbridge.model import InvalidInput


def test_demo_size_and_determinism() -> None:
    chain = demo_chain()
    assert 130 <= len(chain.enterprises) <= 170
    assert 30 <= len(chain.components) <= 40
    assert sum(f.is_leader for f in chain.enterprises) == 3
    assert demo_chain() == chain
    assert demo_chain(seed=8) != chain
    cities = {f.city for f in chain.enterprises if f.province == DEMO_REGION}
    assert {"Jinan", "Qingdao", "Yantai", "Liaocheng"} <= cities


def test_deliberate_weak_links_rank_first() -> None:
    frame = ChainFrame.from_chain(demo_chain())
    ranked = weak_links(frame, DEMO_REGION)
    assert {w.component_id for w in ranked[:3]} == set(DEMO_WEAK_LINKS)
    assert ranked[3].score < 0.5 * ranked[2].score
    by_id = {w.component_id: w for w in ranked}
    chips = by_id["power_chip"]
    assert WeakFlag.CHOKE in chips.flags
    assert WeakFlag.GAP in chips.flags
    assert chips.reason.startswith(
        "single supplier for power semiconductor chips (HHI 1.00), located outside Shandong"
    )
    assert by_id["cathode"].hhi == pytest.approx(0.95**2 + 0.05**2)
    bms = by_id["bms"]
    assert bms.dependence == 0.0
    assert bms.min_cover_days == 3
    assert "3 days inventory cover" in bms.reason


def test_demo_region_figures_are_plausible() -> None:
    frame = ChainFrame.from_chain(demo_chain())
    sd = region_report(frame).get(DEMO_REGION)
    assert 0.9 <= sd.completeness < 1.0  # power chips and cathode are missing
    assert 0.6 < sd.local_rate_value < 0.95
    assert leader_localisation(frame, "L-QD-CAR").n_suppliers > 0


def test_generate_chain_is_consistent() -> None:
    frame = generate_chain(2_000, 20_000, seed=3)
    assert (frame.n_firms, frame.n_links) == (2_000, 20_000)
    # every link delivers a component its supplier makes, to a maker of a higher level
    made = np.zeros((frame.n_firms, frame.n_comps), bool)
    made[frame.make_firm, frame.make_comp] = True
    assert made[frame.sup, frame.comp].all()
    depth = np.zeros(frame.n_comps, int)
    for _ in range(4):
        depth = np.where(frame.comp_parent >= 0, depth[frame.comp_parent] + 1, 0)
    firm_level = np.zeros(frame.n_firms, int)
    firm_level[frame.make_firm] = depth[frame.make_comp]
    assert (firm_level[frame.cus] < depth[frame.comp]).all()
    report = region_report(frame, RegionLevel.CITY)
    assert len(report.metrics) == 310


def test_weak_links_unknown_region() -> None:
    with pytest.raises(InvalidInput):
        weak_links(ChainFrame.from_chain(demo_chain()), "Nowhere")
