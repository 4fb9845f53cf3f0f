"""The Sparkplug host retries a publish that times out instead of dropping the metrics.

The retries reuse one msg id, so a timed-out publish that did land is not stored twice
(JetStream drops the duplicate); the fake bus below does the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from ironbridge.codec.sparkplug import (
    DataType,
    EdgeNodeSession,
    MessageType,
    Topic,
    encode_payload,
)
from ironbridge.connect.sparkplug_host import SparkplugHost, topic_to_subject
from ironbridge.model import TransientError


class FlakyBus:
    """Times out the first ``failures`` publishes; the second one of them did land."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.stored: dict[str, tuple[str, bytes]] = {}
        self.attempts: list[str | None] = []

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.attempts.append(msg_id)
        assert msg_id is not None
        if self.failures > 0:
            self.failures -= 1
            if self.failures == 1:
                self.stored.setdefault(msg_id, (subject, payload))  # landed, ack lost
            raise TransientError(f"publish {subject}: TimeoutError")
        self.stored.setdefault(msg_id, (subject, payload))
        return len(self.stored)


class NoNats:
    async def publish(self, subject: str, payload: bytes) -> None:
        return None


def _subject(t: MessageType) -> str:
    return topic_to_subject(str(Topic(group="g", type=t, node="gw-1")))


def test_publish_timeouts_are_retried_and_stored_once() -> None:
    bus = FlakyBus(failures=3)
    host = SparkplugHost(NoNats(), bus)  # type: ignore[arg-type]
    edge = EdgeNodeSession(group="g", node="gw-1")
    edge.connect()
    birth = edge.nbirth([("temp", DataType.DOUBLE, 21.5)], ts=1_000)
    data = edge.data(None, [("temp", DataType.DOUBLE, 22.5)])

    async def run() -> None:
        await host.handle(_subject(MessageType.NBIRTH), encode_payload(birth))
        await host.handle(_subject(MessageType.NDATA), encode_payload(data))

    asyncio.run(asyncio.wait_for(run(), timeout=30))
    assert len(bus.attempts) == 5  # 3 timeouts, then the birth and the data
    assert len(set(bus.attempts)) == 2  # the retries reused the birth's msg id
    values: list[Any] = []
    for subject, body in bus.stored.values():
        assert subject == "ib.v1.gw-1.telemetry"
        values += orjson.loads(body)["values"]["temp"]
    assert values == [21.5, 22.5]  # none lost, none doubled
    assert host.stats.rebirths_requested == 0
