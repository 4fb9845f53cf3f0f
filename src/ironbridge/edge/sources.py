"""Local data sources of the edge agent.

J1939 CAN (a ``candump -l`` log replayed, or a live socketcan interface read through the
kernel's raw CAN socket), local MQTT devices, local OPC UA servers and Modbus TCP devices
(the plant connectors of ``connect/``, publishing into the agent instead of the bus), and
a synthetic ramp. Every source is an async iterator of columnar chunks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

from ironbridge.codec.j1939 import (
    CodecError,
    TransportReassembler,
    decode_pgn,
    parse_candump_line,
)
from ironbridge.codec.telemetry import decode_telemetry
from ironbridge.edge.config import SourceConfig, connector_config
from ironbridge.model import InvalidInput

__all__ = [
    "LocalPublisher",
    "Points",
    "candump_source",
    "connector_source",
    "decode_can_frame",
    "make_source",
    "mqtt_source",
    "socketcan_source",
    "synthetic_source",
]

_LOGGER = logging.getLogger(__name__)

#: a columnar chunk: (series names, ts in ms, values)
Points = tuple[list[str], list[int], list[float | None]]


async def candump_source(path: str, speed: float = 0.0) -> AsyncIterator[Points]:
    """Replay a ``candump -l`` log; every J1939 SPN known to the codec becomes a series.

    Series are named ``<spn name>`` (e.g. ``engine_speed``); timestamps come from the log.
    """
    first_log = first_wall = None
    chunk: Points = ([], [], [])
    tp = TransportReassembler()
    text = await asyncio.to_thread(Path(path).read_text)
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            frame = parse_candump_line(line)
            values = _j1939_values(tp, frame.can_id, frame.data, frame.ts)
        except CodecError as exc:
            _LOGGER.debug("candump line skipped: %s", exc)
            continue
        if not values:
            continue
        ts_ms = int(frame.ts * 1000)
        if speed > 0:
            if first_log is None or first_wall is None:
                first_log, first_wall = frame.ts, time.monotonic()
            delay = (frame.ts - first_log) / speed - (time.monotonic() - first_wall)
            if delay > 0:
                if chunk[0]:
                    yield chunk
                    chunk = ([], [], [])
                await asyncio.sleep(delay)
        for name, value in values.items():
            chunk[0].append(name)
            chunk[1].append(ts_ms)
            chunk[2].append(value)
        if len(chunk[0]) >= 1000:
            yield chunk
            chunk = ([], [], [])
    if chunk[0]:
        yield chunk


def _j1939_values(
    tp: TransportReassembler, can_id: int, data: bytes, ts: float
) -> dict[str, float | None]:
    """Decoded SPN values of the J1939 messages one frame completes (TP reassembled)."""
    out: dict[str, float | None] = {}
    for msg in tp.feed(can_id, data, ts):
        out.update(decode_pgn(msg.pgn, msg.data))
    return out


#: struct can_frame of linux/can.h: id (with EFF/RTR/ERR flags), dlc, 3 pad bytes, 8 data
_CAN_FRAME = struct.Struct("=IB3x8s")
_CAN_EFF_FLAG = 0x80000000
_CAN_RTR_FLAG = 0x40000000
_CAN_ERR_FLAG = 0x20000000
_CAN_EFF_MASK = 0x1FFFFFFF


def decode_can_frame(raw: bytes) -> tuple[int, bytes] | None:
    """A raw socketcan ``can_frame`` as (29-bit id, data); None for frames J1939 ignores.

    J1939 uses extended (29-bit) data frames only: standard, remote and error frames are
    skipped.
    """
    if len(raw) < _CAN_FRAME.size:
        return None
    can_id, dlc, data = _CAN_FRAME.unpack_from(raw)
    if not can_id & _CAN_EFF_FLAG or can_id & (_CAN_RTR_FLAG | _CAN_ERR_FLAG):
        return None
    return can_id & _CAN_EFF_MASK, bytes(data[: min(dlc, 8)])


def _open_can(channel: str) -> socket.socket:
    sock = socket.socket(socket.AF_CAN, socket.SOCK_RAW, socket.CAN_RAW)
    sock.bind((channel,))
    return sock


async def socketcan_source(
    channel: str,
    *,
    open_socket: Callable[[str], socket.socket] = _open_can,
    clock: Callable[[], float] = time.time,
    chunk_points: int = 1000,
    linger_s: float = 0.2,
) -> AsyncIterator[Points]:
    """Read a live CAN interface (Linux socketcan) and decode J1939, TP reassembled.

    Reads ``struct can_frame`` records from a raw CAN socket (the kernel's, no library);
    values are timestamped on receipt. A chunk is handed on at ``chunk_points`` values
    or after ``linger_s``.

    Args:
        channel: interface name (``can0``, ``vcan0``).
        open_socket: opens the bound raw socket (tests pass a socket pair).
        clock: wall clock in seconds.
        chunk_points: hand a chunk on at this many values.
        linger_s: ... or when no frame came for this long.
    """
    loop = asyncio.get_running_loop()
    sock = open_socket(channel)
    sock.setblocking(False)
    tp = TransportReassembler()
    chunk: Points = ([], [], [])
    try:
        while True:
            try:
                raw = await asyncio.wait_for(loop.sock_recv(sock, 72), timeout=linger_s)
            except TimeoutError:
                raw = None
            if raw == b"":
                break
            if raw is not None:
                frame = decode_can_frame(raw)
                if frame is not None:
                    now = clock()
                    try:
                        values = _j1939_values(tp, frame[0], frame[1], now)
                    except CodecError as exc:
                        _LOGGER.debug("CAN frame skipped: %s", exc)
                        values = {}
                    ts_ms = int(now * 1000)
                    for name, value in values.items():
                        chunk[0].append(name)
                        chunk[1].append(ts_ms)
                        chunk[2].append(value)
            if chunk[0] and (raw is None or len(chunk[0]) >= chunk_points):
                yield chunk
                chunk = ([], [], [])
        if chunk[0]:
            yield chunk
    finally:
        sock.close()


class LocalPublisher:
    """Stands in for the bus under a plant connector: telemetry goes to the agent instead.

    The connector's columnar telemetry JSON is decoded back into points named by their
    measurement; ``publish`` waits while the agent's queue is full (backpressure).
    """

    def __init__(self, maxsize: int = 64) -> None:
        """Create the publisher with a bounded queue of chunks."""
        self.queue: asyncio.Queue[Points] = asyncio.Queue(maxsize=maxsize)
        self._seq = 0

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Decode one telemetry message and queue its numeric values."""
        out: Points = ([], [], [])
        now_ms = int(time.time() * 1000)
        for block in decode_telemetry(payload):
            for name, column in block.values.items():
                for t, v in zip(block.ts_ms, column, strict=True):
                    if v is None or isinstance(v, str):
                        continue
                    out[0].append(name)
                    out[1].append(t if t is not None else now_ms)
                    out[2].append(float(v))
        if out[0]:
            await self.queue.put(out)
        self._seq += 1
        return self._seq


async def connector_source(cfg: SourceConfig) -> AsyncIterator[Points]:
    """Run the plant connector an ``opcua`` / ``modbus`` source describes, yield its values.

    The connector keeps its own reconnect with backoff and its link reporting.
    """
    from ironbridge.connect.config import OpcUaConfig
    from ironbridge.connect.modbus import ModbusConnector
    from ironbridge.connect.opcua import OpcUaConnector

    publisher = LocalPublisher()
    config = connector_config(cfg)
    connector: OpcUaConnector | ModbusConnector
    if isinstance(config, OpcUaConfig):
        connector = OpcUaConnector(config, publisher, name="edge")
    else:
        connector = ModbusConnector(config, publisher, name="edge")
    stop = asyncio.Event()
    task = asyncio.create_task(connector.run(stop), name=f"edge-{cfg.kind}-connector")
    try:
        while True:
            getter = asyncio.ensure_future(publisher.queue.get())
            await asyncio.wait({getter, task}, return_when="FIRST_COMPLETED")
            if not getter.done():
                getter.cancel()
                task.result()  # the connector ended: re-raise its error
                return
            yield getter.result()
    finally:
        stop.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=5)


async def synthetic_source(rate: float, series: int, limit: int = 0) -> AsyncIterator[Points]:
    """``rate`` points/s round-robin over ``series`` series named ``sim_<i>``.

    Each series gets a point every ``max(1, series / rate * 1000)`` ms of its own
    timeline, which starts at the wall clock when the source starts: with ``series >=
    rate / 1000`` the timestamps follow the wall clock, so a restarted source never
    reuses a timestamp. The value is the running count of points, so a threshold rule
    crosses it exactly once.
    """
    import numpy as np

    names = [f"sim_{i}" for i in range(series)]
    period_ms = max(1.0, series * 1000.0 / rate)
    sent = 0
    start = time.monotonic()
    base_ms = int(time.time() * 1000)
    while limit <= 0 or sent < limit:
        due = int((time.monotonic() - start) * rate) - sent
        if limit > 0:
            due = min(due, limit - sent)
        if due <= 0:
            await asyncio.sleep(0.01)
            continue
        idx = np.arange(sent, sent + due, dtype=np.int64)
        ts = base_ms + ((idx // series) * period_ms).astype(np.int64)
        yield ([names[i] for i in (idx % series).tolist()], ts.tolist(), idx.astype(float).tolist())
        sent += due


async def mqtt_source(host: str, port: int, topic: str) -> AsyncIterator[Points]:
    """Subscribe to local MQTT devices sending ironbridge telemetry JSON."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=10_000)
    loop = asyncio.get_running_loop()

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        loop.call_soon_threadsafe(_put, msg.payload)

    def _put(payload: bytes) -> None:
        if not queue.full():
            queue.put_nowait(payload)

    def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(topic, qos=1)

    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect_async(host, port)
    client.loop_start()
    try:
        while True:
            payload = await queue.get()
            try:
                blocks = decode_telemetry(payload)
            except InvalidInput as exc:
                _LOGGER.warning("local MQTT message refused: %s", exc)
                continue
            now_ms = int(time.time() * 1000)
            out: Points = ([], [], [])
            for block in blocks:
                for name, column in block.values.items():
                    for t, v in zip(block.ts_ms, column, strict=True):
                        if v is None or isinstance(v, str):
                            continue
                        out[0].append(name)
                        out[1].append(t if t is not None else now_ms)
                        out[2].append(float(v))
            if out[0]:
                yield out
    finally:
        client.loop_stop()
        client.disconnect()


def make_source(cfg: SourceConfig) -> Callable[[], AsyncIterator[Points]]:
    """A factory of the async iterator a source config describes."""
    if cfg.kind == "candump":
        return lambda: candump_source(cfg.path, cfg.speed)
    if cfg.kind == "socketcan":
        return lambda: socketcan_source(cfg.channel)
    if cfg.kind == "mqtt":
        return lambda: mqtt_source(cfg.host, cfg.port, cfg.topic)
    if cfg.kind in ("opcua", "modbus"):
        return lambda: connector_source(cfg)
    return lambda: synthetic_source(cfg.rate, cfg.series, cfg.limit)
