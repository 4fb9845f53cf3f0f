"""Local data sources of the edge agent: candump replay (J1939), local MQTT, synthetic."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from ironbridge.codec.j1939 import CodecError, decode_pgn, parse_can_id, parse_candump_line
from ironbridge.codec.telemetry import decode_telemetry
from ironbridge.edge.config import SourceConfig
from ironbridge.model import InvalidInput

__all__ = ["Points", "candump_source", "make_source", "mqtt_source", "synthetic_source"]

_LOGGER = logging.getLogger(__name__)

#: a columnar chunk: (series names, ts in ms, values)
Points = tuple[list[str], list[int], list[float | None]]


async def candump_source(path: str, speed: float = 0.0) -> AsyncIterator[Points]:
    """Replay a ``candump -l`` log; every J1939 SPN known to the codec becomes a series.

    Series are named ``<spn name>`` (e.g. ``engine_speed``); timestamps come from the log.
    """
    first_log = first_wall = None
    chunk: Points = ([], [], [])
    text = await asyncio.to_thread(Path(path).read_text)
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            frame = parse_candump_line(line)
            values = decode_pgn(parse_can_id(frame.can_id).pgn, frame.data)
        except CodecError as exc:
            _LOGGER.debug("candump line skipped: %s", exc)
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


async def synthetic_source(rate: float, series: int, limit: int = 0) -> AsyncIterator[Points]:
    """``rate`` points/s round-robin over ``series`` series named ``sim_<i>``.

    Timestamps are distinct per series (1 ms apart at least); the value is the running
    count of points, so a threshold rule crosses it exactly once.
    """
    names = [f"sim_{i}" for i in range(series)]
    sent = 0
    start = time.monotonic()
    base_ms = int(time.time() * 1000)
    step = 0
    while limit <= 0 or sent < limit:
        due = int((time.monotonic() - start) * rate) - sent
        if limit > 0:
            due = min(due, limit - sent)
        if due <= 0:
            await asyncio.sleep(0.01)
            continue
        out: Points = ([], [], [])
        for _ in range(due):
            out[0].append(names[sent % series])
            out[1].append(base_ms + step)
            out[2].append(float(sent))
            sent += 1
            if sent % series == 0:
                step += 1
        yield out


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
    if cfg.kind == "mqtt":
        return lambda: mqtt_source(cfg.host, cfg.port, cfg.topic)
    return lambda: synthetic_source(cfg.rate, cfg.series, cfg.limit)
