"""Background SLA watch: raises work-order SLA warnings and breaches as they come due."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ironbridge.aftersales.service import Aftersales
from ironbridge.model import IronbridgeError

_LOGGER = logging.getLogger(__name__)


async def run_sla_watch(service: Aftersales, stop: asyncio.Event, interval_s: float = 30.0) -> None:
    """Check open work orders' SLA clocks every ``interval_s`` until ``stop`` is set."""
    failing = False
    while not stop.is_set():
        try:
            await asyncio.to_thread(service.check_sla)
            if failing:
                _LOGGER.info("SLA watch recovered")
            failing = False
        except IronbridgeError as exc:
            if not failing:
                _LOGGER.warning("SLA watch failing: %s", exc)
            failing = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
