"""The lease loop shared by the partitioned worker roles (ingest, rules)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import zlib
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

    A role sets :attr:`leases`, :attr:`kind`, the number of partitions and the lease
    TTL, and implements :meth:`_start` (run a claimed partition), :meth:`_retire` (stop
    one, handing it back) and :meth:`_drop` (stop one whose lease was lost, without
    handing it back). Each value of :attr:`running` has the partition's ``task``.

    Every lease round a worker sheds what is above its share
    (``ceil(partitions / live workers)``) or claims free partitions up to it.
    """

    #: what the role's partitions are called in logs and task names ("ingest", "rules")
    kind = "partition"
    #: claim rounds within one lease round when claims are lost to other workers
    _CLAIM_ATTEMPTS = 3

    def __init__(self, leases: LeaseTable, ttl_s: float, partitions: int) -> None:
        """Start with no partitions; :meth:`run` claims them."""
        self.leases = leases
        self._ttl = ttl_s
        self._partitions = int(partitions)
        self.running: dict[int, Any] = {}
        #: partitions that stopped on their own (a store or stream outage)
        self.restarts = 0
        #: partitions being stopped off the renewal loop (a stop can wait for a commit)
        self._stopping: set[asyncio.Task[None]] = set()
        self.ready = False

    async def _prepare(self) -> None:
        """Anything the role needs before its first lease round."""

    async def run(self, stop: asyncio.Event) -> None:
        """Hold, run and hand over partitions until ``stop`` is set."""
        await self._prepare()
        await self.leases.open()
        # be counted before the first round (a bucket just created may not answer yet:
        # the renewal loop keeps trying)
        with contextlib.suppress(IronbridgeError):
            await self.leases.heartbeat()
        # Workers started together: let the others' heartbeats land before the first
        # round, so each claims its share instead of one taking every partition and
        # handing most back a round later. Ready after that: about to claim.
        await pause(stop, self._ttl / 6)
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
                # twice per renewal: a worker that joins gets its share a second or
                # two sooner (a round is a few key reads)
                await pause(stop, self._ttl / 6)
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

    def _free(self, owners: dict[int, str]) -> list[int]:
        """Partitions this worker may claim: not running here, and unowned or ours.

        A partition whose lease is ours but not running (a claim that timed out after
        it was applied) is free to us. Each worker lists them from its own starting
        point (a hash of its id), so workers claiming at once mostly want different ones.
        """
        mine = self.leases.worker_id
        n = self._partitions
        first = zlib.crc32(mine.encode()) % n
        return [
            k
            for k in sorted(range(n), key=lambda k: (k - first) % n)
            if k not in self.running and owners.get(k, mine) == mine
        ]

    async def _rebalance(self) -> None:
        """One lease round: release stopped partitions, then shed or claim to the share."""
        for k, r in list(self.running.items()):
            if r.task.done():
                exc = None if r.task.cancelled() else r.task.exception()
                _LOGGER.warning("%s partition %d stopped: %r; releasing it", self.kind, k, exc)
                self.restarts += 1
                await self._retire(k)
        for _ in range(self._CLAIM_ATTEMPTS):
            workers, owners = await self.leases.snapshot()
            target = math.ceil(self._partitions / workers)
            if len(self.running) > target:
                for k in sorted(self.running)[target:]:
                    _LOGGER.info("handing %s partition %d over (%d workers)", self.kind, k, workers)
                    await self._retire(k)
                return
            wanted = self._free(owners)[: max(0, target - len(self.running))]
            if not wanted:
                return
            results = await asyncio.gather(
                *(self._claim(k) for k in wanted), return_exceptions=True
            )
            failed = False
            for k, res in zip(wanted, results, strict=True):
                if isinstance(res, BaseException):
                    _LOGGER.warning("could not start %s partition %d: %r", self.kind, k, res)
                    failed = True
            if failed or len(self.running) >= target:
                return  # a failing start waits for the next round
            # some claims went to workers claiming at the same moment: look again

    async def _claim(self, k: int) -> None:
        """Claim partition ``k`` and start it, renewing the lease while it starts."""
        lease = await self.leases.claim(k)
        if lease is not None:
            async with self.leases.kept(lease):
                await self._start(lease)

    async def _start(self, lease: Lease) -> None:
        raise NotImplementedError

    async def _retire(self, k: int) -> None:
        raise NotImplementedError

    async def _drop(self, k: int) -> None:
        raise NotImplementedError


__all__ = ["PartitionSupervisor", "pause"]
