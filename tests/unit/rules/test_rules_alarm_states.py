"""The ISA-18.2 state machine, table-driven."""

from __future__ import annotations

import pytest

from ironbridge.model import Conflict
from ironbridge.rules import Alarm, AlarmAction, AlarmState, AlarmStateMachine, Severity

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
    (S.ACKNOWLEDGED, True, A.SUPPRESS, S.SUPPRESSED, True),
    (S.SUPPRESSED, True, A.UNSUPPRESS, S.UNACKNOWLEDGED, True),
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
    [(S.ACKNOWLEDGED, A.ACKNOWLEDGE), (S.NORMAL, A.UNSHELVE), (S.OUT_OF_SERVICE, A.SHELVE)],
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
