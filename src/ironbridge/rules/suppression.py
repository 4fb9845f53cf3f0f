"""Suppression by design (ISA-18.2 "suppressed by design"): when a rule's alarm is hidden.

A rule's ``suppress_when`` names the conditions under which its alarms are suppressed
automatically, without an operator: the asset is in maintenance or out of operation
(an asset attribute has one of the listed values), or a designated parent alarm of the
same asset is active (e.g. "device offline" suppresses "low oil pressure"). Either
condition suffices. The rules worker enters and leaves the state; each change is an
audited system action whose comment is the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ironbridge.model import InvalidInput, check_id

#: the attribute and values used when ``asset_attribute`` is given without ``values``
DEFAULT_ATTRIBUTE_VALUES = ("maintenance", "out_of_operation")


def validate_suppression(raw: Any, rule_id: str) -> dict[str, Any]:
    """Check a ``suppress_when`` object; return it normalised (``{}`` for none).

    Raises:
        InvalidInput: naming the field, e.g. ``suppress_when.values``.
    """
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidInput("suppress_when", "must be an object")
    unknown = sorted(set(raw) - {"parent_rule", "asset_attribute", "values"})
    if unknown:
        raise InvalidInput(f"suppress_when.{unknown[0]}", "is not a suppression condition")
    out: dict[str, Any] = {}
    parent = raw.get("parent_rule")
    if parent is not None:
        if not isinstance(parent, str):
            raise InvalidInput("suppress_when.parent_rule", "must be a rule id")
        check_id(parent, "suppress_when.parent_rule")
        if parent == rule_id:
            raise InvalidInput("suppress_when.parent_rule", "must not be the rule itself")
        out["parent_rule"] = parent
    attribute = raw.get("asset_attribute")
    values = raw.get("values")
    if values is not None and attribute is None:
        raise InvalidInput("suppress_when.asset_attribute", "is required with values")
    if attribute is not None:
        if not isinstance(attribute, str) or not attribute or len(attribute) > 64:
            raise InvalidInput("suppress_when.asset_attribute", "must be an attribute name")
        if values is None:
            values = list(DEFAULT_ATTRIBUTE_VALUES)
        if not isinstance(values, list) or not values:
            raise InvalidInput("suppress_when.values", "must be a non-empty list")
        for i, v in enumerate(values):
            if not isinstance(v, str | int | float | bool):
                raise InvalidInput(f"suppress_when.values[{i}]", f"must be a scalar, not {v!r}")
        out["asset_attribute"] = attribute
        out["values"] = list(values)
    if not out:
        raise InvalidInput("suppress_when", "give parent_rule and/or asset_attribute")
    return out


def suppression_reason(
    suppress_when: Mapping[str, Any],
    *,
    attributes: Mapping[str, Any],
    parent_active: bool,
) -> str | None:
    """Why an alarm is suppressed by design now (the audit comment), or None."""
    attribute = suppress_when.get("asset_attribute")
    if attribute is not None and attribute in attributes:
        value = attributes[attribute]
        if any(value == v and type(value) is type(v) for v in suppress_when["values"]):
            return f"asset {attribute} is {value}"
    parent = suppress_when.get("parent_rule")
    if parent is not None and parent_active:
        return f"parent alarm {parent} is active"
    return None
