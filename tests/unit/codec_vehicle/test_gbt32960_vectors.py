"""GB/T 32960-2016 real frames decode to exactly the values listed in the test-vector file.

Frames copied from /work/shared/testvectors/gbt32960-2016.md (samples A1-A9, originally from
terryhart/32960, MIT); expected values are that file's independent checker output.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ironbridge.codec.binary import xor_checksum
from ironbridge.codec.gbt32960 import (
    BEIJING,
    Alarm,
    Command,
    CustomBlock,
    DriveMotors,
    Edition,
    Empty,
    Extremes,
    Position,
    RealtimeReport,
    ResponseFlag,
    ResponseTime,
    Temperatures,
    VehicleData,
    VehicleLogin,
    VehicleLogout,
    Voltages,
    build_response,
    decode_frame,
    encode_message,
    flatten_report,
)

A1 = bytes.fromhex(
    "232301FE4C46574144524A463031313030323334360100281206050B2C1D0001383336303533333739383136"
    "3035343930313837020531303030313130303032C2"
)
A2 = bytes.fromhex(
    "232301FE4C464E41344C4441394A4B4C303030383101001F120A1E1024000003383938363136313630323030"
    "3134313030303032010131DF"
)
A3 = bytes.fromhex("232301014C464E41344C4441394A4B4C3030303831010006120A1E10240000")
A4 = bytes.fromhex(
    "232302FE45525230383033303030303030303030300100B71206170C05020101030100320000023D1B583A98"
    "32013E121D0065020101013C61A888B83C00783A980500072733A101CF049C06011106400102050001015001"
    "0540070000000000000000000801011B583A9800110001110640050006400640064006400640064006400640"
    "064006400640064006400640064009010100055040404040800030CD0036277E32B038380500000000000000"
    "000000001766271A000000000000000000000000121D0000383C000000001674"
)
A5 = bytes.fromhex(
    "232302FE4C59314341313233354A3030303234333301016B120A1E1021210101030100000002666B106E2714"
    "5801005208000002010104464E204E203C105E271405010659F7D801C4213806013C0D0B01020D0901013E01"
    "023D07000000000000000000080101106E2714007E00017E0D0A0D090D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A"
    "0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D090D0A0D090D0A0D0A0D09"
    "0D0A0D090D0A0D090D0A0D090D090D0A0D090D090D090D090D090D090D0A0D090D0A0D0A0D090D090D0A0D09"
    "0D090D090D090D090D0A0D0B0D0A0D0A0D090D0A0D090D0A0D0A0D090D0A0D090D0A0D0A0D090D0A0D0A0D09"
    "0D0A0D090D0A0D090D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A0D0A"
    "0D0A0D0A0D0A0D0A0D0A0D0A0D0B0D0A0D0A0D090D0A0D0A0D0A0D0A0D090D0A0D0A0D0A0D0A0D090D0A0D0A"
    "0D090D0A0D0A0D0A0D0A0D0A09010100123E3D3D3D3D3D3E3E3E3E3E3E3E3D3E3E3D3E55"
)
A6 = bytes.fromhex(
    "232303FE4C464E41344C4441394A4B4C30303038310101B6120A1E0F2B0A010204010000000186A018E62710"
    "64010FD6D8000002010104414E204E204518E6271005000714600B01E8042806015C100201130FEC01013A01"
    "20390700000000000000000008010118E62710009C00019C0FF50FEF0FF50FF10FF30FF30FFD0FF30FFE0FF7"
    "0FFA0FEF0FF80FF30FF00FF70FFA0FEF0FEC0FEF0FFD0FF00FF30FF00FF50FEF0FF90FF60FF40FEF0FF70FF5"
    "0FF70FF00FF50FF50FF30FF30FFA0FF50FF80FF60FF50FEF0FF50FF10FFA0FF10FF80FFC0FF10FF20FF40FF4"
    "0FFD0FF70FFD0FFB0FF80FF40FFA0FEF0FFD0FEF0FF20FF80FFE10000FFE0FFC0FFA0FFC0FFC0FF50FF91000"
    "0FF70FF30FF30FFD0FFC0FEE0FF80FF30FEF0FF90FFD0FF50FF70FF40FF610020FF90FF90FFA0FF80FFA0FFA"
    "0FF50FFB0FFA0FF40FF00FFB0FFB0FF20FF20FF90FF80FF10FF80FF70FF90FF90FF20FFE0FF90FF90FF40FF9"
    "0FF50FEF0FF40FF10FF30FF60FF80FF10FEC0FEF0FF40FEF0FF70FF10FF80FEF0FF80FFC10000FF70FF50FF3"
    "0FF70FF50FFA0FF30FF80FF10FF30FF80FF80FEE0FF60FF10FFC0FF509010100213A3A3A3A3A3A3A3A3A3A3A"
    "3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3A3939E9"
)
A7 = bytes.fromhex("232304FE4C5A595441474257394A313030343136340100081206161015150046EA")
A8 = bytes.fromhex("232307FE4838323230363530303030303030303030010000BB")
A9 = bytes.fromhex("232308FE4552523038303330303030303030303030010000B9")

ALL = {"A1": A1, "A2": A2, "A3": A3, "A4": A4, "A5": A5, "A6": A6, "A7": A7, "A8": A8, "A9": A9}


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


def realtime(frame: bytes) -> RealtimeReport:
    unit = decode_frame(frame).unit
    assert isinstance(unit, RealtimeReport)
    return unit


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_vector_reencodes_byte_exact(name: str) -> None:
    raw = ALL[name]
    msg = decode_frame(raw)
    again = encode_message(
        msg.frame.command,
        msg.unit,
        vin=msg.frame.vin,
        response=msg.frame.response,
        edition=msg.frame.edition,
    )
    assert again == raw
    assert raw[-1] == xor_checksum(raw, 2, -1)


def test_a1_login_with_two_ress_codes() -> None:
    msg = decode_frame(A1)
    assert msg.frame.command == Command.VEHICLE_LOGIN
    assert msg.frame.response == ResponseFlag.COMMAND
    assert msg.frame.vin == "LFWADRJF011002346"
    assert msg.frame.edition == Edition.V2016
    assert msg.unit == VehicleLogin(
        time=bj(2018, 6, 5, 11, 44, 29),
        serial=1,
        iccid="83605337981605490187",
        ress_count=2,
        ress_code_length=5,
        ress_codes=("10001", "10002"),
    )


def test_a2_login_and_a3_its_response() -> None:
    msg = decode_frame(A2)
    assert msg.unit == VehicleLogin(
        time=bj(2018, 10, 30, 16, 36, 0),
        serial=3,
        iccid="89861616020014100002",
        ress_count=1,
        ress_code_length=1,
        ress_codes=("1",),
    )
    assert build_response(msg.frame) == A3
    answer = decode_frame(A3)
    assert answer.frame.response == ResponseFlag.SUCCESS
    assert answer.unit == ResponseTime(time=bj(2018, 10, 30, 16, 36, 0))


def test_a4_realtime_all_blocks() -> None:
    report = realtime(A4)
    assert report.time == bj(2018, 6, 23, 12, 5, 2)
    assert report.vehicle == VehicleData(
        vehicle_status=1,
        charging_status=3,
        running_mode=1,
        speed_kmh=5.0,
        odometer_km=57.3,
        total_voltage_v=700.0,
        total_current_a=500.0,
        soc_pct=50,
        dcdc_status=1,
        gear=0x3E,
        insulation_kohm=4637,
        accelerator_pedal_pct=0,
        brake_pedal_pct=101,
    )
    assert report.vehicle.gear_position == "D"
    assert report.vehicle.driving_force
    assert report.vehicle.braking_force
    (motor,) = report.motors
    assert (motor.number, motor.status, motor.controller_temp_c, motor.speed_rpm) == (
        1,
        1,
        20,
        5000,
    )
    assert (motor.torque_nm, motor.temp_c) == (1500.0, 20)
    assert (motor.controller_voltage_v, motor.controller_current_a) == (12.0, 500.0)
    assert report.position == Position(status=0, longitude=120.009633, latitude=30.344348)
    assert report.position.valid
    assert report.extremes == Extremes(
        max_voltage_subsystem=1,
        max_voltage_cell=17,
        max_cell_voltage_v=1.6,
        min_voltage_subsystem=1,
        min_voltage_cell=2,
        min_cell_voltage_v=1.28,
        max_temp_subsystem=1,
        max_temp_probe=1,
        max_temp_c=40,
        min_temp_subsystem=1,
        min_temp_probe=5,
        min_temp_c=24,
    )
    assert report.alarm == Alarm(max_level=0, flags=0)
    (sub,) = report.voltages
    assert (sub.number, sub.voltage_v, sub.current_a) == (1, 700.0, 500.0)
    assert (sub.cell_count, sub.start_index, len(sub.cell_voltages_v)) == (17, 1, 17)
    assert min(v for v in sub.cell_voltages_v if v is not None) == 1.28
    assert max(v for v in sub.cell_voltages_v if v is not None) == 1.6
    (temps,) = report.temperatures
    assert temps.temps_c == (40, 24, 24, 24, 24)
    custom = [b for b in report.blocks if isinstance(b, CustomBlock)]
    assert [(c.type_code, len(c.data)) for c in custom] == [(0x80, 48)]
    assert [type(b) for b in report.blocks] == [
        VehicleData,
        DriveMotors,
        Position,
        Extremes,
        Alarm,
        Voltages,
        Temperatures,
        CustomBlock,
    ]


def test_a5_real_bus_frame_and_its_response() -> None:
    report = realtime(A5)
    assert report.time == bj(2018, 10, 30, 16, 33, 33)
    v = report.vehicle
    assert v is not None
    assert (v.vehicle_status, v.charging_status, v.running_mode) == (1, 3, 1)
    assert (v.speed_kmh, v.odometer_km, v.total_voltage_v, v.total_current_a) == (
        0.0,
        15729.1,
        420.6,
        0.4,
    )
    assert (v.soc_pct, v.dcdc_status, v.gear, v.insulation_kohm) == (88, 1, 0, 21000)
    assert (v.accelerator_pedal_pct, v.brake_pedal_pct) == (0, 0)
    (motor,) = report.motors
    assert (motor.status, motor.controller_temp_c, motor.speed_rpm, motor.torque_nm) == (
        4,
        30,
        0,
        0.0,
    )
    assert (motor.temp_c, motor.controller_voltage_v, motor.controller_current_a) == (
        20,
        419.0,
        0.4,
    )
    pos = report.position
    assert pos is not None
    assert (pos.status, pos.valid, pos.longitude, pos.latitude) == (1, False, 106.559448, 29.630776)
    ext = report.extremes
    assert ext is not None
    assert (ext.max_voltage_cell, ext.max_cell_voltage_v) == (60, 3.339)
    assert (ext.min_voltage_cell, ext.min_cell_voltage_v) == (2, 3.337)
    assert (ext.max_temp_probe, ext.max_temp_c, ext.min_temp_probe, ext.min_temp_c) == (
        1,
        22,
        2,
        21,
    )
    (sub,) = report.voltages
    assert (sub.voltage_v, sub.current_a, sub.cell_count, sub.start_index) == (420.6, 0.4, 126, 1)
    cells = [c for c in sub.cell_voltages_v if c is not None]
    assert (len(cells), min(cells), max(cells)) == (126, 3.337, 3.339)
    (temps,) = report.temperatures
    assert len(temps.temps_c) == 18
    assert sorted(set(temps.temps_c)) == [21, 22]  # type: ignore[type-var]
    response = build_response(decode_frame(A5).frame)
    assert (
        response.hex().upper() == "232302014C59314341313233354A30303032343333010006120A1E1021214D"
    )


def test_a6_reissue_frame() -> None:
    msg = decode_frame(A6)
    assert msg.frame.command == Command.REISSUE
    report = msg.unit
    assert isinstance(report, RealtimeReport)
    assert report.time == bj(2018, 10, 30, 15, 43, 10)
    v = report.vehicle
    assert v is not None
    assert (v.vehicle_status, v.charging_status, v.odometer_km, v.total_voltage_v) == (
        2,
        4,
        10000.0,
        637.4,
    )
    assert (v.total_current_a, v.soc_pct, v.gear, v.gear_position, v.insulation_kohm) == (
        0.0,
        100,
        0x0F,
        "P",
        55000,
    )
    (motor,) = report.motors
    assert (motor.controller_temp_c, motor.temp_c, motor.controller_voltage_v) == (25, 29, 637.4)
    assert report.position == Position(status=0, longitude=118.775819, latitude=31.982632)
    ext = report.extremes
    assert ext is not None
    assert (ext.max_voltage_cell, ext.max_cell_voltage_v, ext.min_voltage_cell) == (92, 4.098, 19)
    assert (ext.min_cell_voltage_v, ext.max_temp_c, ext.min_temp_probe, ext.min_temp_c) == (
        4.076,
        18,
        32,
        17,
    )
    (sub,) = report.voltages
    cells = [c for c in sub.cell_voltages_v if c is not None]
    assert (sub.cell_count, len(cells), min(cells), max(cells)) == (156, 156, 4.076, 4.098)
    (temps,) = report.temperatures
    assert len(temps.temps_c) == 33
    assert sorted(set(temps.temps_c)) == [17, 18]  # type: ignore[type-var]
    assert build_response(msg.frame).hex().upper() == (
        "232303014C464E41344C4441394A4B4C3030303831010006120A1E0F2B0A18"
    )


def test_a7_logout_and_response() -> None:
    msg = decode_frame(A7)
    assert msg.unit == VehicleLogout(time=bj(2018, 6, 22, 16, 21, 21), serial=70)
    assert build_response(msg.frame).hex().upper() == (
        "232304014C5A595441474257394A313030343136340100061206161015155D"
    )


def test_a8_heartbeat_and_response() -> None:
    msg = decode_frame(A8)
    assert msg.frame.command == Command.HEARTBEAT
    assert msg.unit == Empty()
    assert build_response(msg.frame).hex().upper() == (
        "23230701483832323036353030303030303030303001000044"
    )


def test_a9_time_sync_answer_carries_platform_time() -> None:
    msg = decode_frame(A9)
    assert msg.unit == Empty()
    now = bj(2024, 3, 1, 8, 9, 10)
    answer = build_response(msg.frame, time=now)
    assert answer.hex().upper().startswith("232308014552523038303330303030303030303030010006")
    decoded = decode_frame(answer)
    assert decoded.unit == ResponseTime(time=now)


def test_flatten_a4_values_and_no_alarm_events() -> None:
    flat = flatten_report(realtime(A4), Edition.V2016, asset_id="bus-1")
    assert flat.ts_us == 1_529_726_702_000_000  # 2018-06-23 12:05:02 +08:00
    v = flat.values
    assert v["vehicle_speed"] == 5.0
    assert v["odometer"] == 57.3
    assert v["total_current"] == 500.0
    assert v["soc"] == 50.0
    assert v["gear"] == 14.0
    assert v["motor1_speed"] == 5000.0
    assert v["latitude"] == 30.344348
    assert v["cell_voltage_1_17"] == 1.6
    assert v["probe_temp_1_5"] == 24.0
    assert v["alarm_level"] == 0.0
    assert all(value is None or isinstance(value, float) for value in v.values())
    assert flat.events == []
