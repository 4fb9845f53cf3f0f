"""The demo's showcase faults: one of every kind, at full size well within a minute."""

from __future__ import annotations

from ironbridge.sim import plan_fleet
from ironbridge.sim.faults import DEFAULT_MAGNITUDE, FaultKind, FaultSchedule


def test_showcase_has_every_kind_on_its_own_machine_at_full_size_within_a_minute() -> None:
    plan = plan_fleet(trucks=30, excavators=5, gensets=5, seed=3)
    show = FaultSchedule.showcase(plan, seed=3)
    assert {f.kind for f in show.faults} == set(FaultKind)
    assert len({f.device_id for f in show.faults}) == 2 * len(FaultKind)
    assert all(f.start_s + f.ramp_s < 60.0 for f in show.faults)
    leaving = next(f for f in show.faults if f.kind is FaultKind.LEAVE_REGION)
    assert not leaving.device_id.startswith("genset-")  # a genset cannot leave its region
    for kind in FaultKind:
        fault = next(f for f in show.faults if f.kind is kind)
        ids = [d.device_id for d in plan.devices if d.kind is fault_kind_of(plan, fault.device_id)]
        effects = show.compile(ids).effects(55.0)
        i = ids.index(fault.device_id)
        size = DEFAULT_MAGNITUDE[kind]
        if kind is FaultKind.OVERHEAT:
            assert effects.coolant_offset[i] == size
        elif kind is FaultKind.LOW_OIL_PRESSURE:
            assert abs(effects.oil_factor[i] - (1.0 - size)) < 1e-9
        elif kind is FaultKind.FUEL_THEFT:
            assert effects.fuel_drop[i] == size
        else:
            assert effects.position_offset[i, 0] == size
        assert show.compile(ids).effects(5.0).coolant_offset.sum() == 0.0


def fault_kind_of(plan: object, device_id: str) -> object:
    return next(d.kind for d in plan.devices if d.device_id == device_id)  # type: ignore[attr-defined]
