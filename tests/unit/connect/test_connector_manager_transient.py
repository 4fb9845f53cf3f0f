"""The connector manager waits out a busy registry instead of ending with its saved list."""

from __future__ import annotations

import asyncio
from typing import Any

from ironbridge.connect import ConnectorManager
from ironbridge.model import TransientError


class BusyRepository:
    def __init__(self) -> None:
        self.calls = 0

    def list(self, who: Any) -> list[Any]:
        self.calls += 1
        if self.calls <= 2:
            raise TransientError("registry database unavailable: database is locked")
        return []


def test_saved_connectors_load_after_transient_errors() -> None:
    repo = BusyRepository()
    manager = ConnectorManager(repo, publisher=None)  # type: ignore[arg-type]

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop))
        async with asyncio.timeout(20):
            while repo.calls < 3 and not task.done():  # noqa: ASYNC110 - polls a sync fake
                await asyncio.sleep(0.01)
        assert not task.done(), task.exception()
        stop.set()
        await task

    asyncio.run(run())
    assert repo.calls == 3
