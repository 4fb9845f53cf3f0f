"""Rules, ISA-18.2 alarms and notifications: definitions, engine, store, worker."""

from ironbridge.rules.alarms import (
    TRANSITIONS,
    Alarm,
    AlarmAction,
    AlarmState,
    AlarmStateMachine,
)
from ironbridge.rules.defaults import default_rules, install_default_rules
from ironbridge.rules.definitions import Rule, RuleKind, Severity, parse_rule, validate_params
from ironbridge.rules.engine import RuleEngine, SeriesInfo, Transition
from ironbridge.rules.expr import Expression, compile_expression
from ironbridge.rules.kpi import alarm_kpis
from ironbridge.rules.notify import Notifier, SmtpConfig, sign, validate_subscription, verify
from ironbridge.rules.service import AlarmContext, rules_service
from ironbridge.rules.spc import SpcWatcher, spc_condition
from ironbridge.rules.store import AlarmStore
from ironbridge.rules.worker import EVENTS_CONSUMER, RULES_CONSUMER, RulesStats, RulesWorker

__all__ = [
    "EVENTS_CONSUMER",
    "RULES_CONSUMER",
    "TRANSITIONS",
    "Alarm",
    "AlarmAction",
    "AlarmContext",
    "AlarmState",
    "AlarmStateMachine",
    "AlarmStore",
    "Expression",
    "Notifier",
    "Rule",
    "RuleEngine",
    "RuleKind",
    "RulesStats",
    "RulesWorker",
    "SeriesInfo",
    "Severity",
    "SmtpConfig",
    "SpcWatcher",
    "Transition",
    "alarm_kpis",
    "compile_expression",
    "default_rules",
    "install_default_rules",
    "parse_rule",
    "rules_service",
    "sign",
    "spc_condition",
    "validate_params",
    "validate_subscription",
    "verify",
]
