"""The ISA-18.2 / IEC 62682 alarm state machine: pure, table-driven, clock injected."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ironbridge.model import Conflict
from ironbridge.rules.definitions import Severity


class AlarmState(StrEnum):
    """Where an alarm is in its life (ISA-18.2 figure 5, plus the "normal" rest state)."""

    NORMAL = "normal"
    UNACKNOWLEDGED = "unacknowledged"
    ACKNOWLEDGED = "acknowledged"
    RTN_UNACKNOWLEDGED = "rtn_unacknowledged"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"


class AlarmAction(StrEnum):
    """What can happen to an alarm: process changes, operator actions, timers."""

    ACTIVATE = "activate"  # the process condition became abnormal
    CLEAR = "clear"  # the process condition returned to normal
    ACKNOWLEDGE = "acknowledge"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    SHELVE_EXPIRED = "shelve_expired"
    SUPPRESS = "suppress"  # suppressed by design: the rule's condition started to hold
    UNSUPPRESS = "unsuppress"  # ... and stopped
    REMOVE_FROM_SERVICE = "remove_from_service"
    RETURN_TO_SERVICE = "return_to_service"
    COMMENT = "comment"


S, A = AlarmState, AlarmAction
#: states from which an alarm is "released" back to the process condition
_RELEASE = object()

#: (state, action) -> next state; ``_RELEASE`` means "unacknowledged if the condition is
#: active, else normal" (what an alarm becomes when shelving/suppression/OOS ends).
TRANSITIONS: dict[tuple[AlarmState, AlarmAction], AlarmState | object] = {
    (S.NORMAL, A.ACTIVATE): S.UNACKNOWLEDGED,
    (S.UNACKNOWLEDGED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.UNACKNOWLEDGED, A.CLEAR): S.RTN_UNACKNOWLEDGED,
    (S.ACKNOWLEDGED, A.CLEAR): S.NORMAL,
    (S.RTN_UNACKNOWLEDGED, A.ACKNOWLEDGE): S.NORMAL,
    (S.RTN_UNACKNOWLEDGED, A.ACTIVATE): S.UNACKNOWLEDGED,
    (S.SHELVED, A.UNSHELVE): _RELEASE,
    (S.SHELVED, A.SHELVE_EXPIRED): _RELEASE,
    (S.SUPPRESSED, A.UNSUPPRESS): _RELEASE,
    (S.OUT_OF_SERVICE, A.RETURN_TO_SERVICE): _RELEASE,
}
for _s in (S.NORMAL, S.UNACKNOWLEDGED, S.ACKNOWLEDGED, S.RTN_UNACKNOWLEDGED):
    TRANSITIONS[(_s, A.SHELVE)] = S.SHELVED
    TRANSITIONS[(_s, A.SUPPRESS)] = S.SUPPRESSED
for _s in (
    S.NORMAL,
    S.UNACKNOWLEDGED,
    S.ACKNOWLEDGED,
    S.RTN_UNACKNOWLEDGED,
    S.SHELVED,
    S.SUPPRESSED,
):
    TRANSITIONS[(_s, A.REMOVE_FROM_SERVICE)] = S.OUT_OF_SERVICE

#: process changes that are recorded but do not move these states (the alarm is hidden)
HIDDEN = frozenset({S.SHELVED, S.SUPPRESSED, S.OUT_OF_SERVICE})
#: states that suppression by design may enter (a shelved alarm stays shelved until
#: its shelving ends; out of service wins over everything)
SUPPRESSIBLE = frozenset({S.NORMAL, S.UNACKNOWLEDGED, S.ACKNOWLEDGED, S.RTN_UNACKNOWLEDGED})
#: actions that hand a hidden alarm back to the operator
RELEASES = frozenset({A.UNSHELVE, A.SHELVE_EXPIRED, A.UNSUPPRESS, A.RETURN_TO_SERVICE})
#: process changes that repeat the current condition (active while active, ...)
_NO_OP = frozenset(
    {
        (S.UNACKNOWLEDGED, A.ACTIVATE),
        (S.ACKNOWLEDGED, A.ACTIVATE),
        (S.NORMAL, A.CLEAR),
        (S.RTN_UNACKNOWLEDGED, A.CLEAR),
    }
)
#: what a user may do; suppression by design is logic (the rules worker), never a user
OPERATOR_ACTIONS = frozenset({A.ACKNOWLEDGE, A.SHELVE, A.UNSHELVE, A.COMMENT})


@dataclass(frozen=True, slots=True, kw_only=True)
class Alarm:
    """One alarm of one (asset, rule): the newest occurrence and its state.

    An alarm row lives from its first activation until it returns to ``normal``; repeats
    in between update ``count`` and ``value`` instead of raising new alarms.
    """

    id: int
    tenant_id: str
    tenant_path: str
    asset_id: str
    asset_type: str
    rule_id: str
    severity: Severity
    state: AlarmState
    active: bool
    message: str
    value: float | None
    count: int
    raised_us: int
    changed_us: int
    activated_us: int
    shelved_until_us: int | None = None
    acked_by: str | None = None
    acked_us: int | None = None
    escalated: bool = False
    closed: bool = False

    @property
    def open(self) -> bool:
        """True while the alarm needs attention or is hidden but not finished."""
        return not self.closed


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """The outcome of applying one action: the new alarm and whether anything changed."""

    alarm: Alarm
    from_state: AlarmState
    changed: bool


class AlarmStateMachine:
    """Applies actions to alarms according to :data:`TRANSITIONS` (no I/O, no clock)."""

    def apply(
        self,
        alarm: Alarm,
        action: AlarmAction,
        *,
        at_us: int,
        actor: str = "system",
        value: float | None = None,
        shelve_until_us: int | None = None,
    ) -> Step:
        """Return the alarm after ``action`` at ``at_us``.

        Raises:
            Conflict: if the action is not allowed in the alarm's state (e.g.
                acknowledging an acknowledged alarm, unshelving one not shelved).
        """
        state = alarm.state
        if action is A.COMMENT:
            return Step(alarm=alarm, from_state=state, changed=True)
        if action in (A.ACTIVATE, A.CLEAR):
            active = action is A.ACTIVATE
            repeat = active and alarm.active
            if state in HIDDEN or (state, action) in _NO_OP:
                starts = state in HIDDEN and active and not alarm.active
                new = replace(
                    alarm,
                    active=active,
                    value=value if value is not None else alarm.value,
                    changed_us=at_us if active != alarm.active else alarm.changed_us,
                    count=alarm.count + 1 if starts else alarm.count,
                    activated_us=at_us if starts else alarm.activated_us,
                )
                return Step(
                    alarm=new, from_state=state, changed=active != alarm.active and not repeat
                )
        target = TRANSITIONS.get((state, action))
        if target is None:
            raise Conflict(
                f"cannot {action.value} an alarm that is {state.value.replace('_', ' ')}"
            )
        active = alarm.active
        if action is A.ACTIVATE:
            active = True
        elif action is A.CLEAR:
            active = False
        if target is _RELEASE:
            target = S.UNACKNOWLEDGED if active else S.NORMAL
        assert isinstance(target, AlarmState)
        new = replace(
            alarm,
            state=target,
            active=active,
            changed_us=at_us,
            value=value if value is not None else alarm.value,
            closed=target is S.NORMAL,
        )
        if action is A.ACTIVATE:
            new = replace(new, count=alarm.count + 1, activated_us=at_us, escalated=False)
        if action is A.ACKNOWLEDGE:
            new = replace(new, acked_by=actor, acked_us=at_us)
        if action is A.SHELVE:
            if shelve_until_us is None or shelve_until_us <= at_us:
                raise Conflict("shelving needs an expiry in the future")
            new = replace(new, shelved_until_us=shelve_until_us)
        if state is S.SHELVED:
            new = replace(new, shelved_until_us=None)
        return Step(alarm=new, from_state=state, changed=True)
