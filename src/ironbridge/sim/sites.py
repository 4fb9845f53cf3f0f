"""Machines at fixed sites: excavators on construction sites and generator sets."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from ironbridge.sim.faults import FaultSchedule
from ironbridge.sim.machines import GPS_NOISE_DEG, MachineFleet
from ironbridge.sim.plan import FleetPlan, MachineKind, genset_rated_kw

_EXC_KW = {"IB-E135": 73.0, "IB-E215": 110.0, "IB-E245": 128.0, "IB-E360": 200.0}


class ExcavatorFleet(MachineFleet):
    """Excavators on construction sites: shifts, work/idle cycles and dig cycles."""

    kind = MachineKind.EXCAVATOR
    decimals: ClassVar[dict[str, int]] = {
        "engine_speed": 0, "engine_load": 1, "coolant_temp": 1, "oil_pressure": 0,
        "fuel_rate": 2, "engine_hours": 3, "hydraulic_pressure": 1, "hydraulic_oil_temp": 1,
        "latitude": 6, "longitude": 6, "fuel_level": 1,
    }  # fmt: skip
    TANK_L = 400.0

    def __init__(
        self,
        plan: FleetPlan,
        *,
        start_s: float,
        seed: int = 0,
        faults: FaultSchedule | None = None,
        cold: bool = False,
    ) -> None:
        super().__init__(plan, start_s=start_s, seed=seed, faults=faults)
        n, rng = self.n, self.rng
        sites = np.array(plan.excavator_sites[:n], dtype=np.float64).reshape(n, 2)
        self.site_lat, self.site_lon = sites[:, 0], sites[:, 1]
        self.p_max_kw = np.array(
            [_EXC_KW.get(d.attributes.get("model", "")[:7], 110.0) for d in self.devices]
        )
        # 30 % work around the clock; the rest one day shift of 9-12 h from 06:00-08:00.
        self.shift_start = rng.uniform(6.0, 8.0, n)
        self.shift_len = np.where(rng.random(n) < 0.3, 24.0, rng.uniform(9.0, 12.0, n))
        self.rpm_set = rng.uniform(1750.0, 2000.0, n)
        self.cycle_s = rng.uniform(17.0, 24.0, n)
        self.cycle_pos = rng.uniform(0.0, 1.0, n)
        self.working = rng.random(n) < 0.6
        self.phase_left = rng.uniform(0.0, 300.0, n)
        self.engine_on = self._on_shift()
        self.working &= self.engine_on
        self.wander = np.zeros((n, 2))
        self.rpm = np.where(self.engine_on, np.where(self.working, self.rpm_set, 1000.0), 0.0)
        self.load = np.zeros(n)
        self.fuel_rate = np.zeros(n)
        self.hyd = np.zeros(n)
        amb = self.ambient_c()
        self.coolant = np.full(n, amb) if cold else np.where(self.engine_on, 85.0, amb + 10.0)
        self.hyd_temp = np.full(n, amb) if cold else np.where(self.engine_on, 55.0, amb + 5.0)
        self.oil = self._oil_pressure(self.rpm, self.coolant)
        self.hours = rng.uniform(200.0, 15000.0, n)
        self.fuel = rng.uniform(30.0, 95.0, n)
        self.step(0.0)  # derive load, fuel rate and pressures from the initial state

    def _on_shift(self) -> npt.NDArray[np.bool_]:
        return np.asarray(((self.local_hour() - self.shift_start) % 24.0) < self.shift_len)

    def step(self, dt: float) -> None:
        """Advance every excavator by ``dt`` seconds."""
        self._begin_step(dt)
        n, rng = self.n, self.rng
        self.engine_on = self._on_shift()
        # Work / idle phases of a few minutes each while the engine runs.
        self.phase_left -= dt
        flip = self.engine_on & (self.phase_left <= 0)
        if flip.any():
            k = int(flip.sum())
            self.working[flip] = ~self.working[flip]
            self.phase_left[flip] = np.where(
                self.working[flip], rng.uniform(120.0, 480.0, k), rng.uniform(60.0, 240.0, k)
            )
        self.working &= self.engine_on
        work = self.working
        self.cycle_pos = (self.cycle_pos + dt / self.cycle_s) % 1.0
        c = self.cycle_pos
        # Dig (high, with relief-valve spikes), swing, dump, return; standby when idle.
        prof = np.select([c < 0.35, c < 0.6, c < 0.75], [1.0, 0.6, 0.35], 0.2)
        p_work = 90.0 + 240.0 * prof + 12.0 * rng.standard_normal(n)
        spike = (c < 0.35) & (rng.random(n) < 0.25)
        p_work = np.where(spike, rng.uniform(335.0, 352.0, n), np.minimum(p_work, 343.0))
        p_idle = 35.0 + 3.0 * rng.standard_normal(n)
        self.hyd = np.where(work, p_work, np.where(self.engine_on, p_idle, 0.0))
        self.hyd = np.clip(self.hyd, 0.0, 360.0)
        rpm_t = np.where(self.engine_on, np.where(work, self.rpm_set, 1000.0), 0.0)
        self.rpm = np.where(
            self.engine_on, rpm_t + (self.rpm - rpm_t) * math.exp(-dt / 2.0), 0.0
        ) + np.where(self.engine_on, 5.0 * rng.standard_normal(n), 0.0)
        load = np.where(work, 45.0 + 45.0 * prof + 4.0 * rng.standard_normal(n), 12.0)
        self.load = np.where(self.engine_on, np.clip(load, 0.0, 100.0), 0.0)
        rate = 1.0 * self.rpm / 1000.0 + 0.235 * self.p_max_kw * self.load / 100.0
        self.fuel_rate = np.where(self.engine_on, rate, 0.0)
        self.coolant = self._coolant(self.coolant, self.engine_on, self.load / 100.0, dt)
        self.oil = self._oil_pressure(self.rpm, self.coolant)
        # Hydraulic oil: heated by pump losses, oil cooler above 55 °C.
        amb = self.ambient_c()
        heat = np.where(self.engine_on, 0.004 + 0.02 * self.load / 100.0, 0.0)
        t_set = 55.0 + 10.0 * self.load / 100.0
        cooler = np.where(self.hyd_temp > t_set, 0.02, 0.0)
        loss = 1.0 / 5400.0
        self.hyd_temp = (self.hyd_temp + dt * (heat + loss * amb + cooler * t_set)) / (
            1.0 + dt * (loss + cooler)
        )
        self.hours = self.hours + np.where(self.engine_on, dt / 3600.0, 0.0)
        self.fuel = self.fuel - self.fuel_rate * dt / 3600.0 / self.TANK_L * 100.0
        refuel = (self.fuel < 20.0) & ~work
        self.fuel[refuel] = rng.uniform(90.0, 98.0, int(refuel.sum()))
        self.fuel = self._steal_fuel(self.fuel)
        # The machine tracks slowly around its site (stays within about 50 m).
        self.wander = np.clip(
            self.wander + np.where(work, 1.0, 0.0)[:, None] * 2e-6 * dt
            * rng.standard_normal((n, 2)), -0.0004, 0.0004,
        )  # fmt: skip

    def columns(self) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.bool_]]:
        """Current measurements of every excavator (see :meth:`MachineFleet.columns`)."""
        pos = self._fx.position_offset
        noise = GPS_NOISE_DEG * self.noise_rng.standard_normal((2, self.n))
        return {
            "engine_speed": self.rpm,
            "engine_load": self.load,
            "coolant_temp": self.coolant,
            "oil_pressure": self.oil,
            "fuel_rate": self.fuel_rate,
            "engine_hours": self.hours,
            "hydraulic_pressure": self.hyd,
            "hydraulic_oil_temp": self.hyd_temp,
            "working": self.working.copy(),
            "latitude": self.site_lat + self.wander[:, 0] + pos[:, 0] + noise[0],
            "longitude": self.site_lon + self.wander[:, 1] + pos[:, 1] + noise[1],
            "fuel_level": self.fuel,
        }


class GensetFleet(MachineFleet):
    """Generator sets at fixed sites: prime duty around the clock or peak-shaving."""

    kind = MachineKind.GENSET
    decimals: ClassVar[dict[str, int]] = {
        "kw_load": 1, "voltage": 1, "frequency": 3, "power_factor": 3, "fuel_level": 1,
        "engine_speed": 0, "coolant_temp": 1, "oil_pressure": 0, "engine_hours": 3,
    }  # fmt: skip

    def __init__(
        self,
        plan: FleetPlan,
        *,
        start_s: float,
        seed: int = 0,
        faults: FaultSchedule | None = None,
        cold: bool = False,
    ) -> None:
        super().__init__(plan, start_s=start_s, seed=seed, faults=faults)
        n, rng = self.n, self.rng
        self.rated = np.array([genset_rated_kw(d) for d in self.devices], dtype=np.float64)
        self.tank_l = self.rated * 0.27 * 24.0  # about a day at full load
        self.prime = rng.random(n) < 0.8
        self.site_scale = rng.uniform(0.6, 1.0, n)
        self.load_noise = np.zeros(n)
        self.f_noise = np.zeros(n)
        self.v_noise = np.zeros(n)
        self.running = self._scheduled()
        self.frac = np.zeros(n)
        amb = self.ambient_c()
        self.coolant = np.full(n, amb) if cold else np.where(self.running, 86.0, amb + 5.0)
        self.hours = rng.uniform(100.0, 30000.0, n)
        self.fuel = rng.uniform(40.0, 95.0, n)
        self.rpm = np.zeros(n)
        self.oil = np.zeros(n)
        self._update(0.0)

    def _scheduled(self) -> npt.NDArray[np.bool_]:
        h = self.local_hour()
        peak = (8.0 <= h < 11.5) or (17.0 <= h < 21.0)
        return np.asarray(self.prime | peak)

    def _profile(self) -> float:
        """Site load as a fraction of the day's peak, by local hour."""
        h = self.local_hour()
        return (
            0.45
            + 0.30 * math.exp(-(((h - 10.5) / 2.5) ** 2))
            + 0.25 * math.exp(-(((h - 19.0) / 2.5) ** 2))
            - 0.15 * math.exp(-(((h - 3.0) / 3.0) ** 2))
        )

    def step(self, dt: float) -> None:
        """Advance every genset by ``dt`` seconds."""
        self._begin_step(dt)
        self.running = self._scheduled()
        self._update(dt)

    def _update(self, dt: float) -> None:
        step = max(dt, 1e-3)
        self.load_noise = self._ou(self.load_noise, step, 300.0, 0.05)
        self.f_noise = self._ou(self.f_noise, step, 20.0, 0.03)
        self.v_noise = self._ou(self.v_noise, step, 60.0, 1.2)
        frac = np.clip(self._profile() * self.site_scale + self.load_noise, 0.05, 1.0)
        self.frac = np.where(self.running, frac, 0.0)
        self.freq = np.where(self.running, 50.0 + np.clip(self.f_noise, -0.09, 0.09), 0.0)
        volt = 400.0 + np.clip(self.v_noise, -4.0, 4.0) - 3.0 * (self.frac - 0.5)
        self.volt = np.where(self.running, volt, 0.0)
        pf = np.clip(0.80 + 0.12 * self.frac + 0.005 * self.rng.standard_normal(self.n), 0.7, 0.99)
        self.pf = np.where(self.running, pf, np.nan)
        self.rpm = 30.0 * self.freq  # 4-pole machine: 1500 rpm at 50 Hz
        fuel_rate = np.where(self.running, self.rated * (0.03 + 0.24 * self.frac), 0.0)
        self.coolant = self._coolant(self.coolant, self.running, self.frac, dt)
        self.oil = self._oil_pressure(self.rpm, self.coolant)
        self.hours = self.hours + np.where(self.running, dt / 3600.0, 0.0)
        self.fuel = self.fuel - fuel_rate * dt / 3600.0 / self.tank_l * 100.0
        low = self.fuel < 25.0
        self.fuel[low] = self.rng.uniform(90.0, 98.0, int(low.sum()))
        self.fuel = self._steal_fuel(self.fuel)

    def columns(self) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.bool_]]:
        """Current measurements of every genset (see :meth:`MachineFleet.columns`)."""
        return {
            "kw_load": self.frac * self.rated,
            "voltage": self.volt,
            "frequency": self.freq,
            "power_factor": self.pf,
            "fuel_level": self.fuel,
            "engine_speed": self.rpm,
            "coolant_temp": self.coolant,
            "oil_pressure": self.oil,
            "engine_hours": self.hours,
            "running": self.running.copy(),
        }


__all__ = ["ExcavatorFleet", "GensetFleet"]
