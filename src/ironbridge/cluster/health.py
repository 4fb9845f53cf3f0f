"""A tiny HTTP endpoint for worker processes: ``/healthz``, ``/readyz``, ``/metrics``.

Workers have no API; orchestrators (systemd watchdogs, Kubernetes probes, Prometheus)
still need to ask them how they are. Plain asyncio streams, no framework.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

_LOGGER = logging.getLogger(__name__)

#: returns (ready, reason)
ReadyCheck = Callable[[], Awaitable[tuple[bool, str]]]
#: returns Prometheus text exposition format
MetricsRender = Callable[[], Awaitable[str]]


class HealthServer:
    """Serves liveness, readiness and Prometheus metrics on one port."""

    def __init__(self, host: str, port: int, ready: ReadyCheck, metrics: MetricsRender) -> None:
        """Configure (nothing listens until :meth:`start`)."""
        self._host, self._port = host, port
        self._ready, self._metrics = ready, metrics
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (the configured one, or the kernel's pick for 0)."""
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    async def start(self) -> None:
        """Start listening."""
        self._server = await asyncio.start_server(self._handle, self._host, self._port)
        _LOGGER.info("health and metrics on http://%s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else "/"
            status, ctype, body = await self._route(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _route(self, path: str) -> tuple[str, str, bytes]:
        text = "text/plain; charset=utf-8"
        if path == "/healthz":
            return "200 OK", text, b"ok\n"
        if path == "/readyz":
            ok, reason = await self._ready()
            return ("200 OK" if ok else "503 Service Unavailable"), text, (reason + "\n").encode()
        if path == "/metrics":
            body = await self._metrics()
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.encode()
        return "404 Not Found", text, b"not found\n"


def render_metrics(samples: list[tuple[str, str, str, dict[str, str], float]]) -> str:
    """Render samples ``(name, type, help, labels, value)`` in Prometheus text format."""
    out: list[str] = []
    seen: set[str] = set()
    for name, kind, help_text, labels, value in samples:
        if name not in seen:
            seen.add(name)
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
        label = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        out.append(f"{name}{{{label}}} {value}" if label else f"{name} {value}")
    return "\n".join(out) + "\n"
