"""Fault injection for the simulated fleet: a schedule of per-machine faults."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from ironbridge.model import InvalidInput
from ironbridge.sim.plan import FleetPlan, MachineKind


class FaultKind(StrEnum):
    """What goes wrong with a machine."""

    #: Coolant temperature ramps up by ``magnitude`` °C above normal.
    OVERHEAT = "overheat"
    #: Oil pressure falls to ``1 - magnitude`` of normal (magnitude in 0..1).
    LOW_OIL_PRESSURE = "low_oil_pressure"
    #: Fuel level drops by ``magnitude`` percentage points (siphoning).
    FUEL_THEFT = "fuel_theft"
    #: Reported position drifts ``magnitude`` degrees north-west, out of the region.
    LEAVE_REGION = "leave_region"


#: Sensible default magnitude per fault kind.
DEFAULT_MAGNITUDE: dict[FaultKind, float] = {
    FaultKind.OVERHEAT: 30.0,
    FaultKind.LOW_OIL_PRESSURE: 0.75,
    FaultKind.FUEL_THEFT: 30.0,
    FaultKind.LEAVE_REGION: 4.0,
}

_APPLIES_TO: dict[FaultKind, frozenset[MachineKind]] = {
    FaultKind.OVERHEAT: frozenset(MachineKind),
    FaultKind.LOW_OIL_PRESSURE: frozenset(MachineKind),
    FaultKind.FUEL_THEFT: frozenset(MachineKind),
    FaultKind.LEAVE_REGION: frozenset({MachineKind.TRUCK, MachineKind.EXCAVATOR}),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault on one machine, starting ``start_s`` seconds into the simulation.

    The fault ramps linearly from nothing to full ``magnitude`` over ``ramp_s`` seconds
    and then stays (until ``end_s`` if given).
    """

    device_id: str
    kind: FaultKind
    start_s: float
    ramp_s: float = 600.0
    magnitude: float | None = None
    end_s: float | None = None

    @property
    def size(self) -> float:
        """Magnitude, or the kind's default."""
        return DEFAULT_MAGNITUDE[self.kind] if self.magnitude is None else self.magnitude


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultEffects:
    """Per-machine effects of the active faults of one kind of machine, at one instant."""

    coolant_offset: npt.NDArray[np.float64]
    oil_factor: npt.NDArray[np.float64]
    fuel_drop: npt.NDArray[np.float64]
    position_offset: npt.NDArray[np.float64]


class FaultSchedule:
    """The faults to inject, compiled per machine kind into arrays for vectorised use."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self.faults = tuple(faults)
        for i, f in enumerate(self.faults):
            if f.ramp_s <= 0:
                raise InvalidInput(f"faults[{i}].ramp_s", "must be positive")
            if f.kind is FaultKind.LOW_OIL_PRESSURE and not 0 <= f.size <= 1:
                raise InvalidInput(f"faults[{i}].magnitude", "must be within 0..1")

    def __len__(self) -> int:
        return len(self.faults)

    @classmethod
    def random(
        cls, plan: FleetPlan, count: int, *, within_s: float = 3600.0, seed: int = 0
    ) -> FaultSchedule:
        """Return ``count`` faults on distinct random machines, starting within ``within_s``."""
        rng = random.Random(seed)  # noqa: S311 (simulation, not security)
        devices = list(plan.devices)
        rng.shuffle(devices)
        faults: list[Fault] = []
        for dev in devices[:count]:
            kinds = [k for k in FaultKind if dev.kind in _APPLIES_TO[k]]
            faults.append(
                Fault(
                    device_id=dev.device_id,
                    kind=rng.choice(kinds),
                    start_s=round(rng.uniform(60.0, max(60.0, within_s)), 1),
                    ramp_s=round(rng.uniform(120.0, 900.0), 1),
                )
            )
        return cls(faults)

    @classmethod
    def showcase(
        cls,
        plan: FleetPlan,
        *,
        start_s: float = 5.0,
        ramp_s: float = 15.0,
        per_kind: int = 2,
        seed: int = 0,
    ) -> FaultSchedule:
        """Return ``per_kind`` faults of every kind, each on its own truck, from ``start_s``.

        A demo wants alarms within its first minute: the faults start a few seconds
        apart from ``start_s`` and reach full size after ``ramp_s``, well past the
        default rules' limits (overheat, low oil pressure, fuel drop, leaving the region).
        Trucks are picked first (most are driving, so their engines run); two machines
        per kind make it unlikely that every one of them is parked.
        """
        rng = random.Random(seed + 1)  # noqa: S311 (simulation, not security)
        devices = list(plan.devices)
        rng.shuffle(devices)
        devices.sort(key=lambda d: d.kind is not MachineKind.TRUCK)
        used: set[str] = set()
        faults: list[Fault] = []
        for i, kind in enumerate(FaultKind):
            mine = [d for d in devices if d.kind in _APPLIES_TO[kind] and d.device_id not in used]
            for dev in mine[:per_kind]:
                used.add(dev.device_id)
                faults.append(
                    Fault(
                        device_id=dev.device_id,
                        kind=kind,
                        start_s=start_s + 5.0 * i,
                        ramp_s=ramp_s,
                    )
                )
        return cls(faults)

    @classmethod
    def degradation(
        cls,
        plan: FleetPlan,
        count: int,
        *,
        start_s: tuple[float, float] = (600.0, 900.0),
        hours: tuple[float, float] = (0.5, 4.0),
        seed: int = 0,
    ) -> FaultSchedule:
        """Slow wear on ``count`` trucks, each at its own rate.

        The coolant creeps up by 25 °C and the oil pressure falls to half together, over
        a ramp drawn from ``hours`` (so some engines degrade eight times faster than
        others), starting within ``start_s``: the healthy stretch before it is what a
        model of normal behaviour learns from.
        """
        rng = random.Random(seed)  # noqa: S311 (simulation, not security)
        trucks = [d for d in plan.devices if d.kind is MachineKind.TRUCK]
        rng.shuffle(trucks)
        faults: list[Fault] = []
        for dev in trucks[:count]:
            start = round(rng.uniform(*start_s), 1)
            ramp = round(rng.uniform(*hours) * 3600.0, 1)
            faults.append(
                Fault(
                    device_id=dev.device_id,
                    kind=FaultKind.OVERHEAT,
                    start_s=start,
                    ramp_s=ramp,
                    magnitude=25.0,
                )
            )
            faults.append(
                Fault(
                    device_id=dev.device_id,
                    kind=FaultKind.LOW_OIL_PRESSURE,
                    start_s=start,
                    ramp_s=ramp,
                    magnitude=0.5,
                )
            )
        return cls(faults)

    def merged(self, other: FaultSchedule) -> FaultSchedule:
        """Both schedules' faults in one schedule."""
        return FaultSchedule((*self.faults, *other.faults))

    def compile(self, device_ids: Iterable[str]) -> CompiledFaults:
        """Bind the schedule to the machines of one kind (index = position in ``device_ids``)."""
        index = {d: i for i, d in enumerate(device_ids)}
        mine = [f for f in self.faults if f.device_id in index]
        return CompiledFaults(len(index), mine, [index[f.device_id] for f in mine])


class CompiledFaults:
    """A schedule bound to one fleet of ``n`` machines; evaluates effects at a time."""

    def __init__(self, n: int, faults: list[Fault], machine: list[int]) -> None:
        self.n = n
        self.machine = np.array(machine, dtype=np.int64)
        self.kind = [f.kind for f in faults]
        self.start = np.array([f.start_s for f in faults], dtype=np.float64)
        self.ramp = np.array([f.ramp_s for f in faults], dtype=np.float64)
        self.size = np.array([f.size for f in faults], dtype=np.float64)
        self.end = np.array([np.inf if f.end_s is None else f.end_s for f in faults])
        self._masks = {k: np.array([fk is k for fk in self.kind], dtype=bool) for k in FaultKind}

    def effects(self, elapsed_s: float) -> FaultEffects:
        """Return the per-machine effects ``elapsed_s`` seconds into the simulation."""
        n = self.n
        cool, oil = np.zeros(n), np.ones(n)
        fuel, pos = np.zeros(n), np.zeros((n, 2))
        if len(self.machine):
            prog = np.clip((elapsed_s - self.start) / self.ramp, 0.0, 1.0)
            prog = np.where(elapsed_s < self.end, prog, 0.0)
            amount = prog * self.size
            m = self._masks
            np.add.at(cool, self.machine[m[FaultKind.OVERHEAT]], amount[m[FaultKind.OVERHEAT]])
            lo = m[FaultKind.LOW_OIL_PRESSURE]
            np.multiply.at(oil, self.machine[lo], 1.0 - amount[lo])
            ft = m[FaultKind.FUEL_THEFT]
            np.add.at(fuel, self.machine[ft], amount[ft])
            lr = m[FaultKind.LEAVE_REGION]
            np.add.at(pos[:, 0], self.machine[lr], amount[lr])
            np.add.at(pos[:, 1], self.machine[lr], -amount[lr])
        return FaultEffects(
            coolant_offset=cool, oil_factor=oil, fuel_drop=fuel, position_offset=pos
        )


__all__ = [
    "DEFAULT_MAGNITUDE",
    "CompiledFaults",
    "Fault",
    "FaultEffects",
    "FaultKind",
    "FaultSchedule",
]
