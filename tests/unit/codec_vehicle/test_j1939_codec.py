"""J1939: identifiers, scaled SPNs with not-available handling, DM1, TP reassembly, candump."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ironbridge.codec.binary import CodecError
from ironbridge.codec.j1939 import (
    DM1_PGN,
    TP_CM_PGN,
    TP_DT_PGN,
    CanFrame,
    Dm1,
    Dtc,
    Lamps,
    TransportReassembler,
    decode_dm1,
    decode_pgn,
    dm1_events,
    encode_dm1,
    encode_pgn,
    format_candump,
    make_can_id,
    parse_can_id,
    parse_candump_line,
    segment_bam,
    spn_table,
    spns_for_pgn,
)

FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_can_id_pdu2_and_pdu1() -> None:
    eec1 = parse_can_id(0x0CF00400)
    assert (eec1.priority, eec1.pgn, eec1.sa, eec1.da, eec1.pdu1) == (3, 61444, 0x00, 0xFF, False)
    request = parse_can_id(0x18EA00F9)  # request PGN 59904 from 0xF9 to 0x00
    assert (request.priority, request.pgn, request.sa, request.da, request.pdu1) == (
        6,
        59904,
        0xF9,
        0x00,
        True,
    )
    assert make_can_id(59904, 0xF9, da=0x00, priority=6) == 0x18EA00F9
    assert make_can_id(61444, 0x00, priority=3) == 0x0CF00400
    with pytest.raises(CodecError):
        parse_can_id(1 << 29)
    with pytest.raises(CodecError, match="PS = 0"):
        make_can_id(0xEA01, 0)


@given(
    pgn=st.integers(0, (1 << 18) - 1),
    sa=st.integers(0, 255),
    da=st.integers(0, 255),
    prio=st.integers(0, 7),
)
def test_can_id_round_trip(pgn: int, sa: int, da: int, prio: int) -> None:
    pf = (pgn >> 8) & 0xFF
    if pf < 240:
        pgn &= ~0xFF
    cid = parse_can_id(make_can_id(pgn, sa, da=da, priority=prio))
    assert (cid.pgn, cid.sa, cid.priority) == (pgn, sa, prio)
    assert cid.da == (da if pf < 240 else 0xFF)


def test_eec1_et1_and_friends_decode_with_scaling() -> None:
    # EEC1: torque byte 3 = 0x9B (155-125 = 30 %), speed bytes 4-5 = 0x1F40 (8000 * 0.125)
    assert decode_pgn(61444, bytes.fromhex("FFFF9B401FFFFFFF")) == {
        "engine_speed": 1000.0,
        "engine_torque_pct": 30.0,
    }
    # ET1: coolant 0x6E -> 70 degC, oil temp 0x2BC0 * 0.03125 - 273 = 77 degC
    assert decode_pgn(65262, bytes.fromhex("6EFFC02BFFFFFFFF")) == {
        "coolant_temp": 70.0,
        "oil_temp": 77.0,
    }
    # EFL/P1: oil pressure byte 4 = 0x64 * 4 kPa, oil level 0xFA * 0.4 = 100 %, coolant level n/a
    assert decode_pgn(65263, bytes.fromhex("FFFFFA64FFFFFFFF")) == {
        "oil_pressure": 400.0,
        "oil_level": 100.0,
        "coolant_level": None,
    }
    # LFE1 fuel rate 0x0190 * 0.05 = 20 L/h; economy 0x0400 / 512 = 2 km/L
    lfe = decode_pgn(65266, bytes.fromhex("90010004FFFFFFFF"))
    assert lfe == {"fuel_rate": 20.0, "fuel_economy": 2.0}
    # CCVS1 wheel speed bytes 2-3 = 0x5000 / 256 = 80 km/h
    assert decode_pgn(65265, bytes.fromhex("FF0050FFFFFFFFFF")) == {"vehicle_speed": 80.0}
    # HOURS 0x000186A0 * 0.05 = 5000 h, revolutions not available
    assert decode_pgn(65253, bytes.fromhex("A0860100FFFFFFFF")) == {
        "engine_hours": 5000.0,
        "engine_revolutions": None,
    }
    # VD total distance bytes 5-8 = 0x00030D40 * 0.125 = 25000 km
    assert decode_pgn(65248, bytes.fromhex("FFFFFFFF400D0300")) == {"total_distance": 25000.0}
    assert decode_pgn(65276, bytes.fromhex("FFC8FFFFFFFFFFFF")) == {"fuel_level": 80.0}
    assert decode_pgn(12345, b"\x00" * 8) == {}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0xFA, 210.0), (0xFB, None), (0xFD, None), (0xFE, None), (0xFF, None)],
)
def test_one_byte_special_values(raw: int, expected: float | None) -> None:
    assert decode_pgn(65262, bytes((raw,)) + b"\xff" * 7)["coolant_temp"] == expected


@pytest.mark.parametrize(
    ("raw", "valid"), [(0xFAFF, True), (0xFB00, False), (0xFE00, False), (0xFFFF, False)]
)
def test_two_byte_special_values(raw: int, valid: bool) -> None:
    data = b"\xff\xff\xff" + raw.to_bytes(2, "little") + b"\xff\xff\xff"
    value = decode_pgn(61444, data)["engine_speed"]
    assert (value == raw * 0.125) if valid else value is None


def test_short_frame_gives_none_not_garbage() -> None:
    assert decode_pgn(61444, b"\xff\xff\x7d") == {"engine_speed": None, "engine_torque_pct": 0.0}


def test_spn_table_is_loaded_from_data_file() -> None:
    table = spn_table()
    assert table[190].measurement == "engine_speed"
    assert table[190].unit == "rpm"
    assert table[110].offset == -40.0
    assert {s.spn for s in spns_for_pgn(65262)} == {110, 175}
    assert len({s.measurement for s in table.values()}) == len(table)


@st.composite
def pgn_values(draw: Any) -> tuple[int, dict[str, float | None]]:
    pgn = draw(st.sampled_from(sorted({s.pgn for s in spn_table().values()})))
    values: dict[str, float | None] = {}
    for spn in spns_for_pgn(pgn):
        raw = draw(st.none() | st.integers(0, spn.max_valid))
        values[spn.measurement] = (
            None if raw is None else raw * spn.scale_num / spn.scale_den + spn.offset
        )
    return pgn, values


@given(case=pgn_values())
def test_signal_round_trip(case: tuple[int, dict[str, float | None]]) -> None:
    pgn, values = case
    assert decode_pgn(pgn, encode_pgn(pgn, values)) == values


def test_encode_rejects_unknown_or_out_of_range() -> None:
    with pytest.raises(CodecError, match="no measurement"):
        encode_pgn(61444, {"coolant_temp": 1.0})
    with pytest.raises(CodecError, match="out of range"):
        encode_pgn(65262, {"coolant_temp": 500.0})


# ------------------------------------------------------------------ DM1

SINGLE_DM1 = bytes.fromhex("04006E000001FFFF")  # AWL on, SPN 110 FMI 0 OC 1


def test_dm1_single_frame() -> None:
    dm1 = decode_dm1(SINGLE_DM1)
    assert dm1.lamps.amber_warning is True
    assert (dm1.lamps.mil, dm1.lamps.red_stop, dm1.lamps.protect) == (False, False, False)
    assert dm1.dtcs == (Dtc(spn=110, fmi=0, oc=1),)
    events = dm1_events(dm1, asset_id="eng-1", ts_us=5, sa=0)
    assert [(e.kind, e.code, e.payload["oc"]) for e in events] == [("j1939_dtc", "SPN110-FMI0", 1)]
    assert encode_dm1(dm1) == SINGLE_DM1


def test_dm1_high_spn_bits_oc_and_cm() -> None:
    # SPN 520200 = 0x7F008: low 16 bits 08 F0, bits 16-18 (7) in byte 3 bits 8-6, FMI 3;
    # byte 4: CM = 1, OC = 5. The wrong "oc = d & 0x7F" would give 8.
    dm1 = decode_dm1(bytes.fromhex("500008F0E385"))
    (dtc,) = dm1.dtcs
    assert (dtc.spn, dtc.fmi, dtc.oc, dtc.cm) == (520200, 3, 5, True)
    assert (dm1.lamps.red_stop, dm1.lamps.mil) == (True, True)


def test_dm1_no_active_fault_and_not_available_lamps() -> None:
    dm1 = decode_dm1(bytes.fromhex("FFFF00000000FFFF"))
    assert dm1.dtcs == ()
    assert dm1.lamps.mil is None
    assert dm1.lamps.amber_warning is None
    assert encode_dm1(dm1) == bytes.fromhex("FFFF00000000FFFF")
    assert decode_dm1(bytes.fromhex("00006E00007F")).dtcs == (Dtc(spn=110, fmi=0, oc=None),)
    with pytest.raises(CodecError, match="at least 2 bytes"):
        decode_dm1(b"\x00")
    with pytest.raises(CodecError, match="trailing bytes"):
        decode_dm1(bytes.fromhex("00006E0000011234"))


dtcs = st.builds(
    Dtc,
    spn=st.integers(1, (1 << 19) - 1),
    fmi=st.integers(0, 31),
    oc=st.none() | st.integers(0, 126),
    cm=st.booleans(),
)
lamp = st.none() | st.booleans()


@given(
    lamps=st.builds(
        Lamps,
        mil=lamp,
        red_stop=lamp,
        amber_warning=lamp,
        protect=lamp,
        raw_flash=st.integers(0, 255),
    ),
    codes=st.lists(dtcs, max_size=20),
)
def test_dm1_round_trip(lamps: Lamps, codes: list[Dtc]) -> None:
    dm1 = Dm1(lamps=lamps, dtcs=tuple(codes))
    back = decode_dm1(encode_dm1(dm1))
    assert back.dtcs == dm1.dtcs
    assert (back.lamps.mil, back.lamps.red_stop, back.lamps.amber_warning, back.lamps.protect) == (
        lamps.mil,
        lamps.red_stop,
        lamps.amber_warning,
        lamps.protect,
    )
    assert back.lamps.raw_flash == lamps.raw_flash


# ------------------------------------------------------------------ transport protocol

MULTI_DM1 = Dm1(
    lamps=Lamps(mil=False, red_stop=True, amber_warning=True, protect=False),
    dtcs=(Dtc(spn=110, fmi=0, oc=3), Dtc(spn=100, fmi=1, oc=2), Dtc(spn=520200, fmi=31, oc=None)),
)


def test_dm1_multipacket_bam_reassembly() -> None:
    payload = encode_dm1(MULTI_DM1)
    assert len(payload) == 14
    frames = segment_bam(DM1_PGN, payload, sa=0x00, priority=6)
    assert frames[0] == (0x18ECFF00, bytes.fromhex("200E0002FFCAFE00"))
    assert [f[1][0] for f in frames[1:]] == [1, 2]
    reasm = TransportReassembler()
    out = []
    ts = 100.0
    for can_id, data in frames:
        out += reasm.feed(can_id, data, ts)
        # an unrelated single-frame message in between passes straight through
        out += reasm.feed(0x0CF00400, bytes.fromhex("FFFF7D401FFFFFFF"), ts)
        ts += 0.05
    dm1_msgs = [m for m in out if m.pgn == DM1_PGN]
    assert len(dm1_msgs) == 1
    assert len(out) == 4
    msg = dm1_msgs[0]
    assert (msg.sa, msg.da, msg.priority, msg.data) == (0x00, 0xFF, 6, payload)
    assert msg.ts == pytest.approx(100.1)
    assert decode_dm1(msg.data) == Dm1(lamps=decode_dm1(payload).lamps, dtcs=MULTI_DM1.dtcs)
    assert reasm.open_sessions == 0
    assert reasm.dropped == 0


def test_two_senders_interleaved() -> None:
    a = segment_bam(DM1_PGN, bytes(range(20)), sa=0x00)
    b = segment_bam(DM1_PGN, bytes(range(100, 130)), sa=0x03)
    reasm = TransportReassembler(passthrough=False)
    out = []
    for i in range(max(len(a), len(b))):
        for frames in (a, b):
            if i < len(frames):
                out += reasm.feed(frames[i][0], frames[i][1], i * 0.05)
    assert {(m.sa, m.data) for m in out} == {
        (0x00, bytes(range(20))),
        (0x03, bytes(range(100, 130))),
    }


def test_bam_timeout_gap_and_abort_drop_sessions() -> None:
    frames = segment_bam(DM1_PGN, bytes(30), sa=0x10)
    reasm = TransportReassembler(passthrough=False)
    reasm.feed(*frames[0], ts=0.0)
    reasm.feed(*frames[1], ts=0.1)
    assert reasm.feed(*frames[2], ts=1.0) == []  # > T1 (0.75 s) since the last packet
    assert reasm.dropped == 1
    assert reasm.open_sessions == 0
    reasm.feed(*frames[0], ts=2.0)
    assert reasm.feed(*frames[2], ts=2.05) == []  # packet 1 missing: sequence gap
    assert reasm.dropped == 2
    assert all(
        reasm.feed(cid, data, 3.0 + i * 0.01) == [] for i, (cid, data) in enumerate(frames[1:])
    )


def test_rts_cts_connection_mode() -> None:
    payload = bytes(range(1, 17))  # 16 bytes -> 3 packets
    sender, receiver = 0x00, 0xF9
    rts = make_can_id(TP_CM_PGN, sender, da=receiver, priority=7)
    cts = make_can_id(TP_CM_PGN, receiver, da=sender, priority=7)
    dt = make_can_id(TP_DT_PGN, sender, da=receiver, priority=7)
    reasm = TransportReassembler(passthrough=False)
    assert reasm.feed(rts, bytes.fromhex("10100003FF") + (65260).to_bytes(3, "little"), 0.0) == []
    assert reasm.feed(cts, bytes.fromhex("110201FFFF") + (65260).to_bytes(3, "little"), 0.01) == []
    assert reasm.feed(dt, b"\x01" + payload[0:7], 0.02) == []
    assert reasm.feed(dt, b"\x02" + payload[7:14], 0.03) == []
    # the receiver asks again from packet 2 (retransmission)
    reasm.feed(cts, bytes.fromhex("110202FFFF") + (65260).to_bytes(3, "little"), 0.04)
    assert reasm.feed(dt, b"\x02" + payload[7:14], 0.05) == []
    (msg,) = reasm.feed(dt, b"\x03" + payload[14:16] + b"\xff" * 5, 0.06)
    assert (msg.pgn, msg.sa, msg.da, msg.data) == (65260, sender, receiver, payload)
    # abort from the receiver cancels a running session
    reasm.feed(rts, bytes.fromhex("10100003FF") + (65260).to_bytes(3, "little"), 1.0)
    reasm.feed(cts, bytes.fromhex("FF01FFFFFF") + (65260).to_bytes(3, "little"), 1.01)
    assert reasm.open_sessions == 0
    assert reasm.feed(dt, b"\x01" + payload[0:7], 1.02) == []


def test_segment_bam_rejects_bad_sizes() -> None:
    with pytest.raises(CodecError):
        segment_bam(DM1_PGN, bytes(8), sa=0)
    with pytest.raises(CodecError):
        segment_bam(DM1_PGN, bytes(1786), sa=0)


@given(payload=st.binary(min_size=9, max_size=400), sa=st.integers(0, 253))
def test_bam_round_trip(payload: bytes, sa: int) -> None:
    reasm = TransportReassembler()
    out = []
    for i, (cid, data) in enumerate(segment_bam(DM1_PGN, payload, sa=sa)):
        out += reasm.feed(cid, data, i * 0.05)
    assert [(m.pgn, m.sa, m.data) for m in out] == [(DM1_PGN, sa, payload)]


# ------------------------------------------------------------------ candump


def test_candump_lines() -> None:
    frame = parse_candump_line("(1700000000.123456) can0 18FEEE00#6EFFC02BFFFFFFFF")
    assert frame == CanFrame(
        ts=1700000000.123456,
        channel="can0",
        can_id=0x18FEEE00,
        extended=True,
        data=bytes.fromhex("6EFFC02BFFFFFFFF"),
    )
    assert decode_pgn(parse_can_id(frame.can_id).pgn, frame.data)["coolant_temp"] == 70.0
    assert format_candump(frame) == "(1700000000.123456) can0 18FEEE00#6EFFC02BFFFFFFFF"
    std = parse_candump_line("(1.5) vcan1 123#")
    assert (std.can_id, std.extended, std.data) == (0x123, False, b"")
    assert parse_candump_line("(2.0) can0 123#R").rtr
    fd = parse_candump_line("(3.0) can0 18FEEE00##1" + "AB" * 12)
    assert (fd.fd_flags, len(fd.data)) == (1, 12)
    assert parse_candump_line(format_candump(fd)) == fd


@pytest.mark.parametrize(
    "line",
    [
        "",
        "can0 18FEEE00#00",
        "(1.0) can0 18FEEE00#0",
        "(1.0) can0 18FEEE00#ZZ",
        "(1.0) can0 18FEEE00#000000000000000000",
        "(1.0) can0 FFFFFFFF#00",
        "(1.0) can0 FFF#00",
        "(1.0) can0 18FEEE#00",
    ],
)
def test_candump_rejects_bad_lines(line: str) -> None:
    with pytest.raises(CodecError):
        parse_candump_line(line)


# ------------------------------------------------------------------ fuzz


@FUZZ
@given(
    data=st.binary(max_size=64), pgn=st.sampled_from(sorted({s.pgn for s in spn_table().values()}))
)
def test_fuzz_dm1_and_signals(data: bytes, pgn: int) -> None:
    with contextlib.suppress(CodecError):
        decode_dm1(data)
    values = decode_pgn(pgn, data)
    assert all(v is None or isinstance(v, float) for v in values.values())


@FUZZ
@given(
    frames=st.lists(
        st.tuples(
            st.sampled_from(
                [0x1CECFF00, 0x1CEBFF00, 0x1CEC00F9, 0x1CEB00F9, 0x1CECF900, 0x18FECA00]
            ),
            st.binary(max_size=8),
        ),
        max_size=30,
    )
)
def test_fuzz_reassembler(frames: list[tuple[int, bytes]]) -> None:
    reasm = TransportReassembler()
    for i, (cid, data) in enumerate(frames):
        for msg in reasm.feed(cid, data, i * 0.1):
            assert len(msg.data) <= 1785


@FUZZ
@given(
    line=st.text(max_size=60)
    | st.from_regex(
        r"\(\d{1,10}\.\d{0,6}\) [a-z0-9]{1,5} [0-9A-F]{3,8}#{1,2}[0-9A-FR]{0,20}", fullmatch=True
    )
)
def test_fuzz_candump(line: str) -> None:
    with contextlib.suppress(CodecError):
        parse_candump_line(line)
