"""Unacknowledged-alarm escalation with several API processes on one PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from ironbridge.model import Principal, Role
from ironbridge.rules import AlarmStore, Transition, parse_rule
from ironbridge.rules.tables import metadata

pytestmark = [pytest.mark.integration]

S = 1_000_000
ANN = Principal(
    user_id=1, username="ann", tenant_id="root", tenant_path="/root/", role=Role.OPERATOR
)


def test_each_due_alarm_is_escalated_by_exactly_one_process(pg_url: str) -> None:
    url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    engines = [sa.create_engine(url) for _ in range(4)]
    try:
        _race(engines)
    finally:
        for e in engines:
            e.dispose()


def _race(engines: list[sa.Engine]) -> None:
    metadata.create_all(engines[0])
    stores = [AlarmStore(e, lambda: 100 * S) for e in engines]
    rule = parse_rule(
        {
            "id": "hot",
            "kind": "threshold",
            "asset_type": "t",
            "params": {"measurement": "t", "limit": 1},
        },
        tenant_id="root",
        tenant_path="/root/",
    )
    stores[0].put_rule(ANN, rule, create=True)
    stores[0].apply_transitions(
        [Transition(f"asset-{i}", "hot", 1 * S, True, 5.0) for i in range(50)],
        {"hot": rule},
        lambda a: ("root", "/root/", "t"),
    )
    due = [alarm.id for alarm in stores[0].unacknowledged()]
    assert len(due) == 50

    def claims(store: AlarmStore) -> list[int]:
        return [i for i in due if store.claim_escalation(i)]

    # four processes race over the same 50 due alarms
    with ThreadPoolExecutor(4) as pool:
        won = list(pool.map(claims, stores))
    assert sorted(i for w in won for i in w) == sorted(due)  # each once, none twice
    assert stores[1].unacknowledged() == []
