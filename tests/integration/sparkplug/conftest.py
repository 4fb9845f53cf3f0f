"""One platform process shared by the Sparkplug and edge agent tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import PlatformProcess


@pytest.fixture(scope="package")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("spb")) / "data").start()
    yield p
    assert p.stop() == 0, p.log()
