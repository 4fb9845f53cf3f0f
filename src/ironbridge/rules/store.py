"""Persistence of rules, alarms, their audit trail, subscriptions and engine state (SQL)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import sqlalchemy as sa

from ironbridge.model import Conflict, InvalidInput, NotFound, Principal, now_us
from ironbridge.rules import tables as t
from ironbridge.rules.alarms import (
    SUPPRESSIBLE,
    Alarm,
    AlarmAction,
    AlarmState,
    AlarmStateMachine,
    Step,
)
from ironbridge.rules.definitions import Rule, Severity, parse_rule
from ironbridge.rules.engine import Transition
from ironbridge.rules.suppression import suppression_reason

#: execution option for a write transaction (``BEGIN IMMEDIATE`` on SQLite; see
#: ironbridge.store.sql.engine): a deferred BEGIN that reads first and writes later
#: fails at once with "database is locked" when another writer committed in between
_WRITE = "ironbridge_write"

AssetLookup = Callable[[str], tuple[str, str, str]]  # asset id -> (tenant id, path, type)
AttributeLookup = Callable[[str], Mapping[str, Any]]  # asset id -> its attributes


def _no_attributes(asset_id: str) -> Mapping[str, Any]:
    del asset_id
    return {}


_MACHINE = AlarmStateMachine()


def _visible(col: sa.ColumnElement[str], who: Principal | None) -> sa.ColumnElement[bool]:
    return sa.true() if who is None else col.startswith(who.tenant_path, autoescape=True)


def _alarm(row: Any) -> Alarm:
    d = dict(row)
    d["severity"], d["state"] = Severity(d["severity"]), AlarmState(d["state"])
    return Alarm(**d)


class AlarmStore:
    """Rules, alarms and the audit trail in the registry database (one engine, own tables)."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], int] = now_us) -> None:
        self.engine = engine
        self._clock = clock

    @contextlib.contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    # -- rules -------------------------------------------------------------------------
    def put_rule(self, who: Principal | None, rule: Rule, *, create: bool) -> Rule:
        """Create (``create``) or replace a rule."""
        with self._write() as c:
            row = c.execute(sa.select(t.rules).where(t.rules.c.id == rule.id)).mappings().first()
            if create and row is not None:
                raise Conflict(f"rule {rule.id!r} exists")
            if not create and (
                row is None or (who is not None and not who.can_see(row["tenant_path"]))
            ):
                raise NotFound("rule", rule.id)
            values = {
                "tenant_id": rule.tenant_id,
                "tenant_path": rule.tenant_path,
                "definition": rule.to_dict(),
                "version": rule.version,
                "updated_us": self._clock(),
            }
            if row is None:
                c.execute(t.rules.insert().values(id=rule.id, **values))
            else:
                c.execute(t.rules.update().where(t.rules.c.id == rule.id).values(**values))
        return rule

    def get_rule(self, who: Principal | None, rule_id: str) -> Rule:
        """Return a visible rule."""
        with self.engine.connect() as c:
            row = (
                c.execute(
                    sa.select(t.rules).where(
                        t.rules.c.id == rule_id, _visible(t.rules.c.tenant_path, who)
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound("rule", rule_id)
        return self._rule(row)

    @staticmethod
    def _rule(row: Any) -> Rule:
        return parse_rule(
            row["definition"], tenant_id=row["tenant_id"], tenant_path=row["tenant_path"]
        )

    def list_rules(self, who: Principal | None) -> list[Rule]:
        """Return the visible rules, ordered by id."""
        with self.engine.connect() as c:
            rows = (
                c.execute(
                    sa.select(t.rules)
                    .where(_visible(t.rules.c.tenant_path, who))
                    .order_by(t.rules.c.id)
                )
                .mappings()
                .all()
            )
        return [self._rule(r) for r in rows]

    def rules_version(self) -> tuple[int, int]:
        """(count, newest update) of all rules: changes when any rule changes."""
        with self.engine.connect() as c:
            n, newest = c.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.max(t.rules.c.updated_us), 0))
            ).one()
        return int(n), int(newest)

    def delete_rule(self, who: Principal | None, rule_id: str) -> None:
        """Delete a rule; its open alarms are closed with an audit entry."""
        self.get_rule(who, rule_id)
        with self._write() as c:
            c.execute(t.rules.delete().where(t.rules.c.id == rule_id))
            c.execute(
                t.alarms.update()
                .where(t.alarms.c.rule_id == rule_id, t.alarms.c.closed.is_(False))
                .values(closed=True, state=AlarmState.NORMAL.value)
            )

    def set_in_service(self, who: Principal, rule_id: str, in_service: bool) -> Rule:
        """Put a rule out of service (its alarms too) or back in service."""
        rule = self.get_rule(who, rule_id)
        if rule.in_service == in_service:
            return rule
        d = rule.to_dict() | {"in_service": in_service, "version": rule.version + 1}
        new = parse_rule(d, tenant_id=rule.tenant_id, tenant_path=rule.tenant_path)
        self.put_rule(who, new, create=False)
        action = AlarmAction.RETURN_TO_SERVICE if in_service else AlarmAction.REMOVE_FROM_SERVICE
        with self._write() as c:
            rows = (
                c.execute(
                    sa.select(t.alarms).where(
                        t.alarms.c.rule_id == rule_id, t.alarms.c.closed.is_(False)
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                alarm = _alarm(row)
                step = _MACHINE.apply(alarm, action, at_us=self._clock(), actor=who.username)
                self._save(c, step, action, who.username, "")
        return new

    # -- alarms from the engine ---------------------------------------------------------
    def apply_transitions(
        self,
        transitions: Sequence[Transition],
        rules: Mapping[str, Rule],
        assets: AssetLookup,
        attributes: AttributeLookup = _no_attributes,
    ) -> list[tuple[Alarm, AlarmAction]]:
        """Turn condition changes into alarm changes in one transaction.

        Idempotent for redelivered input: an activation not newer than the alarm's last
        activation, or a clear older than it, is ignored. A new alarm whose rule is
        suppressed by design for the asset (``attributes`` gives the asset's attributes)
        starts suppressed. Returns the alarms that changed, with the action.
        """
        changed: list[tuple[Alarm, AlarmAction]] = []
        if not transitions:
            return changed

        def parent_first(tr: Transition) -> bool:
            rule = rules.get(tr.rule_id)
            return rule is not None and "parent_rule" in rule.suppress_when

        with self._write() as c:
            current = self._open_alarms(c, {(tr.asset_id, tr.rule_id) for tr in transitions})
            for tr in sorted(transitions, key=parent_first):
                rule = rules.get(tr.rule_id)
                if rule is None:
                    continue
                key = (tr.asset_id, tr.rule_id)
                found = current.get(key)
                action = AlarmAction.ACTIVATE if tr.active else AlarmAction.CLEAR
                new = found is None
                if found is None:
                    if not tr.active:
                        continue
                    tenant_id, path, type_name = assets(tr.asset_id)
                    state = AlarmState.NORMAL if rule.in_service else AlarmState.OUT_OF_SERVICE
                    alarm = Alarm(
                        id=0,
                        tenant_id=tenant_id,
                        tenant_path=path,
                        asset_id=tr.asset_id,
                        asset_type=type_name,
                        rule_id=rule.id,
                        severity=rule.severity,
                        state=state,
                        active=False,
                        message=tr.message or rule.message or rule.name,
                        value=tr.value,
                        count=0,
                        raised_us=tr.ts_us,
                        changed_us=tr.ts_us,
                        activated_us=tr.ts_us,
                    )
                    if state is AlarmState.OUT_OF_SERVICE:
                        continue
                    reason = self._reason(c, rule, tr.asset_id, attributes)
                    if reason is not None:
                        step = _MACHINE.apply(alarm, AlarmAction.SUPPRESS, at_us=tr.ts_us)
                        alarm = self._save(c, step, AlarmAction.SUPPRESS, "system", reason)
                else:
                    alarm = found
                    # redelivered input is stale against the last activation (reading
                    # time); operator actions stamp changed_us with the wall clock, so a
                    # clear read just before an acknowledgement must still count
                    if tr.ts_us < alarm.activated_us or (
                        tr.active and tr.ts_us <= alarm.activated_us
                    ):
                        continue
                if tr.message and tr.active:
                    alarm = replace(alarm, message=tr.message[:500])
                step = _MACHINE.apply(alarm, action, at_us=tr.ts_us, value=tr.value)
                if step.changed or new:
                    saved = self._save(c, step, action, "system", "", value=tr.value)
                    changed.append((saved, action))
                elif step.alarm != alarm:
                    saved = step.alarm
                    c.execute(
                        t.alarms.update()
                        .where(t.alarms.c.id == alarm.id)
                        .values(
                            active=saved.active,
                            value=saved.value,
                            message=saved.message,
                        )
                    )
                else:
                    continue
                if saved.closed:
                    current.pop(key, None)
                else:
                    current[key] = saved
        return changed

    @staticmethod
    def _open_alarms(c: sa.Connection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], Alarm]:
        """The open alarms of these (asset, rule) pairs, in a few queries (not one each)."""
        out: dict[tuple[str, str], Alarm] = {}
        ordered = sorted(keys)
        for i in range(0, len(ordered), 400):
            chunk = ordered[i : i + 400]
            q = sa.select(t.alarms).where(
                t.alarms.c.closed.is_(False),
                t.alarms.c.asset_id.in_(sorted({a for a, _ in chunk})),
                t.alarms.c.rule_id.in_(sorted({r for _, r in chunk})),
            )
            for row in c.execute(q).mappings():
                alarm = _alarm(row)
                if (alarm.asset_id, alarm.rule_id) in keys:
                    out[alarm.asset_id, alarm.rule_id] = alarm
        return out

    @staticmethod
    def _reason(
        c: sa.Connection, rule: Rule, asset_id: str, attributes: AttributeLookup
    ) -> str | None:
        sw = rule.suppress_when
        if not sw:
            return None
        parent_active = False
        if "parent_rule" in sw:
            parent_active = (
                c.execute(
                    sa.select(t.alarms.c.id).where(
                        t.alarms.c.asset_id == asset_id,
                        t.alarms.c.rule_id == sw["parent_rule"],
                        t.alarms.c.closed.is_(False),
                        t.alarms.c.active.is_(True),
                    )
                ).first()
                is not None
            )
        attrs = attributes(asset_id) if "asset_attribute" in sw else {}
        return suppression_reason(sw, attributes=attrs, parent_active=parent_active)

    def apply_design_suppression(
        self, rules: Mapping[str, Rule], attributes: AttributeLookup, now: int
    ) -> list[tuple[Alarm, AlarmAction]]:
        """Enter or leave "suppressed by design" for open alarms as their conditions say.

        An alarm whose rule's ``suppress_when`` holds is suppressed; a suppressed alarm
        whose condition ended (or whose rule lost it) is released: unacknowledged if
        still active, else normal. Both are audited system actions with the reason.
        """
        with_design = [rid for rid, r in rules.items() if r.suppress_when]
        changed: list[tuple[Alarm, AlarmAction]] = []
        with self._write() as c:
            rows = (
                c.execute(
                    sa.select(t.alarms).where(
                        t.alarms.c.closed.is_(False),
                        sa.or_(
                            t.alarms.c.rule_id.in_(with_design),
                            t.alarms.c.state == AlarmState.SUPPRESSED.value,
                        ),
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                alarm = _alarm(row)
                rule = rules.get(alarm.rule_id)
                reason = None if rule is None else self._reason(c, rule, alarm.asset_id, attributes)
                if reason is not None and alarm.state in SUPPRESSIBLE:
                    action, comment = AlarmAction.SUPPRESS, reason
                elif reason is None and alarm.state is AlarmState.SUPPRESSED:
                    action, comment = AlarmAction.UNSUPPRESS, "suppression condition ended"
                else:
                    continue
                step = _MACHINE.apply(alarm, action, at_us=now)
                changed.append((self._save(c, step, action, "system", comment, at_us=now), action))
        return changed

    def _save(
        self,
        c: sa.Connection,
        step: Step,
        action: AlarmAction,
        actor: str,
        comment: str,
        value: float | None = None,
        at_us: int | None = None,
    ) -> Alarm:
        a = step.alarm
        values = asdict(a)
        values.pop("id")
        values["severity"], values["state"] = a.severity.value, a.state.value
        if a.id == 0:
            pk = c.execute(t.alarms.insert().values(**values)).inserted_primary_key
            alarm_id = int(pk[0])  # type: ignore[index]
            a = Alarm(**{**asdict(a), "id": alarm_id})
        else:
            c.execute(t.alarms.update().where(t.alarms.c.id == a.id).values(**values))
        c.execute(
            t.alarm_events.insert().values(
                alarm_id=a.id,
                tenant_id=a.tenant_id,
                tenant_path=a.tenant_path,
                asset_id=a.asset_id,
                rule_id=a.rule_id,
                ts_us=at_us if at_us is not None else a.changed_us,
                actor=actor,
                action=action.value,
                from_state=step.from_state.value,
                to_state=a.state.value,
                comment=comment,
                value=value,
            )
        )
        return a

    # -- operator actions --------------------------------------------------------------
    def act(
        self,
        who: Principal,
        alarm_id: int,
        action: AlarmAction,
        *,
        comment: str = "",
        shelve_for_s: float | None = None,
    ) -> Alarm:
        """Acknowledge, comment, shelve (with expiry) or unshelve an alarm; audited."""
        now = self._clock()
        until = None
        if action is AlarmAction.SHELVE:
            if shelve_for_s is None or shelve_for_s <= 0:
                raise InvalidInput("duration_s", "shelving needs a positive duration")
            until = now + int(shelve_for_s * 1_000_000)
        if action is AlarmAction.COMMENT and not comment.strip():
            raise InvalidInput("comment", "must not be empty")
        with self._write() as c:
            alarm = self._get(c, who, alarm_id)
            step = _MACHINE.apply(
                alarm, action, at_us=now, actor=who.username, shelve_until_us=until
            )
            return self._save(c, step, action, who.username, comment, at_us=now)

    def _get(self, c: sa.Connection, who: Principal | None, alarm_id: int) -> Alarm:
        row = (
            c.execute(
                sa.select(t.alarms).where(
                    t.alarms.c.id == alarm_id, _visible(t.alarms.c.tenant_path, who)
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound("alarm", str(alarm_id))
        return _alarm(row)

    def get_alarm(self, who: Principal | None, alarm_id: int) -> Alarm:
        """Return a visible alarm."""
        with self.engine.connect() as c:
            return self._get(c, who, alarm_id)

    def expire_shelves(self, now: int) -> list[Alarm]:
        """Unshelve alarms whose shelving expired (an audited system action)."""
        out = []
        with self._write() as c:
            rows = (
                c.execute(
                    sa.select(t.alarms).where(
                        t.alarms.c.state == AlarmState.SHELVED.value,
                        t.alarms.c.shelved_until_us <= now,
                    )
                )
                .mappings()
                .all()
            )
            for row in rows:
                step = _MACHINE.apply(_alarm(row), AlarmAction.SHELVE_EXPIRED, at_us=now)
                out.append(self._save(c, step, AlarmAction.SHELVE_EXPIRED, "system", "", at_us=now))
        return out

    def claim_escalation(self, alarm_id: int) -> bool:
        """Take the not-acknowledged escalation of an alarm; True for exactly one caller.

        A compare-and-set on the row: with several API processes watching the same
        alarms, the one whose update flips ``escalated`` sends; the others see it set.
        """
        with self._write() as c:
            done = c.execute(
                t.alarms.update()
                .where(t.alarms.c.id == alarm_id, t.alarms.c.escalated.is_(False))
                .values(escalated=True)
            )
        return bool(done.rowcount == 1)

    def list_alarms(
        self,
        who: Principal | None,
        *,
        state: Sequence[str] = (),
        severity: Sequence[str] = (),
        asset_id: str | None = None,
        asset_type: str | None = None,
        rule_id: str | None = None,
        since_us: int | None = None,
        until_us: int | None = None,
        open_only: bool = True,
        limit: int = 500,
    ) -> list[Alarm]:
        """Return alarms, newest change first, filtered."""
        q = sa.select(t.alarms).where(_visible(t.alarms.c.tenant_path, who))
        if open_only:
            q = q.where(t.alarms.c.closed.is_(False))
        if state:
            q = q.where(t.alarms.c.state.in_(list(state)))
        if severity:
            q = q.where(t.alarms.c.severity.in_(list(severity)))
        for col, val in (
            (t.alarms.c.asset_id, asset_id),
            (t.alarms.c.asset_type, asset_type),
            (t.alarms.c.rule_id, rule_id),
        ):
            if val is not None:
                q = q.where(col == val)
        if since_us is not None:
            q = q.where(t.alarms.c.changed_us >= since_us)
        if until_us is not None:
            q = q.where(t.alarms.c.raised_us < until_us)
        q = q.order_by(t.alarms.c.changed_us.desc(), t.alarms.c.id.desc()).limit(limit)
        with self.engine.connect() as c:
            return [_alarm(r) for r in c.execute(q).mappings().all()]

    def history(
        self,
        who: Principal | None,
        alarm_id: int | None = None,
        *,
        after_id: int = 0,
        since_us: int | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """The audit trail: every change of an alarm (or of all visible alarms), oldest first."""
        q = sa.select(t.alarm_events).where(
            _visible(t.alarm_events.c.tenant_path, who), t.alarm_events.c.id > after_id
        )
        if alarm_id is not None:
            q = q.where(t.alarm_events.c.alarm_id == alarm_id)
        if since_us is not None:
            q = q.where(t.alarm_events.c.ts_us >= since_us)
        q = q.order_by(t.alarm_events.c.id).limit(limit)
        with self.engine.connect() as c:
            rows = c.execute(q).mappings().all()
        return [{k: v for k, v in r.items() if k != "tenant_path"} for r in rows]

    def latest_event_id(self, who: Principal | None) -> int:
        """The id of the newest visible audit entry (0 if none)."""
        with self.engine.connect() as c:
            n = c.execute(
                sa.select(sa.func.max(t.alarm_events.c.id)).where(
                    _visible(t.alarm_events.c.tenant_path, who)
                )
            ).scalar()
        return int(n or 0)

    def unacknowledged(self) -> list[Alarm]:
        """Open alarms that still wait for acknowledgement and were not escalated."""
        with self.engine.connect() as c:
            rows = (
                c.execute(
                    sa.select(t.alarms).where(
                        t.alarms.c.closed.is_(False),
                        t.alarms.c.escalated.is_(False),
                        t.alarms.c.state.in_(
                            [AlarmState.UNACKNOWLEDGED.value, AlarmState.RTN_UNACKNOWLEDGED.value]
                        ),
                    )
                )
                .mappings()
                .all()
            )
        return [_alarm(r) for r in rows]

    # -- subscriptions -----------------------------------------------------------------
    def add_subscription(self, who: Principal, definition: Mapping[str, Any]) -> dict[str, Any]:
        """Store a notification subscription (validated by the caller)."""
        with self._write() as c:
            sid = c.execute(
                t.alarm_subscriptions.insert().values(
                    tenant_id=who.tenant_id,
                    tenant_path=who.tenant_path,
                    definition=dict(definition),
                )
            ).inserted_primary_key[0]  # type: ignore[index]
        return {"id": int(sid), **definition}

    def subscriptions(self, who: Principal | None) -> list[dict[str, Any]]:
        """Visible subscriptions (all for the system), each with ``tenant_path``."""
        with self.engine.connect() as c:
            rows = (
                c.execute(
                    sa.select(t.alarm_subscriptions).where(
                        _visible(t.alarm_subscriptions.c.tenant_path, who)
                    )
                )
                .mappings()
                .all()
            )
        return [{"id": r["id"], "tenant_path": r["tenant_path"], **r["definition"]} for r in rows]

    def delete_subscription(self, who: Principal, sub_id: int) -> None:
        """Remove a subscription."""
        with self._write() as c:
            n = c.execute(
                t.alarm_subscriptions.delete().where(
                    t.alarm_subscriptions.c.id == sub_id,
                    _visible(t.alarm_subscriptions.c.tenant_path, who),
                )
            ).rowcount
        if not n:
            raise NotFound("subscription", str(sub_id))

    # -- engine state ------------------------------------------------------------------
    def save_state(self, consumer: str, seq: int, state: Mapping[str, Any]) -> None:
        """Persist the engine's state with the last stream sequence it includes."""
        values = {
            "seq": seq,
            "state": json.dumps(state),
            "updated_us": self._clock(),
            "tenant_id": "root",
            "tenant_path": "/root/",
        }
        with self._write() as c:
            n = c.execute(
                t.rule_engine_state.update()
                .where(t.rule_engine_state.c.consumer == consumer)
                .values(**values)
            ).rowcount
            if not n:
                c.execute(t.rule_engine_state.insert().values(consumer=consumer, **values))

    def load_state(self, consumer: str) -> tuple[int, dict[str, Any]]:
        """Return (sequence, state) saved for ``consumer``, or (0, {})."""
        with self.engine.connect() as c:
            row = (
                c.execute(
                    sa.select(t.rule_engine_state).where(t.rule_engine_state.c.consumer == consumer)
                )
                .mappings()
                .first()
            )
        if row is None:
            return 0, {}
        return int(row["seq"]), json.loads(row["state"])
