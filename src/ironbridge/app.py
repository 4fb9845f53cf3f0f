"""Composition root: builds the platform from settings, runs it, and stops it cleanly.

This is the only module that reads settings, picks adapters and configures logging.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from ironbridge.api import ApiContext, create_app
from ironbridge.bus import (
    STREAM_DEAD,
    STREAM_RAW,
    Bus,
    EmbeddedNatsServer,
    RawMessage,
)
from ironbridge.chain import SqlChainRepository
from ironbridge.cluster import idle_until, open_telemetry_store
from ironbridge.ingest import IngestWorker, RouteCache, platform_routes, resume_after
from ironbridge.model import IronbridgeError, NotFound, PermanentError
from ironbridge.predict.service import PREDICTION_MEASUREMENTS, PredictService
from ironbridge.settings import Settings
from ironbridge.store import TelemetryStore
from ironbridge.store.sql import SqlRegistry, bootstrap_admin, ensure_root

if TYPE_CHECKING:
    from ironbridge.rules import SmtpConfig

_LOGGER = logging.getLogger(__name__)

INGEST_CONSUMER = "ingest"


def configure_logging(level: str) -> None:
    """Send log records to stderr through rich, once, for the whole process."""
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(rich_tracebacks=False, show_path=False)],
        force=True,
    )
    for noisy in ("uvicorn.access", "nats", "httpx", "alembic", "asyncua", "pymodbus"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _private_file(path: Path, factory: Callable[[], str]) -> str:
    """Return the content of a 0600 file, creating it with ``factory()`` if missing."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = factory()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def smtp_config(s: Settings) -> SmtpConfig:
    """The alarm email settings as the notifier takes them."""
    from ironbridge.rules import SmtpConfig

    return SmtpConfig(
        host=s.smtp.host,
        port=s.smtp.port,
        sender=s.smtp.from_address,
        username=s.smtp.user,
        password=s.smtp.password.get_secret_value(),
        tls=s.smtp.tls,
        timeout_s=s.smtp.timeout_s,
    )


def work_order_action(aftersales: Any) -> Callable[[Any, Any], Awaitable[None]]:
    """The alarm action that opens a work order when a critical or major alarm starts."""
    from ironbridge.rules import AlarmAction, Severity

    async def open_work_order(alarm: Any, action: Any) -> None:
        if action is AlarmAction.ACTIVATE and alarm.severity in (
            Severity.CRITICAL,
            Severity.MAJOR,
        ):
            await asyncio.to_thread(
                aftersales.create_from_alarm,
                alarm_id=alarm.id,
                asset_id=alarm.asset_id,
                severity=alarm.severity.value,
                message=alarm.message,
                rule_id=alarm.rule_id,
            )

    return open_work_order


def prediction_work_order_action(
    aftersales: Any, rul_threshold_h: float, health_threshold: float
) -> Callable[[str, int, Mapping[str, Mapping[str, float]]], Awaitable[None]]:
    """The scorer hook that opens a work order when an asset's RUL or health falls low.

    One order per asset while it is open (``Aftersales.create_from_prediction``).
    """

    def open_all(asset_type: str, version: int, values: Mapping[str, Mapping[str, float]]) -> int:
        n = 0
        for asset_id, v in values.items():
            wo = aftersales.create_from_prediction(
                asset_id=asset_id,
                model=f"{asset_type}/v{version}",
                rul_h=v.get("rul"),
                health=v.get("health_index"),
                rul_threshold_h=rul_threshold_h,
                health_threshold=health_threshold,
            )
            n += wo is not None
        return n

    async def open_work_orders(
        asset_type: str, version: int, values: Mapping[str, Mapping[str, float]]
    ) -> None:
        await asyncio.to_thread(open_all, asset_type, version, values)

    return open_work_orders


def _fatal(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    """A core task that ends on its own is fatal: log why and stop the platform."""
    if task.cancelled() or stop.is_set():
        return
    exc = task.exception()
    _LOGGER.critical(
        "%s stopped unexpectedly: %r; shutting down", task.get_name(), exc, exc_info=exc
    )
    stop.set()


def _log_end(task: asyncio.Task[None]) -> None:
    """A background task that ends by an error is logged at once, not only at shutdown."""
    if not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        _LOGGER.error("%s stopped: %r", task.get_name(), exc, exc_info=exc)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the CLI owns Ctrl-C and stops everything."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformInfo:
    """Where the running platform can be reached; shown in the terminal."""

    http_url: str
    mqtt_host: str
    mqtt_port: int
    nats_url: str
    data_dir: Path
    admin_password: str | None


class DeadLetters:
    """Reads dead letters from their stream for the API."""

    def __init__(self, bus: Bus) -> None:
        self._bus = bus

    async def newest(self, limit: int) -> Sequence[Mapping[str, Any]]:
        """Return up to ``limit`` dead letters, newest first."""
        msgs: Sequence[RawMessage] = await self._bus.read_stream(STREAM_DEAD, "ib.dead.>", limit)
        out = []
        for m in reversed(msgs):
            headers = m.headers or {}
            out.append(
                {
                    "seq": m.stream_seq,
                    "device_id": m.subject.split(".", 2)[2] if m.subject.count(".") >= 2 else "",
                    "field": headers.get("Ib-Field", ""),
                    "reason": headers.get("Ib-Reason", ""),
                    "subject": headers.get("Ib-Subject", ""),
                    "received_us": int(headers.get("Ib-Received-Us", "0") or 0),
                    "payload": m.data,
                }
            )
        return out


@dataclass
class Platform:
    """The embedded platform: nats-server child, registry, store, ingest, API."""

    settings: Settings
    registry: SqlRegistry | None = None
    store: TelemetryStore | None = None
    server: EmbeddedNatsServer | None = None
    bus: Bus | None = None
    worker: IngestWorker | None = None
    routes: RouteCache | None = None
    info: PlatformInfo | None = None
    _http: uvicorn.Server | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: run first when the platform stops, while the backbone is still up (the demo
    #: disconnects its simulated devices here)
    before_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: the services behind the API (the demo adds connectors and plant sites through it)
    ctx: ApiContext | None = None

    @contextlib.asynccontextmanager
    async def running(self, stop: asyncio.Event) -> AsyncIterator[Platform]:
        """Start everything, yield while it runs, stop everything in reverse order."""
        s = self.settings
        data = s.data_dir.resolve()
        data.mkdir(parents=True, exist_ok=True)
        secret = s.secret_key.get_secret_value() or _private_file(
            data / "secret.key", lambda: secrets.token_urlsafe(32)
        )
        async with contextlib.AsyncExitStack() as stack:
            registry = SqlRegistry.open(s.registry_database_url)
            stack.callback(registry.close)
            self.registry = registry
            ensure_root(registry)
            admin_password = bootstrap_admin(
                registry, password=s.admin_password.get_secret_value() or None
            )

            store = open_telemetry_store(s.telemetry, data)
            stack.callback(store.close)
            self.store = store

            if s.nats.embedded:
                server = EmbeddedNatsServer(
                    data / "nats",
                    host=s.nats.host,
                    port=s.nats.port,
                    mqtt_port=s.nats.mqtt_port,
                    monitor_port=s.nats.monitor_port,
                    server_path=s.nats.server_path,
                    devices=registry.device_credentials(),
                )
                await server.start()
                stack.push_async_callback(server.stop)
                self.server = server
                urls, user, password = (
                    server.client_url,
                    server.internal_user,
                    server.internal_password,
                )
                mqtt_host, mqtt_port = server.mqtt_host, server.mqtt_port
            else:
                urls, user = s.nats.url, s.nats.user
                password = s.nats.password.get_secret_value()
                mqtt_host, mqtt_port = s.nats.host, s.nats.mqtt_port

            bus = await stack.enter_async_context(
                Bus.connect(urls, user=user, password=password, name="ironbridge")
            )
            self.bus = bus
            await bus.ensure_streams(replicas=s.nats.replicas)
            # Embedded mode has one ingest writer: everything at or below its committed
            # sequence is stored, so its consumer restarts right after it (see
            # Bus.pull_consumer). Cluster mode partitions the stream per writer.
            routes = RouteCache(platform_routes(registry, computed=PREDICTION_MEASUREMENTS))
            self.routes = routes
            worker: IngestWorker | None = None
            if s.ingest.in_process:  # off in `ironbridge api` (cluster: `worker ingest`)
                # from the published mark: a batch committed but not yet handed to the
                # rules before a stop is read again and published (not stored) again
                _, published = await asyncio.to_thread(resume_after, store, INGEST_CONSUMER)
                consumer = await bus.pull_consumer(
                    STREAM_RAW,
                    INGEST_CONSUMER,
                    filter_subject=None,  # both subjects of IB_RAW: telemetry and events
                    max_ack_pending=s.ingest.max_ack_pending,
                    start_seq=published + 1,
                )
                worker = IngestWorker(
                    source=consumer,
                    publisher=bus,
                    store=store,
                    routes=routes,
                    consumer=INGEST_CONSUMER,
                    fetch_batch=s.ingest.fetch_batch,
                    fetch_timeout_s=s.ingest.fetch_timeout_s,
                )
            self.worker = worker

            async def devices_changed() -> None:
                if self.server is not None:
                    creds = await asyncio.to_thread(registry.device_credentials)
                    await self.server.set_devices(creds)

            async def ingest_stats() -> Mapping[str, Any]:
                return await self.ingest_stats()

            http_url = f"http://{s.http_host}:{s.http_port}"
            ctx = ApiContext(
                registry=registry,
                store=store,
                publisher=bus,
                routes=routes,
                secret_key=secret.encode(),
                dead_letters=DeadLetters(bus),
                on_devices_changed=devices_changed,
                ingest_stats=ingest_stats,
                mqtt_host=mqtt_host,
                mqtt_port=mqtt_port,
                public_url=http_url,
            )
            ctx.chains = SqlChainRepository(registry.engine)
            # Predictions go back through JetStream and ingest (the store's one writer).
            ctx.predict = PredictService(
                registry=registry,
                store=store,
                publisher=bus,
                models_dir=data / "models",
                interval_s=s.predict_interval_s,
            )
            config = uvicorn.Config(
                create_app(ctx),
                host=s.http_host,
                port=s.http_port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
            http = _QuietServer(config)
            self._http = http

            worker_task = asyncio.create_task(
                worker.run(stop) if worker is not None else idle_until(stop),
                name="ingest-worker",
            )
            worker_task.add_done_callback(lambda t: _fatal(t, stop))
            if s.vehicles.enabled:
                from ironbridge.vehicles import start_vehicle_endpoints

                gb, jt, vehicle_tasks = await start_vehicle_endpoints(
                    s.vehicles, registry, bus, secret.encode(), stop
                )
                self._tasks.extend(vehicle_tasks)
                ctx.extra["vehicle_endpoints"] = {"gbt32960": gb, "jt808": jt}
            self._tasks.append(asyncio.create_task(ctx.predict.run(stop), name="predict-scorer"))
            from ironbridge.rules import EVENTS_CONSUMER, RULES_CONSUMER, RulesWorker, rules_service

            rules_worker: RulesWorker = await rules_service(
                ctx,
                registry,
                await bus.pull_consumer("IB_NORM", RULES_CONSUMER, filter_subject="ib.norm.points"),
                await bus.pull_consumer("IB_RAW", EVENTS_CONSUMER, filter_subject="ib.v1.*.events"),
                telemetry=store,
                smtp=smtp_config(s),
            )
            self._tasks.append(asyncio.create_task(rules_worker.run(stop), name="rules-worker"))
            from ironbridge.analytics.sites import SiteRepository
            from ironbridge.connect import ConnectorManager, ConnectorRepository

            ctx.plant_sites = SiteRepository(registry.engine)
            ctx.connectors = ConnectorManager(ConnectorRepository(registry.engine), bus)
            self._tasks.append(asyncio.create_task(ctx.connectors.run(stop), name="connectors"))
            from ironbridge.connect.edge_nodes import EdgeNodes
            from ironbridge.connect.sparkplug_host import SparkplugHost

            def tenant_of(device_id: str) -> tuple[str, str] | None:
                try:
                    device = registry.get_device(None, device_id)
                    return device.tenant_id, registry.get_tenant(None, device.tenant_id).path
                except NotFound:
                    return None

            edge_nodes = EdgeNodes(registry.engine, policy=s.edge.policy, tenant_of=tenant_of)
            ctx.extra["edge_nodes"] = edge_nodes
            spb_host = SparkplugHost(bus.client, bus, nodes=edge_nodes)
            ctx.extra["sparkplug_host"] = spb_host
            self._tasks.append(asyncio.create_task(spb_host.run(stop), name="sparkplug-host"))
            from ironbridge.aftersales import (
                Aftersales,
                run_auto_dispatch,
                run_due_scan,
                run_sla_watch,
            )

            ctx.aftersales = Aftersales(registry.engine, registry, store)
            rules_worker.alarm_hooks.append(work_order_action(ctx.aftersales))
            a = s.aftersales
            ctx.predict.score_hooks.append(
                prediction_work_order_action(ctx.aftersales, a.rul_threshold_h, a.health_threshold)
            )
            self._tasks.append(
                asyncio.create_task(
                    run_sla_watch(ctx.aftersales, stop, a.sla_check_s), name="aftersales-sla"
                )
            )
            if a.due_scan_s > 0:
                self._tasks.append(
                    asyncio.create_task(
                        run_due_scan(ctx.aftersales, stop, a.due_scan_s), name="aftersales-due"
                    )
                )
            if a.dispatch_s > 0:
                self._tasks.append(
                    asyncio.create_task(
                        run_auto_dispatch(
                            ctx.aftersales, stop, a.dispatch_s, a.dispatch_time_limit_s
                        ),
                        name="aftersales-dispatch",
                    )
                )
            for task in self._tasks:
                task.add_done_callback(_log_end)
            self.ctx = ctx
            http_task = asyncio.create_task(http.serve(), name="http-api")
            while not http.started:
                if http_task.done():
                    http_task.result()
                    raise PermanentError(f"the HTTP API did not start on {http_url}")
                await asyncio.sleep(0.05)
            self.info = PlatformInfo(
                http_url=http_url,
                mqtt_host=mqtt_host,
                mqtt_port=mqtt_port,
                nats_url=urls,
                data_dir=data,
                admin_password=admin_password,
            )
            try:
                yield self
            finally:
                stop.set()
                for hook in reversed(self.before_stop):
                    try:
                        await hook()
                    except Exception:
                        _LOGGER.exception("a stop hook failed")
                http.should_exit = True
                await asyncio.gather(worker_task, http_task, return_exceptions=True)
                await asyncio.gather(*self._tasks, return_exceptions=True)

    async def ingest_stats(self) -> dict[str, Any]:
        """Rates and totals of the ingest worker and the raw stream's backlog."""
        out: dict[str, Any] = {}
        if self.worker is not None:
            st = self.worker.stats
            out.update(
                points_per_s=round(st.rate(), 1),
                points=st.points,
                messages=st.messages,
                rejected=st.rejected,
                batches=st.batches,
                last_commit_ms=round(st.last_commit_s * 1000, 2),
            )
        if self.bus is not None:
            with contextlib.suppress(IronbridgeError):
                info = await self.bus.consumer_info(STREAM_RAW, INGEST_CONSUMER)
                out["backlog"] = info.num_pending
                out["unacked"] = info.num_ack_pending
        return out


async def run_until_stopped(
    settings: Settings,
    stop: asyncio.Event,
    on_ready: Callable[[Platform], Awaitable[None]] | None = None,
) -> None:
    """Run the platform until ``stop`` is set (Ctrl-C handling is the caller's)."""
    platform = Platform(settings)
    async with platform.running(stop):
        if on_ready is not None:
            await on_ready(platform)
        await stop.wait()
