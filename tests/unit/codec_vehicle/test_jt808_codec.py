"""JT/T 808 codec: published frames, round trips, malformed frames and fuzzing.

Frames J1-J14 are copied from /work/shared/reference/vehicle-protocols.md section 3.5
(sources: SmallChi/JT808 tests and README, traccar HuabaoProtocolDecoderTest).
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ironbridge.codec.binary import CodecError, xor_checksum
from ironbridge.codec.jt808 import (
    BEIJING,
    Authentication,
    BatchLocation,
    GeneralResponse,
    Header,
    Heartbeat,
    LocationReport,
    Registration,
    RegistrationResponse,
    Version,
    decode_message,
    encode_message,
    escape,
    flatten_location,
    parse_frame,
    split_stream,
    unescape,
)

J = {
    "J1": (
        "7E02000026123456789012007D02000000010000000200BA7F0E07E4F11C0028003C0000181015101010"
        "0104000000640202007D01137E"
    ),
    "J2": ("7E00020000012345678900000A817E"),
    "J3": ("7E00020000040021679287002B7D027E"),
    "J4": ("7E80010005012345678900000A0064020000617E"),
    "J5": (
        "7E0100002D013511221122000500000000373031303748422D5230334742440000000000000000000000"
        "3233363631303402CBD5424136383630387E"
    ),
    "J6": (
        "7E010040540100000000000123456789000A002800323132333400000000000000736D616C6C63686931"
        "323300000000000000000000000000000000000000434849313233000000000000000000000000000000"
        "00000000000000000001D4C1413132333435B27E"
    ),
    "J7": ("7E81000009012345678900000A006400313233343536687E"),
    "J8": ("7E81000003012345678900000A006404617E"),
    "J9": ("7E0102000E013511221122000661757468656E7469636174696F6E3F7E"),
    "J10": ("7E010200090123456789003039343536313231313131BE7E"),
    "J11": (
        "7E0200002A013833501744001900000000000000C201597FA806CC015800800000000815081807212101"
        "04000002F502020000030200009F7E"
    ),
    "J12": (
        "7E020000480123456789010013000000800000000301597BC506CBFF6600EB0000015521072620353101"
        "0400000000EB24000C00B28986047701207027150200060089FFFFEFFF0004002D0E10000600C5FFFFFF"
        "EF697E"
    ),
    "J13": (
        "7e0200406c010030000681090e00000000000c0003026c936f074c794c0004036300d721062515573901"
        "0400000000052801cc00210625155739054145bbc91e4145a2fa1141450000004145bbc8194145a1370a"
        "4145000000240200002a0200002b04000000003001153101125f0a89860418231870850620757e"
    ),
    "J14": (
        "7E02000032013511221122000700000000000C000301578CC006CA3A5C00470000000014072317201501"
        "040000000030011631010BD07E"
    ),
}
FRAMES = {k: bytes.fromhex(v) for k, v in J.items()}
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def bj(*args: int) -> datetime:
    return datetime(*args, tzinfo=BEIJING)


@pytest.mark.parametrize("name", [k for k in J if k != "J14"])
def test_published_frames_reencode_byte_exact(name: str) -> None:
    msg = decode_message(FRAMES[name])
    assert encode_message(msg.header, msg.body) == FRAMES[name]


def test_j1_location_with_escapes() -> None:
    msg = decode_message(FRAMES["J1"])
    assert msg.header == Header(
        msg_id=0x0200, phone="123456789012", serial=126, version=Version.V2013, version_flag=False
    )
    loc = msg.body
    assert isinstance(loc, LocationReport)
    assert (loc.alarm, loc.status, loc.latitude, loc.longitude) == (1, 2, 12.222222, 132.444444)
    assert (loc.altitude_m, loc.speed_kmh, loc.direction) == (40, 6.0, 0)
    assert loc.time == bj(2018, 10, 15, 10, 10, 10)
    assert (loc.mileage_km, loc.fuel_l) == (10.0, 12.5)
    flat = flatten_location(loc, asset_id="truck-1")
    assert flat.values["mileage"] == 10.0
    assert flat.values["fuel"] == 12.5
    assert flat.values["gnss_positioned"] == 1.0
    assert flat.values["acc_on"] == 0.0
    assert [(e.kind, e.code) for e in flat.events] == [("jt808_alarm", "emergency")]
    assert flat.events[0].ts_us == flat.ts_us == 1_539_569_410_000_000


def test_heartbeats_including_escaped_checksum() -> None:
    j2 = decode_message(FRAMES["J2"])
    assert (j2.header.phone, j2.header.serial, j2.body) == ("012345678900", 10, Heartbeat())
    j3 = decode_message(FRAMES["J3"])
    assert (j3.header.phone, j3.header.serial, j3.body) == ("040021679287", 43, Heartbeat())
    assert FRAMES["J3"][-3:] == b"\x7d\x02\x7e"  # the checksum 0x7E itself is escaped


def test_responses_registration_and_authentication() -> None:
    assert decode_message(FRAMES["J4"]).body == GeneralResponse(
        reply_serial=100, reply_id=0x0200, result=0
    )
    assert decode_message(FRAMES["J5"]).body == Registration(
        province=0,
        city=0,
        manufacturer="70107",
        model="HB-R03GBD",
        terminal_id="2366104",
        plate_color=2,
        plate="苏BA6860",
    )
    j6 = decode_message(FRAMES["J6"])
    assert j6.header.version == Version.V2019
    assert (j6.header.protocol_version, j6.header.phone, j6.header.serial) == (
        1,
        "00000000000123456789",
        10,
    )
    assert j6.body == Registration(
        province=40,
        city=50,
        manufacturer="1234",
        model="smallchi123",
        terminal_id="CHI123",
        plate_color=1,
        plate="粤A12345",
    )
    assert decode_message(FRAMES["J7"]).body == RegistrationResponse(
        reply_serial=100, result=0, auth_code="123456"
    )
    assert decode_message(FRAMES["J8"]).body == RegistrationResponse(
        reply_serial=100, result=4, auth_code=None
    )
    assert decode_message(FRAMES["J9"]).body == Authentication(auth_code="authentication")
    j10 = decode_message(FRAMES["J10"])
    assert (j10.header.phone, j10.header.serial) == ("012345678900", 12345)
    assert j10.body == Authentication(auth_code="456121111")


def test_j11_j12_locations() -> None:
    j11 = decode_message(FRAMES["J11"]).body
    assert isinstance(j11, LocationReport)
    assert (j11.status, j11.latitude, j11.longitude, j11.altitude_m) == (
        0xC2,
        22.6426,
        114.032984,
        128,
    )
    assert (j11.speed_kmh, j11.direction, j11.time) == (0.0, 8, bj(2015, 8, 18, 7, 21, 21))
    assert (j11.mileage_km, j11.fuel_l, j11.recorder_speed_kmh) == (75.7, 0.0, 0.0)
    flat = flatten_location(j11, asset_id="t")
    assert (flat.values.get("gps_used", None)) is None
    j12 = decode_message(FRAMES["J12"]).body
    assert isinstance(j12, LocationReport)
    assert (j12.alarm, j12.status, j12.latitude, j12.longitude) == (0x80, 3, 22.641605, 114.032486)
    assert j12.time == bj(2021, 7, 26, 20, 35, 31)
    assert len(j12.item(0xEB) or b"") == 36
    events = flatten_location(j12, asset_id="t").events
    assert [e.code for e in events] == ["main_power_under_voltage"]


def test_j13_version_flag_with_2013_header() -> None:
    msg = decode_message(FRAMES["J13"])
    h = msg.header
    assert (h.version, h.version_flag, h.phone, h.serial) == (
        Version.V2013,
        True,
        "010030000681",
        2318,
    )
    loc = msg.body
    assert isinstance(loc, LocationReport)
    assert (loc.latitude, loc.longitude, loc.altitude_m, loc.speed_kmh, loc.direction) == (
        40.670063,
        122.4523,
        4,
        86.7,
        215,
    )
    assert loc.time == bj(2021, 6, 25, 15, 57, 39)
    assert loc.status & 0x3 == 0x3
    with pytest.raises(CodecError, match="version flag set but the length only fits a 2013 header"):
        decode_message(FRAMES["J13"], strict_version=True)


def test_j14_bad_checksum_and_length_rejected() -> None:
    with pytest.raises(CodecError) as info:
        decode_message(FRAMES["J14"])
    assert info.value.field == "checksum"
    assert "0xD0" in info.value.reason
    assert "0xF0" in info.value.reason
    # fix the checksum: the declared body length (50) still does not match (40)
    inner = unescape(FRAMES["J14"][1:-1])[:-1]
    fixed = b"\x7e" + escape(inner + bytes((xor_checksum(inner),))) + b"\x7e"
    with pytest.raises(CodecError, match="length mismatch"):
        decode_message(fixed)


def _frame(inner: bytes) -> bytes:
    return b"\x7e" + escape(inner + bytes((xor_checksum(inner),))) + b"\x7e"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\x7e\x00\x02\x7e", "truncated"),
        (b"", "must start and end"),
        (FRAMES["J2"][:-1], "must start and end"),
        (FRAMES["J2"][:5] + b"\x7d\x03" + FRAMES["J2"][5:], "0x7D must be followed"),
        (FRAMES["J2"][:5] + b"\x7e" + FRAMES["J2"][5:], "unescaped 0x7E"),
        (FRAMES["J2"][:-2] + b"\x80\x7e", "checksum mismatch"),
        (_frame(bytes.fromhex("00020000012345678900000A")[:11]), "truncated"),
        (_frame(bytes.fromhex("02000001012345678900000100")), "location body"),
        (_frame(bytes.fromhex("00020001012345678900000AFF")), "heartbeat body"),
        (_frame(bytes.fromhex("000200000123456789AB000A")), "not BCD"),
    ],
)
def test_malformed_frames(raw: bytes, reason: str) -> None:
    with pytest.raises(CodecError, match=reason) as info:
        decode_message(raw)
    assert info.value.offset >= 0 or info.value.field


def test_bad_additional_item_length() -> None:
    loc = LocationReport(
        alarm=0,
        status=0,
        latitude=1.0,
        longitude=2.0,
        altitude_m=0,
        speed_kmh=0.0,
        direction=0,
        time=bj(2024, 1, 1, 0, 0, 0),
        items=((0x01, b"\x00\x00\x00\x01"),),
    )
    body = encode_message(Header(msg_id=0x0200, phone="1", serial=1), loc)
    inner = bytearray(unescape(body[1:-1])[:-1])
    inner[12 + 28 + 1] = 9  # item 0x01 claims 9 bytes
    with pytest.raises(CodecError, match="additional item 0x01 declares 9 bytes") as info:
        decode_message(_frame(bytes(inner)))
    assert info.value.offset == 12 + 1 + 28


def test_split_stream() -> None:
    stream = b"\x00\x01" + FRAMES["J2"] + FRAMES["J3"] + FRAMES["J4"][:7]
    frames, rest = split_stream(stream)
    assert frames == [FRAMES["J2"], FRAMES["J3"]]
    assert rest == FRAMES["J4"][:7]
    frames, rest = split_stream(rest + FRAMES["J4"][7:])
    assert frames == [FRAMES["J4"]]
    assert rest == b""


# ------------------------------------------------------------------ round trips

times = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)
).map(lambda d: d.replace(microsecond=0, tzinfo=BEIJING))
u32 = st.integers(0, 0xFFFFFFFF)
locations = st.builds(
    LocationReport,
    alarm=u32,
    status=u32.map(lambda s: s & ~0xC),
    latitude=st.integers(0, 90_000_000).map(lambda r: r / 1e6)
    | st.integers(1, 90_000_000).map(lambda r: -r / 1e6),
    longitude=st.integers(0, 180_000_000).map(lambda r: r / 1e6)
    | st.integers(1, 180_000_000).map(lambda r: -r / 1e6),
    altitude_m=st.integers(0, 0xFFFF),
    speed_kmh=st.integers(0, 0xFFFF).map(lambda r: r / 10),
    direction=st.integers(0, 359),
    time=times,
    items=st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=12)), max_size=5).map(tuple),
)
versions = st.sampled_from(list(Version))


@st.composite
def headers(draw: Any, msg_id: int) -> Header:
    version = draw(versions)
    digits = 20 if version == Version.V2019 else 12
    return Header(
        msg_id=msg_id,
        phone=draw(st.text(alphabet="0123456789", min_size=digits, max_size=digits)),
        serial=draw(st.integers(0, 0xFFFF)),
        version=version,
        protocol_version=draw(st.integers(0, 255)) if version == Version.V2019 else None,
        version_flag=version == Version.V2019,
    )


def _hemisphere(loc: LocationReport) -> LocationReport:
    status = loc.status | (0x4 if loc.latitude < 0 else 0) | (0x8 if loc.longitude < 0 else 0)
    return LocationReport(
        **{**{f: getattr(loc, f) for f in loc.__dataclass_fields__}, "status": status}
    )


@ROUND
@given(header=headers(0x0200), loc=locations)
def test_location_round_trip(header: Header, loc: LocationReport) -> None:
    msg = decode_message(encode_message(header, loc))
    assert msg.header == header
    assert msg.body == _hemisphere(loc)


@ROUND
@given(header=headers(0x0704), locs=st.lists(locations, max_size=4), kind=st.integers(0, 1))
def test_batch_round_trip(header: Header, locs: list[LocationReport], kind: int) -> None:
    body = BatchLocation(kind=kind, reports=tuple(locs))
    raw = encode_message(header, body)
    if len(unescape(raw[1:-1])) > 1100:
        return
    msg = decode_message(raw)
    assert msg.body == BatchLocation(kind=kind, reports=tuple(_hemisphere(x) for x in locs))


text = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-", max_size=5)


@ROUND
@given(data=st.data(), version=versions)
def test_other_messages_round_trip(data: Any, version: Version) -> None:
    cases: list[tuple[int, Any]] = [
        (
            0x0001,
            GeneralResponse(
                reply_serial=data.draw(st.integers(0, 0xFFFF)),
                reply_id=0x8103,
                result=data.draw(st.integers(0, 3)),
            ),
        ),
        (0x8001, GeneralResponse(reply_serial=1, reply_id=0x0200, result=4)),
        (0x0002, Heartbeat()),
        (0x8100, RegistrationResponse(reply_serial=7, result=0, auth_code=data.draw(text))),
        (0x8100, RegistrationResponse(reply_serial=7, result=data.draw(st.integers(1, 4)))),
        (
            0x0100,
            Registration(
                province=data.draw(st.integers(0, 0xFFFF)),
                city=data.draw(st.integers(0, 0xFFFF)),
                manufacturer=data.draw(text),
                model=data.draw(text),
                terminal_id=data.draw(text),
                plate_color=data.draw(st.integers(0, 9)),
                plate="京A" + data.draw(text),
            ),
        ),
    ]
    auth = data.draw(text.filter(bool))
    if version == Version.V2019:
        cases.append(
            (
                0x0102,
                Authentication(auth_code=auth, imei="861234567890123", software_version="V1.2"),
            )
        )
    else:
        cases.append((0x0102, Authentication(auth_code=auth)))
    for msg_id, body in cases:
        header = Header(msg_id=msg_id, phone="13800000000", serial=5, version=version)
        msg = decode_message(encode_message(header, body))
        assert msg.body == body, msg_id
        assert msg.header.version == version


def test_subpackaged_message_keeps_raw_fragment() -> None:
    header = Header(msg_id=0x0801, phone="1", serial=9, packet=(3, 2), version=Version.V2019)
    msg = decode_message(encode_message(header, b"\x7e\x7d\x00"))
    assert msg.header.packet == (3, 2)
    assert msg.body == b"\x7e\x7d\x00"


# ------------------------------------------------------------------ fuzz


@FUZZ
@given(data=st.binary(max_size=120))
def test_fuzz_random_bytes(data: bytes) -> None:
    for raw in (data, b"\x7e" + data + b"\x7e", _frame(data)):
        with contextlib.suppress(CodecError):
            decode_message(raw)


@FUZZ
@given(
    name=st.sampled_from(sorted(J)),
    pos=st.integers(0, 500),
    value=st.integers(0, 255),
    cut=st.integers(0, 60),
)
def test_fuzz_mutated_valid_frames(name: str, pos: int, value: int, cut: int) -> None:
    raw = FRAMES[name]
    try:
        inner = bytearray(unescape(raw[1:-1])[:-1])
    except CodecError:
        return
    inner[pos % len(inner)] = value
    inner = inner[: max(0, len(inner) - cut)]
    for candidate in (_frame(bytes(inner)), raw[: max(0, len(raw) - cut)]):
        try:
            decode_message(candidate)
            parse_frame(candidate, strict_version=True)
        except CodecError:
            pass
