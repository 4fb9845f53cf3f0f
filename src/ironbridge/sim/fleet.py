"""Vectorised physics of the simulated fleet: trucks on the roads, and the fleet builder."""

from __future__ import annotations

import math
import re
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from ironbridge.sim.faults import FaultSchedule
from ironbridge.sim.machines import F64, GPS_NOISE_DEG, MachineFleet, Value
from ironbridge.sim.plan import FleetPlan, MachineKind
from ironbridge.sim.roads import RoadNetwork
from ironbridge.sim.sites import ExcavatorFleet, GensetFleet

_G = 9.81


def _hp(model: str, default: float) -> float:
    m = re.search(r"(\d{3})", model)
    return float(m.group(1)) if m else default


class TruckFleet(MachineFleet):
    """Heavy trucks driving Shandong's corridors, resting and loading at the ends."""

    kind = MachineKind.TRUCK
    decimals: ClassVar[dict[str, int]] = {
        "engine_speed": 0, "engine_load": 1, "coolant_temp": 1, "oil_pressure": 0,
        "fuel_rate": 2, "vehicle_speed": 1, "engine_hours": 3, "odometer": 3,
        "fuel_level": 1, "battery_voltage": 2, "latitude": 6, "longitude": 6, "heading": 1,
    }  # fmt: skip
    #: Overall ratios (rpm per km/h) of a 12-speed AMT with a 2.9 final drive.
    GEAR_RPM_PER_KMH = 14.7 * 1.28 ** np.arange(11, -1, -1)
    TANK_L = 600.0

    def __init__(
        self,
        plan: FleetPlan,
        *,
        start_s: float,
        seed: int = 0,
        faults: FaultSchedule | None = None,
        cold: bool = False,
        network: RoadNetwork | None = None,
    ) -> None:
        super().__init__(plan, start_s=start_s, seed=seed, faults=faults)
        n, rng = self.n, self.rng
        self.net = network or RoadNetwork()
        self.road = np.array(plan.truck_roads[:n], dtype=np.int64)
        self.length = self.net.lengths[self.road]
        self.p_max_kw = np.array([_hp(d.attributes.get("model", ""), 460) for d in self.devices])
        self.p_max_kw *= 0.7355
        self.v_cruise = rng.uniform(72.0, 90.0, n) / 3.6
        self.v_noise = np.zeros(n)
        self.dirn = rng.choice([-1.0, 1.0], n)
        self.s = rng.uniform(0.05, 0.95, n) * self.length
        self.laden = rng.random(n) < 0.6
        self.driving = np.ones(n, dtype=bool) if cold else rng.random(n) < 0.85
        self.v = np.where(self.driving & (not cold), self.v_cruise * 0.9, 0.0)
        self.stop_left = np.where(self.driving, 0.0, rng.uniform(60.0, 1800.0, n))
        self.idle_left = np.where(self.driving, 0.0, rng.uniform(0.0, 120.0, n))
        self.target = self.s.copy()
        self._choose_targets(np.arange(n))
        self.engine_on = self.driving | (self.idle_left > 0)
        amb = self.ambient_c()
        self.coolant = np.full(n, amb) if cold else np.where(self.engine_on, 86.0, 60.0)
        self.hours = rng.uniform(300.0, 20000.0, n)
        self.odo = self.hours * rng.uniform(45.0, 60.0, n)
        self.fuel = rng.uniform(40.0, 95.0, n)
        self.batt = np.where(self.engine_on, 27.8, 25.0)
        self.rpm = np.zeros(n)
        self.load = np.zeros(n)
        self.fuel_rate = np.zeros(n)
        self.oil = np.zeros(n)
        self._heading = np.zeros(n)
        self._lat, self._lon = np.zeros(n), np.zeros(n)
        self._update_engine(np.zeros(n), np.zeros(n), 1.0)
        self._update_heading()
        brg = self.net.locate(self.road, self.s)[2]
        self._heading = (brg + np.where(self.dirn < 0, 180.0, 0.0)) % 360.0

    def _mass(self) -> F64:
        return np.where(self.laden, 44000.0, 16000.0)

    def _grade(self) -> F64:
        """Road grade (rise/run) in the direction of travel, a fixed function of position."""
        g = self.net.offsets[self.road] + self.s
        fwd = 0.006 * np.sin(2 * np.pi * g / 11.3 + 1.3) + 0.004 * np.sin(2 * np.pi * g / 3.7)
        return np.asarray(fwd * self.dirn, dtype=np.float64)

    def _choose_targets(self, idx: npt.NDArray[np.int64]) -> None:
        """Pick where each truck in ``idx`` stops next: a rest area 1-3 ahead, or the end."""
        for i in idx.tolist():
            rest = self.net.roads[int(self.road[i])].rest_km
            s, d = float(self.s[i]), float(self.dirn[i])
            ahead = rest[rest > s + 1.0] if d > 0 else rest[rest < s - 1.0][::-1]
            k = int(self.rng.integers(1, 4))
            end = float(self.length[i]) if d > 0 else 0.0
            self.target[i] = float(ahead[k - 1]) if k <= len(ahead) else end

    def step(self, dt: float) -> None:
        """Advance every truck by ``dt`` seconds."""
        self._begin_step(dt)
        n, rng = self.n, self.rng
        m = self._mass()
        # Driving: cruise control with traffic noise, braking for the next stop.
        self.v_noise = self._ou(self.v_noise, dt, 120.0, 1.5)
        dist_m = np.maximum((self.target - self.s) * self.dirn * 1000.0, 0.0)
        v_allow = np.sqrt(2.0 * 0.7 * np.maximum(dist_m - 15.0, 0.0)) + 0.5
        v_des = np.minimum(self.v_cruise + self.v_noise, v_allow)
        grade = self._grade()
        resist = m * _G * (0.006 + grade) + 0.5 * 1.2 * 6.5 * self.v**2
        p_avail = self.p_max_kw * 1000.0 * np.clip(self.rpm / 1500.0, 0.45, 1.0)
        a_max = np.minimum((0.92 * p_avail / np.maximum(self.v, 2.0) - resist) / m, 0.6)
        a = np.clip((v_des - self.v) / 5.0, -1.5, np.maximum(a_max, -1.5))
        a = np.where(self.driving, a, 0.0)
        v_new = np.maximum(self.v + a * dt, 0.0)
        ds_km = np.where(self.driving, 0.5 * (self.v + v_new) * dt / 1000.0, 0.0)
        ds_km = np.minimum(ds_km, dist_m / 1000.0)
        self.s = self.s + self.dirn * ds_km
        self.odo = self.odo + ds_km
        # Wheel power from the actual motion; negative means overrun (fuel cut).
        a_real = (v_new - self.v) / dt if dt > 0 else np.zeros(n)
        self.v = np.where(self.driving, v_new, 0.0)
        p_wheel = np.where(self.driving, (m * a_real + resist) * self.v, 0.0)
        # Arrivals: stop at the target, idle a little, then switch off.
        arrived = self.driving & ((self.target - self.s) * self.dirn <= 0.005)
        if arrived.any():
            at_end = arrived & ((self.s <= 0.01) | (self.s >= self.length - 0.01))
            k = int(arrived.sum())
            dwell = np.where(at_end[arrived], rng.uniform(1200, 3600, k), rng.uniform(300, 1500, k))
            self.stop_left[arrived] = dwell
            self.idle_left[arrived] = rng.uniform(30.0, 300.0, k)
            self.driving[arrived] = False
            self.v[arrived] = 0.0
            low = arrived & (self.fuel < 40.0)
            self.fuel[low] = rng.uniform(92.0, 99.0, int(low.sum()))
        stopped = ~self.driving
        self.stop_left = np.where(stopped, self.stop_left - dt, 0.0)
        self.idle_left = np.where(stopped, self.idle_left - dt, 0.0)
        departing = stopped & (self.stop_left <= 0)
        if departing.any():
            turn = departing & (
                ((self.dirn > 0) & (self.s >= self.length - 0.01))
                | ((self.dirn < 0) & (self.s <= 0.01))
            )
            self.dirn[turn] *= -1.0
            self.laden[turn] = ~self.laden[turn]
            self.driving[departing] = True
            self._choose_targets(np.flatnonzero(departing))
        self.engine_on = self.driving | (self.idle_left > 0)
        self._update_engine(p_wheel, self.v, dt)
        self.hours = self.hours + np.where(self.engine_on, dt / 3600.0, 0.0)
        self.fuel = self.fuel - self.fuel_rate * dt / 3600.0 / self.TANK_L * 100.0
        self.fuel = self._steal_fuel(self.fuel)
        target_v = np.where(self.engine_on, 27.8 - 0.4 * (self.rpm < 700), 25.0)
        self.batt += (target_v - self.batt) * (1 - math.exp(-dt / 60.0))
        self._update_heading()

    def _update_heading(self) -> None:
        lat, lon, brg = self.net.locate(self.road, self.s)
        self._lat, self._lon = lat, lon
        fwd = (brg + np.where(self.dirn < 0, 180.0, 0.0)) % 360.0
        self._heading = np.where(self.v > 0.5, fwd, self._heading)

    def _update_engine(self, p_wheel: F64, v: F64, dt: float) -> None:
        kmh = v * 3.6
        rpm_g = kmh[:, None] * self.GEAR_RPM_PER_KMH[None, :]
        ok = rpm_g >= 1050.0
        gear = np.where(ok.any(axis=1), 11 - np.argmax(ok[:, ::-1], axis=1), 0)
        rpm = np.clip(rpm_g[np.arange(self.n), gear], 600.0, 2100.0)
        rpm = rpm + 4.0 * self.rng.standard_normal(self.n)
        self.rpm = np.where(self.engine_on, rpm, 0.0)
        p_eng = np.maximum(p_wheel, 0.0) / 0.92 / 1000.0 + 6.0  # kW, 6 kW auxiliaries
        p_avail = self.p_max_kw * np.clip(self.rpm / 1500.0, 0.45, 1.0)
        load = np.clip(100.0 * p_eng / p_avail, 0.0, 100.0)
        load = np.where(p_wheel < -20000.0, 0.0, load)  # overrun: fuel cut, zero load
        self.load = np.where(self.engine_on, load, 0.0)
        rate = 1.2 * self.rpm / 600.0 + 0.235 * np.where(self.load > 0, p_eng, 0.0)
        self.fuel_rate = np.where(self.engine_on, rate, 0.0)
        self.coolant = self._coolant(self.coolant, self.engine_on, self.load / 100.0, dt)
        self.oil = self._oil_pressure(self.rpm, self.coolant)

    def columns(self) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.bool_]]:
        """Current measurements of every truck (see :meth:`MachineFleet.columns`)."""
        pos = self._fx.position_offset
        noise = GPS_NOISE_DEG * self.noise_rng.standard_normal((2, self.n))
        return {
            "engine_speed": self.rpm,
            "engine_load": self.load,
            "coolant_temp": self.coolant,
            "oil_pressure": self.oil,
            "fuel_rate": self.fuel_rate,
            "vehicle_speed": self.v * 3.6,
            "engine_hours": self.hours,
            "odometer": self.odo,
            "fuel_level": self.fuel,
            "battery_voltage": self.batt + 0.03 * self.noise_rng.standard_normal(self.n),
            "latitude": self._lat + pos[:, 0] + noise[0],
            "longitude": self._lon + pos[:, 1] + noise[1],
            "heading": self._heading,
        }


AnyFleet = TruckFleet | ExcavatorFleet | GensetFleet


def build_fleets(
    plan: FleetPlan,
    *,
    start_s: float,
    seed: int | None = None,
    faults: FaultSchedule | None = None,
    cold: bool = False,
) -> dict[MachineKind, AnyFleet]:
    """Return one vectorised fleet per machine kind of ``plan`` (kinds with machines only).

    Args:
        plan: the fleet plan.
        start_s: simulation start, seconds since the epoch (UTC).
        seed: random seed; defaults to the plan's seed.
        faults: faults to inject; none by default.
        cold: start every engine cold (at ambient temperature).
    """
    sd = plan.seed if seed is None else seed
    out: dict[MachineKind, AnyFleet] = {}
    if plan.count(MachineKind.TRUCK):
        out[MachineKind.TRUCK] = TruckFleet(
            plan, start_s=start_s, seed=sd, faults=faults, cold=cold
        )
    if plan.count(MachineKind.EXCAVATOR):
        out[MachineKind.EXCAVATOR] = ExcavatorFleet(
            plan, start_s=start_s, seed=sd, faults=faults, cold=cold
        )
    if plan.count(MachineKind.GENSET):
        out[MachineKind.GENSET] = GensetFleet(
            plan, start_s=start_s, seed=sd, faults=faults, cold=cold
        )
    return out


__all__ = [
    "AnyFleet",
    "ExcavatorFleet",
    "GensetFleet",
    "MachineFleet",
    "TruckFleet",
    "Value",
    "build_fleets",
]
