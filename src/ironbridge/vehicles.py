"""Composition-root wiring of the vehicle endpoints: a registry-backed directory, start-up.

Part of the composition root (it reaches into the registry, which connectors may not).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from ironbridge.analytics.battery import BatteryWatch
from ironbridge.connect.gbt32960_server import Gbt32960Server
from ironbridge.connect.jt808_server import Jt808Server
from ironbridge.connect.vehicles import (
    RawPublisher,
    UnknownVehiclePolicy,
    VehicleIdentity,
    vehicle_asset_types,
)
from ironbridge.model import Asset, Conflict, Device, NotFound
from ironbridge.settings import VehicleSettings
from ironbridge.store import Registry

__all__ = [
    "RegistryVehicleDirectory",
    "device_id_for",
    "ensure_vehicle_types",
    "start_vehicle_endpoints",
]

_LOGGER = logging.getLogger(__name__)
_TYPES = {"gbt32960": "nev_bus", "jt808": "jt808_truck"}
_PREFIX = {"gbt32960": "nev-", "jt808": "jt808-"}
_CACHE_S = 30.0


def device_id_for(protocol: str, key: str) -> str:
    """``nev-<VIN>`` or ``jt808-<phone>``."""
    return _PREFIX[protocol] + key


def ensure_vehicle_types(registry: Registry, tenant_id: str = "root") -> None:
    """Create or upgrade the ``nev_bus`` and ``jt808_truck`` asset types."""
    for asset_type in vehicle_asset_types():
        try:
            if registry.get_asset_type(None, asset_type.name).version >= asset_type.version:
                continue
        except NotFound:
            pass
        registry.put_asset_type(None, tenant_id, asset_type)


class RegistryVehicleDirectory:
    """Resolves VINs and terminal phones to devices through the registry (cached 30 s)."""

    def __init__(
        self,
        registry: Registry,
        policy: UnknownVehiclePolicy = UnknownVehiclePolicy.REJECT,
        *,
        tenant_id: str = "root",
    ) -> None:
        self._registry = registry
        self._policy = policy
        self._tenant = tenant_id
        self._cache: dict[str, tuple[float, VehicleIdentity | None]] = {}

    async def resolve(
        self, protocol: str, key: str, info: Mapping[str, str]
    ) -> VehicleIdentity | None:
        """Return the active vehicle behind ``key`` or apply the unknown-vehicle policy."""
        if protocol not in _PREFIX or not key.isalnum():
            return None
        device_id = device_id_for(protocol, key)
        hit = self._cache.get(device_id)
        if hit is not None and time.monotonic() - hit[0] < _CACHE_S:
            return hit[1]
        identity = await asyncio.to_thread(self._resolve, protocol, key, device_id, dict(info))
        self._cache[device_id] = (time.monotonic(), identity)
        return identity

    def _resolve(
        self, protocol: str, key: str, device_id: str, info: dict[str, str]
    ) -> VehicleIdentity | None:
        reg = self._registry
        try:
            device = reg.get_device(None, device_id)
        except NotFound:
            if self._policy is UnknownVehiclePolicy.PENDING:
                self._register_pending(protocol, key, device_id, info)
            return None
        if device.revoked or not device.asset_ids:
            return None
        asset = reg.get_asset(None, device.asset_ids[0])
        if asset.attributes.get("status") == "pending":
            return None
        asset_type = reg.get_asset_type(None, asset.type_name)
        return VehicleIdentity(
            device_id=device_id,
            asset_id=asset.id,
            measurements=frozenset(m.name for m in asset_type.measurements),
        )

    def _register_pending(
        self, protocol: str, key: str, device_id: str, info: dict[str, str]
    ) -> None:
        type_name = _TYPES[protocol]
        attrs: dict[str, object] = {"status": "pending"}
        if protocol == "gbt32960":
            attrs["vin"] = key
            if info.get("iccid"):
                attrs["iccid"] = info["iccid"]
        else:
            attrs["phone"] = key
            for k in ("plate", "terminal_id", "manufacturer", "model", "vin"):
                if info.get(k):
                    attrs[k] = info[k]
        asset_id = f"{type_name.replace('_', '-')}-{key}"
        try:
            self._registry.create_asset(
                None,
                Asset(
                    id=asset_id,
                    tenant_id=self._tenant,
                    type_name=type_name,
                    name=key,
                    attributes=attrs,
                ),
            )
            self._registry.create_device(
                None,
                Device(id=device_id, tenant_id=self._tenant, asset_ids=(asset_id,), name=key),
            )
            _LOGGER.info("%s vehicle %s registered as pending (asset %s)", protocol, key, asset_id)
        except Conflict:
            pass


async def start_vehicle_endpoints(
    settings: VehicleSettings,
    registry: Registry,
    publisher: RawPublisher,
    secret: bytes,
    stop: asyncio.Event,
) -> tuple[Gbt32960Server, Jt808Server, list[asyncio.Task[None]]]:
    """Create the asset types, start both TCP endpoints; return them and their tasks."""
    await asyncio.to_thread(ensure_vehicle_types, registry)
    directory = RegistryVehicleDirectory(registry, UnknownVehiclePolicy(settings.unknown_policy))
    gb = Gbt32960Server(
        directory,
        publisher,
        host=settings.host,
        port=settings.gbt32960_port,
        idle_timeout_s=settings.idle_timeout_s,
        ack_realtime=settings.ack_realtime,
        observers=(BatteryWatch(),),
    )
    jt = Jt808Server(
        directory,
        publisher,
        secret=secret,
        host=settings.host,
        port=settings.jt808_port,
        idle_timeout_s=settings.idle_timeout_s,
        reassembly_timeout_s=settings.jt808_reassembly_timeout_s,
    )
    gb.max_sessions = jt.max_sessions = settings.max_sessions
    await gb.start()
    await jt.start()

    async def serve(server: Gbt32960Server | Jt808Server) -> None:
        try:
            await stop.wait()
        finally:
            await server.close()

    tasks = [
        asyncio.create_task(serve(gb), name="gbt32960-endpoint"),
        asyncio.create_task(serve(jt), name="jt808-endpoint"),
    ]
    return gb, jt, tasks


_DEMO_CUSTOMERS = ("Jinan Public Transport", "Qingdao Bus Group", "Yantai Transit")
_DEMO_CITIES = ("Jinan", "Qingdao", "Yantai", "Weifang", "Zibo")


def provision_demo_vehicles(registry: Registry, buses: int, trucks: int) -> None:
    """Create the demo's NEV buses and JT/T 808 trucks (assets and devices) where missing."""
    from ironbridge.sim.vehicles import nev_vin, truck_phone

    ensure_vehicle_types(registry)
    wanted: list[tuple[str, str, str, dict[str, object]]] = []
    for i in range(1, buses + 1):
        vin = nev_vin(i)
        attrs: dict[str, object] = {
            "vin": vin,
            "model": "IB-E12" if i % 2 else "IB-E10",
            "customer": _DEMO_CUSTOMERS[i % len(_DEMO_CUSTOMERS)],
            "province": "Shandong",
            "city": _DEMO_CITIES[i % len(_DEMO_CITIES)],
            "rated_capacity_ah": 280.0,
            "status": "active",
        }
        wanted.append((f"bus-{i:04d}", "nev_bus", device_id_for("gbt32960", vin), attrs))
    for i in range(1, trucks + 1):
        phone = truck_phone(i)
        attrs = {
            "phone": phone,
            "model": "IB-T6" if i % 3 else "IB-T8",
            "customer": "Shandong Logistics",
            "province": "Shandong" if i % 4 else "Hebei",
            "status": "active",
        }
        wanted.append((f"jt-truck-{i:04d}", "jt808_truck", device_id_for("jt808", phone), attrs))
    for asset_id, type_name, device_id, attrs in wanted:
        try:
            registry.get_asset(None, asset_id)
        except NotFound:
            registry.create_asset(
                None,
                Asset(
                    id=asset_id,
                    tenant_id="root",
                    type_name=type_name,
                    name=asset_id,
                    attributes=attrs,
                ),
            )
        try:
            registry.get_device(None, device_id)
        except NotFound:
            registry.create_device(
                None, Device(id=device_id, tenant_id="root", asset_ids=(asset_id,), name=asset_id)
            )


async def start_demo_vehicles(
    registry: Registry,
    settings: VehicleSettings,
    stop: asyncio.Event,
    *,
    buses: int,
    trucks: int,
) -> asyncio.Task[None]:
    """Provision and start simulated buses (GB/T 32960) and trucks (JT/T 808) over TCP."""
    from ironbridge.codec.gbt32960 import Edition
    from ironbridge.sim.vehicles import Jt808Truck, NevBus, run_tcp_fleet

    await asyncio.to_thread(provision_demo_vehicles, registry, buses, trucks)
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host  # noqa: S104

    async def fleet() -> None:
        await run_tcp_fleet(
            host=host,
            gbt32960_port=settings.gbt32960_port,
            jt808_port=settings.jt808_port,
            # every third bus speaks the 2025 edition
            buses=[
                NevBus(i, edition=Edition.V2025 if i % 3 == 0 else Edition.V2016)
                for i in range(1, buses + 1)
            ],
            trucks=[Jt808Truck(i) for i in range(1, trucks + 1)],
            stop=stop,
            period_s=10.0,
        )

    _LOGGER.info("demo: %d NEV buses on GB/T 32960, %d trucks on JT/T 808", buses, trucks)
    return asyncio.create_task(fleet(), name="demo-tcp-vehicles")
