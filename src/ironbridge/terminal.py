"""What the terminal shows while the platform runs: what started, where, and live rates."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

if TYPE_CHECKING:
    from ironbridge.app import Platform


class FleetStats(Protocol):
    """A running simulator that reports what it sent."""

    def stats(self) -> dict[str, Any]:
        """Counters: devices, connected, messages, points, ..."""
        ...


def startup_panel(platform: Platform) -> Panel:
    """The panel printed once at start: URLs, endpoints, credentials."""
    info = platform.info
    assert info is not None
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    grid.add_row("Console", f"{info.http_url}/")
    grid.add_row("REST API", f"{info.http_url}/api/v1  (OpenAPI: {info.http_url}/docs)")
    grid.add_row(
        "MQTT", f"mqtt://{info.mqtt_host}:{info.mqtt_port}  topic ib/v1/<device>/telemetry"
    )
    grid.add_row(
        "HTTP ingest", f"POST {info.http_url}/api/v1/telemetry (Basic: device id + credential)"
    )
    grid.add_row("NATS", info.nats_url)
    grid.add_row("Data", str(info.data_dir))
    if info.admin_password:
        grid.add_row(
            "Admin login",
            f"admin / [bold yellow]{info.admin_password}[/]  (shown once: change it, or "
            "use 'ironbridge admin set-password admin')",
        )
    else:
        grid.add_row("Admin login", "admin (password set earlier)")
    return Panel(grid, title="[bold]ironbridge is running[/]", subtitle="Ctrl-C stops everything")


def _status(platform: Platform, fleet: FleetStats | None) -> Table:
    table = Table.grid(padding=(0, 3))
    stats = platform.worker.stats if platform.worker is not None else None
    row = []
    if stats is not None:
        row += [
            f"[bold green]ingest {stats.rate():>10,.0f} points/s[/]",
            f"stored {stats.points:,} points",
            f"messages {stats.messages:,}",
            f"rejected {stats.rejected:,}",
        ]
    if fleet is not None:
        fs = fleet.stats()
        row += [
            f"fleet {fs.get('connected', 0)}/{fs.get('devices', 0)} connected",
            f"sent {fs.get('points', 0):,} points",
        ]
    table.add_row(*row)
    return table


async def show_running(
    console: Console, platform: Platform, stop: asyncio.Event, fleet: FleetStats | None = None
) -> None:
    """Print the startup panel, then a live status line until ``stop`` is set."""
    console.print(startup_panel(platform))
    with Live(
        _status(platform, fleet), console=console, refresh_per_second=2, transient=True
    ) as live:
        while not stop.is_set():
            live.update(_status(platform, fleet))
            try:
                await asyncio.wait_for(stop.wait(), timeout=1.0)
            except TimeoutError:
                continue
