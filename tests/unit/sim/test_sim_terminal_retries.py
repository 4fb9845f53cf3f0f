"""Simulated terminals retry like real ones: no reconnect storm against a slow platform."""

from __future__ import annotations

import asyncio
import random

from ironbridge.sim.vehicles import NevBus, TcpFleetStats, _backoff, _Schedule


def test_backoff_doubles_from_2_s_to_a_minute_jittered() -> None:
    rng = random.Random(1)
    for failures, top in [(1, 2.0), (2, 4.0), (3, 8.0), (5, 32.0), (6, 60.0), (12, 60.0)]:
        waits = [_backoff(rng, failures) for _ in range(50)]
        assert all(top / 2 <= w <= top for w in waits), (failures, min(waits), max(waits))


async def test_an_unanswered_login_is_not_retried_for_about_a_minute() -> None:
    connections = 0
    done = asyncio.Event()
    handlers: list[asyncio.Task[None]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        current = asyncio.current_task()
        assert current is not None
        handlers.append(current)  # type: ignore[arg-type]
        await reader.read(65536)  # the login arrives; it is never answered
        await done.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    stats = TcpFleetStats()
    schedule = _Schedule(
        period_s=1.0, ramp_s=0.0, burst_every_s=0.0, burst_len_s=0.0, rng=random.Random(1)
    )
    bus = NevBus(1)
    task = asyncio.create_task(bus.run("127.0.0.1", port, stats, stop, schedule, timeout=0.2))
    await asyncio.sleep(3.0)  # past the first start (within 1 s) and its 0.2 s timeout
    stop.set()
    await task
    done.set()
    await asyncio.gather(*handlers)  # every server-side socket closed before the loop ends
    server.close()
    await server.wait_closed()
    assert connections == 1
    assert stats.errors == 1
    assert stats.logged_in == 0
