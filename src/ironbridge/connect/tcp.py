"""The session loop shared by the framed TCP endpoints (GB/T 32960, JT/T 808).

A subclass supplies the protocol: how a byte stream splits into frames, how one frame
is answered, and how a session is named in logs. This class owns the socket side:
accepting, idle time-outs, buffering partial frames, counting malformed input once per
session, writing answers with their latency, and closing cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import ClassVar, Generic, Protocol, TypeVar

from ironbridge.connect.vehicles import (
    EndpointStats,
    FrameObserver,
    RawPublisher,
    VehicleSink,
    log_now,
)
from ironbridge.model import IronbridgeError

_LOGGER = logging.getLogger(__name__)
READ_SIZE = 65536
#: a peer that sends this much without a frame boundary is talking nonsense
MAX_BUFFER = 4 * 65536


class TcpSession(Protocol):
    """What the loop needs of a protocol's session state."""

    peer: str
    malformed: int
    last_error: str
    writer: asyncio.StreamWriter | None


S = TypeVar("S", bound=TcpSession)


class FramedServer(Generic[S]):
    """An asyncio TCP endpoint that answers framed requests, one session per socket."""

    #: protocol name for logs ("GB/T 32960")
    label: ClassVar[str] = "TCP"

    def __init__(
        self,
        publisher: RawPublisher,
        *,
        host: str,
        port: int,
        idle_timeout_s: float,
        observers: tuple[FrameObserver, ...] = (),
    ) -> None:
        self._host = host
        self._port = port
        self._idle = idle_timeout_s
        self.stats = EndpointStats()
        self._sink = VehicleSink(publisher, self.stats, observers)
        self._server: asyncio.Server | None = None
        self.sessions: dict[str, S] = {}
        #: share the port with other processes (SO_REUSEPORT: the kernel spreads connections)
        self.reuse_port = False
        #: refuse connections beyond this many open sessions (0: no cap). An overloaded
        #: endpoint otherwise holds every connection until its handler runs, while the
        #: terminals time out and reconnect: descriptors grow until the process runs out.
        self.max_sessions = 0

    # -- protocol hooks ----------------------------------------------------------------
    def _new_session(self, peer: str, writer: asyncio.StreamWriter) -> S:
        raise NotImplementedError

    def _split(self, buf: bytes) -> tuple[list[bytes], bytes, int]:
        """Return (complete frames, the unfinished rest, bytes skipped as garbage)."""
        raise NotImplementedError

    async def _frame(self, session: S, raw: bytes) -> bytes | None:
        """Handle one frame; return the answer to write, if any."""
        raise NotImplementedError

    def _who(self, session: S) -> str:
        """How a session is named in logs (its VIN, phone number, ...)."""
        raise NotImplementedError

    def _closed(self, session: S) -> bool:
        """True once the protocol has ended the session (logout, a newer login)."""
        return False

    def _forget(self, session: S) -> None:
        """Drop protocol indexes of a session that ended."""

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting terminals."""
        self._server = await asyncio.start_server(
            self._handle,
            self._host,
            self._port,
            limit=READ_SIZE,
            backlog=4096,
            reuse_port=self.reuse_port or None,
        )
        _LOGGER.info("%s endpoint listening on %s:%d", self.label, self._host, self.port)

    async def close(self) -> None:
        """Stop accepting and close every session."""
        if self._server is not None:
            self._server.close()
            for s in list(self.sessions.values()):
                if s.writer is not None:
                    s.writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    # -- the session loop --------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        if self.max_sessions and self.stats.sessions_open >= self.max_sessions:
            self.stats.refused_full += 1
            if log_now(self.stats.refused_full):
                _LOGGER.warning(
                    "%s endpoint full (%d sessions): refusing %s",
                    self.label,
                    self.max_sessions,
                    peer,
                )
            writer.close()
            return
        session = self._new_session(peer, writer)
        key = f"{peer}#{id(session)}"
        self.sessions[key] = session
        self.stats.sessions_open += 1
        self.stats.sessions_total += 1
        buf = b""
        try:
            while not self._closed(session):
                try:
                    async with asyncio.timeout(self._idle):
                        chunk = await reader.read(READ_SIZE)
                except TimeoutError:
                    self.stats.idle_closed += 1
                    _LOGGER.info(
                        "%s session %s (%s) idle, closing", self.label, peer, self._who(session)
                    )
                    break
                if not chunk:
                    break
                received = time.perf_counter_ns()
                frames, buf, skipped = self._split(buf + chunk)
                if skipped:
                    self._malformed(session, f"{skipped} bytes outside any frame")
                if len(buf) > MAX_BUFFER:
                    self._malformed(session, "no frame boundary in 256 KiB")
                    buf = b""
                await self._answer(session, writer, frames, received)
        except (ConnectionError, OSError):
            pass
        finally:
            self._end(session, key, writer)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(
        self, session: S, writer: asyncio.StreamWriter, frames: list[bytes], received: int
    ) -> None:
        for raw in frames:
            try:
                answer = await self._frame(session, raw)
            except IronbridgeError as exc:
                # the registry or the bus failed: no answer, the terminal retries
                self.stats.publish_errors += 1
                if log_now(self.stats.publish_errors):
                    _LOGGER.warning("%s session %s: %s", self.label, session.peer, exc)
                continue
            if answer:
                writer.write(answer)
                self.stats.answered += 1
                self.stats.note_latency((time.perf_counter_ns() - received) // 1000)
            if self._closed(session):
                break
        await writer.drain()

    def _end(self, session: S, key: str, writer: asyncio.StreamWriter) -> None:
        self.sessions.pop(key, None)
        self._forget(session)
        self.stats.sessions_open -= 1
        writer.close()

    def _malformed(self, session: S, reason: str) -> None:
        session.malformed += 1
        session.last_error = reason
        self.stats.malformed += 1
        if session.malformed == 1:
            _LOGGER.warning(
                "%s session %s (%s): malformed input: %s (further ones counted only)",
                self.label,
                session.peer,
                self._who(session),
                reason,
            )


__all__ = ["MAX_BUFFER", "READ_SIZE", "FramedServer", "TcpSession"]
