"""JT/T 808 subpackaged messages: bytes in, reassembled message out; 0x8003 bodies."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ironbridge.codec.binary import CodecError
from ironbridge.codec.jt808 import (
    BEIJING,
    BatchLocation,
    Header,
    LocationReport,
    MsgId,
    Reassembler,
    RetransmissionRequest,
    Version,
    decode_frame,
    decode_message,
    encode_body,
    encode_message,
    parse_frame,
    split_message,
)


def _report(i: int) -> LocationReport:
    return LocationReport(
        alarm=0,
        status=0x3,
        latitude=36.0 + i / 1000,
        longitude=118.0,
        altitude_m=50,
        speed_kmh=float(i % 90),
        direction=10,
        time=datetime(2026, 11, 23, 8, 0, i % 60, tzinfo=BEIJING),
        items=((0x01, (1000 + i).to_bytes(4, "big")),),
    )


BATCH = BatchLocation(kind=1, reports=tuple(_report(i) for i in range(40)))


def _header(version: Version, serial: int = 100) -> Header:
    phone = "013900000001" if version == Version.V2013 else "00000000013900000001"
    return Header(
        msg_id=MsgId.BATCH_LOCATION,
        phone=phone,
        serial=serial,
        version=version,
        protocol_version=1 if version == Version.V2019 else None,
    )


def _packets(version: Version, serial: int = 100) -> list[bytes]:
    return split_message(_header(version, serial), encode_body(BATCH, version))


# A hand-built 2013 subpackaged frame: 0x0200 packet 2 of 3, serial 0x0005, body 01 02.
# props 0x2002: subpackage bit 13, body length 2; header 12 + 4 bytes.
HAND = bytes.fromhex("7E0200200201390000000100050003000201021E7E")


def test_hand_built_subpackage_header_is_read() -> None:
    frame = parse_frame(HAND)
    assert frame.header.packet == (3, 2)
    assert frame.header.serial == 5
    assert frame.body == b"\x01\x02"
    # a packet alone is not decoded: its body is a fragment
    assert decode_message(HAND).body == b"\x01\x02"


@pytest.mark.parametrize("version", [Version.V2013, Version.V2019])
def test_split_sets_bit_13_and_packet_fields(version: Version) -> None:
    packets = _packets(version)
    assert len(packets) == 2  # 40 x (2 + 34) + 3 bytes = 1 443 bytes -> 1023 + 420
    headers = [parse_frame(p).header for p in packets]
    assert [h.packet for h in headers] == [(len(packets), i + 1) for i in range(len(packets))]
    assert [h.serial for h in headers] == list(range(100, 100 + len(packets)))
    assert all(h.version == version for h in headers)


@pytest.mark.parametrize("version", [Version.V2013, Version.V2019])
def test_in_order_reassembly_decodes_the_whole_body(version: Version) -> None:
    r = Reassembler()
    out = [r.add(parse_frame(p), now=0.0) for p in _packets(version)]
    assert out[:-1] == [None] * (len(out) - 1)
    whole = out[-1]
    assert whole is not None
    assert whole.header.packet is None
    assert whole.header.serial == 100
    msg = decode_frame(whole)
    assert msg.body == BATCH
    assert len(r) == 0


def test_out_of_order_and_duplicate_packets() -> None:
    packets = split_message(_header(Version.V2013), encode_body(BATCH), packet_size=200)
    assert len(packets) == 8
    order = [5, 0, 7, 3, 3, 1, 6, 2]  # packet 4 twice, packet 5 (index 4) last
    r = Reassembler()
    assert all(r.add(parse_frame(packets[i]), now=0.0) is None for i in order)
    whole = r.add(parse_frame(packets[4]), now=0.0)
    assert whole is not None
    assert decode_frame(whole).body == BATCH


def test_serial_wraps_across_packets() -> None:
    packets = _packets(Version.V2013, serial=0xFFFF)
    assert [parse_frame(p).header.serial for p in packets] == [0xFFFF, 0]
    r = Reassembler()
    assert r.add(parse_frame(packets[1]), now=0.0) is None
    whole = r.add(parse_frame(packets[0]), now=0.0)
    assert whole is not None
    assert whole.header.serial == 0xFFFF


def test_two_messages_interleaved_stay_apart() -> None:
    a = split_message(_header(Version.V2013, 10), encode_body(BATCH), packet_size=500)
    other = BatchLocation(kind=0, reports=BATCH.reports[:20])
    b = split_message(_header(Version.V2013, 50), encode_body(other), packet_size=500)
    r = Reassembler()
    done = []
    for pa, pb in zip(a, b + [b""] * (len(a) - len(b)), strict=True):
        for p in (pa, pb):
            if p and (whole := r.add(parse_frame(p), now=0.0)) is not None:
                done.append(decode_frame(whole).body)
    assert done == [other, BATCH]


def test_missing_packet_asks_again_then_completes_with_a_new_serial() -> None:
    packets = split_message(_header(Version.V2013), encode_body(BATCH), packet_size=400)
    r = Reassembler(timeout_s=10.0, max_requests=2)
    for i, p in enumerate(packets):
        if i not in (1, 3):
            assert r.add(parse_frame(p), now=1.0) is None
    assert r.overdue(10.9) == []
    assert r.next_deadline == 11.0
    (late,) = r.overdue(11.0)
    assert late.missing == (2, 4)
    assert not late.abandoned
    assert late.header.serial == 100
    assert late.header.msg_id == MsgId.BATCH_LOCATION
    assert r.overdue(11.5) == []  # reported once per timeout
    # the terminal re-sends packet 2 with its original serial and packet 4 with a new one
    assert r.add(parse_frame(packets[1]), now=12.0) is None
    resent = parse_frame(packets[3])
    resent = dataclasses.replace(resent, header=dataclasses.replace(resent.header, serial=900))
    whole = r.add(resent, now=12.5)
    assert whole is not None
    assert decode_frame(whole).body == BATCH
    assert r.next_deadline is None


def test_missing_packet_is_abandoned_after_the_requests() -> None:
    packets = _packets(Version.V2019)
    r = Reassembler(timeout_s=5.0, max_requests=1)
    r.add(parse_frame(packets[0]), now=0.0)
    first = r.overdue(5.0)
    assert [(o.missing, o.abandoned) for o in first] == [((2,), False)]
    second = r.overdue(10.0)
    assert [(o.missing, o.abandoned) for o in second] == [((2,), True)]
    assert len(r) == 0


def test_bad_packet_fields_and_limits_are_rejected() -> None:
    r = Reassembler(max_pending=1, max_bytes=600, max_packets=4)
    h = _header(Version.V2013)
    with pytest.raises(CodecError, match=r"index 3 outside 1\.\.2"):
        r.add(parse_frame(encode_message(dataclasses.replace(h, packet=(2, 3)), b"x")), 0.0)
    with pytest.raises(CodecError, match="index 0"):
        r.add(parse_frame(encode_message(dataclasses.replace(h, packet=(2, 0)), b"x")), 0.0)
    with pytest.raises(CodecError, match="5 packets"):
        r.add(parse_frame(encode_message(dataclasses.replace(h, packet=(5, 1)), b"x")), 0.0)
    r.add(parse_frame(encode_message(dataclasses.replace(h, packet=(2, 1)), b"x" * 500)), 0.0)
    other = parse_frame(encode_message(dataclasses.replace(h, serial=7, packet=(2, 1)), b"y"))
    with pytest.raises(CodecError, match="already in progress"):
        r.add(other, 0.0)
    with pytest.raises(CodecError, match="above 600 bytes"):
        r.add(
            parse_frame(
                encode_message(dataclasses.replace(h, serial=101, packet=(2, 2)), b"z" * 200)
            ),
            0.0,
        )


def test_an_unpacketed_frame_passes_through() -> None:
    raw = encode_message(_header(Version.V2013), BatchLocation(kind=0, reports=BATCH.reports[:5]))
    frame = parse_frame(raw)
    assert Reassembler().add(frame, 0.0) is frame


# 0x8003: serial 0x0064, 2013 count BYTE 2, ids 2 and 4
RETX_2013 = bytes.fromhex("00640200020004")
RETX_2019 = bytes.fromhex("0064000200020004")


@pytest.mark.parametrize(
    ("version", "raw"), [(Version.V2013, RETX_2013), (Version.V2019, RETX_2019)]
)
def test_retransmission_request_body(version: Version, raw: bytes) -> None:
    body = RetransmissionRequest(original_serial=100, packet_ids=(2, 4))
    assert encode_body(body, version) == raw
    h = dataclasses.replace(_header(version), msg_id=MsgId.RETRANSMISSION_REQUEST)
    assert decode_message(encode_message(h, body)).body == body
    with pytest.raises(CodecError, match="declares 2 ids"):
        decode_frame(parse_frame(encode_message(h, raw[:-1])))


def test_retransmission_request_count_limit_2013() -> None:
    with pytest.raises(CodecError, match="at most 255"):
        encode_body(RetransmissionRequest(original_serial=1, packet_ids=tuple(range(256))))


@settings(max_examples=60, deadline=None)
@given(
    body=st.binary(min_size=0, max_size=3000),
    size=st.integers(min_value=1, max_value=1023),
    serial=st.integers(min_value=0, max_value=0xFFFF),
    order=st.randoms(use_true_random=False),
    version=st.sampled_from(Version),
)
def test_split_then_reassemble_in_any_order_round_trips(
    body: bytes, size: int, serial: int, order: object, version: Version
) -> None:
    packets = split_message(
        dataclasses.replace(_header(version, serial), msg_id=0x0900), body, packet_size=size
    )
    shuffled = list(packets)
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    r = Reassembler(max_packets=4096, max_bytes=1 << 22)
    results = [r.add(parse_frame(p), now=0.0) for p in shuffled]
    assert all(x is None for x in results[:-1])
    whole = results[-1]
    assert whole is not None
    assert whole.body == body
    assert whole.header.serial == serial
    assert whole.header.msg_id == 0x0900
