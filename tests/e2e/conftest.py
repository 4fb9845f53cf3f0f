"""Fixtures of the console's browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_kit import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module."""
    with chromium() as b:
        yield b
