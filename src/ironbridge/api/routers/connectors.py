"""Connectors: OPC UA servers and Modbus TCP devices the platform reads from.

A configuration is tested against the real machine before it is saved (422 naming the
field and the reason when the test fails), then run by the platform's connector
manager, which publishes into the same ingest path as every device.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.connect import opcua
from ironbridge.connect.config import ModbusConfig, OpcUaConfig, parse_config
from ironbridge.connect.manager import ConnectorManager
from ironbridge.connect.modbus import check_connection as check_modbus
from ironbridge.connect.tables import SavedConnector
from ironbridge.model import InvalidInput, NotFound, PermanentError, Principal, TransientError

router = APIRouter(prefix="/api/v1/connectors", tags=["connectors"])


class ConnectorCreate(BaseModel):
    """A new connector: id, owner tenant (default the caller's) and its configuration."""

    id: str = Field(min_length=1, max_length=128)
    tenant_id: str | None = None
    enabled: bool = True
    config: dict[str, Any]


class BrowseRequest(BaseModel):
    """Browse an OPC UA server before saving a connector for it."""

    url: str
    node: str | None = None
    folder: bool = False
    username: str = ""
    password: str = ""


def _manager(ctx: ApiContext) -> ConnectorManager:
    if ctx.connectors is None:
        raise PermanentError("connectors are not enabled in this deployment")
    return ctx.connectors


def _prefixed(exc: InvalidInput) -> InvalidInput:
    return InvalidInput(f"config.{exc.field}" if exc.field else "config", exc.reason)


def _public(saved: SavedConnector, status: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": saved.id,
        "tenant_id": saved.tenant_id,
        "kind": saved.config.kind,
        "enabled": saved.enabled,
        "created_at": saved.created_at.isoformat(),
        "config": saved.config.model_dump(mode="json", exclude={"password"}),
        "status": status,
    }


def _check_devices(ctx: ApiContext, who: Principal, config: OpcUaConfig | ModbusConfig) -> None:
    if isinstance(config, OpcUaConfig):
        pairs = [(f"nodes[{i}]", m.device, m.asset) for i, m in enumerate(config.nodes)]
    else:
        pairs = [(f"devices[{i}]", d.device, d.asset) for i, d in enumerate(config.devices)]
    seen: dict[str, tuple[str, ...]] = {}
    for where, device_id, asset_id in pairs:
        if device_id not in seen:
            try:
                seen[device_id] = ctx.registry.get_device(who, device_id).asset_ids
            except NotFound:
                raise InvalidInput(
                    f"config.{where}.device", f"unknown device {device_id!r}"
                ) from None
        if asset_id is not None and asset_id not in seen[device_id]:
            raise InvalidInput(
                f"config.{where}.asset", f"asset {asset_id!r} is not bound to device {device_id!r}"
            )


async def check(config: OpcUaConfig | ModbusConfig) -> dict[str, Any]:
    """Test a configuration against the machine.

    Raises:
        InvalidInput: ``config.<field>`` with the reason.
    """
    try:
        if isinstance(config, OpcUaConfig):
            return await opcua.check_connection(config)
        return await check_modbus(config)
    except InvalidInput as exc:
        raise _prefixed(exc) from None


@router.post("", status_code=201)
async def create_connector(body: ConnectorCreate, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Validate, test against the machine, save and start a connector."""
    manager = _manager(ctx)
    try:
        config = parse_config(body.config)
    except InvalidInput as exc:
        raise _prefixed(exc) from None
    tenant = await run_in_threadpool(ctx.registry.get_tenant, who, body.tenant_id or who.tenant_id)
    await run_in_threadpool(_check_devices, ctx, who, config)
    test = await check(config)
    saved = await run_in_threadpool(
        manager.repository.create, body.id, tenant.id, tenant.path, config, body.enabled
    )
    if saved.enabled:
        manager.start(saved.id, saved.config)
    return {**_public(saved, manager.status(saved.id)), "test": test}


@router.post("/test")
async def test_connector(body: dict[str, Any], who: Operator) -> dict[str, Any]:
    """Test a configuration without saving it."""
    try:
        config = parse_config(body)
    except InvalidInput as exc:
        raise _prefixed(exc) from None
    return await check(config)


@router.post("/opcua/browse")
async def browse_server(body: BrowseRequest, who: Operator) -> list[dict[str, Any]]:
    """Browse an OPC UA server: children of ``node`` (default Objects).

    With ``folder`` set, every variable below ``node`` (to map a whole folder).
    """
    try:
        config = OpcUaConfig(url=body.url, username=body.username, password=body.password)
    except ValueError:
        raise InvalidInput("url", "must be an opc.tcp:// URL") from None
    try:
        if body.folder and body.node:
            entries = await opcua.variables_under(config, body.node)
        else:
            entries = await opcua.browse(config, body.node)
    except TransientError as exc:
        raise InvalidInput("url", f"cannot reach the OPC UA server: {exc}") from None
    return [asdict(e) for e in entries]


@router.get("")
async def list_connectors(ctx: Ctx, who: CurrentUser) -> list[dict[str, Any]]:
    """Saved connectors visible to the caller, with their live status."""
    manager = _manager(ctx)
    saved = await run_in_threadpool(manager.repository.list, who)
    return [_public(s, manager.status(s.id)) for s in saved]


@router.get("/{connector_id}")
async def get_connector(connector_id: str, ctx: Ctx, who: CurrentUser) -> dict[str, Any]:
    """One connector with its live status (connected/lost, counters)."""
    manager = _manager(ctx)
    saved = await run_in_threadpool(manager.repository.get, who, connector_id)
    return _public(saved, manager.status(saved.id))


@router.get("/{connector_id}/browse")
async def browse_connector(
    connector_id: str, ctx: Ctx, who: Operator, node: str | None = None, folder: bool = False
) -> list[dict[str, Any]]:
    """Browse the OPC UA server of a saved connector."""
    saved = await run_in_threadpool(_manager(ctx).repository.get, who, connector_id)
    if not isinstance(saved.config, OpcUaConfig):
        raise InvalidInput("connector_id", "only OPC UA connectors can be browsed")
    return await browse_server(
        BrowseRequest(
            url=saved.config.url,
            node=node,
            folder=folder,
            username=saved.config.username,
            password=saved.config.password,
        ),
        who,
    )


@router.delete("/{connector_id}", status_code=204)
async def delete_connector(connector_id: str, ctx: Ctx, who: Operator) -> None:
    """Stop and delete a connector."""
    manager = _manager(ctx)
    await run_in_threadpool(manager.repository.delete, who, connector_id)
    await manager.stop(connector_id)
