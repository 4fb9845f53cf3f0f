"""A live SSE stream outlives a busy store: the failing tick is skipped, not the stream."""

from __future__ import annotations

import asyncio
from typing import Any

import ironbridge.api  # noqa: F401 - loads web.live the way the app does (import order)
from ironbridge.model import TransientError
from ironbridge.web.live import _stream


class Connected:
    async def is_disconnected(self) -> bool:
        return False


def test_stream_skips_ticks_that_fail_transiently() -> None:
    calls = 0

    async def produce() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise TransientError("registry database unavailable: database is locked")
        return {"n": 1 if calls < 5 else 2}

    async def collect() -> list[bytes]:
        out = []
        gen = _stream(Connected(), produce, "fleet", 0.001, 60.0)  # type: ignore[arg-type]
        async for chunk in gen:
            out.append(chunk)
            if calls >= 6:
                await gen.aclose()
                break
        return out

    chunks = asyncio.run(asyncio.wait_for(collect(), timeout=20))
    events = [c for c in chunks if c.startswith(b"event:")]
    assert events == [b'event: fleet\ndata: {"n":1}\n\n', b'event: fleet\ndata: {"n":2}\n\n']
    assert chunks[1:3] == [b": idle\n\n", b": idle\n\n"]  # the two failing ticks
