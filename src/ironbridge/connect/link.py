"""Connection health of a connector: jittered capped backoff and transition logging.

The coordinator pattern: a source that goes away is reported once (``lost``), retried
quietly with a jittered, capped exponential backoff, and reported once more when it is
back (``recovered``). Callers read :attr:`Link.state` and the counters for status pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from enum import StrEnum

from ironbridge.model import now_us

_LOGGER = logging.getLogger(__name__)


class LinkState(StrEnum):
    """Where a connector's link to its device stands."""

    STARTING = "starting"
    CONNECTED = "connected"
    LOST = "lost"
    STOPPED = "stopped"


@dataclass(slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped.

    Attributes:
        initial_s: first delay bound.
        max_s: cap of the delay bound.
        factor: growth of the bound per failure.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    attempt: int = 0

    def next_delay(self) -> float:
        """Return the next delay (uniform in [bound/2, bound]) and grow the bound."""
        bound = min(self.max_s, self.initial_s * self.factor**self.attempt)
        self.attempt += 1
        return random.uniform(bound / 2, bound)  # noqa: S311 - jitter, not crypto

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self.attempt = 0


class Link:
    """Tracks one connector's connection and logs only its transitions.

    Args:
        name: what the log lines call the source (``opcua plant-a opc.tcp://...``).
        backoff: retry policy.
    """

    def __init__(self, name: str, backoff: Backoff | None = None) -> None:
        self.name = name
        self.backoff = backoff or Backoff()
        self.state = LinkState.STARTING
        self.last_error = ""
        self.failures = 0
        self.losses = 0
        self.recoveries = 0
        self.changed_us = now_us()

    def up(self) -> None:
        """Record a successful connection; log ``connected`` or ``recovered`` once."""
        self.backoff.reset()
        self.failures = 0
        if self.state is LinkState.CONNECTED:
            return
        if self.state is LinkState.LOST:
            self.recoveries += 1
            _LOGGER.info("%s recovered", self.name)
        else:
            _LOGGER.info("%s connected", self.name)
        self.state = LinkState.CONNECTED
        self.changed_us = now_us()

    def down(self, error: BaseException | str) -> float:
        """Record a failure; log ``lost`` on the first one only; return the retry delay."""
        self.failures += 1
        self.last_error = str(error) or type(error).__name__
        if self.state is not LinkState.LOST:
            self.losses += 1
            _LOGGER.warning("%s lost: %s; retrying with backoff", self.name, self.last_error)
            self.state = LinkState.LOST
            self.changed_us = now_us()
        else:
            _LOGGER.debug("%s still down: %s", self.name, self.last_error)
        return self.backoff.next_delay()

    def stopped(self) -> None:
        """Record that the connector was stopped on purpose."""
        self.state = LinkState.STOPPED
        self.changed_us = now_us()

    def status(self) -> dict[str, object]:
        """A JSON-ready summary for status endpoints."""
        return {
            "state": self.state.value,
            "since_us": self.changed_us,
            "last_error": self.last_error,
            "losses": self.losses,
            "recoveries": self.recoveries,
        }


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop`` is set; return whether ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


__all__ = ["Backoff", "Link", "LinkState", "pause"]
