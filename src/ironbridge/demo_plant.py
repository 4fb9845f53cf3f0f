"""The plant demo: simulated stamping line and body shop on real OPC UA / Modbus servers.

Part of the composition root: provisions the stations as assets and devices, saves the
plant model, starts the simulators and saves the two connector configurations through
the running platform's connector manager, so data flows the way it would from a plant.

On a fresh data directory it first runs the same simulator through the last
:data:`HISTORY_S` seconds and publishes what the stations would have reported into
JetStream (the connectors' path, through ingest), so the line view, OEE dashboard and
SPC chart have a day of history at once (the final line's rework station reports by
events, as an MES would, during the history and live); and it saves two SPC rules (the inspection
station's panel gap, a welding robot's current) with their reference period in the
first hour of that history, so drifting quality raises alarms.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import yaml

from ironbridge.analytics.sites import SiteRepository
from ironbridge.bus.subjects import events_subject
from ironbridge.connect.config import parse_config
from ironbridge.connect.manager import ConnectorManager
from ironbridge.connect.publish import Publisher, SampleBatcher
from ironbridge.model import (
    Asset,
    Conflict,
    Device,
    IronbridgeError,
    NotFound,
    now_us,
    parse_asset_type,
)
from ironbridge.model.retry import retry_transient
from ironbridge.rules import AlarmStore, parse_rule
from ironbridge.sim.plant import (
    ASSET_TYPE_YAML,
    REASONS,
    STATIONS,
    Event,
    PlantSimulator,
    modbus_connector_config,
    opcua_connector_config,
    site_definition,
)
from ironbridge.store import Registry, TelemetryStore

if TYPE_CHECKING:
    from ironbridge.app import Platform

_LOGGER = logging.getLogger(__name__)

OPCUA_CONNECTOR = "demo-stamping-opcua"
MODBUS_CONNECTOR = "demo-bodyshop-modbus"
#: seconds of simulated history published when the demo starts on an empty store
HISTORY_S = 24 * 3600.0
_HOUR_MS = 3_600_000


def spc_rules(reference_start_ms: int) -> list[dict[str, Any]]:
    """The demo's SPC rules, with their reference period starting at ``reference_start_ms``."""
    ref = {"reference_start": reference_start_ms, "reference_end": reference_start_ms + _HOUR_MS}
    return [
        {
            "id": "spc-inspect-01-gap",
            "name": "Door panel gap",
            "kind": "spc",
            "asset_id": "inspect-01",
            "severity": "minor",
            "message": "Door panel gap out of statistical control",
            "params": {"measurement": "panel_gap", "chart": "i-mr", "rules": [1, 2, 3, 5, 6],
                       **ref},
        },
        {
            "id": "spc-robot-01-current",
            "name": "Spot weld current",
            "kind": "spc",
            "asset_id": "robot-01",
            "severity": "warning",
            "params": {"measurement": "weld_current", "chart": "xbar-r", "subgroup": 5,
                       "rules": [1, 2, 5], **ref},
        },
    ]  # fmt: skip


def install_spc_rules(alarms: AlarmStore, registry: Registry, reference_start_ms: int) -> None:
    """Save the demo's SPC rules where missing."""
    root = registry.get_tenant(None, "root")
    for doc in spc_rules(reference_start_ms):
        rule = parse_rule(doc, tenant_id=root.id, tenant_path=root.path)
        with contextlib.suppress(Conflict):
            alarms.put_rule(None, rule, create=True)


def _has_data(registry: Registry, store: TelemetryStore) -> bool:
    refs = registry.series_of(None, [s.id for s in STATIONS])
    return bool(refs) and store.latest([r.id for r in refs]).num_rows > 0


async def publish_history(
    sim: PlantSimulator, publisher: Publisher, end_ms: int, seconds: float = HISTORY_S
) -> int:
    """Publish the simulator's ``seconds`` of history before ``end_ms``; return the samples."""
    samples = await asyncio.to_thread(lambda: list(sim.history(end_ms, seconds)))
    batcher = SampleBatcher(publisher)
    for station, measurement, ts_ms, value in samples:
        batcher.add(station, None, measurement, ts_ms, value)
        if batcher.pending >= 5_000:
            await batcher.flush()
    await batcher.flush()
    events = sim.history_events
    for i in range(0, len(events), 2_000):
        await publish_events(publisher, events[i : i + 2_000])
    return len(samples) + len(events)


async def publish_events(publisher: Publisher, events: Sequence[Event]) -> None:
    """Publish station events (what an MES sends) on each device's events subject."""
    by_device: dict[str, list[dict[str, Any]]] = {}
    for device, event in events:
        by_device.setdefault(device, []).append(event)
    for device, items in by_device.items():
        body = orjson.dumps({"events": items})
        await publisher.publish(
            events_subject(device),
            body,
            headers={"Ib-Received-Us": str(now_us())},
            # the same events again (a retry after a publish that did land) are dropped
            msg_id=f"mes-{device}-{hashlib.blake2b(body, digest_size=12).hexdigest()}",
        )


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
    if platform.bus is not None:
        bus = platform.bus

        async def report(events: list[Event]) -> None:
            try:  # an MES retries until the bus takes its events (msg ids: never doubled)
                await retry_transient(
                    lambda: publish_events(bus, events),
                    "simulated MES events",
                    stop=stop,
                    logger=_LOGGER,
                )
            except IronbridgeError as exc:
                _LOGGER.warning("simulated MES events dropped: %s", exc)

        sim.on_events = report
    end_ms = now_us() // 1000
    assert platform.store is not None
    if platform.bus is not None and not await asyncio.to_thread(
        _has_data, registry, platform.store
    ):
        n = await publish_history(sim, platform.bus, end_ms)
        _LOGGER.info("simulated plant: published %d samples of %.0f h history", n, HISTORY_S / 3600)
    if ctx.alarm_store is not None:
        await asyncio.to_thread(
            install_spc_rules, ctx.alarm_store, registry, end_ms - int(HISTORY_S * 1000)
        )
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


__all__ = [
    "HISTORY_S",
    "install_spc_rules",
    "provision_plant",
    "publish_events",
    "publish_history",
    "spc_rules",
    "start_demo_plant",
]
