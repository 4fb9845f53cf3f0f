"""Edge agents and Sparkplug B edge nodes: status, approval, configuration versions.

``GET /api/v1/edge/agents`` lists every edge node visible to the caller (ironbridge
agents and third-party Sparkplug nodes) with its link state, approval state and, for
agents, the status they report (health, buffer depth, drops, configuration version).
Operators approve or reject pending nodes, push a new configuration version to an
agent (validated as the agent would, stored, sent at once if the agent is online,
otherwise at its next birth) and roll back to an older version.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.connect.edge_nodes import ConfigVersion, EdgeNodes, NodeState
from ironbridge.connect.sparkplug_host import SparkplugHost
from ironbridge.edge.config import parse_managed
from ironbridge.model import InvalidInput, NotFound, PermanentError, Principal

router = APIRouter(prefix="/api/v1/edge", tags=["edge"])

_STATES = ("pending", "approved", "rejected")


class Decision(BaseModel):
    """Approve a node; ``assets`` maps its Sparkplug device ids to asset ids."""

    assets: dict[str, str] | None = None


class ConfigPush(BaseModel):
    """A new configuration version for an agent (the managed part of ``edge.toml``)."""

    config: dict[str, Any]
    comment: str = Field(default="", max_length=512)


class Rollback(BaseModel):
    """Make an older stored version the desired one."""

    version: int = Field(ge=1)


def _nodes(ctx: ApiContext) -> EdgeNodes:
    nodes = ctx.extra.get("edge_nodes")
    if not isinstance(nodes, EdgeNodes):
        raise PermanentError("edge management is not enabled in this deployment")
    return nodes


def _host(ctx: ApiContext) -> SparkplugHost | None:
    host = ctx.extra.get("sparkplug_host")
    return host if isinstance(host, SparkplugHost) else None


def _version(v: ConfigVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "config": json.loads(v.config),
        "comment": v.comment,
        "created_by": v.created_by,
        "created_at": v.created_at.isoformat(),
    }


def _listing(ctx: ApiContext, who: Principal, state: str | None) -> dict[str, Any]:
    nodes = _nodes(ctx)
    return {
        "policy": nodes.policy,
        "agents": [n.public() for n in nodes.all(who, state)],
    }


@router.get("/agents")
async def list_agents(ctx: Ctx, who: CurrentUser, state: str | None = None) -> dict[str, Any]:
    """Every visible edge node (optionally only ``pending``, ``approved`` or ``rejected``)."""
    if state is not None and state not in _STATES:
        raise InvalidInput("state", f"must be one of {', '.join(_STATES)}")
    return _listing(ctx, who, state)


@router.get("/agents/stream")
async def agents_stream(request: Request, ctx: Ctx, who: CurrentUser) -> StreamingResponse:
    """Server-Sent Events: the agent list (event ``agents``) whenever it changes."""
    _nodes(ctx)

    async def body() -> AsyncIterator[bytes]:
        yield b"retry: 1000\n\n"
        previous = b""
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            data = orjson.dumps(_listing(ctx, who, None))
            if data != previous:
                previous = data
                yield b"event: agents\ndata: " + data + b"\n\n"
            else:
                yield b": idle\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(1.0)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/agents/{node_id}")
async def get_agent(node_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """One edge node."""
    return _nodes(ctx).get(who, node_id).public()


async def _decide(
    ctx: ApiContext, who: Principal, node_id: str, state: NodeState, assets: dict[str, str] | None
) -> dict[str, Any]:
    nodes = _nodes(ctx)
    node = nodes.get(who, node_id)
    if assets:
        device = await run_in_threadpool(ctx.registry.get_device, who, node_id)
        for spb_device, asset_id in assets.items():
            if asset_id not in device.asset_ids:
                raise InvalidInput(
                    f"assets.{spb_device}",
                    f"asset {asset_id!r} is not bound to device {node_id!r}",
                )
    node = await run_in_threadpool(
        nodes.decide, who, node_id, state, by=who.username, assets=assets
    )
    host = _host(ctx)
    if host is not None and state == "approved" and node.online:
        await host.rebirth_node(node_id, "approved by an operator")
    return node.public()


@router.post("/agents/{node_id}/approve")
async def approve(node_id: str, body: Decision, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Approve a node: its data is stored from its next birth on (a rebirth is requested)."""
    return await _decide(ctx, who, node_id, "approved", body.assets)


@router.post("/agents/{node_id}/reject")
async def reject(node_id: str, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Reject a node: its data is dropped."""
    return await _decide(ctx, who, node_id, "rejected", None)


@router.get("/agents/{node_id}/configs")
async def list_configs(node_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """Every stored configuration version of an agent, newest first."""
    nodes = _nodes(ctx)
    node = nodes.get(who, node_id)
    versions = await run_in_threadpool(nodes.versions, who, node_id)
    return {
        "desired_version": node.desired_version,
        "reported_version": node.reported_version,
        "versions": [_version(v) for v in versions],
    }


async def _send(ctx: ApiContext, node_id: str) -> bool:
    host = _host(ctx)
    node = _nodes(ctx).get(None, node_id)
    if host is None or not node.online:
        return False  # sent at the agent's next birth
    return await host.push_config(node_id)


@router.post("/agents/{node_id}/configs", status_code=201)
async def push_config(node_id: str, body: ConfigPush, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Store a new configuration version, make it the desired one and send it."""
    nodes = _nodes(ctx)
    node = nodes.get(who, node_id)
    if node.state != "approved":
        raise InvalidInput("node_id", f"edge node {node_id!r} is {node.state}, not approved")
    parse_managed(body.config)  # the agent's own validation: 422 naming the field
    version = await run_in_threadpool(
        nodes.add_version,
        who,
        node_id,
        json.dumps(body.config, sort_keys=True),
        comment=body.comment,
        by=who.username,
    )
    return {**_version(version), "sent": await _send(ctx, node_id)}


@router.post("/agents/{node_id}/rollback")
async def roll_back(node_id: str, body: Rollback, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Make an older stored version the desired one again and send it."""
    nodes = _nodes(ctx)
    try:
        version = await run_in_threadpool(nodes.roll_back, who, node_id, body.version)
    except NotFound as exc:
        if exc.kind == "configuration version":
            raise InvalidInput("version", f"no version {body.version} stored") from None
        raise
    return {**_version(version), "sent": await _send(ctx, node_id)}
