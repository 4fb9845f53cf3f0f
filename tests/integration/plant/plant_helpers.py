"""Shared helpers of the plant connector tests: an async condition wait and a recorder."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from harness import patience


async def until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    """Poll ``condition`` on the loop until truthy; fail after ``timeout`` seconds."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")


class Recorder:
    """A Publisher that keeps what it is given (the I/O seam these tests do not test)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        from ironbridge.model import TransientError

        if self.fail:
            raise TransientError("bus away")
        self.messages.append((subject, orjson.loads(payload)))
        return len(self.messages)

    def values(self, subject: str, measurement: str) -> list[float]:
        """Every value published for ``measurement`` on ``subject``."""
        out: list[float] = []
        for subj, doc in self.messages:
            if subj == subject:
                out += [v for v in doc["values"].get(measurement, []) if v is not None]
        return out
