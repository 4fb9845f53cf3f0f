"""The simulated MES retries its events through publish timeouts without doubling them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from ironbridge.demo_plant import publish_events
from ironbridge.model import TransientError
from ironbridge.model.retry import retry_transient


class FlakyBus:
    """Dedupes by msg id like JetStream; the first publish lands but its ack times out."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.timeouts = 2

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        assert msg_id is not None
        self.stored.setdefault(msg_id, subject)
        if self.timeouts > 0:
            self.timeouts -= 1
            raise TransientError(f"publish {subject}: TimeoutError")
        return len(self.stored)


def test_events_are_retried_and_stored_once() -> None:
    bus = FlakyBus()
    events = [
        ("press-01", {"ts": 1, "kind": "station_state", "code": "running"}),
        ("weld-01", {"ts": 1, "kind": "station_state", "code": "down"}),
    ]

    async def no_sleep(s: float) -> None:
        return None

    asyncio.run(retry_transient(lambda: publish_events(bus, events), "mes", sleep=no_sleep))
    assert bus.timeouts == 0
    assert sorted(bus.stored.values()) == ["ib.v1.press-01.events", "ib.v1.weld-01.events"]
