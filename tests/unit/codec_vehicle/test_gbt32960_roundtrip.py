"""GB/T 32960 encode/decode round trips (2016 and 2025), malformed frames and fuzzing."""

from __future__ import annotations

import contextlib
from datetime import datetime
from functools import reduce
from operator import xor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ironbridge.codec.binary import CodecError, xor_checksum
from ironbridge.codec.gbt32960 import (
    BEIJING,
    Alarm,
    Command,
    CustomBlock,
    DriveMotor,
    DriveMotors,
    Edition,
    Engine,
    Extremes,
    FuelCell,
    FuelCellStack,
    FuelCellStacks,
    HydrogenSystem,
    PlatformLogin,
    Position,
    RealtimeReport,
    Signature,
    SubsystemTemperatures,
    SubsystemVoltages,
    SuperCapacitor,
    SuperCapacitorExtremes,
    Temperatures,
    VehicleData,
    VehicleLogin,
    VehicleLogin2025,
    Voltages,
    build_frame,
    decode_frame,
    decode_realtime,
    decode_unit,
    encode_message,
    encode_realtime,
    flatten_report,
    parse_frame,
    split_stream,
)
from ironbridge.model import InvalidInput

# A7 of /work/shared/testvectors/gbt32960-2016.md (vehicle logout).
LOGOUT = bytes.fromhex("232304FE4C5A595441474257394A313030343136340100081206161015150046EA")
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=BEIJING)
)


def ob(off: int = 0) -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(0, 0xFD).map(lambda r: r - off)


def ow(div: int, off: int = 0) -> st.SearchStrategy[float | None]:
    return st.none() | st.integers(0, 0xFFFD).map(lambda r: (r - off) / div)


def owi(off: int = 0) -> st.SearchStrategy[int | None]:
    return st.none() | st.integers(0, 0xFFFD).map(lambda r: r - off)


def od(div: int, off: int = 0) -> st.SearchStrategy[float | None]:
    return st.none() | st.integers(0, 0xFFFFFFFD).map(lambda r: (r - off) / div)


def byte() -> st.SearchStrategy[int]:
    return st.integers(0, 0xFF)


def small(strategy: st.SearchStrategy[Any], n: int = 6) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(strategy, max_size=n).map(tuple)


def vehicle(ed: Edition) -> st.SearchStrategy[VehicleData]:
    common: dict[str, Any] = {
        "vehicle_status": ob(),
        "charging_status": ob(),
        "running_mode": ob(),
        "speed_kmh": ow(10),
        "odometer_km": od(10),
        "total_voltage_v": ow(10),
        "total_current_a": ow(10, 10000 if ed == Edition.V2016 else 30000),
        "soc_pct": ob(),
        "dcdc_status": ob(),
        "gear": byte(),
    }
    if ed == Edition.V2016:
        return st.builds(
            VehicleData,
            **common,
            insulation_kohm=st.integers(0, 0xFFFF),
            accelerator_pedal_pct=ob(),
            brake_pedal_pct=ob(),
        )
    return st.builds(VehicleData, **common, insulation_kohm=owi())


def motors(ed: Edition) -> st.SearchStrategy[DriveMotors]:
    if ed == Edition.V2016:
        motor = st.builds(
            DriveMotor,
            number=byte(),
            status=ob(),
            controller_temp_c=ob(40),
            speed_rpm=owi(20000),
            torque_nm=ow(10, 20000),
            temp_c=ob(40),
            controller_voltage_v=ow(10),
            controller_current_a=ow(10, 10000),
        )
    else:
        motor = st.builds(
            DriveMotor,
            number=byte(),
            status=ob(),
            controller_temp_c=ob(40),
            speed_rpm=owi(32000),
            torque_nm=od(10, 200000),
            temp_c=ob(40),
        )
    return st.builds(DriveMotors, motors=small(motor, 3))


def position(ed: Edition) -> st.SearchStrategy[Position]:
    return st.builds(
        Position,
        status=st.integers(0, 0xFF).map(lambda s: s & ~0x06),
        longitude=od(1_000_000),
        latitude=od(1_000_000),
        crs=ob() if ed == Edition.V2025 else st.none(),
    )


def alarm(ed: Edition) -> st.SearchStrategy[Alarm]:
    codes = small(st.integers(0, 0xFFFFFFFF), 3)
    return st.builds(
        Alarm,
        max_level=ob(),
        flags=st.integers(0, 0xFFFFFFFF),
        ress_faults=codes,
        motor_faults=codes,
        engine_faults=codes,
        other_faults=codes,
        levels=small(st.tuples(byte(), byte()), 3) if ed == Edition.V2025 else st.just(()),
    )


def voltages(ed: Edition) -> st.SearchStrategy[Voltages]:
    cells = small(ow(1000), 12)
    if ed == Edition.V2016:
        sub = st.builds(
            SubsystemVoltages,
            number=byte(),
            voltage_v=ow(10),
            current_a=ow(10, 10000),
            cell_count=st.integers(0, 0xFFFF),
            start_index=st.integers(0, 0xFFFF),
            cell_voltages_v=cells,
        )
    else:
        sub = cells.flatmap(
            lambda cv: st.builds(
                SubsystemVoltages,
                number=byte(),
                voltage_v=ow(10),
                current_a=ow(10, 30000),
                cell_count=st.just(len(cv)),
                start_index=st.just(1),
                cell_voltages_v=st.just(cv),
            )
        )
    return st.builds(Voltages, subsystems=small(sub, 3))


temperatures = st.builds(
    Temperatures,
    subsystems=small(st.builds(SubsystemTemperatures, number=byte(), temps_c=small(ob(40), 10)), 3),
)
custom = st.builds(CustomBlock, type_code=st.integers(0x80, 0xFE), data=st.binary(max_size=20))

blocks_2016 = st.one_of(
    vehicle(Edition.V2016),
    motors(Edition.V2016),
    st.builds(
        FuelCell,
        voltage_v=ow(10),
        current_a=ow(10),
        consumption_kg_100km=ow(100),
        probe_temps_c=small(st.integers(-40, 215), 8),
        h2_max_temp_c=ow(10, 400),
        h2_max_temp_probe=ob(),
        h2_max_concentration_ppm=owi(),
        h2_max_concentration_sensor=ob(),
        h2_max_pressure_mpa=st.integers(0, 0xFFFF).map(lambda r: r / 10),
        h2_max_pressure_sensor=ob(),
        dcdc_status=ob(),
    ),
    st.builds(Engine, status=ob(), crankshaft_speed_rpm=owi(), fuel_consumption_l_100km=ow(100)),
    position(Edition.V2016),
    st.builds(
        Extremes,
        max_voltage_subsystem=ob(),
        max_voltage_cell=ob(),
        max_cell_voltage_v=ow(1000),
        min_voltage_subsystem=ob(),
        min_voltage_cell=ob(),
        min_cell_voltage_v=ow(1000),
        max_temp_subsystem=ob(),
        max_temp_probe=ob(),
        max_temp_c=ob(40),
        min_temp_subsystem=ob(),
        min_temp_probe=ob(),
        min_temp_c=ob(40),
    ),
    alarm(Edition.V2016),
    voltages(Edition.V2016),
    temperatures,
    custom,
)

blocks_2025 = st.one_of(
    vehicle(Edition.V2025),
    motors(Edition.V2025),
    st.builds(
        HydrogenSystem,
        h2_max_temp_c=owi(40),
        h2_max_temp_probe=ob(),
        h2_max_concentration_pct=ow(10000),
        h2_max_concentration_sensor=ob(),
        h2_max_pressure_mpa=ow(10),
        h2_max_pressure_sensor=ob(),
        dcdc_status=ob(),
        h2_remaining_pct=ob(),
        dcdc_controller_temp_c=ob(40),
    ),
    st.builds(Engine, status=st.none(), crankshaft_speed_rpm=owi()),
    position(Edition.V2025),
    alarm(Edition.V2025),
    voltages(Edition.V2025),
    temperatures,
    st.builds(
        FuelCellStacks,
        stacks=small(
            st.builds(
                FuelCellStack,
                number=byte(),
                voltage_v=ow(10),
                current_a=ow(10),
                h2_inlet_pressure_kpa=ow(10, 1000),
                air_inlet_pressure_kpa=ow(10, 1000),
                air_inlet_temp_c=ob(40),
                coolant_outlet_temps_c=small(ob(40), 5),
            ),
            3,
        ),
    ),
    st.builds(
        SuperCapacitor,
        number=byte(),
        voltage_v=ow(10),
        current_a=ow(10, 30000),
        cell_voltages_v=small(ow(1000), 8),
        probe_temps_c=small(ob(40), 5),
    ),
    st.builds(
        SuperCapacitorExtremes,
        max_voltage_system=ob(),
        max_voltage_cell=owi(),
        max_voltage_v=ow(1000),
        min_voltage_system=ob(),
        min_voltage_cell=owi(),
        min_voltage_v=ow(1000),
        max_temp_system=ob(),
        max_temp_probe=owi(),
        max_temp_c=ob(40),
        min_temp_system=ob(),
        min_temp_probe=owi(),
        min_temp_c=ob(40),
    ),
    custom,
)

signature = st.builds(
    Signature, sig_type=st.integers(1, 3), r=st.binary(max_size=64), s=st.binary(max_size=64)
)
vins = st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ0123456789", min_size=17, max_size=17)


@ROUND
@given(time=times, blocks=st.lists(blocks_2016, max_size=8), vin=vins, cmd=st.sampled_from([2, 3]))
def test_2016_realtime_round_trip(time: datetime, blocks: list[Any], vin: str, cmd: int) -> None:
    report = RealtimeReport(time=time, blocks=tuple(blocks))
    frame = encode_message(cmd, report, vin=vin)
    msg = decode_frame(frame)
    assert msg.frame.vin == vin
    assert msg.unit == report
    flat = flatten_report(report, Edition.V2016, asset_id="v")
    assert all(v is None or isinstance(v, float) for v in flat.values.values())


@ROUND
@given(
    time=times,
    blocks=st.lists(blocks_2025, max_size=8),
    sig=st.none() | signature,
    vin=vins,
)
def test_2025_realtime_round_trip(
    time: datetime, blocks: list[Any], sig: Signature | None, vin: str
) -> None:
    report = RealtimeReport(time=time, blocks=(*blocks, *([sig] if sig else [])))
    frame = encode_message(Command.REALTIME, report, vin=vin, edition=Edition.V2025)
    assert frame[:2] == b"$$"
    msg = decode_frame(frame)
    assert msg.frame.edition == Edition.V2025
    assert msg.unit == report
    flat = flatten_report(report, Edition.V2025, asset_id="v")
    assert all(v is None or isinstance(v, float) for v in flat.values.values())


@given(data=st.binary(max_size=600), start=st.integers(0, 10), end=st.integers(-5, 600))
def test_fast_xor_checksum_matches_plain_fold(data: bytes, start: int, end: int) -> None:
    assert xor_checksum(data, start, end) == reduce(xor, data[start:end], 0)


@ROUND
@given(
    time=times,
    serial=st.integers(0, 0xFFFF),
    iccid=st.text(alphabet="0123456789", max_size=20),
    codes=st.integers(1, 8).flatmap(
        lambda m: small(st.text(alphabet="0123456789AB", min_size=m, max_size=m), 5)
    ),
)
def test_login_round_trip(time: datetime, serial: int, iccid: str, codes: tuple[str, ...]) -> None:
    m = len(codes[0]) if codes else 0
    login = VehicleLogin(
        time=time,
        serial=serial,
        iccid=iccid,
        ress_count=len(codes),
        ress_code_length=m,
        ress_codes=codes,
    )
    assert decode_frame(encode_message(1, login, vin="V")).unit == login
    packs = (len(codes), 1)
    login25 = VehicleLogin2025(
        time=time,
        serial=serial,
        iccid=iccid,
        packs_per_bms=packs,
        pack_codes=tuple(c.ljust(24, "X") for c in (*codes, "P")),
    )
    frame = encode_message(1, login25, vin="V", edition=Edition.V2025)
    assert decode_frame(frame).unit == login25


def test_platform_login_gb18030_user() -> None:
    unit = PlatformLogin(
        time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=BEIJING),
        serial=7,
        username="平台用户",
        password="secret",
        encryption_rule=1,
    )
    frame = encode_message(Command.PLATFORM_LOGIN, unit, vin="PLATFORM")
    assert decode_frame(frame).unit == unit


def test_sentinels_become_none_never_numbers() -> None:
    time = datetime(2020, 1, 1, tzinfo=BEIJING)
    # whole-vehicle block with every field abnormal (0xFE...) or invalid (0xFF...)
    body = bytes.fromhex("01FEFFFEFFFEFFFFFFFFFFFEFFFFFEFF0F0010FEFF")
    data = bytes((20, 1, 1, 0, 0, 0)) + body
    report = decode_realtime(data, Edition.V2016)
    v = report.vehicle
    assert v is not None
    assert v.vehicle_status is None
    assert v.charging_status is None
    assert v.running_mode is None
    assert v.speed_kmh is None
    assert v.odometer_km is None
    assert v.total_voltage_v is None
    assert v.total_current_a is None
    assert v.soc_pct is None
    assert v.dcdc_status is None
    assert v.accelerator_pedal_pct is None
    assert v.brake_pedal_pct is None
    flat = flatten_report(report, Edition.V2016, asset_id="a")
    assert flat.values["vehicle_speed"] is None
    assert flat.values["insulation_resistance"] == 16.0
    # 0xFEFE is an ordinary WORD, not a sentinel (rtm_con decodes 0xFEFE rpm as 45278)
    engine = decode_realtime(bytes((20, 1, 1, 0, 0, 0, 4, 1, 0xFE, 0xFE, 0, 0)), Edition.V2016)
    assert engine.blocks[0] == Engine(
        status=1, crankshaft_speed_rpm=0xFEFE, fuel_consumption_l_100km=0.0
    )
    assert time.tzinfo is BEIJING


def test_alarm_flags_become_events_lsb_first() -> None:
    report = RealtimeReport(
        time=datetime(2024, 5, 6, 7, 8, 9, tzinfo=BEIJING),
        blocks=(Alarm(max_level=3, flags=0x00800003, ress_faults=(0xABCD,), levels=((23, 4),)),),
    )
    data = encode_realtime(report, Edition.V2025)
    decoded = decode_realtime(data, Edition.V2025)
    flat = flatten_report(decoded, Edition.V2025, asset_id="ev-1")
    codes = [(e.kind, e.code, e.payload.get("level")) for e in flat.events]
    assert codes == [
        ("gbt32960_alarm", "temperature_difference", 3),
        ("gbt32960_alarm", "battery_high_temperature", 3),
        ("gbt32960_alarm", "ress_thermal_event", 4),
        ("gbt32960_fault", "ress:0000ABCD", 3),
    ]
    assert all(e.asset_id == "ev-1" and e.ts_us == flat.ts_us for e in flat.events)
    # in 2016 bit 23 is reserved: still reported, under its bit number
    flat16 = flatten_report(
        RealtimeReport(time=report.time, blocks=(Alarm(max_level=1, flags=1 << 23),)),
        Edition.V2016,
        asset_id="a",
    )
    assert [e.code for e in flat16.events] == ["bit23"]


def test_2025_blocks_are_edition_specific() -> None:
    t = datetime(2025, 1, 1, tzinfo=BEIJING)
    with pytest.raises(CodecError, match="does not exist in the 2016 edition"):
        encode_realtime(
            RealtimeReport(time=t, blocks=(Signature(sig_type=1, r=b"", s=b""),)), Edition.V2016
        )
    with pytest.raises(CodecError, match="signature must be the last"):
        encode_realtime(
            RealtimeReport(
                time=t,
                blocks=(
                    Signature(sig_type=1, r=b"", s=b""),
                    Engine(status=None, crankshaft_speed_rpm=1),
                ),
            ),
            Edition.V2025,
        )
    # 2025 type 0x06 is the alarm block, 2016 type 0x06 the extreme values
    same = bytes((25, 1, 1, 0, 0, 0, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
    assert isinstance(decode_realtime(same, Edition.V2025).blocks[0], Alarm)
    with pytest.raises(CodecError, match="truncated extremes"):
        decode_realtime(same, Edition.V2016)


def _with_bcc(frame: bytes) -> bytes:
    return frame[:-1] + bytes((xor_checksum(frame, 2, -1),))


@pytest.mark.parametrize(
    ("frame", "field", "reason"),
    [
        (LOGOUT[:-1] + b"\x00", "bcc", "BCC mismatch"),
        (LOGOUT[:20], "", "truncated frame"),
        (LOGOUT[:-2] + LOGOUT[-1:], "length", "declares"),
        (_with_bcc(LOGOUT[:23] + b"\x09" + LOGOUT[24:]), "length", "declares"),
        (b"@@" + LOGOUT[2:], "start", "bad start bytes"),
        (_with_bcc(LOGOUT[:24] + b"\x12\x0d" + LOGOUT[26:]), "time", "invalid time"),
        (
            _with_bcc(LOGOUT[:22] + b"\x00\x09" + LOGOUT[24:32] + b"\x00\x00"),
            "logout",
            "expected 8",
        ),
    ],
)
def test_malformed_frames_rejected_with_reason(frame: bytes, field: str, reason: str) -> None:
    with pytest.raises(CodecError) as info:
        decode_frame(frame)
    err = info.value
    assert isinstance(err, InvalidInput)
    assert reason in str(err)
    if field:
        assert err.field == field
    assert err.offset >= 0


def test_unknown_info_type_and_truncated_block_offsets() -> None:
    head = bytes((20, 1, 1, 0, 0, 0))
    with pytest.raises(CodecError) as info:
        decode_realtime(head + b"\x30\x00", Edition.V2016, base_offset=24)
    assert info.value.offset == 30
    assert "0x30" in info.value.reason
    with pytest.raises(CodecError) as info:
        decode_realtime(
            head + b"\x08\x01\x01\x00\x00\x00\x00\x00\x03\x00\x01\x05\x0d", Edition.V2016
        )
    assert info.value.field == "voltages.cells"


def test_split_stream_resyncs_and_keeps_partial_tail() -> None:
    stream = b"junk" + LOGOUT + LOGOUT[:10]
    frames, rest, skipped = split_stream(stream)
    assert frames == [LOGOUT]
    assert rest == LOGOUT[:10]
    assert skipped == 4
    frames, rest, _ = split_stream(rest + LOGOUT[10:] + b"#")
    assert frames == [LOGOUT]
    assert rest == b"#"


def test_encrypted_unit_left_undecoded() -> None:
    frame = parse_frame(LOGOUT)
    enc = build_frame(
        type(frame)(
            edition=frame.edition, command=2, response=0xFE, vin="X", encryption=3, data=b"\x01\x02"
        )
    )
    assert decode_frame(enc).unit == b"\x01\x02"


# ------------------------------------------------------------------ fuzz


@FUZZ
@given(data=st.binary(max_size=300), ed=st.sampled_from(list(Edition)), cmd=st.integers(0, 255))
def test_fuzz_data_unit_decoders_raise_only_codec_error(data: bytes, ed: Edition, cmd: int) -> None:
    with contextlib.suppress(CodecError):
        decode_unit(cmd, 0xFE, data, ed)
    with contextlib.suppress(CodecError):
        decode_realtime(bytes((20, 1, 1, 0, 0, 0)) + data, ed)


A4_BODY = bytes.fromhex(
    "1206170C05020101030100320000023D1B583A9832013E121D0065020101013C61A888B83C00783A98050007"
    "2733A101CF049C060111064001020500010150010540070000000000000000000801011B583A980011000111"
    "0640050006400640064006400640"
)


@FUZZ
@given(
    pos=st.integers(0, 10_000),
    value=st.integers(0, 255),
    cut=st.integers(0, 10_000),
    ed=st.sampled_from(list(Edition)),
)
def test_fuzz_mutated_valid_frames(pos: int, value: int, cut: int, ed: Edition) -> None:
    body = bytearray(A4_BODY)
    body[pos % len(body)] = value
    body = body[: max(6, len(body) - cut % 40)]
    frame = build_frame(
        parse_frame(LOGOUT).__class__(
            edition=ed, command=2, response=0xFE, vin="FUZZ", data=bytes(body)
        )
    )
    with contextlib.suppress(CodecError):
        decode_frame(frame)
    mutated = bytearray(frame)
    mutated[pos % len(frame)] = value
    with contextlib.suppress(CodecError):
        decode_frame(bytes(mutated))


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_random_frames(data: bytes) -> None:
    for candidate in (
        data,
        b"##" + data,
        _with_bcc(
            b"##\x02\xfe" + data.ljust(21, b"\0")[:20] + len(data).to_bytes(2, "big") + data + b"\0"
        ),
    ):
        with contextlib.suppress(CodecError):
            decode_frame(candidate)
