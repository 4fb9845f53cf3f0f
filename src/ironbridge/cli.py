"""The ``ironbridge`` command line: up, demo, sim, admin, bench."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ironbridge import __version__
from ironbridge.gctune import tune_gc
from ironbridge.predict_cli import predict_app
from ironbridge.settings import Settings

console = Console()
#: tasks started by commands, kept referenced so the event loop does not drop them
_background: set[asyncio.Task[None]] = set()
app = typer.Typer(
    name="ironbridge",
    help="ironbridge: an open-source industrial internet platform.",
    no_args_is_help=True,
    add_completion=False,
)
sim_app = typer.Typer(help="Simulators that speak the real protocols to any endpoint.")
admin_app = typer.Typer(help="Administration: users, API keys, import and export.")
bench_app = typer.Typer(help="Benchmarks a user can run on their own copy of public data.")
app.add_typer(sim_app, name="sim")
app.add_typer(admin_app, name="admin")
app.add_typer(bench_app, name="bench")
app.add_typer(predict_app, name="predict")
worker_app = typer.Typer(help="Cluster mode: worker processes, each scaled out on its own.")
app.add_typer(worker_app, name="worker")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (DuckDB, SQLite, JetStream).")
]
HttpPort = Annotated[int | None, typer.Option("--http-port", help="Port of the API and console.")]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default ironbridge.toml).")
]


def load_settings(
    config: Path | None = None,
    data_dir: Path | None = None,
    http_port: int | None = None,
    **kw: Any,
) -> Settings:
    """Build settings from environment, TOML file and command-line overrides."""
    overrides: dict[str, Any] = {k: v for k, v in kw.items() if v is not None}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if http_port is not None:
        overrides["http_port"] = http_port
    if config is not None:
        if not config.exists():
            raise typer.BadParameter(f"no such settings file: {config}", param_hint="--config")
        Settings.model_config["toml_file"] = str(config)
    return Settings(**overrides)


def _loop_factory() -> Any:
    """Return the event loop factory: uvloop where installed, else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a pinned dependency
        return None
    return uvloop.new_event_loop


def _run(main: Any) -> None:
    """Run a coroutine factory ``main(stop)`` with Ctrl-C / SIGTERM setting ``stop``."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    from ironbridge.model import IronbridgeError

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner_ctx:
            runner_ctx.run(runner())
    except IronbridgeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"ironbridge {__version__}")


@app.command()
def up(config: ConfigFile = None, data_dir: DataDir = None, http_port: HttpPort = None) -> None:
    """Start the platform in embedded mode (one process plus its nats-server child)."""
    from ironbridge.app import configure_logging, run_until_stopped
    from ironbridge.terminal import show_running

    settings = load_settings(config, data_dir, http_port)
    configure_logging(settings.log_level)

    async def main(stop: asyncio.Event) -> None:
        async def ready(platform: Any) -> None:
            _background.add(
                asyncio.create_task(show_running(console, platform, stop), name="terminal")
            )

        await run_until_stopped(settings, stop, ready)

    _run(main)
    console.print("ironbridge stopped.")


@app.command()
def demo(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    http_port: HttpPort = None,
    trucks: Annotated[int, typer.Option(min=0)] = 200,
    excavators: Annotated[int, typer.Option(min=0)] = 50,
    gensets: Annotated[int, typer.Option(min=0)] = 20,
    faults: Annotated[bool, typer.Option(help="Inject faults into some machines.")] = True,
    plant: Annotated[bool, typer.Option(help="Simulated plant over OPC UA and Modbus.")] = True,
    nev_buses: Annotated[int, typer.Option(min=0, help="NEV buses over GB/T 32960 TCP.")] = 20,
    jt808_trucks: Annotated[int, typer.Option(min=0, help="Trucks over JT/T 808 TCP.")] = 20,
) -> None:
    """Start the platform with a simulated fleet connected over real MQTT."""
    from ironbridge.app import configure_logging, run_until_stopped
    from ironbridge.demo import start_demo_fleet
    from ironbridge.terminal import show_running

    settings = load_settings(config, data_dir, http_port, dev=True)
    if nev_buses or jt808_trucks:
        settings.vehicles.enabled = True
    configure_logging(settings.log_level)

    async def main(stop: asyncio.Event) -> None:
        async def ready(platform: Any) -> None:
            fleet = await start_demo_fleet(
                platform, trucks=trucks, excavators=excavators, gensets=gensets, faults=faults
            )
            if nev_buses or jt808_trucks:
                from ironbridge.vehicles import start_demo_vehicles

                assert platform.registry is not None
                _background.add(
                    await start_demo_vehicles(
                        platform.registry,
                        settings.vehicles,
                        stop,
                        buses=nev_buses,
                        trucks=jt808_trucks,
                    )
                )
            if plant:
                from ironbridge.demo_plant import start_demo_plant

                _background.add(await start_demo_plant(platform))
            _background.add(
                asyncio.create_task(show_running(console, platform, stop, fleet), name="terminal")
            )

        await run_until_stopped(settings, stop, ready)

    _run(main)
    console.print("ironbridge demo stopped.")


@sim_app.command("fleet")
def sim_fleet(
    api: Annotated[str, typer.Option(help="Platform API URL (provisions the devices).")] = (
        "http://127.0.0.1:8080"
    ),
    username: Annotated[str, typer.Option(help="User that may create assets and devices.")] = (
        "admin"
    ),
    password: Annotated[
        str, typer.Option(envvar="IRONBRIDGE_PASSWORD", prompt=True, hide_input=True)
    ] = "",
    mqtt: Annotated[str, typer.Option(help="MQTT endpoint host:port.")] = "127.0.0.1:11883",
    trucks: Annotated[int, typer.Option(min=0)] = 200,
    excavators: Annotated[int, typer.Option(min=0)] = 50,
    gensets: Annotated[int, typer.Option(min=0)] = 20,
    prefix: Annotated[str, typer.Option(help="Prefix of device and asset ids.")] = "",
    seed: int = 1,
) -> None:
    """Run the fleet simulator alone against any ironbridge endpoint."""
    from ironbridge.demo import run_standalone_fleet

    host, _, port = mqtt.rpartition(":")
    _run(
        lambda stop: run_standalone_fleet(
            console,
            stop,
            api=api,
            username=username,
            password=password,
            mqtt_host=host or "127.0.0.1",
            mqtt_port=int(port),
            trucks=trucks,
            excavators=excavators,
            gensets=gensets,
            prefix=prefix,
            seed=seed,
        )
    )


@sim_app.command("plant")
def sim_plant(
    opcua_port: Annotated[int, typer.Option(help="OPC UA port (stamping line).")] = 4841,
    modbus_port: Annotated[int, typer.Option(help="Modbus TCP port (body shop).")] = 5021,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    speed: Annotated[float, typer.Option(help="Simulated seconds per second.")] = 1.0,
) -> None:
    """Run the stamping line (OPC UA) and body shop (Modbus TCP) simulators."""
    from ironbridge.app import configure_logging
    from ironbridge.sim.plant import PlantSimulator

    configure_logging("INFO")

    async def main(stop: asyncio.Event) -> None:
        sim = PlantSimulator(speed=speed)
        async with sim.opcua_server(opcua_port, host) as url, sim.modbus_server(modbus_port, host):
            console.print(f"stamping line: {url}\nbody shop: modbus tcp {host}:{modbus_port}")
            await sim.run(stop)

    _run(main)


connect_app = typer.Typer(help="Run one connector near the machines, publishing to NATS.")
app.add_typer(connect_app, name="connect")
NatsUrl = Annotated[str, typer.Option("--nats-url", help="NATS server with JetStream.")]
NatsUser = Annotated[str, typer.Option("--nats-user", envvar="IRONBRIDGE_NATS__USER")]
NatsPassword = Annotated[
    str, typer.Option("--nats-password", envvar="IRONBRIDGE_NATS__PASSWORD", hide_input=True)
]
MapFile = Annotated[Path, typer.Option("--map", exists=True, help="YAML map of nodes/registers.")]


def _connect(map_file: Path, nats_url: str, user: str, password: str, **overrides: Any) -> None:
    from ironbridge.app import configure_logging
    from ironbridge.connect.config import load_yaml_config
    from ironbridge.connect.standalone import run_standalone

    configure_logging("INFO")
    config = load_yaml_config(map_file.read_text(), **overrides)
    _run(
        lambda stop: run_standalone(
            config,
            stop,
            nats_url=nats_url,
            user=user,
            password=password,
            name=map_file.stem,
            report=lambda st: console.print(st, highlight=False),
        )
    )


@connect_app.command("opcua")
def connect_opcua(
    map_file: MapFile,
    url: Annotated[str | None, typer.Option(help="opc.tcp:// URL (overrides the map).")] = None,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    nats_user: NatsUser = "",
    nats_password: NatsPassword = "",
) -> None:
    """Subscribe to the mapped nodes of an OPC UA server and publish their changes."""
    _connect(map_file, nats_url, nats_user, nats_password, kind="opcua", url=url)


@connect_app.command("modbus")
def connect_modbus(
    map_file: MapFile,
    host: Annotated[str | None, typer.Option(help="Device host (overrides the map).")] = None,
    port: Annotated[int | None, typer.Option(help="Device port (overrides the map).")] = None,
    nats_url: NatsUrl = "nats://127.0.0.1:4222",
    nats_user: NatsUser = "",
    nats_password: NatsPassword = "",
) -> None:
    """Poll a Modbus TCP device through its register map and publish the values."""
    _connect(map_file, nats_url, nats_user, nats_password, kind="modbus", host=host, port=port)


def _registry(config: Path | None, data_dir: Path | None) -> Any:
    from ironbridge.store.sql import SqlRegistry

    settings = load_settings(config, data_dir)
    return SqlRegistry.open(settings.registry_database_url)


@admin_app.command("create-user")
def admin_create_user(
    username: str,
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "viewer",
    tenant: Annotated[str, typer.Option(help="Tenant id")] = "root",
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Create a user."""
    from ironbridge.model import IronbridgeError, Role

    registry = _registry(config, data_dir)
    try:
        user = registry.create_user(None, tenant, username, password, Role(role))
    except (IronbridgeError, ValueError) as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        registry.close()
    console.print(f"created user {user.username} ({user.role}) in tenant {user.tenant_id}")


@admin_app.command("set-password")
def admin_set_password(
    username: str,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)
    ] = "",
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Set a user's password (for example a lost admin password)."""
    from ironbridge.model import IronbridgeError

    registry = _registry(config, data_dir)
    try:
        registry.reset_password(username, password)
    except IronbridgeError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        registry.close()
    console.print(f"password of {username} changed")


@admin_app.command("export")
def admin_export(
    output: Annotated[Path, typer.Argument(help="YAML file to write ('-' for stdout)")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Export asset types and assets as YAML."""
    from ironbridge.store.sql import export_yaml

    registry = _registry(config, data_dir)
    try:
        text = export_yaml(registry, None)
    finally:
        registry.close()
    if str(output) == "-":
        sys.stdout.write(text)
    else:
        output.write_text(text)
        console.print(f"wrote {output}")


@admin_app.command("import")
def admin_import(
    source: Annotated[Path, typer.Argument(help="YAML file of asset types and assets")],
    tenant: Annotated[str, typer.Option(help="Tenant that receives the entities")] = "root",
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Import asset types and assets from YAML (errors name the document path)."""
    from ironbridge.model import IronbridgeError
    from ironbridge.store.sql import import_yaml

    registry = _registry(config, data_dir)
    try:
        report = import_yaml(registry, None, source.read_text(), tenant_id=tenant)
    except IronbridgeError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        registry.close()
    console.print(str(report))


@bench_app.command("cmapss")
def bench_cmapss(
    data: Annotated[Path, typer.Option(help="Folder with NASA's train_/test_/RUL_FD00x.txt")],
    subsets: Annotated[str, typer.Option(help="Comma-separated, e.g. FD001,FD003")] = "FD001",
) -> None:
    """Evaluate the RUL model on C-MAPSS with the standard protocol."""
    from ironbridge.predict.bench import format_results, run_cmapss

    names = [s.strip().upper() for s in subsets.split(",") if s.strip()]
    console.print(format_results("cmapss", run_cmapss(data, names)), highlight=False)


@bench_app.command("skab")
def bench_skab(
    data: Annotated[Path, typer.Option(help="Folder searched for SKAB CSV files")],
) -> None:
    """Evaluate the anomaly model on SKAB with its own protocol."""
    from ironbridge.predict.bench import format_results, run_skab

    console.print(format_results("skab", run_skab(data)), highlight=False)


@bench_app.command("nab")
def bench_nab(
    data: Annotated[Path, typer.Option(help="NAB root folder (data/, labels/)")],
) -> None:
    """Evaluate the anomaly model on NAB's machine temperature series."""
    from ironbridge.predict.bench import format_results, run_nab

    console.print(format_results("nab", run_nab(data)), highlight=False)


@app.command("edge")
def edge(
    config: Annotated[Path, typer.Option("--config", help="The agent's edge.toml.")],
) -> None:
    """Run the edge agent: collect locally, buffer on disk, forward as Sparkplug B."""
    import logging

    from ironbridge.edge.agent import EdgeAgent
    from ironbridge.edge.config import load_config

    # not app.configure_logging: importing the platform would double the agent's memory
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = load_config(config)

    async def main(stop: asyncio.Event) -> None:
        import signal

        agent = EdgeAgent(cfg)
        loop = asyncio.get_running_loop()
        # SIGUSR1: stop collecting, keep forwarding (empty the buffer before a shutdown)
        loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(agent.pause_sources()))
        await agent.run(stop)

    _run(main)


@app.command("api")
def api_only(
    config: ConfigFile = None, data_dir: DataDir = None, http_port: HttpPort = None
) -> None:
    """Start the API and console only (cluster mode: ingest runs in ``worker ingest``)."""
    from ironbridge.app import configure_logging, run_until_stopped

    settings = load_settings(config, data_dir, http_port, ingest={"in_process": False})
    configure_logging(settings.log_level)

    async def main(stop: asyncio.Event) -> None:
        await run_until_stopped(settings, stop)

    _run(main)


@admin_app.command("migrate")
def admin_migrate(
    to: Annotated[str, typer.Option("--to", help="Target PostgreSQL URL (postgresql://…).")],
    config: ConfigFile = None,
    data_dir: DataDir = None,
) -> None:
    """Copy an embedded installation (registry and telemetry) into PostgreSQL (stopped first)."""
    from ironbridge.cluster.migrate import migrate_installation
    from ironbridge.model import IronbridgeError

    settings = load_settings(config, data_dir)
    try:
        report = migrate_installation(
            settings.data_dir.resolve(), settings.registry_database_url, to
        )
    except IronbridgeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    rows = sum(report.registry_rows.values())
    console.print(
        f"migrated {rows} registry rows in {len(report.registry_rows)} tables, "
        f"{report.points} points, {report.events} events, "
        f"{len(report.checkpoints)} checkpoints; counts verified"
    )


WorkerId = Annotated[str | None, typer.Option("--id", help="Worker id (default <host>-<pid>).")]
MetricsPort = Annotated[
    int | None, typer.Option("--metrics-port", help="Port of /healthz, /readyz, /metrics.")
]


def _worker_settings(
    config: Path | None, data_dir: Path | None, metrics_port: int | None
) -> Settings:
    """Settings of a worker process, with logging configured."""
    from ironbridge.app import configure_logging

    settings = load_settings(config, data_dir)
    if metrics_port is not None:
        settings.ingest.metrics_port = metrics_port
    configure_logging(settings.log_level)
    return settings


@worker_app.command("ingest")
def worker_ingest(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    worker_id: WorkerId = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run an ingest worker: holds IB_RAW partitions, commits them to the store."""
    from ironbridge.cluster.ingest_role import run_ingest_worker

    settings = _worker_settings(config, data_dir, metrics_port)

    async def main(stop: asyncio.Event) -> None:
        await run_ingest_worker(settings, stop, worker_id)

    _run(main)


@worker_app.command("rules")
def worker_rules(
    config: ConfigFile = None,
    data_dir: DataDir = None,
    worker_id: WorkerId = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run a rules worker: holds partitions of the assets, evaluates their rules, raises alarms."""
    from ironbridge.cluster.rules_role import run_rules_worker

    settings = _worker_settings(config, data_dir, metrics_port)

    async def main(stop: asyncio.Event) -> None:
        await run_rules_worker(settings, stop, worker_id)

    _run(main)


def main() -> None:
    """Entry point of the ``ironbridge`` script."""
    tune_gc()
    with contextlib.suppress(KeyboardInterrupt):
        app()


__all__ = ["Table", "app", "main"]
