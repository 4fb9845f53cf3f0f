"""Partition leases in a JetStream key-value bucket: claim, renew, lose, and writes that
landed although the client saw them time out (as during a stream leader election)."""

from __future__ import annotations

import asyncio

import pytest

from ironbridge.bus import Bus
from ironbridge.cluster.partitions import LeaseTable

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _table(bus: Bus, bucket: str, worker: str) -> LeaseTable:
    table = LeaseTable(bus.client.jetstream(), worker, ttl_s=30.0, bucket=bucket)
    await table.open()
    return table


async def test_claim_is_exclusive_and_renewal_keeps_it(bus: Bus) -> None:
    a = await _table(bus, "leases_excl", "wa")
    b = await _table(bus, "leases_excl", "wb")
    lease = await a.claim(0)
    assert lease is not None
    assert await b.claim(0) is None
    before = lease.revision
    assert await a.renew(lease)
    assert lease.revision > before
    _, owners = await b.snapshot()
    assert owners == {0: "wa"}


async def test_renewal_that_landed_unseen_is_not_a_lost_lease(bus: Bus) -> None:
    a = await _table(bus, "leases_unseen", "wa")
    lease = await a.claim(1)
    assert lease is not None
    stale = lease.revision
    # the server applied a renewal whose reply never reached the worker
    await a.kv.update("p1", b"wa", last=stale)
    assert await a.renew(lease)  # still ours: the revision is adopted
    assert lease.revision > stale
    assert await a.renew(lease)  # and renews from there


async def test_lease_taken_by_another_worker_is_lost(bus: Bus) -> None:
    a = await _table(bus, "leases_taken", "wa")
    b = await _table(bus, "leases_taken", "wb")
    lease = await a.claim(2)
    assert lease is not None
    await a.kv.delete("p2")  # expired, as the bucket's TTL would
    assert await b.claim(2) is not None
    assert not await a.renew(lease)


async def test_claim_that_landed_unseen_is_claimed_again(bus: Bus) -> None:
    a = await _table(bus, "leases_reclaim", "wa")
    first = await a.claim(3)
    assert first is not None
    # the worker saw the first claim fail and claims again: the lease is its own
    again = await a.claim(3)
    assert again is not None
    assert again.revision == first.revision
    b = await _table(bus, "leases_reclaim", "wb")
    assert await b.claim(3) is None


async def test_a_lease_is_kept_alive_while_its_partition_starts(bus: Bus) -> None:
    a = LeaseTable(bus.client.jetstream(), "wa", ttl_s=1.0, bucket="leases_slow_start")
    await a.open()
    slow = await a.claim(4)
    assert slow is not None
    async with a.kept(slow):
        await asyncio.sleep(2.5)  # a start slower than the TTL (a consumer being created)
    assert await a.renew(slow)  # still ours
    lapsed = await a.claim(5)
    assert lapsed is not None
    await asyncio.sleep(2.5)  # not kept: the bucket's TTL removes it
    assert not await a.renew(lapsed)
