"""Retry an I/O step through transient errors: capped, jittered backoff, logged once.

Long-running tasks (rules worker, Sparkplug host, simulated plant...) call the bus or a
store in steps that must not be skipped (the step's data would be lost) nor end the
task (a JetStream timeout under load is not a reason to stop). :func:`retry_transient`
repeats such a step while it raises :class:`TransientError`, logging when it starts
failing and when it recovers, not on every attempt.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ironbridge.model.errors import TransientError

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


def backoff_delay(attempt: int, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    """Delay before retry number ``attempt`` (0-based): doubling, capped, jittered 50-100 %."""
    bound = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return random.uniform(bound / 2, bound)  # noqa: S311 - jitter, not crypto


async def retry_transient(
    op: Callable[[], Awaitable[T]],
    what: str,
    *,
    stop: asyncio.Event | None = None,
    base_s: float = 0.1,
    cap_s: float = 5.0,
    logger: logging.Logger = _LOGGER,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> T:
    """Await ``op()`` until it does not raise :class:`TransientError`; return its result.

    Args:
        op: the step; called again on every attempt, so it must be safe to repeat
            (an idempotent write, a read, a publish with a msg id).
        what: names the step in the log ("rules: save state").
        stop: when set, the next transient error is raised instead of retried (the
            caller is shutting down and leaves the data unacknowledged).
        base_s: first delay; doubled per attempt up to ``cap_s``.
        cap_s: longest delay between attempts.
        logger: where the start and end of a failure are logged.
        sleep: injected in tests.

    Raises:
        TransientError: ``stop`` was set while the step was failing.
    """
    attempt = 0
    while True:
        try:
            result = await op()
        except TransientError as exc:
            if stop is not None and stop.is_set():
                raise
            if attempt == 0:
                logger.warning("%s failing, retrying with backoff: %s", what, exc)
            await sleep(backoff_delay(attempt, base_s, cap_s))
            attempt += 1
            continue
        if attempt:
            logger.info("%s recovered after %d retries", what, attempt)
        return result


__all__ = ["backoff_delay", "retry_transient"]
