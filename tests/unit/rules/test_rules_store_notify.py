"""Alarms in SQL (repeats, shelving expiry, audit), webhook signatures and SMTP email."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import sqlalchemy as sa

from harness import free_port
from ironbridge.model import Principal, Role
from ironbridge.rules import (
    AlarmAction,
    AlarmState,
    AlarmStore,
    Notifier,
    SmtpConfig,
    Transition,
    parse_rule,
    validate_subscription,
    verify,
)
from ironbridge.rules.tables import metadata

S = 1_000_000
ANN = Principal(
    user_id=1, username="ann", tenant_id="root", tenant_path="/root/", role=Role.OPERATOR
)


class Clock:
    def __init__(self) -> None:
        self.now = 100 * S

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def store() -> tuple[AlarmStore, Clock]:
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    clock = Clock()
    s = AlarmStore(engine, clock)
    rule = parse_rule(
        {
            "id": "hot",
            "kind": "threshold",
            "asset_type": "t",
            "severity": "critical",
            "params": {"measurement": "temp", "limit": 1},
        },
        tenant_id="root",
        tenant_path="/root/",
    )
    s.put_rule(ANN, rule, create=True)
    return s, clock


def _apply(s: AlarmStore, *trs: Transition) -> None:
    s.apply_transitions(
        list(trs), {r.id: r for r in s.list_rules(None)}, lambda a: ("root", "/root/", "t")
    )


def test_rules_flood_updates_one_alarm(store: tuple[AlarmStore, Clock]) -> None:
    s, _ = store
    for i in range(200):
        _apply(
            s,
            Transition("a", "hot", 2 * i * S, True, 5.0),
            Transition("a", "hot", (2 * i + 1) * S, False, 0.0),
        )
    alarms = s.list_alarms(ANN)
    assert len(alarms) == 1
    assert alarms[0].count == 200
    assert alarms[0].state is AlarmState.RTN_UNACKNOWLEDGED
    # redelivered input changes nothing
    _apply(s, Transition("a", "hot", 0, True, 5.0))
    assert s.list_alarms(ANN)[0].count == 200


def test_rules_shelving_expires_and_history_is_audited(store: tuple[AlarmStore, Clock]) -> None:
    s, clock = store
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    alarm = s.list_alarms(ANN)[0]
    s.act(ANN, alarm.id, AlarmAction.COMMENT, comment="looking")
    s.act(ANN, alarm.id, AlarmAction.SHELVE, shelve_for_s=60)
    assert s.expire_shelves(clock.now + 59 * S) == []
    expired = s.expire_shelves(clock.now + 61 * S)
    assert [a.state for a in expired] == [AlarmState.UNACKNOWLEDGED]
    s.act(ANN, alarm.id, AlarmAction.ACKNOWLEDGE)
    trail = [(h["actor"], h["action"], h["to_state"]) for h in s.history(ANN, alarm.id)]
    assert trail == [
        ("system", "activate", "unacknowledged"),
        ("ann", "comment", "unacknowledged"),
        ("ann", "shelve", "shelved"),
        ("system", "shelve_expired", "unacknowledged"),
        ("ann", "acknowledge", "acknowledged"),
    ]


def test_rules_out_of_service_hides_alarms(store: tuple[AlarmStore, Clock]) -> None:
    s, _ = store
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    s.set_in_service(ANN, "hot", False)
    assert s.list_alarms(ANN)[0].state is AlarmState.OUT_OF_SERVICE
    s.set_in_service(ANN, "hot", True)
    assert s.list_alarms(ANN)[0].state is AlarmState.UNACKNOWLEDGED


def _sub(kind: str, target: str) -> dict[str, object]:
    sub = validate_subscription(
        {
            "kind": kind,
            "target": target,
            "secret": "s" * 20,
            "events": ["start"],
            "min_severity": "major",
        }
    )
    return {"id": 1, "tenant_path": "/root/", **sub}


def test_rules_webhook_is_signed_and_retried(store: tuple[AlarmStore, Clock]) -> None:
    s, _ = store
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    alarm = s.list_alarms(ANN)[0]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503 if len(seen) == 1 else 204)

    n = Notifier(transport=httpx.MockTransport(handler), backoff_s=0.01)
    sub = _sub("webhook", "http://receiver.example/hook")
    assert n.wants(sub, alarm, "start")
    assert asyncio.run(n.send(sub, alarm, "start"))
    assert len(seen) == 2
    req = seen[-1]
    assert verify(
        "s" * 20,
        req.headers["X-Ironbridge-Timestamp"],
        req.content,
        req.headers["X-Ironbridge-Signature"],
    )
    assert not verify(
        "wrong-secret-xxxxx",
        req.headers["X-Ironbridge-Timestamp"],
        req.content,
        req.headers["X-Ironbridge-Signature"],
    )
    assert json.loads(req.content)["alarm"]["rule_id"] == "hot"


def test_rules_email_reaches_local_smtp(store: tuple[AlarmStore, Clock]) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    got: list[object] = []

    class Keep(Message):  # type: ignore[misc]
        def handle_message(self, message: object) -> None:
            got.append(message)

    port = free_port()
    ctl = Controller(Keep(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        s, _ = store
        _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
        alarm = s.list_alarms(ANN)[0]
        n = Notifier(SmtpConfig(host="127.0.0.1", port=port))
        assert asyncio.run(n.send(_sub("email", "ops@example.com"), alarm, "start"))
    finally:
        ctl.stop()
    assert len(got) == 1
    assert "critical" in str(got[0]["Subject"])  # type: ignore[index]
    assert got[0]["To"] == "ops@example.com"  # type: ignore[index]
