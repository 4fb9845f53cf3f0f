"""Edge sources: socketcan frames (through a real kernel socket pair), candump replay with
J1939 TP reassembly, source configuration checks, pushed configuration validation."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest

from ironbridge.codec.j1939 import CanFrame, encode_pgn, format_candump, make_can_id, segment_bam
from ironbridge.edge.config import (
    EdgeConfig,
    SourceConfig,
    UplinkConfig,
    merge_managed,
    parse_managed,
)
from ironbridge.edge.sources import (
    LocalPublisher,
    Points,
    candump_source,
    decode_can_frame,
    socketcan_source,
)
from ironbridge.model import InvalidInput

EEC1 = 61444  # engine speed
ET1 = 65262  # coolant temperature
EFF = 0x80000000


def _raw_frame(can_id: int, data: bytes, flags: int = EFF) -> bytes:
    return struct.pack("=IB3x8s", can_id | flags, len(data), data.ljust(8, b"\0"))


def test_decode_can_frame_keeps_extended_data_frames_only() -> None:
    cid = make_can_id(EEC1, 0x00)
    data = encode_pgn(EEC1, {"engine_speed": 1500.0})
    assert decode_can_frame(_raw_frame(cid, data)) == (cid, data)
    assert decode_can_frame(_raw_frame(0x123, data, flags=0)) is None  # 11-bit
    assert decode_can_frame(_raw_frame(cid, b"", flags=EFF | 0x40000000)) is None  # RTR
    assert decode_can_frame(_raw_frame(cid, b"", flags=EFF | 0x20000000)) is None  # error
    assert decode_can_frame(b"\0" * 8) is None


async def test_socketcan_source_decodes_j1939_from_a_socket() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    clock = iter(float(t) for t in range(1000, 2000))
    frames = [
        _raw_frame(make_can_id(EEC1, 0x00), encode_pgn(EEC1, {"engine_speed": 1200.0})),
        _raw_frame(0x7FF, b"\1\2", flags=0),  # standard frame: ignored
        _raw_frame(make_can_id(ET1, 0x00), encode_pgn(ET1, {"coolant_temp": 91})),
    ]
    for f in frames:
        theirs.send(f)
    theirs.close()  # end of stream ends the source
    got: list[Points] = []
    async for chunk in socketcan_source(
        "vcan0", open_socket=lambda _: ours, clock=lambda: next(clock), linger_s=0.5
    ):
        got.append(chunk)
    values = {n: (t, v) for c in got for n, t, v in zip(*c, strict=True)}
    assert values["engine_speed"] == (1_000_000, 1200.0)
    assert values["coolant_temp"] == (1_001_000, 91.0)


async def test_candump_replay_reassembles_bam(tmp_path: Path) -> None:
    # a 9+ byte message announced by BAM: the reassembled payload is decoded
    payload = encode_pgn(ET1, {"coolant_temp": 80}, size=9)
    lines = [
        format_candump(
            CanFrame(ts=10.0 + i / 100, channel="can0", can_id=cid, extended=True, data=data)
        )
        for i, (cid, data) in enumerate(segment_bam(ET1, payload, sa=0x00))
    ]
    lines.append(
        "(11.000000) can0 "
        + f"{make_can_id(EEC1, 0):08X}#"
        + encode_pgn(EEC1, {"engine_speed": 800.0}).hex().upper()
    )
    lines.append("not a candump line")
    path = tmp_path / "trace.log"
    path.write_text("\n".join(lines) + "\n")
    out = [c async for c in candump_source(str(path))]
    values = {n: (t, v) for c in out for n, t, v in zip(*c, strict=True)}
    assert values["coolant_temp"][1] == 80.0
    assert values["engine_speed"] == (11_000, 800.0)


def test_connector_sources_are_validated_with_the_field_named() -> None:
    ok = SourceConfig(
        kind="opcua",
        connector={
            "url": "opc.tcp://127.0.0.1:4840/",
            "nodes": [{"node": "ns=2;i=2", "measurement": "t"}],
        },
    )
    assert ok.connector["url"].startswith("opc.tcp")
    with pytest.raises(ValueError, match=r"connector\.url"):
        SourceConfig(kind="opcua", connector={"url": "http://x", "nodes": []})
    with pytest.raises(ValueError, match=r"connector\.devices\[0\]\.registers"):
        SourceConfig(kind="modbus", connector={"host": "h", "devices": [{"registers": [{}]}]})
    with pytest.raises(ValueError, match="only for opcua and modbus"):
        SourceConfig(kind="synthetic", connector={"url": "x"})
    with pytest.raises(ValueError, match="path"):
        SourceConfig(kind="candump")


def test_pushed_configuration_is_validated_and_merged() -> None:
    base = EdgeConfig(node_id="gw", uplink=UplinkConfig(username="gw", password="p"))
    managed = parse_managed(
        '{"rules": [{"name": "hot", "metric": "t", "op": ">", "threshold": 9}], "batch_points": 10}'
    )
    merged = merge_managed(base, managed)
    assert merged.rules[0].name == "hot"
    assert merged.batch_points == 10
    assert merged.uplink == base.uplink
    assert merged.sources == base.sources
    with pytest.raises(InvalidInput) as err:
        parse_managed('{"rules": [{"name": "x", "metric": "t", "op": "!", "threshold": 1}]}')
    assert err.value.field == "config.rules.0.op"
    with pytest.raises(InvalidInput) as err:
        parse_managed('{"uplink": {}}')  # credentials stay local
    assert err.value.field == "config.uplink"
    with pytest.raises(InvalidInput, match="JSON"):
        parse_managed("{")


async def test_local_publisher_turns_connector_telemetry_into_points() -> None:
    pub = LocalPublisher()
    await pub.publish("ib.v1.x.telemetry", b'{"ts": [1, 2], "values": {"t": [1.5, null]}}')
    assert await asyncio.wait_for(pub.queue.get(), 1) == (["t"], [1], [1.5])
