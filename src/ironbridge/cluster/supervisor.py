"""The lease loop shared by the partitioned worker roles (ingest, rules)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from ironbridge.cluster.partitions import Lease, LeaseTable
from ironbridge.model import IronbridgeError

_LOGGER = logging.getLogger(__name__)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


class PartitionSupervisor:
    """Holds partition leases, renews them, and rebalances until told to stop.

    A role sets :attr:`leases`, :attr:`kind` and the lease TTL, and implements
    :meth:`_rebalance` (claim and shed partitions), :meth:`_retire` (stop one, handing
    it back) and :meth:`_drop` (stop one whose lease was lost, without handing it back).
    """

    #: what the role's partitions are called in logs and task names ("ingest", "rules")
    kind = "partition"

    def __init__(self, leases: LeaseTable, ttl_s: float) -> None:
        """Start with no partitions; :meth:`run` claims them."""
        self.leases = leases
        self._ttl = ttl_s
        self.running: dict[int, Any] = {}
        #: partitions being stopped off the renewal loop (a stop can wait for a commit)
        self._stopping: set[asyncio.Task[None]] = set()
        self.ready = False

    async def _prepare(self) -> None:
        """Anything the role needs before its first lease round."""

    async def run(self, stop: asyncio.Event) -> None:
        """Hold, run and hand over partitions until ``stop`` is set."""
        await self._prepare()
        await self.leases.open()
        self.ready = True
        # Renewals run on their own: a slow claim (a consumer being created while the
        # stream elects a leader) must not let the leases already held expire.
        renewer = asyncio.create_task(self._renew_loop(stop), name=f"{self.kind}-lease-renewal")
        try:
            while not stop.is_set():
                try:
                    await self._rebalance()
                except IronbridgeError as exc:
                    _LOGGER.warning("%s lease round failed: %s", self.kind, exc)
                await pause(stop, self._ttl / 3)
        finally:
            self.ready = False
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            await asyncio.gather(
                *(self._retire(k) for k in list(self.running)),
                *self._stopping,
                return_exceptions=True,
            )
            await self.leases.leave()

    async def _renew_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.leases.heartbeat()
                for k, r in list(self.running.items()):
                    if not await self.leases.renew(r.lease) and self.running.get(k) is r:
                        _LOGGER.warning("lease of %s partition %d lost; stopping it", self.kind, k)
                        self._in_background(self._drop(k))
            except IronbridgeError as exc:
                _LOGGER.warning("%s lease renewal failed: %s", self.kind, exc)
            await pause(stop, self._ttl / 3)

    def _in_background(self, stop: Coroutine[Any, Any, None]) -> None:
        """Stop a partition without holding up the renewal of the others.

        Stopping waits for the batch in hand, which may wait on the store (up to its
        connection timeout while PostgreSQL is down): meanwhile the other leases must
        still be renewed, or they expire one after the other.
        """
        task = asyncio.create_task(stop)
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    def _free(self, partitions: int, owners: dict[int, str]) -> list[int]:
        """Partitions this worker may claim: not running here, and unowned or ours.

        A partition whose lease is ours but not running (a claim that timed out after
        it was applied) is free to us.
        """
        mine = self.leases.worker_id
        return [
            k for k in range(partitions) if k not in self.running and owners.get(k, mine) == mine
        ]

    async def _claim(self, k: int) -> None:
        """Claim partition ``k`` and start it, renewing the lease while it starts."""
        lease = await self.leases.claim(k)
        if lease is not None:
            async with self.leases.kept(lease):
                await self._start(lease)

    async def _start(self, lease: Lease) -> None:
        raise NotImplementedError

    async def _rebalance(self) -> None:
        raise NotImplementedError

    async def _retire(self, k: int) -> None:
        raise NotImplementedError

    async def _drop(self, k: int) -> None:
        raise NotImplementedError


__all__ = ["PartitionSupervisor", "pause"]
