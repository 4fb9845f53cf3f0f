"""Flatten a GB/T 32960 real-time report into measurements and alarm/fault events."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from ironbridge.codec.binary import load_table
from ironbridge.codec.gbt32960.blocks import (
    Alarm,
    DriveMotors,
    Engine,
    Extremes,
    FuelCell,
    FuelCellStacks,
    HydrogenSystem,
    Position,
    RealtimeReport,
    SuperCapacitor,
    Temperatures,
    VehicleData,
    Voltages,
)
from ironbridge.codec.gbt32960.frame import Edition
from ironbridge.model import Event, from_datetime

__all__ = [
    "ALARM_EVENT_KIND",
    "FAULT_EVENT_KIND",
    "Flattened",
    "alarm_flag_names",
    "flatten_report",
]

ALARM_EVENT_KIND = "gbt32960_alarm"
FAULT_EVENT_KIND = "gbt32960_fault"


@cache
def alarm_flag_names(edition: Edition) -> dict[int, str]:
    """Bit index -> flag name for an edition, from ``alarm_flags.csv`` (reserved bits absent)."""
    column = f"name_{edition.value}"
    return {
        int(row["bit"]): row[column]
        for row in load_table("ironbridge.codec.gbt32960", "alarm_flags.csv")
        if row[column]
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class Flattened:
    """A report as measurements (``None`` = missing) and events at one timestamp."""

    ts_us: int
    values: dict[str, float | None] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)


def _num(value: float | None) -> float | None:
    return None if value is None else float(value)


def _vehicle(v: dict[str, float | None], b: VehicleData) -> None:
    v["vehicle_status"] = _num(b.vehicle_status)
    v["charging_status"] = _num(b.charging_status)
    v["running_mode"] = _num(b.running_mode)
    v["vehicle_speed"] = b.speed_kmh
    v["odometer"] = b.odometer_km
    v["total_voltage"] = b.total_voltage_v
    v["total_current"] = b.total_current_a
    v["soc"] = _num(b.soc_pct)
    v["dcdc_status"] = _num(b.dcdc_status)
    v["gear"] = None if b.gear & 0x80 else float(b.gear & 0x0F)
    v["insulation_resistance"] = _num(b.insulation_kohm)
    v["accelerator_pedal"] = _num(b.accelerator_pedal_pct)
    v["brake_pedal"] = _num(b.brake_pedal_pct)


def _motors(v: dict[str, float | None], b: DriveMotors) -> None:
    for m in b.motors:
        p = f"motor{m.number}_"
        v[p + "status"] = _num(m.status)
        v[p + "controller_temp"] = _num(m.controller_temp_c)
        v[p + "speed"] = _num(m.speed_rpm)
        v[p + "torque"] = m.torque_nm
        v[p + "temp"] = _num(m.temp_c)
        v[p + "controller_voltage"] = m.controller_voltage_v
        v[p + "controller_current"] = m.controller_current_a


def _fuel_cell(v: dict[str, float | None], b: FuelCell | HydrogenSystem) -> None:
    v["h2_max_temp"] = _num(b.h2_max_temp_c)
    v["h2_max_pressure"] = b.h2_max_pressure_mpa
    v["hv_dcdc_status"] = _num(b.dcdc_status)
    if isinstance(b, FuelCell):
        v["fuel_cell_voltage"] = b.voltage_v
        v["fuel_cell_current"] = b.current_a
        v["fuel_cell_consumption"] = b.consumption_kg_100km
        v["h2_max_concentration_ppm"] = _num(b.h2_max_concentration_ppm)
        for i, t in enumerate(b.probe_temps_c, 1):
            v[f"fuel_cell_probe_temp_{i}"] = float(t)
    else:
        v["h2_max_concentration"] = b.h2_max_concentration_pct
        v["h2_remaining"] = _num(b.h2_remaining_pct)
        v["hv_dcdc_temp"] = _num(b.dcdc_controller_temp_c)


def _engine(v: dict[str, float | None], b: Engine) -> None:
    v["engine_status"] = _num(b.status)
    v["engine_speed"] = _num(b.crankshaft_speed_rpm)
    v["engine_fuel_consumption"] = b.fuel_consumption_l_100km


def _position(v: dict[str, float | None], b: Position) -> None:
    v["latitude"] = b.latitude
    v["longitude"] = b.longitude
    v["gnss_valid"] = 1.0 if b.valid else 0.0


def _extremes(v: dict[str, float | None], b: Extremes) -> None:
    v["max_cell_voltage"] = b.max_cell_voltage_v
    v["max_cell_voltage_no"] = _num(b.max_voltage_cell)
    v["min_cell_voltage"] = b.min_cell_voltage_v
    v["min_cell_voltage_no"] = _num(b.min_voltage_cell)
    v["max_probe_temp"] = _num(b.max_temp_c)
    v["max_probe_temp_no"] = _num(b.max_temp_probe)
    v["min_probe_temp"] = _num(b.min_temp_c)
    v["min_probe_temp_no"] = _num(b.min_temp_probe)


@cache
def _names(prefix: str, start: int, count: int) -> tuple[str, ...]:
    # Per-cell names repeat frame after frame: build them once.
    return tuple(f"{prefix}{i}" for i in range(start, start + count))


def _voltages(v: dict[str, float | None], b: Voltages) -> None:
    for s in b.subsystems:
        v[f"ress{s.number}_voltage"] = s.voltage_v
        v[f"ress{s.number}_current"] = s.current_a
        cells = s.cell_voltages_v
        v.update(
            zip(_names(f"cell_voltage_{s.number}_", s.start_index, len(cells)), cells, strict=True)
        )


def _temperatures(v: dict[str, float | None], b: Temperatures) -> None:
    for s in b.subsystems:
        names = _names(f"probe_temp_{s.number}_", 1, len(s.temps_c))
        v.update(zip(names, (None if t is None else float(t) for t in s.temps_c), strict=True))


def _stacks(v: dict[str, float | None], b: FuelCellStacks) -> None:
    for s in b.stacks:
        p = f"fc_stack{s.number}_"
        v[p + "voltage"] = s.voltage_v
        v[p + "current"] = s.current_a
        v[p + "h2_inlet_pressure"] = s.h2_inlet_pressure_kpa
        v[p + "air_inlet_pressure"] = s.air_inlet_pressure_kpa
        v[p + "air_inlet_temp"] = _num(s.air_inlet_temp_c)
        for i, t in enumerate(s.coolant_outlet_temps_c, 1):
            v[f"{p}coolant_temp_{i}"] = _num(t)


def _supercap(v: dict[str, float | None], b: SuperCapacitor) -> None:
    p = f"supercap{b.number}_"
    v[p + "voltage"] = b.voltage_v
    v[p + "current"] = b.current_a
    for i, cell in enumerate(b.cell_voltages_v, 1):
        v[f"{p}cell_voltage_{i}"] = cell
    for i, t in enumerate(b.probe_temps_c, 1):
        v[f"{p}probe_temp_{i}"] = _num(t)


def _alarm(
    v: dict[str, float | None],
    b: Alarm,
    edition: Edition,
    asset_id: str,
    ts_us: int,
    events: list[Event],
) -> None:
    v["alarm_level"] = _num(b.max_level)
    v["alarm_flags"] = float(b.flags)
    names = alarm_flag_names(edition)
    levels = dict(b.levels)
    for bit in b.bits:
        level = levels.get(bit, b.max_level)
        events.append(
            Event(
                asset_id=asset_id,
                ts_us=ts_us,
                kind=ALARM_EVENT_KIND,
                code=names.get(bit, f"bit{bit}"),
                payload={"bit": bit, "level": level, "edition": edition.value},
            )
        )
    for category, codes in (
        ("ress", b.ress_faults),
        ("motor", b.motor_faults),
        ("engine", b.engine_faults),
        ("other", b.other_faults),
    ):
        for code in codes:
            events.append(
                Event(
                    asset_id=asset_id,
                    ts_us=ts_us,
                    kind=FAULT_EVENT_KIND,
                    code=f"{category}:{code:08X}",
                    payload={"category": category, "code": code, "level": b.max_level},
                )
            )


def flatten_report(report: RealtimeReport, edition: Edition, *, asset_id: str) -> Flattened:
    """Turn a report into ``{measurement: value}`` and events (alarm flags, fault codes).

    Measurement names: ``vehicle_speed`` (km/h), ``odometer`` (km), ``total_voltage`` (V),
    ``total_current`` (A), ``soc`` (%), ``insulation_resistance`` (kΩ), ``motor{n}_speed``,
    ``latitude``/``longitude``, ``max_cell_voltage``, ``cell_voltage_{subsystem}_{cell}``,
    ``probe_temp_{subsystem}_{probe}``, ``alarm_level`` and the like. Later blocks of the same
    type overwrite earlier values. Each set alarm flag yields one event of kind
    ``gbt32960_alarm`` with the flag name as code; each fault code one ``gbt32960_fault``.
    """
    ts_us = from_datetime(report.time)
    values: dict[str, float | None] = {}
    events: list[Event] = []
    for block in report.blocks:
        if isinstance(block, VehicleData):
            _vehicle(values, block)
        elif isinstance(block, DriveMotors):
            _motors(values, block)
        elif isinstance(block, FuelCell | HydrogenSystem):
            _fuel_cell(values, block)
        elif isinstance(block, Engine):
            _engine(values, block)
        elif isinstance(block, Position):
            _position(values, block)
        elif isinstance(block, Extremes):
            _extremes(values, block)
        elif isinstance(block, Alarm):
            _alarm(values, block, edition, asset_id, ts_us, events)
        elif isinstance(block, Voltages):
            _voltages(values, block)
        elif isinstance(block, Temperatures):
            _temperatures(values, block)
        elif isinstance(block, FuelCellStacks):
            _stacks(values, block)
        elif isinstance(block, SuperCapacitor):
            _supercap(values, block)
    return Flattened(ts_us=ts_us, values=values, events=events)
