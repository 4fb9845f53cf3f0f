"""The ingest rate shown in the terminal and the API falls to 0 when commits stop."""

from __future__ import annotations

import pytest

from ironbridge.ingest import worker as worker_module
from ironbridge.ingest.worker import IngestStats


def test_rate_is_zero_once_commits_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(worker_module.time, "monotonic", lambda: now[0])
    st = IngestStats()
    for _ in range(5):  # 1 000 points a second for 4 s
        st.points += 1000
        st.record(1000)
        now[0] += 1.0
    assert st.rate() == pytest.approx(1000.0)
    now[0] += 10.0  # the worker is stuck: no commit for 10 s
    assert st.rate() == 0.0
