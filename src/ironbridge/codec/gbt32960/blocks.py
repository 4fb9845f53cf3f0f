"""Information blocks of GB/T 32960 real-time (0x02) and reissue (0x03) data units.

Values are in engineering units (km/h, km, V, A, °C, rpm, N·m, degrees). An abnormal
(0xFE...) or invalid (0xFF...) raw value decodes to ``None``; ``None`` encodes as the
"invalid" code. Fields that exist in only one edition are ``None`` (or empty) in the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "Alarm",
    "Block",
    "CustomBlock",
    "DriveMotor",
    "DriveMotors",
    "Engine",
    "Extremes",
    "FuelCell",
    "FuelCellStack",
    "FuelCellStacks",
    "HydrogenSystem",
    "Position",
    "RealtimeReport",
    "Signature",
    "SubsystemTemperatures",
    "SubsystemVoltages",
    "SuperCapacitor",
    "SuperCapacitorExtremes",
    "Temperatures",
    "VehicleData",
    "Voltages",
]

_GEARS = {0: "N", 13: "R", 14: "D", 15: "P"}


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleData:
    """Whole-vehicle data (type 0x01): 20 bytes in 2016 (Annex B), 18 bytes in 2025."""

    vehicle_status: int | None
    charging_status: int | None
    running_mode: int | None
    speed_kmh: float | None
    odometer_km: float | None
    total_voltage_v: float | None
    total_current_a: float | None
    soc_pct: int | None
    dcdc_status: int | None
    gear: int
    insulation_kohm: int | None
    accelerator_pedal_pct: int | None = None
    brake_pedal_pct: int | None = None

    @property
    def gear_position(self) -> str | None:
        """``N``, ``1``..``6``, ``R``, ``D``, ``P``; None if reserved or invalid (2025 bit 7)."""
        if self.gear & 0x80:
            return None
        code = self.gear & 0x0F
        if 1 <= code <= 6:
            return str(code)
        return _GEARS.get(code)

    @property
    def driving_force(self) -> bool:
        """Gear byte bit 5: driving force present."""
        return bool(self.gear & 0x20)

    @property
    def braking_force(self) -> bool:
        """Gear byte bit 4: braking force present."""
        return bool(self.gear & 0x10)


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveMotor:
    """One drive motor (12 bytes in 2016, 10 bytes in 2025 without voltage/current)."""

    number: int
    status: int | None
    controller_temp_c: int | None
    speed_rpm: int | None
    torque_nm: float | None
    temp_c: int | None
    controller_voltage_v: float | None = None
    controller_current_a: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DriveMotors:
    """Drive-motor block (type 0x02)."""

    motors: tuple[DriveMotor, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FuelCell:
    """2016 fuel-cell block (type 0x03)."""

    voltage_v: float | None
    current_a: float | None
    consumption_kg_100km: float | None
    probe_temps_c: tuple[int, ...]
    h2_max_temp_c: float | None
    h2_max_temp_probe: int | None
    h2_max_concentration_ppm: int | None
    h2_max_concentration_sensor: int | None
    h2_max_pressure_mpa: float
    h2_max_pressure_sensor: int | None
    dcdc_status: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class HydrogenSystem:
    """2025 fuel-cell engine and on-board hydrogen system block (type 0x03, 12 bytes)."""

    h2_max_temp_c: int | None
    h2_max_temp_probe: int | None
    h2_max_concentration_pct: float | None
    h2_max_concentration_sensor: int | None
    h2_max_pressure_mpa: float | None
    h2_max_pressure_sensor: int | None
    dcdc_status: int | None
    h2_remaining_pct: int | None
    dcdc_controller_temp_c: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Engine:
    """Engine block (type 0x04): 5 bytes in 2016, crankshaft speed only in 2025."""

    status: int | None
    crankshaft_speed_rpm: int | None
    fuel_consumption_l_100km: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Vehicle position (type 0x05); latitude/longitude signed (south/west negative).

    Attributes:
        status: raw status byte (bit 0 = 1 means no valid fix; bits 1/2 hemispheres).
        crs: 2025 coordinate system (1 WGS-84, 2 GCJ-02, 3 other); None in 2016.
    """

    status: int
    longitude: float | None
    latitude: float | None
    crs: int | None = None

    @property
    def valid(self) -> bool:
        """True when the fix is valid (status bit 0 clear)."""
        return not self.status & 0x01


@dataclass(frozen=True, slots=True, kw_only=True)
class Extremes:
    """2016 extreme-values block (type 0x06, 14 bytes)."""

    max_voltage_subsystem: int | None
    max_voltage_cell: int | None
    max_cell_voltage_v: float | None
    min_voltage_subsystem: int | None
    min_voltage_cell: int | None
    min_cell_voltage_v: float | None
    max_temp_subsystem: int | None
    max_temp_probe: int | None
    max_temp_c: int | None
    min_temp_subsystem: int | None
    min_temp_probe: int | None
    min_temp_c: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """Alarm block (2016 type 0x07, 2025 type 0x06).

    Attributes:
        max_level: highest alarm level (0-3; 2025 adds 4 = thermal event).
        flags: general alarm flags, bit 0 (LSB) = temperature difference.
        levels: 2025 per-flag levels as ``(bit index, level)`` pairs; empty in 2016.
    """

    max_level: int | None
    flags: int
    ress_faults: tuple[int, ...] = ()
    motor_faults: tuple[int, ...] = ()
    engine_faults: tuple[int, ...] = ()
    other_faults: tuple[int, ...] = ()
    levels: tuple[tuple[int, int], ...] = ()

    @property
    def bits(self) -> tuple[int, ...]:
        """Indices of the set flag bits, LSB first."""
        return tuple(bit for bit in range(32) if self.flags >> bit & 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SubsystemVoltages:
    """Cell voltages of one energy-storage subsystem (2016) or pack (2025).

    Attributes:
        cell_count: total cells of the subsystem (2016 may split them across frames).
        start_index: 1-based index of the first cell in this frame (always 1 in 2025).
    """

    number: int
    voltage_v: float | None
    current_a: float | None
    cell_count: int
    start_index: int
    cell_voltages_v: tuple[float | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Voltages:
    """Cell-voltage block (2016 type 0x08, 2025 type 0x07)."""

    subsystems: tuple[SubsystemVoltages, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SubsystemTemperatures:
    """Probe temperatures of one subsystem/pack."""

    number: int
    temps_c: tuple[int | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Temperatures:
    """Temperature block (2016 type 0x09, 2025 type 0x08)."""

    subsystems: tuple[SubsystemTemperatures, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FuelCellStack:
    """One fuel-cell stack of the 2025 block 0x30."""

    number: int
    voltage_v: float | None
    current_a: float | None
    h2_inlet_pressure_kpa: float | None
    air_inlet_pressure_kpa: float | None
    air_inlet_temp_c: int | None
    coolant_outlet_temps_c: tuple[int | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FuelCellStacks:
    """2025 fuel-cell stack block (type 0x30)."""

    stacks: tuple[FuelCellStack, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SuperCapacitor:
    """2025 super-capacitor block (type 0x31)."""

    number: int
    voltage_v: float | None
    current_a: float | None
    cell_voltages_v: tuple[float | None, ...]
    probe_temps_c: tuple[int | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SuperCapacitorExtremes:
    """2025 super-capacitor extremes block (type 0x32); cell/probe numbers are WORDs."""

    max_voltage_system: int | None
    max_voltage_cell: int | None
    max_voltage_v: float | None
    min_voltage_system: int | None
    min_voltage_cell: int | None
    min_voltage_v: float | None
    max_temp_system: int | None
    max_temp_probe: int | None
    max_temp_c: int | None
    min_temp_system: int | None
    min_temp_probe: int | None
    min_temp_c: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomBlock:
    """A user-defined (0x80-0xFE) block: kept as raw bytes behind its WORD length."""

    type_code: int
    data: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """2025 vehicle signature trailer (type 0xFF): 1 SM2, 2 RSA, 3 ECC; never verified here."""

    sig_type: int
    r: bytes
    s: bytes


Block = (
    VehicleData
    | DriveMotors
    | FuelCell
    | HydrogenSystem
    | Engine
    | Position
    | Extremes
    | Alarm
    | Voltages
    | Temperatures
    | FuelCellStacks
    | SuperCapacitor
    | SuperCapacitorExtremes
    | CustomBlock
    | Signature
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RealtimeReport:
    """A real-time or reissue data unit: collection time and blocks in wire order.

    Repeated block types (seen in the wild) are all kept; the accessors return the first.
    """

    time: datetime
    blocks: tuple[Block, ...]

    def first(self, kind: type[Block]) -> Block | None:
        """Return the first block of the given class, or None."""
        for block in self.blocks:
            if isinstance(block, kind):
                return block
        return None

    @property
    def vehicle(self) -> VehicleData | None:
        """The whole-vehicle block."""
        return next((b for b in self.blocks if isinstance(b, VehicleData)), None)

    @property
    def motors(self) -> tuple[DriveMotor, ...]:
        """Drive motors of every motor block."""
        return tuple(m for b in self.blocks if isinstance(b, DriveMotors) for m in b.motors)

    @property
    def position(self) -> Position | None:
        """The position block."""
        return next((b for b in self.blocks if isinstance(b, Position)), None)

    @property
    def alarm(self) -> Alarm | None:
        """The alarm block."""
        return next((b for b in self.blocks if isinstance(b, Alarm)), None)

    @property
    def extremes(self) -> Extremes | None:
        """The 2016 extreme-values block."""
        return next((b for b in self.blocks if isinstance(b, Extremes)), None)

    @property
    def voltages(self) -> tuple[SubsystemVoltages, ...]:
        """Cell-voltage entries of every voltage block."""
        return tuple(s for b in self.blocks if isinstance(b, Voltages) for s in b.subsystems)

    @property
    def temperatures(self) -> tuple[SubsystemTemperatures, ...]:
        """Probe-temperature entries of every temperature block."""
        return tuple(s for b in self.blocks if isinstance(b, Temperatures) for s in b.subsystems)

    @property
    def signature(self) -> Signature | None:
        """The 2025 signature trailer."""
        return next((b for b in self.blocks if isinstance(b, Signature)), None)
