"""A real ironbridge process for integration tests, and helpers around it."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_PASSWORD = "admin-test-password"
#: factor on every wait's time limit. A limit only bounds how long a failing test hangs;
#: a passing test returns as soon as its condition holds. CI shares two cores with
#: three NATS nodes, PostgreSQL and the platform, so limits there are generous.
PATIENCE = float(os.environ.get("IRONBRIDGE_TEST_PATIENCE", "3" if IN_CI else "1"))


def patience(timeout: float) -> float:
    """Return the time limit of a wait, scaled by :data:`PATIENCE`."""
    return timeout * PATIENCE


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require(available: bool, what: str, how: str) -> None:
    """Skip (on a workstation) or fail (in CI) when a needed service is missing."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but not available: {how}")
    pytest.skip(f"{what} not available; to run this test: {how}")


def wait_for(
    condition: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``.

    ``timeout`` is scaled by :data:`PATIENCE`.
    """
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:
            last_exc = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}: {last_exc}")


class PlatformProcess:
    """``python -m ironbridge up`` in a data directory, on free ports."""

    def __init__(
        self,
        data_dir: Path,
        extra_env: dict[str, str] | None = None,
        command: tuple[str, ...] = ("up",),
    ) -> None:
        self.data_dir = data_dir
        self.command = command
        self.http_port = free_port()
        self.nats_port = free_port()
        self.mqtt_port = free_port()
        self.monitor_port = free_port()
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._clients: list[httpx.Client] = []
        self.log_path = data_dir.parent / f"{data_dir.name}-platform.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("IRONBRIDGE_")}
        env.update(
            {
                "IRONBRIDGE_DATA_DIR": str(self.data_dir),
                "IRONBRIDGE_HTTP_PORT": str(self.http_port),
                "IRONBRIDGE_NATS__PORT": str(self.nats_port),
                "IRONBRIDGE_NATS__MQTT_PORT": str(self.mqtt_port),
                "IRONBRIDGE_NATS__MONITOR_PORT": str(self.monitor_port),
                "IRONBRIDGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "IRONBRIDGE_CONFIG": str(self.data_dir / "absent.toml"),
                "COLUMNS": "200",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60.0) -> PlatformProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ironbridge", *self.command],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def healthy() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"platform exited with {self.proc.returncode}: {self.log()}")
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200

        try:
            wait_for(healthy, timeout=timeout, interval=0.1, what="the platform to answer /healthz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- platform log ---\n{self.log()}") from exc
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path.exists() else ""

    def stop(self, timeout: float = 30.0) -> int:
        """Ctrl-C the platform and wait for it (and its children) to exit."""
        assert self.proc is not None
        self._close_clients()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode or 0)

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash would."""
        assert self.proc is not None
        self._close_clients()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    # -- API helpers ---------------------------------------------------------------
    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.login()}"}
        client = httpx.Client(base_url=self.url, headers=headers, timeout=30.0)
        self._clients.append(client)
        return client

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()

    def login(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        r = httpx.post(
            f"{self.url}/api/v1/auth/login",
            json={"username": username, "password": password},
            timeout=30.0,
        )
        r.raise_for_status()
        return str(r.json()["token"])


SENSOR_TYPE = """
name: test_sensor
version: 1
measurements:
  - {name: temperature, unit: degC, min: -40, max: 150}
  - {name: pressure, unit: kPa, min: 0, max: 1000}
  - {name: running, dtype: bool}
attributes:
  - {name: serial, required: true}
"""


def provision(api: httpx.Client, device_id: str, asset_id: str | None = None) -> tuple[str, str]:
    """Create the test asset type (once), an asset and a device; return (asset, credential)."""
    r = api.post("/api/v1/asset-types", content=SENSOR_TYPE, headers={"Content-Type": "text/yaml"})
    assert r.status_code in (201, 409), r.text
    asset_id = asset_id or f"asset-{device_id}"
    r = api.post(
        "/api/v1/assets",
        json={"id": asset_id, "type_name": "test_sensor", "attributes": {"serial": device_id}},
    )
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": device_id, "asset_ids": [asset_id]})
    assert r.status_code == 201, r.text
    return asset_id, str(r.json()["credential"])


def basic(device_id: str, credential: str) -> dict[str, str]:
    """HTTP Basic header for a device."""
    token = base64.b64encode(f"{device_id}:{credential}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class Device:
    """A paho MQTT 2.x client acting as one device."""

    def __init__(self, port: int, device_id: str, credential: str | None) -> None:
        import paho.mqtt.client as mqtt

        self.device_id = device_id
        self.connect_rc: Any = None
        self.disconnects = 0
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, clean_session=True
        )
        if credential is not None:
            self.client.username_pw_set(device_id, credential)

        def on_connect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self.connect_rc = rc

        def on_disconnect(client: Any, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
            self.disconnects += 1

        self.client.on_connect = on_connect
        self.client.on_disconnect = on_disconnect
        self.port = port

    def connect(self, timeout: float = 10.0) -> bool:
        """Connect; return True if the broker accepted the credentials."""
        self.client.connect("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        wait_for(lambda: self.connect_rc is not None, timeout, what="CONNACK")
        if self.connect_rc.is_failure:
            self.close()
            return False
        return True

    def publish(self, payload: bytes, topic: str | None = None, timeout: float = 10.0) -> bool:
        """Publish QoS 1 and wait for the PUBACK; return True if it came."""
        info = self.client.publish(topic or f"ib/v1/{self.device_id}/telemetry", payload, qos=1)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return bool(info.is_published())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
