"""Alarms in SQL (repeats, shelving expiry, audit), webhook signatures and SMTP email."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from dataclasses import replace
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from harness import free_port
from ironbridge.app import smtp_config
from ironbridge.model import Principal, Role
from ironbridge.rules import (
    AlarmAction,
    AlarmState,
    AlarmStore,
    Notifier,
    Rule,
    Transition,
    parse_rule,
    validate_subscription,
    verify,
)
from ironbridge.rules.tables import metadata
from ironbridge.settings import Settings, SmtpSettings
from ironbridge.store.sql.engine import make_engine

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
    s.put_rule(ANN, _hot(severity="critical"), create=True)
    return s, clock


def _hot(**extra: object) -> Rule:
    """The threshold rule ``hot`` (temp above 1) of asset type ``t``."""
    return parse_rule(
        {
            "id": "hot",
            "kind": "threshold",
            "asset_type": "t",
            "params": {"measurement": "temp", "limit": 1},
            **extra,
        },
        tenant_id="root",
        tenant_path="/root/",
    )


def _file_store(tmp_path: Path) -> tuple[str, AlarmStore]:
    """An alarm store in an SQLite file (its URL), with asset ``a``'s ``hot`` alarm active."""
    url = f"sqlite:///{tmp_path / 'alarms.sqlite3'}"
    engine = make_engine(url)
    metadata.create_all(engine)
    s = AlarmStore(engine, Clock())
    s.put_rule(ANN, _hot(), create=True)
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    return url, s


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


def test_rules_clear_read_before_an_acknowledgement_still_counts(
    store: tuple[AlarmStore, Clock],
) -> None:
    s, _ = store
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    alarm = s.list_alarms(ANN)[0]
    s.act(ANN, alarm.id, AlarmAction.ACKNOWLEDGE)  # at the wall clock, 100 s
    _apply(s, Transition("a", "hot", 50 * S, False, 0.0))  # read at 50 s, processed now
    assert s.get_alarm(ANN, alarm.id).closed


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


def _put(s: AlarmStore, d: dict[str, object]) -> None:
    base = {"kind": "threshold", "asset_type": "t", "params": {"measurement": "temp", "limit": 1}}
    s.put_rule(ANN, parse_rule(base | d, tenant_id="root", tenant_path="/root/"), create=True)


def _trail(s: AlarmStore, alarm_id: int) -> list[tuple[str, str, str, str]]:
    return [
        (h["action"], h["from_state"], h["to_state"], h["comment"])
        for h in s.history(ANN, alarm_id)
    ]


def test_rules_suppressed_by_design_while_asset_in_maintenance(
    store: tuple[AlarmStore, Clock],
) -> None:
    s, clock = store
    _put(s, {"id": "oil", "suppress_when": {"asset_attribute": "operating_state"}})
    attrs = {"a": {"operating_state": "maintenance"}, "b": {"operating_state": "running"}}
    rules = {r.id: r for r in s.list_rules(None)}

    def lookup(asset_id: str) -> dict[str, str]:
        return attrs.get(asset_id, {})

    def apply(*trs: Transition) -> None:
        s.apply_transitions(list(trs), rules, lambda a: ("root", "/root/", "t"), lookup)

    apply(Transition("a", "oil", 1 * S, True, 5.0), Transition("b", "oil", 1 * S, True, 5.0))
    by_asset = {a.asset_id: a for a in s.list_alarms(ANN)}
    assert by_asset["a"].state is AlarmState.SUPPRESSED
    assert by_asset["a"].active
    assert by_asset["b"].state is AlarmState.UNACKNOWLEDGED
    assert s.list_alarms(ANN, state=["suppressed"]) == [by_asset["a"]]
    # nothing changes while the condition holds
    assert s.apply_design_suppression(rules, lookup, clock.now) == []
    # maintenance ends while the condition is still active: the operator gets the alarm
    attrs["a"] = {"operating_state": "running"}
    attrs["b"] = {"operating_state": "out_of_operation"}
    changed = s.apply_design_suppression(rules, lookup, clock.now)
    got = {(a.asset_id, a.state, act) for a, act in changed}
    assert got == {
        ("a", AlarmState.UNACKNOWLEDGED, AlarmAction.UNSUPPRESS),
        ("b", AlarmState.SUPPRESSED, AlarmAction.SUPPRESS),
    }
    assert _trail(s, by_asset["a"].id) == [
        ("suppress", "normal", "suppressed", "asset operating_state is maintenance"),
        ("activate", "suppressed", "suppressed", ""),
        ("unsuppress", "suppressed", "unacknowledged", "suppression condition ended"),
    ]
    # a suppressed alarm whose condition clears closes when the suppression ends
    apply(Transition("b", "oil", 2 * S, False, 0.0))
    assert s.get_alarm(ANN, by_asset["b"].id).state is AlarmState.SUPPRESSED
    del attrs["b"]
    s.apply_design_suppression(rules, lookup, clock.now)
    assert s.get_alarm(ANN, by_asset["b"].id).closed


def test_rules_suppressed_by_design_while_parent_alarm_active(
    store: tuple[AlarmStore, Clock],
) -> None:
    s, clock = store
    _put(s, {"id": "offline"})
    _put(s, {"id": "oil", "suppress_when": {"parent_rule": "offline"}})
    rules = {r.id: r for r in s.list_rules(None)}

    def apply(*trs: Transition) -> None:
        s.apply_transitions(list(trs), rules, lambda a: ("root", "/root/", "t"))

    # the child comes first in the batch; the parent is applied first all the same
    apply(Transition("a", "oil", 1 * S, True, 5.0), Transition("a", "offline", 1 * S, True, 1))
    states = {a.rule_id: a.state for a in s.list_alarms(ANN)}
    assert states == {"offline": AlarmState.UNACKNOWLEDGED, "oil": AlarmState.SUPPRESSED}
    apply(Transition("a", "offline", 2 * S, False, 0.0))
    changed = s.apply_design_suppression(rules, lambda a: {}, clock.now)
    assert [(a.rule_id, a.state) for a, _ in changed] == [("oil", AlarmState.UNACKNOWLEDGED)]
    # the parent starts again while the child is acknowledged: suppressed again
    oil = next(a for a in s.list_alarms(ANN) if a.rule_id == "oil")
    s.act(ANN, oil.id, AlarmAction.ACKNOWLEDGE)
    apply(Transition("a", "offline", 3 * S, True, 1.0))
    changed = s.apply_design_suppression(rules, lambda a: {}, clock.now)
    assert [(a.rule_id, a.state) for a, _ in changed] == [("oil", AlarmState.SUPPRESSED)]
    assert _trail(s, oil.id)[-1] == (
        "suppress",
        "acknowledged",
        "suppressed",
        "parent alarm offline is active",
    )


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


class _SmtpServer:
    """A local aiosmtpd server that wants a login and keeps what it receives."""

    def __init__(self, user: str, password: str) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.got: list[EmailMessage] = []
        self.port = free_port()

        def authenticator(
            server: object, session: object, envelope: object, mechanism: str, data: object
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                user.encode(),
                password.encode(),
            )
            return AuthResult(success=ok)

        outer = self

        class Handler:
            async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
                outer.got.append(message_from_bytes(envelope.content, policy=default))  # type: ignore[arg-type]
                return "250 OK"

        self._ctl = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=False,
        )

    def __enter__(self) -> _SmtpServer:
        self._ctl.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._ctl.stop()


# the local test server takes a login without TLS; a real relay would use starttls/ssl
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_rules_email_reaches_local_smtp_configured_by_settings(
    store: tuple[AlarmStore, Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    s, _ = store
    _apply(s, Transition("a", "hot", 1 * S, True, 5.0))
    alarm = s.list_alarms(ANN)[0]
    with _SmtpServer("alarms", "pa55-w0rd") as server:
        for key, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "FROM_ADDRESS": "plant-alarms@example.com",
            "USER": "alarms",
            "PASSWORD": "pa55-w0rd",
        }.items():
            monkeypatch.setenv(f"IRONBRIDGE_SMTP__{key}", value)
        settings = Settings()
        assert "pa55-w0rd" not in repr(settings)
        config = smtp_config(settings)
        assert "pa55-w0rd" not in repr(config)
        n = Notifier(config)
        assert asyncio.run(n.send(_sub("email", "ops@example.com"), alarm, "start"))
        # a wrong password is a failed delivery, not an exception
        bad = Notifier(replace(config, password="wrong", timeout_s=1.0))
        assert not asyncio.run(bad.send(_sub("email", "ops@example.com"), alarm, "start"))
        assert bad.failed == 1
    assert len(server.got) == 1
    msg = server.got[0]
    assert msg["From"] == "plant-alarms@example.com"
    assert msg["To"] == "ops@example.com"
    assert "critical" in str(msg["Subject"])
    assert json.loads(msg.get_content())["alarm"]["id"] == alarm.id


def test_rules_smtp_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="tls"):
        Settings(smtp=SmtpSettings(tls="yes"))  # type: ignore[arg-type]


def test_rules_operator_action_waits_for_a_concurrent_writer(tmp_path: Path) -> None:
    """SQLite: an acknowledgement that reads, then writes, must queue behind the rules
    worker's write instead of failing with "database is locked" (write transactions
    begin IMMEDIATE)."""
    _, s = _file_store(tmp_path)
    alarm = s.list_alarms(ANN)[0]
    other = sqlite3.connect(
        tmp_path / "alarms.sqlite3", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN IMMEDIATE")  # the worker's write, still open
    other.execute("UPDATE alarms SET value = 7.0")
    done = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    done.start()
    try:
        acked = s.act(ANN, alarm.id, AlarmAction.ACKNOWLEDGE)
    finally:
        done.join()
        other.close()
    assert acked.state is AlarmState.ACKNOWLEDGED
    assert s.get_alarm(ANN, alarm.id).value == 7.0


def test_rules_escalation_is_claimed_by_one_process_only(tmp_path: Path) -> None:
    """Two API processes (two engines on one database) both find the alarm due; exactly
    one claims its not-acknowledged escalation, and it is not offered again."""
    url, a = _file_store(tmp_path)
    b = AlarmStore(make_engine(url), Clock())
    (due_a,) = a.unacknowledged()
    (due_b,) = b.unacknowledged()
    assert due_a.id == due_b.id
    assert [a.claim_escalation(due_a.id), b.claim_escalation(due_b.id)] == [True, False]
    assert a.unacknowledged() == b.unacknowledged() == []
