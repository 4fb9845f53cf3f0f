"""Types shared by the contract suite's fixtures and tests."""

from __future__ import annotations

from collections.abc import Callable

from ironbridge.store import TelemetryStore

#: opens (or reopens) the store under test at its one location
Opener = Callable[[], TelemetryStore]
