"""Decode and encode real-time (0x02) / reissue (0x03) data units, 2016 and 2025 editions."""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import repeat
from operator import sub, truediv
from typing import Any

from ironbridge.codec.binary import CodecError
from ironbridge.codec.gbt32960.blocks import (
    Alarm,
    Block,
    CustomBlock,
    DriveMotor,
    DriveMotors,
    Engine,
    Extremes,
    FuelCell,
    FuelCellStack,
    FuelCellStacks,
    HydrogenSystem,
    Position,
    RealtimeReport,
    Signature,
    SubsystemTemperatures,
    SubsystemVoltages,
    SuperCapacitor,
    SuperCapacitorExtremes,
    Temperatures,
    VehicleData,
    Voltages,
)
from ironbridge.codec.gbt32960.frame import Edition, decode_time, encode_time

__all__ = ["decode_realtime", "encode_realtime"]

_S = struct.Struct
_VEH16 = _S(">BBBHIHHBBBHBB")
_VEH25 = _S(">BBBHIHHBBBH")
_MOT16 = _S(">BBBHHBHH")
_MOT25 = _S(">BBBHIB")
_FC16_HEAD = _S(">HHHH")
_FC16_TAIL = _S(">HBHBHBB")
_H2_25 = _S(">HBHBHBBBB")
_ENG16 = _S(">BHH")
_ENG25 = _S(">H")
_POS16 = _S(">BII")
_POS25 = _S(">BBII")
_EXT16 = _S(">BBHBBHBBBBBB")
_ALARM_HEAD = _S(">BI")
_VOLT16 = _S(">BHHHHB")
_VOLT25 = _S(">BHHH")
_TEMP = _S(">BH")
_STACK = _S(">BHHHHBH")
_SCAP = _S(">BHHH")
_SCAP_EXT = _S(">BHHBHHBHBBHB")
_U16 = _S(">H")
_B = _S(">B")


def _b(raw: int, off: int = 0) -> int | None:
    return None if raw >= 0xFE else raw - off


def _w(raw: int, div: int, off: int = 0) -> float | None:
    return None if raw >= 0xFFFE else (raw - off) / div


def _wi(raw: int, off: int = 0) -> int | None:
    return None if raw >= 0xFFFE else raw - off


def _d(raw: int, div: int, off: int = 0) -> float | None:
    return None if raw >= 0xFFFFFFFE else (raw - off) / div


class _Cursor:
    """Bounds-checked position inside a data unit (offsets reported frame-relative)."""

    __slots__ = ("base", "data", "end", "pos")

    def __init__(self, data: bytes, pos: int, base: int) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data)
        self.base = base

    def need(self, size: int, what: str) -> int:
        pos = self.pos
        if pos + size > self.end:
            raise CodecError(
                f"truncated {what}: need {size} bytes, {self.end - pos} left",
                field=what,
                offset=self.base + pos,
            )
        self.pos = pos + size
        return pos

    def unpack(self, st: struct.Struct, what: str) -> tuple[Any, ...]:
        return st.unpack_from(self.data, self.need(st.size, what))

    def words(self, count: int, what: str) -> tuple[int, ...]:
        return struct.unpack_from(f">{count}H", self.data, self.need(2 * count, what))

    def raw(self, count: int, what: str) -> bytes:
        pos = self.need(count, what)
        return self.data[pos : pos + count]


def _vehicle(c: _Cursor, ed: Edition) -> VehicleData:
    if ed == Edition.V2016:
        st, ch, mode, spd, odo, volt, cur, soc, dcdc, gear, ins, acc, brk = c.unpack(
            _VEH16, "vehicle"
        )
        return VehicleData(
            vehicle_status=_b(st),
            charging_status=_b(ch),
            running_mode=_b(mode),
            speed_kmh=_w(spd, 10),
            odometer_km=_d(odo, 10),
            total_voltage_v=_w(volt, 10),
            total_current_a=_w(cur, 10, 10000),
            soc_pct=_b(soc),
            dcdc_status=_b(dcdc),
            gear=gear,
            insulation_kohm=ins,
            accelerator_pedal_pct=_b(acc),
            brake_pedal_pct=_b(brk),
        )
    st, ch, mode, spd, odo, volt, cur, soc, dcdc, gear, ins = c.unpack(_VEH25, "vehicle")
    return VehicleData(
        vehicle_status=_b(st),
        charging_status=_b(ch),
        running_mode=_b(mode),
        speed_kmh=_w(spd, 10),
        odometer_km=_d(odo, 10),
        total_voltage_v=_w(volt, 10),
        total_current_a=_w(cur, 10, 30000),
        soc_pct=_b(soc),
        dcdc_status=_b(dcdc),
        gear=gear,
        insulation_kohm=_wi(ins),
    )


def _motors(c: _Cursor, ed: Edition) -> DriveMotors:
    (count,) = c.unpack(_B, "motors.count")
    motors = []
    for _ in range(count):
        if ed == Edition.V2016:
            no, st, ctemp, spd, torque, temp, volt, cur = c.unpack(_MOT16, "motors.motor")
            motors.append(
                DriveMotor(
                    number=no,
                    status=_b(st),
                    controller_temp_c=_b(ctemp, 40),
                    speed_rpm=_wi(spd, 20000),
                    torque_nm=_w(torque, 10, 20000),
                    temp_c=_b(temp, 40),
                    controller_voltage_v=_w(volt, 10),
                    controller_current_a=_w(cur, 10, 10000),
                )
            )
        else:
            no, st, ctemp, spd, torque, temp = c.unpack(_MOT25, "motors.motor")
            motors.append(
                DriveMotor(
                    number=no,
                    status=_b(st),
                    controller_temp_c=_b(ctemp, 40),
                    speed_rpm=_wi(spd, 32000),
                    torque_nm=_d(torque, 10, 200000),
                    temp_c=_b(temp, 40),
                )
            )
    return DriveMotors(motors=tuple(motors))


def _fuel_cell(c: _Cursor, ed: Edition) -> FuelCell | HydrogenSystem:
    if ed == Edition.V2025:
        t, tp, conc, cs, pres, ps, dcdc, rem, dtemp = c.unpack(_H2_25, "hydrogen")
        return HydrogenSystem(
            h2_max_temp_c=_wi(t, 40),
            h2_max_temp_probe=_b(tp),
            h2_max_concentration_pct=_w(conc, 10000),
            h2_max_concentration_sensor=_b(cs),
            h2_max_pressure_mpa=_w(pres, 10),
            h2_max_pressure_sensor=_b(ps),
            dcdc_status=_b(dcdc),
            h2_remaining_pct=_b(rem),
            dcdc_controller_temp_c=_b(dtemp, 40),
        )
    volt, cur, cons, n = c.unpack(_FC16_HEAD, "fuel_cell")
    probes = tuple(raw - 40 for raw in c.raw(n, "fuel_cell.probes"))
    t, tp, conc, cs, pres, ps, dcdc = c.unpack(_FC16_TAIL, "fuel_cell")
    return FuelCell(
        voltage_v=_w(volt, 10),
        current_a=_w(cur, 10),
        consumption_kg_100km=_w(cons, 100),
        probe_temps_c=probes,
        h2_max_temp_c=_w(t, 10, 400),
        h2_max_temp_probe=_b(tp),
        h2_max_concentration_ppm=_wi(conc),
        h2_max_concentration_sensor=_b(cs),
        h2_max_pressure_mpa=pres / 10,
        h2_max_pressure_sensor=_b(ps),
        dcdc_status=_b(dcdc),
    )


def _engine(c: _Cursor, ed: Edition) -> Engine:
    if ed == Edition.V2016:
        st, spd, cons = c.unpack(_ENG16, "engine")
        return Engine(
            status=_b(st), crankshaft_speed_rpm=_wi(spd), fuel_consumption_l_100km=_w(cons, 100)
        )
    (spd,) = c.unpack(_ENG25, "engine")
    return Engine(status=None, crankshaft_speed_rpm=_wi(spd))


def _position(c: _Cursor, ed: Edition) -> Position:
    if ed == Edition.V2016:
        st, lon, lat = c.unpack(_POS16, "position")
        crs = None
    else:
        st, crs_raw, lon, lat = c.unpack(_POS25, "position")
        crs = _b(crs_raw)
    lon_v = _d(lon, 1_000_000)
    lat_v = _d(lat, 1_000_000)
    if lat_v is not None and st & 0x02:
        lat_v = -lat_v
    if lon_v is not None and st & 0x04:
        lon_v = -lon_v
    return Position(status=st, longitude=lon_v, latitude=lat_v, crs=crs)


def _extremes(c: _Cursor, ed: Edition) -> Extremes:
    r = c.unpack(_EXT16, "extremes")
    return Extremes(
        max_voltage_subsystem=_b(r[0]),
        max_voltage_cell=_b(r[1]),
        max_cell_voltage_v=_w(r[2], 1000),
        min_voltage_subsystem=_b(r[3]),
        min_voltage_cell=_b(r[4]),
        min_cell_voltage_v=_w(r[5], 1000),
        max_temp_subsystem=_b(r[6]),
        max_temp_probe=_b(r[7]),
        max_temp_c=_b(r[8], 40),
        min_temp_subsystem=_b(r[9]),
        min_temp_probe=_b(r[10]),
        min_temp_c=_b(r[11], 40),
    )


def _fault_list(c: _Cursor, what: str) -> tuple[int, ...]:
    (n,) = c.unpack(_B, what)
    return struct.unpack_from(f">{n}I", c.data, c.need(4 * n, what))


def _alarm(c: _Cursor, ed: Edition) -> Alarm:
    level, flags = c.unpack(_ALARM_HEAD, "alarm")
    ress = _fault_list(c, "alarm.ress_faults")
    motor = _fault_list(c, "alarm.motor_faults")
    engine = _fault_list(c, "alarm.engine_faults")
    other = _fault_list(c, "alarm.other_faults")
    levels: tuple[tuple[int, int], ...] = ()
    if ed == Edition.V2025:
        (n5,) = c.unpack(_B, "alarm.levels")
        raw = c.raw(2 * n5, "alarm.levels")
        levels = tuple((raw[i], raw[i + 1]) for i in range(0, 2 * n5, 2))
    return Alarm(
        max_level=_b(level),
        flags=flags,
        ress_faults=ress,
        motor_faults=motor,
        engine_faults=engine,
        other_faults=other,
        levels=levels,
    )


def _voltages(c: _Cursor, ed: Edition) -> Voltages:
    (count,) = c.unpack(_B, "voltages.count")
    subs = []
    for _ in range(count):
        if ed == Edition.V2016:
            no, volt, cur, total, start, m = c.unpack(_VOLT16, "voltages.subsystem")
            cur_off = 10000
        else:
            no, volt, cur, total = c.unpack(_VOLT25, "voltages.pack")
            start, m, cur_off = 1, total, 30000
        cells = _millis(c.words(m, "voltages.cells"))
        subs.append(
            SubsystemVoltages(
                number=no,
                voltage_v=_w(volt, 10),
                current_a=_w(cur, 10, cur_off),
                cell_count=total,
                start_index=start,
                cell_voltages_v=cells,
            )
        )
    return Voltages(subsystems=tuple(subs))


def _millis(words: tuple[int, ...]) -> tuple[float | None, ...]:
    # Hot path (hundreds of cells per frame): C-level map when no sentinel is present.
    if not words or max(words) < 0xFFFE:
        return tuple(map(truediv, words, repeat(1000)))
    return tuple(None if r >= 0xFFFE else r / 1000 for r in words)


def _temps_list(c: _Cursor, n: int, what: str) -> tuple[int | None, ...]:
    raw = c.raw(n, what)
    if not raw or max(raw) < 0xFE:
        return tuple(map(sub, raw, repeat(40)))
    return tuple(None if r >= 0xFE else r - 40 for r in raw)


def _temperatures(c: _Cursor, ed: Edition) -> Temperatures:
    (count,) = c.unpack(_B, "temperatures.count")
    subs = []
    for _ in range(count):
        no, n = c.unpack(_TEMP, "temperatures.subsystem")
        subs.append(
            SubsystemTemperatures(number=no, temps_c=_temps_list(c, n, "temperatures.probes"))
        )
    return Temperatures(subsystems=tuple(subs))


def _stacks(c: _Cursor, ed: Edition) -> FuelCellStacks:
    (count,) = c.unpack(_B, "stacks.count")
    stacks = []
    for _ in range(count):
        no, volt, cur, h2p, airp, airt, n = c.unpack(_STACK, "stacks.stack")
        stacks.append(
            FuelCellStack(
                number=no,
                voltage_v=_w(volt, 10),
                current_a=_w(cur, 10),
                h2_inlet_pressure_kpa=_w(h2p, 10, 1000),
                air_inlet_pressure_kpa=_w(airp, 10, 1000),
                air_inlet_temp_c=_b(airt, 40),
                coolant_outlet_temps_c=_temps_list(c, n, "stacks.coolant_temps"),
            )
        )
    return FuelCellStacks(stacks=tuple(stacks))


def _supercap(c: _Cursor, ed: Edition) -> SuperCapacitor:
    no, volt, cur, m = c.unpack(_SCAP, "supercap")
    cells = _millis(c.words(m, "supercap.cells"))
    (n,) = c.unpack(_U16, "supercap.probe_count")
    return SuperCapacitor(
        number=no,
        voltage_v=_w(volt, 10),
        current_a=_w(cur, 10, 30000),
        cell_voltages_v=cells,
        probe_temps_c=_temps_list(c, n, "supercap.probes"),
    )


def _supercap_extremes(c: _Cursor, ed: Edition) -> SuperCapacitorExtremes:
    r = c.unpack(_SCAP_EXT, "supercap_extremes")
    return SuperCapacitorExtremes(
        max_voltage_system=_b(r[0]),
        max_voltage_cell=_wi(r[1]),
        max_voltage_v=_w(r[2], 1000),
        min_voltage_system=_b(r[3]),
        min_voltage_cell=_wi(r[4]),
        min_voltage_v=_w(r[5], 1000),
        max_temp_system=_b(r[6]),
        max_temp_probe=_wi(r[7]),
        max_temp_c=_b(r[8], 40),
        min_temp_system=_b(r[9]),
        min_temp_probe=_wi(r[10]),
        min_temp_c=_b(r[11], 40),
    )


def _signature(c: _Cursor) -> Signature:
    (sig_type,) = c.unpack(_B, "signature.type")
    (rlen,) = c.unpack(_U16, "signature.r_length")
    r = c.raw(rlen, "signature.r")
    (slen,) = c.unpack(_U16, "signature.s_length")
    s = c.raw(slen, "signature.s")
    return Signature(sig_type=sig_type, r=r, s=s)


_Decoder = Callable[[_Cursor, Edition], Block]
_DECODERS: dict[Edition, dict[int, _Decoder]] = {
    Edition.V2016: {
        0x01: _vehicle,
        0x02: _motors,
        0x03: _fuel_cell,
        0x04: _engine,
        0x05: _position,
        0x06: _extremes,
        0x07: _alarm,
        0x08: _voltages,
        0x09: _temperatures,
    },
    Edition.V2025: {
        0x01: _vehicle,
        0x02: _motors,
        0x03: _fuel_cell,
        0x04: _engine,
        0x05: _position,
        0x06: _alarm,
        0x07: _voltages,
        0x08: _temperatures,
        0x30: _stacks,
        0x31: _supercap,
        0x32: _supercap_extremes,
    },
}


def decode_realtime(data: bytes, edition: Edition, *, base_offset: int = 0) -> RealtimeReport:
    """Decode a real-time or reissue data unit.

    Args:
        data: the data unit (starting with the 6-byte collection time).
        edition: selects the block layouts (never guess them from type codes).
        base_offset: added to error offsets (24 when ``data`` comes from a frame).

    Raises:
        CodecError: truncated blocks, unknown block types, bytes after a signature.
    """
    time = decode_time(data)
    c = _Cursor(data, 6, base_offset)
    decoders = _DECODERS[edition]
    blocks: list[Block] = []
    end = c.end
    while c.pos < end:
        type_pos = c.pos
        code = data[type_pos]
        c.pos += 1
        decoder = decoders.get(code)
        if decoder is not None:
            blocks.append(decoder(c, edition))
        elif 0x80 <= code <= 0xFE:
            (length,) = c.unpack(_U16, "custom.length")
            blocks.append(CustomBlock(type_code=code, data=c.raw(length, "custom.data")))
        elif code == 0xFF and edition == Edition.V2025:
            blocks.append(_signature(c))
            if c.pos != end:
                raise CodecError(
                    f"{end - c.pos} bytes after the signature block",
                    field="signature",
                    offset=base_offset + c.pos,
                )
        else:
            raise CodecError(
                f"unknown information type 0x{code:02X} for the {edition.value} edition",
                field="info_type",
                offset=base_offset + type_pos,
            )
    return RealtimeReport(time=time, blocks=tuple(blocks))


# --------------------------------------------------------------------------- encoding


def _eb(value: int | None, field: str, off: int = 0) -> int:
    if value is None:
        return 0xFF
    raw = value + off
    if not 0 <= raw <= 0xFD:
        raise CodecError(f"value {value} out of range", field=field)
    return raw


def _ew(value: float | None, field: str, div: int = 1, off: int = 0) -> int:
    if value is None:
        return 0xFFFF
    raw = round(value * div) + off
    if not 0 <= raw <= 0xFFFD:
        raise CodecError(f"value {value} out of range", field=field)
    return raw


def _ed(value: float | None, field: str, div: int = 1, off: int = 0) -> int:
    if value is None:
        return 0xFFFFFFFF
    raw = round(value * div) + off
    if not 0 <= raw <= 0xFFFFFFFD:
        raise CodecError(f"value {value} out of range", field=field)
    return raw


def _raw_byte(value: int, field: str) -> int:
    if not 0 <= value <= 0xFF:
        raise CodecError(f"value {value} does not fit a byte", field=field)
    return value


def _count(n: int, field: str, limit: int = 0xFF) -> int:
    if n > limit:
        raise CodecError(f"{n} entries, at most {limit}", field=field)
    return n


def _enc_vehicle(b: VehicleData, ed: Edition) -> bytes:
    head = (
        _eb(b.vehicle_status, "vehicle_status"),
        _eb(b.charging_status, "charging_status"),
        _eb(b.running_mode, "running_mode"),
        _ew(b.speed_kmh, "speed_kmh", 10),
        _ed(b.odometer_km, "odometer_km", 10),
        _ew(b.total_voltage_v, "total_voltage_v", 10),
        _ew(b.total_current_a, "total_current_a", 10, 10000 if ed == Edition.V2016 else 30000),
        _eb(b.soc_pct, "soc_pct"),
        _eb(b.dcdc_status, "dcdc_status"),
        _raw_byte(b.gear, "gear"),
    )
    if ed == Edition.V2025:
        return bytes((0x01,)) + _VEH25.pack(*head, _ew(b.insulation_kohm, "insulation_kohm"))
    ins = 0xFFFF if b.insulation_kohm is None else b.insulation_kohm
    if not 0 <= ins <= 0xFFFF:
        raise CodecError(f"value {ins} out of range", field="insulation_kohm")
    return bytes((0x01,)) + _VEH16.pack(
        *head,
        ins,
        _eb(b.accelerator_pedal_pct, "accelerator_pedal_pct"),
        _eb(b.brake_pedal_pct, "brake_pedal_pct"),
    )


def _enc_motors(b: DriveMotors, ed: Edition) -> bytes:
    parts = [bytes((0x02, _count(len(b.motors), "motors")))]
    for m in b.motors:
        common = (
            _raw_byte(m.number, "motor.number"),
            _eb(m.status, "motor.status"),
            _eb(m.controller_temp_c, "motor.controller_temp_c", 40),
        )
        if ed == Edition.V2016:
            parts.append(
                _MOT16.pack(
                    *common,
                    _ew(m.speed_rpm, "motor.speed_rpm", 1, 20000),
                    _ew(m.torque_nm, "motor.torque_nm", 10, 20000),
                    _eb(m.temp_c, "motor.temp_c", 40),
                    _ew(m.controller_voltage_v, "motor.controller_voltage_v", 10),
                    _ew(m.controller_current_a, "motor.controller_current_a", 10, 10000),
                )
            )
        else:
            parts.append(
                _MOT25.pack(
                    *common,
                    _ew(m.speed_rpm, "motor.speed_rpm", 1, 32000),
                    _ed(m.torque_nm, "motor.torque_nm", 10, 200000),
                    _eb(m.temp_c, "motor.temp_c", 40),
                )
            )
    return b"".join(parts)


def _enc_fuel_cell(b: FuelCell, ed: Edition) -> bytes:
    probes = bytes(_raw_byte(t + 40, "fuel_cell.probe_temps_c") for t in b.probe_temps_c)
    pres = round(b.h2_max_pressure_mpa * 10)
    if not 0 <= pres <= 0xFFFF:
        raise CodecError(f"value {b.h2_max_pressure_mpa} out of range", field="h2_max_pressure_mpa")
    return (
        b"\x03"
        + _FC16_HEAD.pack(
            _ew(b.voltage_v, "fuel_cell.voltage_v", 10),
            _ew(b.current_a, "fuel_cell.current_a", 10),
            _ew(b.consumption_kg_100km, "fuel_cell.consumption_kg_100km", 100),
            _count(len(probes), "fuel_cell.probe_temps_c", 0xFFFD),
        )
        + probes
        + _FC16_TAIL.pack(
            _ew(b.h2_max_temp_c, "fuel_cell.h2_max_temp_c", 10, 400),
            _eb(b.h2_max_temp_probe, "fuel_cell.h2_max_temp_probe"),
            _ew(b.h2_max_concentration_ppm, "fuel_cell.h2_max_concentration_ppm"),
            _eb(b.h2_max_concentration_sensor, "fuel_cell.h2_max_concentration_sensor"),
            pres,
            _eb(b.h2_max_pressure_sensor, "fuel_cell.h2_max_pressure_sensor"),
            _eb(b.dcdc_status, "fuel_cell.dcdc_status"),
        )
    )


def _enc_hydrogen(b: HydrogenSystem, ed: Edition) -> bytes:
    return b"\x03" + _H2_25.pack(
        _ew(b.h2_max_temp_c, "hydrogen.h2_max_temp_c", 1, 40),
        _eb(b.h2_max_temp_probe, "hydrogen.h2_max_temp_probe"),
        _ew(b.h2_max_concentration_pct, "hydrogen.h2_max_concentration_pct", 10000),
        _eb(b.h2_max_concentration_sensor, "hydrogen.h2_max_concentration_sensor"),
        _ew(b.h2_max_pressure_mpa, "hydrogen.h2_max_pressure_mpa", 10),
        _eb(b.h2_max_pressure_sensor, "hydrogen.h2_max_pressure_sensor"),
        _eb(b.dcdc_status, "hydrogen.dcdc_status"),
        _eb(b.h2_remaining_pct, "hydrogen.h2_remaining_pct"),
        _eb(b.dcdc_controller_temp_c, "hydrogen.dcdc_controller_temp_c", 40),
    )


def _enc_engine(b: Engine, ed: Edition) -> bytes:
    if ed == Edition.V2025:
        return b"\x04" + _ENG25.pack(_ew(b.crankshaft_speed_rpm, "engine.crankshaft_speed_rpm"))
    return b"\x04" + _ENG16.pack(
        _eb(b.status, "engine.status"),
        _ew(b.crankshaft_speed_rpm, "engine.crankshaft_speed_rpm"),
        _ew(b.fuel_consumption_l_100km, "engine.fuel_consumption_l_100km", 100),
    )


def _enc_position(b: Position, ed: Edition) -> bytes:
    status = _raw_byte(b.status, "position.status")
    if b.latitude is not None and b.latitude < 0:
        status |= 0x02
    if b.longitude is not None and b.longitude < 0:
        status |= 0x04
    lon = _ed(None if b.longitude is None else abs(b.longitude), "position.longitude", 1_000_000)
    lat = _ed(None if b.latitude is None else abs(b.latitude), "position.latitude", 1_000_000)
    if ed == Edition.V2016:
        return b"\x05" + _POS16.pack(status, lon, lat)
    crs = 0xFF if b.crs is None else _raw_byte(b.crs, "position.crs")
    return b"\x05" + _POS25.pack(status, crs, lon, lat)


def _enc_extremes(b: Extremes, ed: Edition) -> bytes:
    return b"\x06" + _EXT16.pack(
        _eb(b.max_voltage_subsystem, "extremes.max_voltage_subsystem"),
        _eb(b.max_voltage_cell, "extremes.max_voltage_cell"),
        _ew(b.max_cell_voltage_v, "extremes.max_cell_voltage_v", 1000),
        _eb(b.min_voltage_subsystem, "extremes.min_voltage_subsystem"),
        _eb(b.min_voltage_cell, "extremes.min_voltage_cell"),
        _ew(b.min_cell_voltage_v, "extremes.min_cell_voltage_v", 1000),
        _eb(b.max_temp_subsystem, "extremes.max_temp_subsystem"),
        _eb(b.max_temp_probe, "extremes.max_temp_probe"),
        _eb(b.max_temp_c, "extremes.max_temp_c", 40),
        _eb(b.min_temp_subsystem, "extremes.min_temp_subsystem"),
        _eb(b.min_temp_probe, "extremes.min_temp_probe"),
        _eb(b.min_temp_c, "extremes.min_temp_c", 40),
    )


def _enc_faults(codes: tuple[int, ...], field: str) -> bytes:
    _count(len(codes), field, 252)
    try:
        return bytes((len(codes),)) + struct.pack(f">{len(codes)}I", *codes)
    except struct.error as exc:
        raise CodecError("fault code does not fit a DWORD", field=field) from exc


def _enc_alarm(b: Alarm, ed: Edition) -> bytes:
    if not 0 <= b.flags <= 0xFFFFFFFF:
        raise CodecError(f"flags {b.flags} do not fit a DWORD", field="alarm.flags")
    out = (
        (b"\x07" if ed == Edition.V2016 else b"\x06")
        + _ALARM_HEAD.pack(_eb(b.max_level, "alarm.max_level"), b.flags)
        + _enc_faults(b.ress_faults, "alarm.ress_faults")
        + _enc_faults(b.motor_faults, "alarm.motor_faults")
        + _enc_faults(b.engine_faults, "alarm.engine_faults")
        + _enc_faults(b.other_faults, "alarm.other_faults")
    )
    if ed == Edition.V2025:
        _count(len(b.levels), "alarm.levels", 253)
        out += bytes((len(b.levels),)) + bytes(
            _raw_byte(v, "alarm.levels") for pair in b.levels for v in pair
        )
    return out


def _enc_cells(values: tuple[float | None, ...], field: str) -> bytes:
    raws = [_ew(v, field, 1000) for v in values]
    return struct.pack(f">{len(raws)}H", *raws)


def _enc_voltages(b: Voltages, ed: Edition) -> bytes:
    parts = [bytes((0x08 if ed == Edition.V2016 else 0x07, _count(len(b.subsystems), "voltages")))]
    for s in b.subsystems:
        number = _raw_byte(s.number, "voltages.number")
        volt = _ew(s.voltage_v, "voltages.voltage_v", 10)
        if ed == Edition.V2016:
            cur = _ew(s.current_a, "voltages.current_a", 10, 10000)
            m = _count(len(s.cell_voltages_v), "voltages.cell_voltages_v")
            if not (0 <= s.cell_count <= 0xFFFF and 0 <= s.start_index <= 0xFFFF):
                raise CodecError("cell count or start index out of range", field="voltages")
            parts.append(_VOLT16.pack(number, volt, cur, s.cell_count, s.start_index, m))
        else:
            cur = _ew(s.current_a, "voltages.current_a", 10, 30000)
            m = _count(len(s.cell_voltages_v), "voltages.cell_voltages_v", 0xFFFD)
            parts.append(_VOLT25.pack(number, volt, cur, m))
        parts.append(_enc_cells(s.cell_voltages_v, "voltages.cell_voltages_v"))
    return b"".join(parts)


def _enc_temps(values: tuple[int | None, ...], field: str) -> bytes:
    return bytes(_eb(t, field, 40) for t in values)


def _enc_temperatures(b: Temperatures, ed: Edition) -> bytes:
    code = 0x09 if ed == Edition.V2016 else 0x08
    parts = [bytes((code, _count(len(b.subsystems), "temperatures")))]
    for s in b.subsystems:
        n = _count(len(s.temps_c), "temperatures.temps_c", 0xFFFD)
        parts.append(_TEMP.pack(_raw_byte(s.number, "temperatures.number"), n))
        parts.append(_enc_temps(s.temps_c, "temperatures.temps_c"))
    return b"".join(parts)


def _enc_stacks(b: FuelCellStacks, ed: Edition) -> bytes:
    parts = [bytes((0x30, _count(len(b.stacks), "stacks")))]
    for s in b.stacks:
        parts.append(
            _STACK.pack(
                _raw_byte(s.number, "stack.number"),
                _ew(s.voltage_v, "stack.voltage_v", 10),
                _ew(s.current_a, "stack.current_a", 10),
                _ew(s.h2_inlet_pressure_kpa, "stack.h2_inlet_pressure_kpa", 10, 1000),
                _ew(s.air_inlet_pressure_kpa, "stack.air_inlet_pressure_kpa", 10, 1000),
                _eb(s.air_inlet_temp_c, "stack.air_inlet_temp_c", 40),
                _count(len(s.coolant_outlet_temps_c), "stack.coolant_outlet_temps_c", 0xFFFD),
            )
        )
        parts.append(_enc_temps(s.coolant_outlet_temps_c, "stack.coolant_outlet_temps_c"))
    return b"".join(parts)


def _enc_supercap(b: SuperCapacitor, ed: Edition) -> bytes:
    return (
        b"\x31"
        + _SCAP.pack(
            _raw_byte(b.number, "supercap.number"),
            _ew(b.voltage_v, "supercap.voltage_v", 10),
            _ew(b.current_a, "supercap.current_a", 10, 30000),
            _count(len(b.cell_voltages_v), "supercap.cell_voltages_v", 0xFFFD),
        )
        + _enc_cells(b.cell_voltages_v, "supercap.cell_voltages_v")
        + _U16.pack(_count(len(b.probe_temps_c), "supercap.probe_temps_c", 0xFFFD))
        + _enc_temps(b.probe_temps_c, "supercap.probe_temps_c")
    )


def _enc_supercap_extremes(b: SuperCapacitorExtremes, ed: Edition) -> bytes:
    f = "supercap_extremes"
    return b"\x32" + _SCAP_EXT.pack(
        _eb(b.max_voltage_system, f),
        _ew(b.max_voltage_cell, f),
        _ew(b.max_voltage_v, f, 1000),
        _eb(b.min_voltage_system, f),
        _ew(b.min_voltage_cell, f),
        _ew(b.min_voltage_v, f, 1000),
        _eb(b.max_temp_system, f),
        _ew(b.max_temp_probe, f),
        _eb(b.max_temp_c, f, 40),
        _eb(b.min_temp_system, f),
        _ew(b.min_temp_probe, f),
        _eb(b.min_temp_c, f, 40),
    )


def _enc_custom(b: CustomBlock, ed: Edition) -> bytes:
    if not 0x80 <= b.type_code <= 0xFE:
        raise CodecError(f"custom type 0x{b.type_code:02X} outside 0x80-0xFE", field="custom")
    if len(b.data) > 0xFFFF:
        raise CodecError("custom block longer than 65535 bytes", field="custom")
    return bytes((b.type_code,)) + _U16.pack(len(b.data)) + b.data


def _enc_signature(b: Signature, ed: Edition) -> bytes:
    if len(b.r) > 0xFFFF or len(b.s) > 0xFFFF:
        raise CodecError("signature part longer than 65535 bytes", field="signature")
    return (
        bytes((0xFF, _raw_byte(b.sig_type, "signature.sig_type")))
        + _U16.pack(len(b.r))
        + b.r
        + _U16.pack(len(b.s))
        + b.s
    )


_ENCODERS: dict[type, Callable[[Any, Edition], bytes]] = {
    VehicleData: _enc_vehicle,
    DriveMotors: _enc_motors,
    FuelCell: _enc_fuel_cell,
    HydrogenSystem: _enc_hydrogen,
    Engine: _enc_engine,
    Position: _enc_position,
    Extremes: _enc_extremes,
    Alarm: _enc_alarm,
    Voltages: _enc_voltages,
    Temperatures: _enc_temperatures,
    FuelCellStacks: _enc_stacks,
    SuperCapacitor: _enc_supercap,
    SuperCapacitorExtremes: _enc_supercap_extremes,
    CustomBlock: _enc_custom,
    Signature: _enc_signature,
}
_ONLY_2016 = (FuelCell, Extremes)
_ONLY_2025 = (HydrogenSystem, FuelCellStacks, SuperCapacitor, SuperCapacitorExtremes, Signature)


def encode_realtime(report: RealtimeReport, edition: Edition) -> bytes:
    """Encode a real-time/reissue data unit in the given edition's layouts.

    Raises:
        CodecError: a value out of range, or a block the edition does not have.
    """
    parts = [encode_time(report.time)]
    for index, block in enumerate(report.blocks):
        if isinstance(block, _ONLY_2016 if edition == Edition.V2025 else _ONLY_2025):
            raise CodecError(
                f"{type(block).__name__} does not exist in the {edition.value} edition",
                field=f"blocks[{index}]",
            )
        if isinstance(block, Signature) and index != len(report.blocks) - 1:
            raise CodecError("the signature must be the last block", field=f"blocks[{index}]")
        parts.append(_ENCODERS[type(block)](block, edition))
    return b"".join(parts)
