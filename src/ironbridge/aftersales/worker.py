"""Background tasks of the after-sales service: SLA watch, due scan, unattended dispatch."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ironbridge.aftersales.service import Aftersales
from ironbridge.model import IronbridgeError

_LOGGER = logging.getLogger(__name__)


async def run_periodic(
    name: str,
    job: Callable[[], Any],
    stop: asyncio.Event,
    interval_s: float,
    *,
    first_delay_s: float = 0.0,
) -> None:
    """Run the blocking ``job`` in a thread every ``interval_s`` until ``stop`` is set.

    A failure is logged when it starts and when it ends, not on every pass.
    """
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=first_delay_s)
    failing = False
    while not stop.is_set():
        try:
            await asyncio.to_thread(job)
            if failing:
                _LOGGER.info("%s recovered", name)
            failing = False
        except IronbridgeError as exc:
            if not failing:
                _LOGGER.warning("%s failing: %s", name, exc)
            failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)


async def run_sla_watch(service: Aftersales, stop: asyncio.Event, interval_s: float = 30.0) -> None:
    """Check open work orders' SLA clocks every ``interval_s`` until ``stop`` is set."""
    await run_periodic("SLA watch", service.check_sla, stop, interval_s)


async def run_due_scan(service: Aftersales, stop: asyncio.Event, interval_s: float = 600.0) -> None:
    """Open maintenance orders for services falling due, every ``interval_s`` (first after one)."""

    def scan() -> None:
        n = len(service.scan_fleet_due())
        _LOGGER.debug("due scan: %d services due", n)

    await run_periodic("due-maintenance scan", scan, stop, interval_s, first_delay_s=interval_s)


async def run_auto_dispatch(
    service: Aftersales, stop: asyncio.Event, interval_s: float = 60.0, time_limit_s: float = 5.0
) -> None:
    """Plan and assign the new work orders every ``interval_s`` (unattended dispatch)."""

    def dispatch() -> None:
        done = service.auto_dispatch(time_limit_s=time_limit_s)
        if done:
            _LOGGER.info("auto dispatch assigned %d work orders", len(done))

    await run_periodic("auto dispatch", dispatch, stop, interval_s)
