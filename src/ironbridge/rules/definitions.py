"""Rule definitions: kinds, severities, parameters and their validation."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from ironbridge.model import InvalidInput, check_id
from ironbridge.rules.expr import Expression, compile_expression
from ironbridge.rules.suppression import validate_suppression


class RuleKind(StrEnum):
    """What a rule watches."""

    THRESHOLD = "threshold"
    RATE_OF_CHANGE = "rate_of_change"
    EXPRESSION = "expression"
    NO_DATA = "no_data"
    FAULT_CODE = "fault_code"
    GEOFENCE = "geofence"
    SPC = "spc"  # Nelson / Western Electric rules on a control chart of one asset


class Severity(StrEnum):
    """Alarm priority, most urgent first (ISA-18.2 priorities)."""

    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"

    @property
    def rank(self) -> int:
        """0 for critical up to 3 for warning."""
        return list(Severity).index(self)

    def at_least(self, other: Severity) -> bool:
        """Return True if this severity is as urgent as ``other`` or more."""
        return self.rank <= other.rank


_OPS = (">", ">=", "<", "<=")
_DIRECTIONS = ("rise", "fall", "any")
_MEASUREMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A rule attached to an asset type (every asset of it) or to one asset.

    ``params`` are the validated kind-specific parameters; ``overrides`` maps an asset
    id to parameters that replace the rule's for that asset (``enabled: false`` turns
    the rule off for it).
    """

    id: str
    tenant_id: str
    tenant_path: str = ""
    name: str
    kind: RuleKind
    severity: Severity
    asset_type: str | None = None
    asset_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    in_service: bool = True
    message: str = ""
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: suppression by design (see :mod:`ironbridge.rules.suppression`); empty: never
    suppress_when: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1

    def applies_to(self, asset_id: str, type_name: str) -> bool:
        """Return True if the rule watches this asset."""
        if self.asset_id is not None:
            return self.asset_id == asset_id
        return self.asset_type == type_name and self.overrides.get(asset_id, {}).get(
            "enabled", True
        )

    def params_for(self, asset_id: str) -> dict[str, Any]:
        """The rule's parameters with the asset's overrides applied."""
        out = dict(self.params)
        for k, v in self.overrides.get(asset_id, {}).items():
            if k != "enabled":
                out[k] = v
        return out

    @property
    def inputs(self) -> tuple[str, ...]:
        """The measurements the rule reads, in slot order."""
        if self.kind in (RuleKind.THRESHOLD, RuleKind.RATE_OF_CHANGE):
            return (str(self.params["measurement"]),)
        if self.kind is RuleKind.EXPRESSION:
            return expression_of(self).variables
        if self.kind is RuleKind.GEOFENCE:
            return (str(self.params["lat"]), str(self.params["lon"]))
        if self.kind is RuleKind.SPC:
            return (str(self.params["measurement"]),)
        if self.kind is RuleKind.NO_DATA and self.params.get("measurement"):
            return (str(self.params["measurement"]),)
        return ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as the API shows it."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "name": self.name,
            "kind": self.kind.value,
            "severity": self.severity.value,
            "asset_type": self.asset_type,
            "asset_id": self.asset_id,
            "params": dict(self.params),
            "on_delay_s": self.on_delay_s,
            "off_delay_s": self.off_delay_s,
            "in_service": self.in_service,
            "message": self.message,
            "overrides": {k: dict(v) for k, v in self.overrides.items()},
            "suppress_when": dict(self.suppress_when),
            "version": self.version,
        }


_EXPR_CACHE: dict[str, Expression] = {}


def expression_of(rule: Rule) -> Expression:
    """The compiled expression of an expression rule (cached by source)."""
    src = str(rule.params["expression"])
    expr = _EXPR_CACHE.get(src)
    if expr is None:
        expr = _EXPR_CACHE[src] = compile_expression(src, "params.expression")
    return expr


def _number(d: Mapping[str, Any], key: str, where: str, *, minimum: float | None = None) -> float:
    name = f"{where}.{key}" if where else key
    if key not in d:
        raise InvalidInput(name, "is required")
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise InvalidInput(name, f"must be a finite number, not {v!r}")
    if minimum is not None and v < minimum:
        raise InvalidInput(name, f"must be at least {minimum:g}")
    return float(v)


def _measurement(d: Mapping[str, Any], key: str, where: str, default: str | None = None) -> str:
    v = d.get(key, default)
    if not isinstance(v, str) or not _MEASUREMENT.match(v):
        raise InvalidInput(f"{where}.{key}", f"must be a measurement name, not {v!r}")
    return v


def _choice(
    d: Mapping[str, Any], key: str, where: str, options: tuple[str, ...], default: str
) -> str:
    v = d.get(key, default)
    if v not in options:
        raise InvalidInput(f"{where}.{key}", f"must be one of {', '.join(options)}, not {v!r}")
    return str(v)


_CHARTS = ("i-mr", "xbar-r", "xbar-s")


def _epoch_ms(d: Mapping[str, Any], key: str, where: str) -> int:
    """An instant as epoch milliseconds (an integer, or ISO 8601; no zone means UTC)."""
    v = d.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    if isinstance(v, str):
        try:
            at = datetime.fromisoformat(v)
        except ValueError:
            pass
        else:
            at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            return int(at.timestamp() * 1000)
    raise InvalidInput(f"{where}.{key}", "must be an ISO 8601 time or epoch milliseconds")


def validate_params(
    kind: RuleKind, raw: Mapping[str, Any], where: str = "params"
) -> dict[str, Any]:
    """Check the kind-specific parameters; return them normalised.

    Raises:
        InvalidInput: naming the offending field, e.g. ``params.limit``.
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput(where, "must be an object")
    p: dict[str, Any] = {}
    allowed: set[str]
    if kind is RuleKind.THRESHOLD:
        allowed = {"measurement", "op", "limit", "deadband"}
        p["measurement"] = _measurement(raw, "measurement", where)
        p["op"] = _choice(raw, "op", where, _OPS, ">")
        p["limit"] = _number(raw, "limit", where)
        p["deadband"] = _number(
            {"deadband": raw.get("deadband", 0.0)}, "deadband", where, minimum=0
        )
    elif kind is RuleKind.RATE_OF_CHANGE:
        allowed = {"measurement", "limit_per_s", "direction"}
        p["measurement"] = _measurement(raw, "measurement", where)
        p["limit_per_s"] = _number(raw, "limit_per_s", where, minimum=0)
        p["direction"] = _choice(raw, "direction", where, _DIRECTIONS, "any")
    elif kind is RuleKind.EXPRESSION:
        allowed = {"expression"}
        expr = compile_expression(raw.get("expression", ""), f"{where}.expression")
        for name in expr.variables:
            if not _MEASUREMENT.match(name):
                raise InvalidInput(f"{where}.expression", f"{name!r} is not a measurement name")
        p["expression"] = expr.source
    elif kind is RuleKind.NO_DATA:
        allowed = {"timeout_s", "measurement"}
        p["timeout_s"] = _number(raw, "timeout_s", where, minimum=1)
        if raw.get("measurement") is not None:
            p["measurement"] = _measurement(raw, "measurement", where)
    elif kind is RuleKind.FAULT_CODE:
        allowed = {"event_kind", "code", "spn", "fmi", "clear_after_s"}
        p["event_kind"] = str(raw.get("event_kind", "dtc"))
        if raw.get("code") is not None:
            if not isinstance(raw["code"], str) or not raw["code"]:
                raise InvalidInput(f"{where}.code", "must be a non-empty string (a * glob)")
            p["code"] = raw["code"]
        if raw.get("spn") is not None:
            p["spn"] = int(_number(raw, "spn", where, minimum=0))
        if raw.get("fmi") is not None:
            fmi = raw["fmi"]
            fmis = fmi if isinstance(fmi, list) else [fmi]
            for x in fmis:
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x <= 31:
                    raise InvalidInput(
                        f"{where}.fmi", f"must be 0..31 or a list of them, not {x!r}"
                    )
            p["fmi"] = [int(x) for x in fmis]
        if "code" not in p and "spn" not in p:
            raise InvalidInput(f"{where}.code", "give a code pattern or an spn")
        p["clear_after_s"] = _number(
            {"clear_after_s": raw.get("clear_after_s", 30.0)}, "clear_after_s", where, minimum=1
        )
    elif kind is RuleKind.SPC:
        allowed = {"measurement", "chart", "subgroup", "reference_start", "reference_end"}
        allowed |= {"rules", "window"}
        p["measurement"] = _measurement(raw, "measurement", where)
        p["chart"] = _choice(raw, "chart", where, _CHARTS, "i-mr")
        sub = _number({"subgroup": raw.get("subgroup", 5)}, "subgroup", where, minimum=2)
        if sub != int(sub) or sub > 25:
            raise InvalidInput(f"{where}.subgroup", "must be a whole number 2..25")
        p["subgroup"] = int(sub)
        for key in ("reference_start", "reference_end"):
            p[key] = _epoch_ms(raw, key, where)
        if p["reference_end"] <= p["reference_start"]:
            raise InvalidInput(f"{where}.reference_end", "must be after reference_start")
        nelson = raw.get("rules", list(range(1, 9)))
        if not isinstance(nelson, list) or not nelson:
            raise InvalidInput(f"{where}.rules", "must be a list of Nelson rule numbers 1..8")
        for x in nelson:
            if isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 8:
                raise InvalidInput(f"{where}.rules", f"must hold Nelson rules 1..8, not {x!r}")
        p["rules"] = sorted({int(x) for x in nelson})
        window = _number({"window": raw.get("window", 200)}, "window", where, minimum=20)
        p["window"] = int(min(window, 5000))
    else:  # geofence
        allowed = {"polygon", "trigger", "lat", "lon"}
        poly = raw.get("polygon")
        if not isinstance(poly, list) or len(poly) < 3:
            raise InvalidInput(f"{where}.polygon", "must be a list of at least 3 [lon, lat] pairs")
        pts = []
        for i, pt in enumerate(poly):
            ok = isinstance(pt, list | tuple) and len(pt) == 2
            ok = ok and all(isinstance(c, int | float) and not isinstance(c, bool) for c in pt)
            if not ok or not (-180 <= pt[0] <= 180 and -90 <= pt[1] <= 90):
                raise InvalidInput(
                    f"{where}.polygon[{i}]", f"must be [lon, lat] in degrees, not {pt!r}"
                )
            pts.append([float(pt[0]), float(pt[1])])
        p["polygon"] = pts
        p["trigger"] = _choice(raw, "trigger", where, ("outside", "inside"), "outside")
        p["lat"] = _measurement(raw, "lat", where, "latitude")
        p["lon"] = _measurement(raw, "lon", where, "longitude")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", f"is not a parameter of a {kind.value} rule")
    return p


def parse_rule(data: Mapping[str, Any], *, tenant_id: str, tenant_path: str = "") -> Rule:
    """Build a validated :class:`Rule` from its JSON form.

    Raises:
        InvalidInput: naming the field at fault.
    """
    rule_id = data.get("id")
    if not isinstance(rule_id, str):
        raise InvalidInput("id", "is required")
    check_id(rule_id, "id")
    try:
        kind = RuleKind(str(data.get("kind")))
    except ValueError as exc:
        raise InvalidInput("kind", f"must be one of {', '.join(RuleKind)}") from exc
    try:
        severity = Severity(data.get("severity", "major"))
    except ValueError as exc:
        raise InvalidInput("severity", f"must be one of {', '.join(Severity)}") from exc
    asset_type, asset_id = data.get("asset_type"), data.get("asset_id")
    if (asset_type is None) == (asset_id is None):
        raise InvalidInput("asset_type", "give exactly one of asset_type or asset_id")
    if kind is RuleKind.SPC and asset_id is None:
        raise InvalidInput("asset_id", "an SPC rule charts the measurement of one asset")
    params = validate_params(kind, data.get("params") or {})
    overrides: dict[str, dict[str, Any]] = {}
    raw_over = data.get("overrides") or {}
    if not isinstance(raw_over, Mapping):
        raise InvalidInput("overrides", "must map asset ids to parameters")
    for aid, over in raw_over.items():
        if not isinstance(over, Mapping):
            raise InvalidInput(f"overrides.{aid}", "must be an object")
        enabled = over.get("enabled", True)
        if not isinstance(enabled, bool):
            raise InvalidInput(f"overrides.{aid}.enabled", "must be true or false")
        rest = {k: v for k, v in over.items() if k != "enabled"}
        merged = validate_params(kind, {**params, **rest}, f"overrides.{aid}")
        overrides[str(aid)] = {k: merged[k] for k in rest} | {"enabled": enabled}
    delays = {}
    for key in ("on_delay_s", "off_delay_s"):
        delays[key] = _number({key: data.get(key, 0.0)}, key, "", minimum=0)
    name = data.get("name") or rule_id
    if not isinstance(name, str) or len(name) > 200:
        raise InvalidInput("name", "must be a string of at most 200 characters")
    message = data.get("message", "")
    if not isinstance(message, str) or len(message) > 500:
        raise InvalidInput("message", "must be a string of at most 500 characters")
    in_service = data.get("in_service", True)
    if not isinstance(in_service, bool):
        raise InvalidInput("in_service", "must be true or false")
    suppress_when = validate_suppression(data.get("suppress_when"), rule_id)
    return Rule(
        id=rule_id,
        tenant_id=tenant_id,
        tenant_path=tenant_path,
        name=name,
        kind=kind,
        severity=severity,
        asset_type=asset_type,
        asset_id=asset_id,
        params=params,
        on_delay_s=delays["on_delay_s"],
        off_delay_s=delays["off_delay_s"],
        in_service=in_service,
        message=message,
        overrides=overrides,
        suppress_when=suppress_when,
        version=int(data.get("version", 1)),
    )


def with_service(rule: Rule, in_service: bool) -> Rule:
    """Return the rule put in or out of service."""
    return replace(rule, in_service=in_service, version=rule.version + 1)
