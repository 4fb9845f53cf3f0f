"""Rules: create, read, update, delete, put in or out of service; subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.model import InvalidInput, PermanentError
from ironbridge.rules import AlarmStore, RuleKind, Severity, parse_rule, validate_subscription

router = APIRouter(prefix="/api/v1", tags=["rules"])


class RuleCreate(BaseModel):
    """A rule as posted; the kind-specific ``params`` are checked by the rules package."""

    id: str = Field(min_length=1, max_length=128)
    name: str = ""
    kind: RuleKind
    severity: Severity = Severity.MAJOR
    asset_type: str | None = None
    asset_id: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    on_delay_s: float = Field(default=0.0, ge=0)
    off_delay_s: float = Field(default=0.0, ge=0)
    in_service: bool = True
    message: str = ""
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: suppression by design: ``{"parent_rule": ..., "asset_attribute": ..., "values": [...]}``
    suppress_when: dict[str, Any] = Field(default_factory=dict)


def alarm_store(ctx: ApiContext) -> AlarmStore:
    """The alarm store of the running platform."""
    store = ctx.alarm_store
    if store is None:
        raise PermanentError("the rules service is not running")
    return store


@router.get("/rules")
def list_rules(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List the visible rules."""
    return [r.to_dict() for r in alarm_store(ctx).list_rules(who)]


@router.post("/rules", status_code=201)
def create_rule(body: RuleCreate, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Create a rule for an asset type (all its assets) or one asset."""
    rule = parse_rule(
        body.model_dump(mode="json"), tenant_id=who.tenant_id, tenant_path=who.tenant_path
    )
    return alarm_store(ctx).put_rule(who, rule, create=True).to_dict()


@router.get("/rules/{rule_id}")
def get_rule(rule_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Return one rule."""
    return alarm_store(ctx).get_rule(who, rule_id).to_dict()


@router.put("/rules/{rule_id}")
def update_rule(rule_id: str, body: RuleCreate, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Replace a rule's definition (its alarms stay)."""
    if body.id != rule_id:
        raise InvalidInput("id", "must match the rule id in the path")
    store = alarm_store(ctx)
    old = store.get_rule(who, rule_id)
    data = body.model_dump(mode="json") | {"version": old.version + 1}
    rule = parse_rule(data, tenant_id=old.tenant_id, tenant_path=old.tenant_path)
    return store.put_rule(who, rule, create=False).to_dict()


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(rule_id: str, ctx: Ctx, who: Operator) -> None:
    """Delete a rule and close its alarms."""
    alarm_store(ctx).delete_rule(who, rule_id)


@router.post("/rules/{rule_id}/out-of-service")
def remove_from_service(rule_id: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Put a rule out of service: its alarms go to ``out_of_service``, none are raised."""
    return alarm_store(ctx).set_in_service(who, rule_id, False).to_dict()


@router.post("/rules/{rule_id}/in-service")
def return_to_service(rule_id: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Return a rule to service."""
    return alarm_store(ctx).set_in_service(who, rule_id, True).to_dict()


@router.get("/rules-stats")
async def rules_stats(ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Counters of the rules worker."""
    return dict(await ctx.rules_stats()) if ctx.rules_stats is not None else {}


@router.get("/alarm-subscriptions")
def list_subscriptions(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """List notification subscriptions (secrets are not shown)."""
    subs = alarm_store(ctx).subscriptions(who)
    return [{k: v for k, v in s.items() if k not in ("secret", "tenant_path")} for s in subs]


@router.post("/alarm-subscriptions", status_code=201)
async def create_subscription(body: dict[str, Any], ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Subscribe a webhook (HMAC-signed) or an email address to alarms."""
    sub = validate_subscription(body)
    saved = await run_in_threadpool(alarm_store(ctx).add_subscription, who, sub)
    return {k: v for k, v in saved.items() if k != "secret"}


@router.delete("/alarm-subscriptions/{sub_id}", status_code=204)
def delete_subscription(sub_id: int, ctx: Ctx, who: Operator) -> None:
    """Remove a subscription."""
    alarm_store(ctx).delete_subscription(who, sub_id)
