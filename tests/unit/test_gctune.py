"""The collector settings of long-running processes."""

from __future__ import annotations

import gc

from ironbridge.gctune import YOUNG_THRESHOLD, tune_gc


def test_tune_gc_raises_the_young_threshold_and_freezes_start_up_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        young, older, oldest = gc.get_threshold()
        assert young == YOUNG_THRESHOLD
        assert (older, oldest) == before[1:]
        assert gc.get_freeze_count() > 1000  # the modules and classes imported so far
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
