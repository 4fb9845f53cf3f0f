"""The plant demo: simulated stamping line and body shop on real OPC UA / Modbus servers.

Part of the composition root: provisions the stations as assets and devices, saves the
plant model, starts the simulators and saves the two connector configurations through
the running platform's connector manager, so data flows the way it would from a plant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import yaml

from ironbridge.analytics.sites import SiteRepository
from ironbridge.connect.config import parse_config
from ironbridge.connect.manager import ConnectorManager
from ironbridge.model import Asset, Device, NotFound, parse_asset_type
from ironbridge.sim.plant import (
    ASSET_TYPE_YAML,
    REASONS,
    STATIONS,
    PlantSimulator,
    modbus_connector_config,
    opcua_connector_config,
    site_definition,
)
from ironbridge.store import Registry

if TYPE_CHECKING:
    from ironbridge.app import Platform

_LOGGER = logging.getLogger(__name__)

OPCUA_CONNECTOR = "demo-stamping-opcua"
MODBUS_CONNECTOR = "demo-bodyshop-modbus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def provision_plant(registry: Registry, sites: SiteRepository, tenant: str = "root") -> None:
    """Create the station asset type, assets, devices and the site where missing."""
    asset_type = parse_asset_type(yaml.safe_load(ASSET_TYPE_YAML))
    try:
        registry.get_asset_type(None, asset_type.name)
    except NotFound:
        registry.put_asset_type(None, tenant, asset_type)
    for st in STATIONS:
        try:
            registry.get_asset(None, st.id)
        except NotFound:
            registry.create_asset(
                None,
                Asset(
                    id=st.id,
                    tenant_id=tenant,
                    type_name=asset_type.name,
                    name=st.id,
                    attributes={"line": st.line, "kind": st.kind},
                ),
            )
        try:
            registry.get_device(None, st.id)
        except NotFound:
            registry.create_device(
                None, Device(id=st.id, tenant_id=tenant, asset_ids=(st.id,), name=st.id)
            )
    definition = site_definition()
    try:
        sites.get(None, str(definition["id"]))
    except NotFound:
        root = registry.get_tenant(None, tenant)
        sites.create(root.id, root.path, definition, REASONS)


async def _replace_connector(
    manager: ConnectorManager, registry: Registry, connector_id: str, config: dict[str, Any]
) -> None:
    await manager.stop(connector_id)
    with contextlib.suppress(NotFound):
        await asyncio.to_thread(manager.repository.delete, None, connector_id)
    root = await asyncio.to_thread(registry.get_tenant, None, "root")
    saved = await asyncio.to_thread(
        manager.repository.create, connector_id, root.id, root.path, parse_config(config)
    )
    manager.start(saved.id, saved.config)


@contextlib.asynccontextmanager
async def plant_servers(sim: PlantSimulator) -> AsyncIterator[tuple[str, int]]:
    """Serve the simulator on free ports; yield (OPC UA URL, Modbus port)."""
    async with (
        sim.opcua_server(_free_port()) as url,
        sim.modbus_server(_free_port()) as port,
    ):
        yield url, port


async def start_demo_plant(platform: Platform) -> asyncio.Task[None]:
    """Provision the plant, start its simulators and the connectors that read them."""
    assert platform.registry is not None
    assert platform.ctx is not None
    ctx = platform.ctx
    if ctx.connectors is None or ctx.plant_sites is None:
        raise RuntimeError("the platform runs without connectors or plant sites")
    registry, manager = platform.registry, ctx.connectors
    await asyncio.to_thread(provision_plant, registry, ctx.plant_sites)
    sim = PlantSimulator()
    stop = asyncio.Event()
    ready: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    async def serve() -> None:
        try:
            async with plant_servers(sim) as (url, port):
                ready.set_result((url, port))
                await sim.run(stop)
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    task = asyncio.create_task(serve(), name="demo-plant")
    url, port = await ready
    await _replace_connector(manager, registry, OPCUA_CONNECTOR, opcua_connector_config(url))
    await _replace_connector(
        manager, registry, MODBUS_CONNECTOR, modbus_connector_config("127.0.0.1", port)
    )
    _LOGGER.info("simulated plant: stamping line on %s, body shop on modbus port %d", url, port)

    async def stop_plant() -> None:
        await manager.stop(OPCUA_CONNECTOR)
        await manager.stop(MODBUS_CONNECTOR)
        stop.set()
        await asyncio.gather(task, return_exceptions=True)

    platform.before_stop.append(stop_plant)
    return task


__all__ = ["provision_plant", "start_demo_plant"]
