"""Simulators of fleets that speak the real protocols (MQTT JSON telemetry)."""

from ironbridge.sim.assettypes import builtin_asset_type_texts, load_builtin_asset_types
from ironbridge.sim.faults import Fault, FaultKind, FaultSchedule
from ironbridge.sim.fleet import ExcavatorFleet, GensetFleet, TruckFleet, build_fleets
from ironbridge.sim.mqtt import DEFAULT_INTERVALS, FleetSimulator, SimConfig, SimStats
from ironbridge.sim.plan import (
    FleetPlan,
    MachineKind,
    SimDevice,
    is_valid_vin,
    make_vin,
    plan_fleet,
    vin_check_digit,
)

__all__ = [
    "DEFAULT_INTERVALS",
    "ExcavatorFleet",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FleetPlan",
    "FleetSimulator",
    "GensetFleet",
    "MachineKind",
    "SimConfig",
    "SimDevice",
    "SimStats",
    "TruckFleet",
    "build_fleets",
    "builtin_asset_type_texts",
    "is_valid_vin",
    "load_builtin_asset_types",
    "make_vin",
    "plan_fleet",
    "vin_check_digit",
]
