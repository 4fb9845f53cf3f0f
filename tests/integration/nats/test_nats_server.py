"""Life cycle of the embedded nats-server child: start, health, stop, restart, failures."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from nats_testkit import await_until, free_ports, make_server, process_alive

from ironbridge.bus import Bus, EmbeddedNatsServer, find_nats_server
from ironbridge.model import PermanentError

pytestmark = pytest.mark.integration


async def test_starts_healthy_and_stops_without_leaving_the_child(tmp_path: Path) -> None:
    server = make_server(tmp_path / "nats")
    async with server:
        pid = server.pid
        assert pid is not None
        assert process_alive(pid)
        async with httpx.AsyncClient() as http:
            health = await http.get(f"{server.monitor_url}/healthz?js-enabled-only=true")
            varz = (await http.get(f"{server.monitor_url}/varz")).json()
        assert health.json() == {"status": "ok"}
        assert varz["mqtt"]["port"] == server.mqtt_port
        assert varz["auth_required"] is True
        # secrets and config are private to the owner
        for name in ("internal.secret", "nats-server.conf"):
            mode = stat.S_IMODE((tmp_path / "nats" / name).stat().st_mode)
            assert mode == 0o600, name
        assert (tmp_path / "nats" / "jetstream").is_dir()
    assert server.pid is None
    assert not process_alive(pid)
    await server.stop()  # idempotent


async def test_restart_keeps_jetstream_data_and_internal_password(tmp_path: Path) -> None:
    server = make_server(tmp_path / "nats")
    async with server:
        password = server.internal_password
        async with Bus.connect(
            server.client_url, user=server.internal_user, password=password
        ) as bus:
            await bus.ensure_streams()
            seq = await bus.publish("ib.v1.dev-r.telemetry", b"kept")
    restarted = EmbeddedNatsServer(
        tmp_path / "nats",
        port=free_ports(1)[0],
        mqtt_port=server.mqtt_port,
        monitor_port=free_ports(1)[0],
    )
    async with restarted:
        assert restarted.internal_password == password
        async with Bus.connect(
            restarted.client_url, user=restarted.internal_user, password=password
        ) as bus:
            await bus.ensure_streams()
            msgs = await bus.read_stream("IB_RAW", "ib.v1.dev-r.telemetry", 10)
    assert [(m.stream_seq, m.data) for m in msgs] == [(seq, b"kept")]


async def test_child_dies_with_its_parent(tmp_path: Path) -> None:
    port, mqtt_port, monitor_port = free_ports(3)
    script = textwrap.dedent(
        f"""
        import asyncio
        from ironbridge.bus import EmbeddedNatsServer

        async def main():
            server = EmbeddedNatsServer(
                {str(tmp_path / "nats")!r}, port={port}, mqtt_port={mqtt_port},
                monitor_port={monitor_port},
            )
            await server.start()
            print(server.pid, flush=True)
            await asyncio.Event().wait()

        asyncio.run(main())
        """
    )
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    assert parent.stdout is not None
    try:
        line = await asyncio.wait_for(parent.stdout.readline(), 20)
        child = int(line)
        assert process_alive(child)
    finally:
        parent.send_signal(signal.SIGKILL)  # no chance to clean up: the kernel must
        await parent.wait()
    await await_until(lambda: not process_alive(child), 10, "nats-server to die with its parent")


async def test_port_in_use_is_a_clear_permanent_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        mqtt_port, monitor_port = free_ports(2)
        server = EmbeddedNatsServer(
            tmp_path / "nats", port=port, mqtt_port=mqtt_port, monitor_port=monitor_port
        )
        with pytest.raises(PermanentError, match="port is in use"):
            await server.start()
    assert server.pid is None


async def test_missing_binary_is_a_permanent_error(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not an executable"):
        find_nats_server(str(tmp_path / "nope"))
    server = make_server(tmp_path / "nats", server_path=str(tmp_path / "nope"))
    with pytest.raises(PermanentError):
        await server.start()


def test_finds_the_wheel_binary_next_to_the_interpreter() -> None:
    found = find_nats_server()
    assert os.access(found, os.X_OK)
    assert Path(found).name == "nats-server"
