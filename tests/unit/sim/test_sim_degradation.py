"""Slow wear faults of the demo: coolant up and oil pressure down, at different rates."""

from __future__ import annotations

import numpy as np

from ironbridge.sim import plan_fleet
from ironbridge.sim.faults import FaultKind, FaultSchedule


def test_degradation_wears_some_trucks_at_different_rates() -> None:
    plan = plan_fleet(trucks=30, excavators=5, gensets=5, seed=3)
    wear = FaultSchedule.degradation(plan, 4, seed=3)
    devices = {f.device_id for f in wear.faults}
    assert len(devices) == 4
    assert all(d.startswith("truck-") for d in devices)
    assert {f.kind for f in wear.faults} == {FaultKind.OVERHEAT, FaultKind.LOW_OIL_PRESSURE}
    assert len({f.ramp_s for f in wear.faults}) == 4  # one rate per truck
    trucks = [d.device_id for d in plan.devices if d.device_id.startswith("truck-")]
    compiled = FaultSchedule.random(plan, 2, seed=3).merged(wear).compile(trucks)
    assert len(compiled.machine) == 8 + sum(
        1 for f in FaultSchedule.random(plan, 2, seed=3).faults if f.device_id in trucks
    )
    before, late = compiled.effects(0.0), compiled.effects(10 * 3600.0)
    idx = [trucks.index(d) for d in sorted(devices)]
    assert np.all(before.coolant_offset[idx] == 0)
    assert np.all(late.coolant_offset[idx] >= 25.0)
    assert np.all(late.oil_factor[idx] <= 0.5 + 1e-9)
