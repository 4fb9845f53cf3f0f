"""The ISA-18.2 state machine, table-driven."""

from __future__ import annotations

import pytest

from ironbridge.model import Conflict
from ironbridge.rules import (
    TRANSITIONS,
    Alarm,
    AlarmAction,
    AlarmState,
    AlarmStateMachine,
    Severity,
)
from ironbridge.rules.alarms import OPERATOR_ACTIONS

S, A = AlarmState, AlarmAction


def _alarm(state: AlarmState, active: bool) -> Alarm:
    return Alarm(
        id=1,
        tenant_id="root",
        tenant_path="/root/",
        asset_id="a",
        asset_type="t",
        rule_id="r",
        severity=Severity.MAJOR,
        state=state,
        active=active,
        message="m",
        value=None,
        count=1,
        raised_us=0,
        changed_us=0,
        activated_us=0,
    )


CASES = [
    (S.NORMAL, False, A.ACTIVATE, S.UNACKNOWLEDGED, True),
    (S.UNACKNOWLEDGED, True, A.ACKNOWLEDGE, S.ACKNOWLEDGED, True),
    (S.UNACKNOWLEDGED, True, A.CLEAR, S.RTN_UNACKNOWLEDGED, False),
    (S.ACKNOWLEDGED, True, A.CLEAR, S.NORMAL, False),
    (S.RTN_UNACKNOWLEDGED, False, A.ACKNOWLEDGE, S.NORMAL, False),
    (S.RTN_UNACKNOWLEDGED, False, A.ACTIVATE, S.UNACKNOWLEDGED, True),
    (S.UNACKNOWLEDGED, True, A.SHELVE, S.SHELVED, True),
    (S.SHELVED, True, A.UNSHELVE, S.UNACKNOWLEDGED, True),
    (S.SHELVED, False, A.SHELVE_EXPIRED, S.NORMAL, False),
    (S.SHELVED, True, A.CLEAR, S.SHELVED, False),
    # suppressed by design: entered from every operator-visible state, hides process
    # changes, and hands the alarm back (active: unacknowledged, else normal) when it ends
    (S.NORMAL, False, A.SUPPRESS, S.SUPPRESSED, False),
    (S.UNACKNOWLEDGED, True, A.SUPPRESS, S.SUPPRESSED, True),
    (S.ACKNOWLEDGED, True, A.SUPPRESS, S.SUPPRESSED, True),
    (S.RTN_UNACKNOWLEDGED, False, A.SUPPRESS, S.SUPPRESSED, False),
    (S.SUPPRESSED, False, A.ACTIVATE, S.SUPPRESSED, True),
    (S.SUPPRESSED, True, A.CLEAR, S.SUPPRESSED, False),
    (S.SUPPRESSED, True, A.UNSUPPRESS, S.UNACKNOWLEDGED, True),
    (S.SUPPRESSED, False, A.UNSUPPRESS, S.NORMAL, False),
    (S.SUPPRESSED, True, A.REMOVE_FROM_SERVICE, S.OUT_OF_SERVICE, True),
    (S.ACKNOWLEDGED, True, A.REMOVE_FROM_SERVICE, S.OUT_OF_SERVICE, True),
    (S.OUT_OF_SERVICE, True, A.ACTIVATE, S.OUT_OF_SERVICE, True),
    (S.OUT_OF_SERVICE, False, A.RETURN_TO_SERVICE, S.NORMAL, False),
    (S.OUT_OF_SERVICE, True, A.RETURN_TO_SERVICE, S.UNACKNOWLEDGED, True),
    (S.UNACKNOWLEDGED, True, A.ACTIVATE, S.UNACKNOWLEDGED, True),
]


@pytest.mark.parametrize(("state", "active", "action", "want", "want_active"), CASES)
def test_rules_transition_table(
    state: AlarmState, active: bool, action: AlarmAction, want: AlarmState, want_active: bool
) -> None:
    step = AlarmStateMachine().apply(
        _alarm(state, active), action, at_us=10, actor="ann", shelve_until_us=100
    )
    assert step.alarm.state is want
    assert step.alarm.active is want_active
    assert step.alarm.closed is (want is S.NORMAL)


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.ACKNOWLEDGED, A.ACKNOWLEDGE),
        (S.NORMAL, A.UNSHELVE),
        (S.OUT_OF_SERVICE, A.SHELVE),
        (S.SUPPRESSED, A.ACKNOWLEDGE),
        (S.SUPPRESSED, A.SHELVE),
        (S.SUPPRESSED, A.SUPPRESS),
        (S.SHELVED, A.SUPPRESS),
        (S.OUT_OF_SERVICE, A.SUPPRESS),
        (S.UNACKNOWLEDGED, A.UNSUPPRESS),
    ],
)
def test_rules_forbidden_transitions(state: AlarmState, action: AlarmAction) -> None:
    with pytest.raises(Conflict):
        AlarmStateMachine().apply(_alarm(state, True), action, at_us=1, shelve_until_us=5)


def test_rules_ack_records_who_and_repeat_counts() -> None:
    m = AlarmStateMachine()
    a = m.apply(_alarm(S.UNACKNOWLEDGED, True), A.CLEAR, at_us=5).alarm
    a = m.apply(a, A.ACTIVATE, at_us=6).alarm
    assert a.count == 2
    a = m.apply(a, A.ACKNOWLEDGE, at_us=7, actor="ann").alarm
    assert (a.acked_by, a.acked_us) == ("ann", 7)
    with pytest.raises(Conflict):
        m.apply(a, A.SHELVE, at_us=8, shelve_until_us=8)


def test_rules_every_state_is_reachable_and_left() -> None:
    targets = {v for v in TRANSITIONS.values() if isinstance(v, AlarmState)}
    sources = {state for state, _ in TRANSITIONS}
    assert set(AlarmState) - {S.NORMAL} <= targets | {S.RTN_UNACKNOWLEDGED}
    assert sources == set(AlarmState)


def test_rules_activation_while_hidden_counts_but_stays_hidden() -> None:
    m = AlarmStateMachine()
    a = m.apply(_alarm(S.SUPPRESSED, False), A.ACTIVATE, at_us=9, value=3.0).alarm
    assert (a.state, a.active, a.count, a.activated_us, a.value) == (S.SUPPRESSED, True, 2, 9, 3.0)
    assert OPERATOR_ACTIONS.isdisjoint({A.SUPPRESS, A.UNSUPPRESS})
