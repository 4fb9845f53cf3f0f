"""Shared state and physics of a vectorised fleet: clock, noise, coolant, oil pressure."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from ironbridge.sim.faults import CompiledFaults, FaultEffects, FaultSchedule
from ironbridge.sim.plan import FleetPlan, MachineKind

F64 = npt.NDArray[np.float64]
Value = float | bool

_LOCAL_UTC_OFFSET_H = 8.0  # China Standard Time
GPS_NOISE_DEG = 0.00003  # about 3 m


class MachineFleet:
    """Base of a vectorised fleet of one kind: clock, noise, coolant and oil pressure."""

    kind: ClassVar[MachineKind]
    #: Decimal places each measurement is rounded to when building messages.
    decimals: ClassVar[dict[str, int]]

    def __init__(
        self, plan: FleetPlan, *, start_s: float, seed: int, faults: FaultSchedule | None
    ) -> None:
        self.devices = plan.of_kind(self.kind)
        self.n = len(self.devices)
        self.t0 = start_s
        self.t = start_s
        # One generator per kind, derived from the seed, so kinds stay independent.
        kind_no = list(MachineKind).index(self.kind)
        self.rng = np.random.default_rng([seed, kind_no])
        #: Measurement noise only, so reading values never changes the physics.
        self.noise_rng = np.random.default_rng([seed, kind_no, 1])
        ids = [d.device_id for d in self.devices]
        self.faults: CompiledFaults = (faults or FaultSchedule()).compile(ids)
        self._fx = self.faults.effects(0.0)
        self._fuel_dropped = np.zeros(self.n)

    @property
    def device_ids(self) -> list[str]:
        """Device ids of the machines, in index order."""
        return [d.device_id for d in self.devices]

    def local_hour(self) -> float:
        """Hour of day in China Standard Time at the simulation clock."""
        return (self.t / 3600.0 + _LOCAL_UTC_OFFSET_H) % 24.0

    def ambient_c(self) -> float:
        """Ambient air temperature (°C): a mild Shandong day, warmest at 14:00."""
        return 16.0 + 7.0 * math.cos((self.local_hour() - 14.0) / 24.0 * 2 * math.pi)

    def _ou(self, x: F64, dt: float, tau: float, sigma: float) -> F64:
        """Advance an Ornstein-Uhlenbeck noise state (stationary std ``sigma``)."""
        a = math.exp(-dt / tau)
        return np.asarray(
            x * a + sigma * math.sqrt(1 - a * a) * self.rng.standard_normal(self.n),
            dtype=np.float64,
        )

    def _begin_step(self, dt: float) -> FaultEffects:
        self.t += dt
        self._fx = self.faults.effects(self.t - self.t0)
        return self._fx

    def _steal_fuel(self, fuel: F64) -> F64:
        """Apply the increment of fuel-theft drops since the last step to ``fuel`` (%)."""
        drop = self._fx.fuel_drop - self._fuel_dropped
        self._fuel_dropped = self._fx.fuel_drop.copy()
        return np.clip(fuel - np.maximum(drop, 0.0), 0.0, 100.0)

    def _coolant(self, temp: F64, on: npt.NDArray[np.bool_], load: F64, dt: float) -> F64:
        """Advance coolant temperature: engine heat, losses and a thermostat.

        Heat grows with relative load; below the thermostat set point only small losses
        act (the engine warms up), above it the radiator removes the excess quickly, so
        the temperature settles at 84-92 °C. Implicit Euler keeps it stable at any dt.
        """
        amb = self.ambient_c()
        offset = self._fx.coolant_offset
        # a failing cooling system (offset > 0) heats faster the worse it is
        heat = np.where(on, 0.012 + 0.10 * load + 0.012 * offset, 0.0)
        loss = np.where(on, 1.0 / 8000.0, 1.0 / 3600.0)
        t_set = 84.0 + 8.0 * load + offset
        k = np.where(on & (temp > t_set), 0.15, 0.0)
        return np.asarray(
            (temp + dt * (heat + loss * amb + k * t_set)) / (1.0 + dt * (loss + k)),
            dtype=np.float64,
        )

    def _oil_pressure(self, rpm: F64, coolant: F64) -> F64:
        """Oil pressure (kPa): rises with rpm, higher when cold (viscous), relief-capped."""
        visc = 1.0 + 0.5 * np.clip((85.0 - coolant) / 65.0, 0.0, 1.0)
        p = (60.0 + 0.21 * rpm) * visc * self._fx.oil_factor
        p = p + 3.0 * self.rng.standard_normal(self.n)
        return np.where(rpm > 100.0, np.clip(p, 0.0, 650.0), 0.0)

    def columns(self) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.bool_]]:
        """Return the current value of every measurement as one array per measurement.

        ``NaN`` marks a value that is not available (it is left out of messages).
        """
        raise NotImplementedError

    def rows(self) -> list[dict[str, Value]]:
        """Return one ``{measurement: value}`` dict per machine, rounded for the wire."""
        cols = self.columns()
        lists: dict[str, list[Value]] = {}
        for name, arr in cols.items():
            if arr.dtype == np.bool_:
                lists[name] = arr.tolist()
            else:
                lists[name] = np.round(arr, self.decimals.get(name, 3)).tolist()
        names = list(lists)
        out: list[dict[str, Value]] = []
        for i in range(self.n):
            row = {k: lists[k][i] for k in names}
            out.append({k: v for k, v in row.items() if v == v})  # drop NaN (not available)
        return out


__all__ = ["F64", "GPS_NOISE_DEG", "MachineFleet", "Value"]
