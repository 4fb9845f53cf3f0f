"""Garbage-collector settings for long-running ironbridge processes.

CPython collects its youngest generation every 700 net allocations by default. A
process holding thousands of live sessions (sockets, streams, futures, timers) then
promotes short-lived objects that happen to be alive at a collection into the older
generations, and collects those over and over: in the vehicle endpoints' load test
(10 000 TCP sessions) 188 of 246 CPU seconds went to the collector, with pauses up to
1.9 s, which stalled every session. Objects made at start-up (modules, classes, parsed
configuration) never become garbage, so they are frozen out of every collection.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_gc"]

#: net allocations between collections of the youngest generation (CPython default 700)
YOUNG_THRESHOLD = 50_000


def tune_gc(young: int = YOUNG_THRESHOLD) -> None:
    """Collect the young generation less often and freeze what exists now.

    Reference cycles are still collected, only in larger steps. Call it once at process
    start, after the imports.
    """
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young, older, oldest)
