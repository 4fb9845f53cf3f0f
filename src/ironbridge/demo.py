"""The demo: provision the simulated fleet in the registry and drive it over real MQTT.

Part of the composition root (it reaches into the running :class:`~ironbridge.app.Platform`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from ironbridge.chain import DEMO_CHAIN_NAME, SqlChainRepository, install_demo_chain
from ironbridge.model import (
    Asset,
    Conflict,
    Device,
    NotFound,
    Principal,
    Role,
    check_id,
    now_us,
)
from ironbridge.predict.service import PredictService, TrainRequest
from ironbridge.sim import (
    FaultSchedule,
    FleetPlan,
    FleetSimulator,
    SimConfig,
    builtin_asset_type_texts,
    load_builtin_asset_types,
    plan_fleet,
)
from ironbridge.store import Registry
from ironbridge.store.sql import SqlRegistry

if TYPE_CHECKING:
    from ironbridge.app import Platform

_LOGGER = logging.getLogger(__name__)

CREDENTIALS_FILE = "demo-fleet-credentials.json"


class FleetHandle:
    """A running simulated fleet, with the counters the terminal shows."""

    def __init__(self, simulator: FleetSimulator, task: asyncio.Task[None]) -> None:
        self.simulator = simulator
        self.task = task

    def stats(self) -> dict[str, Any]:
        """Devices, connections and what was sent so far."""
        s = self.simulator.stats()
        return {
            "devices": s.devices,
            "connected": s.connected,
            "points": s.points_acked,
            "point_rate": s.point_rate,
            "auth_failures": s.auth_failures,
        }


def _load_credentials(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): str(v) for k, v in data.items()}


def _save_credentials(path: Path, creds: dict[str, str]) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh)
    tmp.replace(path)


def provision_fleet(registry: Registry, plan: FleetPlan, known: dict[str, str]) -> dict[str, str]:
    """Create the fleet's asset types, assets and devices where missing.

    Args:
        registry: the registry (system calls: the fleet belongs to the root tenant).
        plan: the simulated fleet.
        known: device id -> credential from an earlier run.

    Returns:
        device id -> credential for every device of the plan.
    """
    for asset_type in load_builtin_asset_types():
        try:
            current = registry.get_asset_type(None, asset_type.name)
            if current.version >= asset_type.version:
                continue
        except NotFound:
            pass
        registry.put_asset_type(None, "root", asset_type)
    creds: dict[str, str] = {}
    for sim in plan.devices:
        try:
            registry.get_asset(None, sim.asset_id)
        except NotFound:
            registry.create_asset(
                None,
                Asset(
                    id=sim.asset_id,
                    tenant_id="root",
                    type_name=sim.type_name,
                    name=sim.attributes.get("vin") or sim.asset_id,
                    attributes=dict(sim.attributes),
                ),
            )
        try:
            registry.get_device(None, sim.device_id)
            exists = True
        except NotFound:
            exists = False
        if exists and sim.device_id in known:
            creds[sim.device_id] = known[sim.device_id]
        elif exists:
            creds[sim.device_id] = registry.rotate_device_credential(None, sim.device_id)
        else:
            device = Device(
                id=sim.device_id, tenant_id="root", asset_ids=(sim.asset_id,), name=sim.asset_id
            )
            _, creds[sim.device_id] = registry.create_device(None, device)
    return creds


def load_demo_chain(registry: SqlRegistry, tenant_id: str = "root") -> None:
    """Store the Shandong NEV demo chain (``shandong-nev``) in the root tenant if absent."""
    root = registry.get_tenant(None, tenant_id)
    repo = SqlChainRepository(registry.engine)
    if install_demo_chain(repo, tenant_id=root.id, tenant_path=root.path):
        _LOGGER.info("demo industrial chain %s loaded into tenant %s", DEMO_CHAIN_NAME, root.id)


async def start_demo_fleet(
    platform: Platform,
    *,
    trucks: int,
    excavators: int,
    gensets: int,
    faults: bool = True,
    seed: int = 1,
) -> FleetHandle:
    """Provision and start the simulated fleet against the running platform."""
    assert platform.registry is not None
    assert platform.info is not None
    registry = platform.registry
    plan = plan_fleet(trucks=trucks, excavators=excavators, gensets=gensets, seed=seed)
    cred_path = platform.info.data_dir / CREDENTIALS_FILE
    _LOGGER.info("provisioning %d simulated machines", len(plan.devices))
    creds = await asyncio.to_thread(provision_fleet, registry, plan, _load_credentials(cred_path))
    await asyncio.to_thread(_save_credentials, cred_path, creds)
    from ironbridge.rules import AlarmStore, install_default_rules

    await asyncio.to_thread(install_default_rules, AlarmStore(registry.engine))
    await asyncio.to_thread(load_demo_chain, registry)
    if platform.ctx is not None and platform.ctx.aftersales is not None:
        from ironbridge.aftersales import seed_service_network

        await asyncio.to_thread(seed_service_network, platform.ctx.aftersales)
        _start_demo_service(platform, platform.ctx.aftersales, seed=seed)
    if platform.server is not None:
        await platform.server.set_devices(await asyncio.to_thread(registry.device_credentials))
    schedule = (
        FaultSchedule.showcase(plan, seed=seed)
        .merged(
            FaultSchedule.random(plan, max(1, len(plan.devices) // 20), within_s=600, seed=seed)
        )
        .merged(
            FaultSchedule.degradation(
                plan,
                max(1, trucks // 10),
                start_s=DEMO_WEAR_START_S,
                hours=DEMO_WEAR_HOURS,
                seed=seed,
            )
        )
        if faults
        else None
    )
    simulator = FleetSimulator(
        SimConfig(
            plan=plan,
            credentials=creds,
            host=platform.info.mqtt_host,
            port=platform.info.mqtt_port,
            seed=seed,
            faults=schedule,
        )
    )
    stop = asyncio.Event()
    task = asyncio.create_task(simulator.run_async(stop), name="demo-fleet")
    _LOGGER.info("simulated fleet started: %d machines over MQTT", len(plan.devices))

    async def stop_fleet() -> None:
        stop.set()
        await task
        _LOGGER.info("simulated fleet stopped")

    platform.before_stop.append(stop_fleet)
    if faults and trucks and platform.ctx is not None and platform.ctx.predict is not None:
        train = asyncio.create_task(
            _train_demo_model(platform.ctx.predict, registry), name="demo-predict-train"
        )
        platform.before_stop.append(lambda: _cancel(train))
    return FleetHandle(simulator, task)


#: Simulated technicians work this many times faster than the wall clock.
DEMO_FIELD_SPEEDUP = 60.0
DEMO_DISPATCH_S = 30.0


def seed_service_history(service: Any, seed: int = 1, overdue: float = 0.03) -> list[str]:
    """Give every machine with meters but no service record a plausible last service.

    Each interval was last done a random fraction ``u`` in [0, 1 + overdue) of its limits
    ago, so a few services are due now and the rest spread over the coming months.
    Returns the machines seeded (machines still without meters are skipped).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    now = service.clock()
    seeded: list[str] = []
    for plan, ids in service.planned_assets():
        fresh = [a for a in ids if not service.last_services(a)]
        for asset_id, use in service.usages(None, fresh, days=1).items():
            if use.hours <= 0:
                continue
            for iv in plan.intervals:
                u = float(rng.uniform(0.0, 1.0 + overdue))
                km = None
                if use.km is not None:
                    km = max(0.0, use.km - u * iv.km) if iv.km else use.km
                months_us = (iv.months or 0) * 30.44 * 86_400_000_000
                service.record_service(
                    None,
                    asset_id,
                    iv.name,
                    hours=max(0.0, use.hours - u * iv.hours) if iv.hours else use.hours,
                    km=km,
                    ts_us=int(now - u * months_us) if iv.months else now,
                )
            seeded.append(asset_id)
    return seeded


def _start_demo_service(platform: Platform, service: Any, seed: int) -> None:
    """On-call technicians, service history, automatic dispatch, simulated technicians."""
    from ironbridge.aftersales import FieldSimulator, run_auto_dispatch, run_periodic
    from ironbridge.aftersales.scenario import SKILLS, STATIONS

    for sid, city, lat, lon in STATIONS:  # one around the clock per station
        service.put_technician(
            None,
            {
                "id": f"{sid[3:]}-oncall",
                "name": f"{city} on-call technician",
                "station_id": sid,
                "skills": list(SKILLS),
                "lat": lat,
                "lon": lon,
                "shift_start_h": 0.0,
                "shift_end_h": 24.0,
            },
        )
    stop = asyncio.Event()
    field = FieldSimulator(service, speedup=DEMO_FIELD_SPEEDUP)

    def history_then_scan() -> None:
        # Only the machines just given a history: one whose meters are not stored yet
        # would count from commissioning and look overdue.
        seeded = seed_service_history(service, seed=seed)
        if seeded:
            opened = service.scan_due_maintenance(None, seeded, {})
            _LOGGER.info(
                "demo: %d machines serviced before, %d services due", len(seeded), len(opened)
            )

    tasks = [
        asyncio.create_task(
            run_periodic("demo service history", history_then_scan, stop, 60.0, first_delay_s=20),
            name="demo-service-history",
        ),
        asyncio.create_task(
            run_auto_dispatch(service, stop, DEMO_DISPATCH_S, time_limit_s=3.0),
            name="demo-dispatch",
        ),
        asyncio.create_task(
            run_periodic("simulated technicians", field.step, stop, 5.0), name="demo-technicians"
        ),
    ]

    async def stop_service() -> None:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    platform.before_stop.append(stop_service)


#: The demo trains its truck model at 3.5 min on the healthy minutes before (the first one
#: left out, while the fleet connects), in 5 s buckets (trucks report every second), so
#: the console ranks machines about 4 min after start; the scorer back-fills each truck's
#: recent history, so its chart has a past at once. Wear starts between 4 and 7 min and
#: ramps over 10-60 min, so engines degrade at rates six times apart, visibly within
#: minutes (a real engine takes months; the demo has minutes).
DEMO_TRAIN_AFTER_S = 210.0
DEMO_WARMUP_S = 60.0
DEMO_BUCKET_S = 5
DEMO_WEAR_START_S = (240.0, 420.0)
DEMO_WEAR_HOURS = (1 / 6, 1.0)
#: A truck is scored only while it is under way with a warm engine: 5 s buckets whose
#: mean engine speed is above idle (600 rpm) and whose coolant is within 2 °C of the
#: thermostat's band (it opens at 84 °C), from the 6th such bucket in a row. Parked
#: engines cooling for half an hour, idling, starts, warm-ups after a long park and stops
#: are not in 2.5 min of training, and a parked engine tells nothing about wear (no oil
#: pressure, coolant falling to ambient), so a truck keeps the health it had when it was
#: last under way warm. Wear raises the coolant, so the warm gate never hides it.
DEMO_RUNNING = (("engine_speed", 700.0), ("coolant_temp", 82.0))


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _train_demo_model(predict: PredictService, registry: Registry) -> None:
    """Train and deploy a heavy_truck anomaly/health model once enough history is stored."""
    if predict.models.active("heavy_truck", "pdm") is not None:
        return  # an earlier run (or the user) already deployed one
    await asyncio.sleep(DEMO_TRAIN_AFTER_S)
    root = await asyncio.to_thread(registry.get_tenant, None, "root")
    who = Principal(
        user_id=0, username="demo", tenant_id=root.id, tenant_path=root.path, role=Role.ADMIN
    )
    job = await predict.start_training(
        who,
        TrainRequest(
            asset_type="heavy_truck",
            measurements=("coolant_temp", "oil_pressure", "engine_speed", "engine_load"),
            start_us=now_us() - int((DEMO_TRAIN_AFTER_S - DEMO_WARMUP_S) * 1_000_000),
            bucket_s=DEMO_BUCKET_S,
            running=DEMO_RUNNING,
            deploy=True,
        ),
    )
    _LOGGER.info("demo: training the heavy_truck health model (job %s)", job.id)


async def run_standalone_fleet(
    console: Console,
    stop: asyncio.Event,
    *,
    api: str,
    username: str,
    password: str,
    mqtt_host: str,
    mqtt_port: int,
    trucks: int,
    excavators: int,
    gensets: int,
    prefix: str = "",
    seed: int = 1,
) -> None:
    """Provision a fleet through the public REST API, then publish over MQTT until stopped."""
    if prefix:
        check_id(prefix + "x", "prefix")
    plan = plan_fleet(
        trucks=trucks, excavators=excavators, gensets=gensets, seed=seed, prefix=prefix
    )
    async with httpx.AsyncClient(base_url=api, timeout=30.0) as client:
        r = await client.post(
            "/api/v1/auth/login", json={"username": username, "password": password}
        )
        if r.status_code != 200:
            raise Conflict(f"login to {api} failed: {r.status_code} {r.text}")
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
        for text in builtin_asset_type_texts().values():
            r = await client.post(
                "/api/v1/asset-types", content=text, headers={"Content-Type": "text/yaml"}
            )
            if r.status_code not in (201, 409):
                raise Conflict(f"creating an asset type failed: {r.text}")
        creds: dict[str, str] = {}
        with console.status(f"provisioning {len(plan.devices)} machines through {api} ..."):
            for sim in plan.devices:
                r = await client.post(
                    "/api/v1/assets",
                    json={
                        "id": sim.asset_id,
                        "type_name": sim.type_name,
                        "attributes": dict(sim.attributes),
                    },
                )
                if r.status_code not in (201, 409):
                    raise Conflict(f"creating asset {sim.asset_id} failed: {r.text}")
                r = await client.post(
                    "/api/v1/devices", json={"id": sim.device_id, "asset_ids": [sim.asset_id]}
                )
                if r.status_code == 409:
                    r = await client.post(f"/api/v1/devices/{sim.device_id}/rotate-credential")
                if r.status_code not in (200, 201):
                    raise Conflict(f"creating device {sim.device_id} failed: {r.text}")
                creds[sim.device_id] = r.json()["credential"]
    simulator = FleetSimulator(
        SimConfig(plan=plan, credentials=creds, host=mqtt_host, port=mqtt_port, seed=seed)
    )
    task = asyncio.create_task(simulator.run_async(stop), name="fleet")
    console.print(f"fleet of {len(plan.devices)} machines publishing to {mqtt_host}:{mqtt_port}")
    while not stop.is_set():
        s = simulator.stats()
        console.print(
            f"connected {s.connected}/{s.devices}  acked {s.points_acked:,} points  "
            f"{s.point_rate:,.0f} points/s",
            highlight=False,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5.0)
    await task
