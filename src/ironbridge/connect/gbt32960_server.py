"""GB/T 32960.3 TCP endpoint (2016 ``##`` and 2025 ``$$``): sessions, platform answers, publish.

Each connection is one :class:`Gbt32960Session` with an explicit state
(``connected`` -> ``logged_in`` -> ``logged_out``). A malformed frame is answered with
an error flag where the header can still be read, logged once per session, counted,
and the session goes on; an idle session is closed after ``idle_timeout_s``. A second
login of the same VIN closes the older session (GB/T 32960 Annex B).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from ironbridge.codec.gbt32960 import (
    CodecError,
    Command,
    Edition,
    Frame,
    RealtimeReport,
    ResponseFlag,
    VehicleLogin,
    VehicleLogin2025,
    VehicleLogout,
    build_response,
    decode_frame,
    flatten_report,
    split_stream,
)
from ironbridge.connect.vehicles import (
    SESSION_EVENT_KIND,
    EndpointStats,
    FrameObserver,
    RawPublisher,
    VehicleDirectory,
    VehicleIdentity,
    VehicleSink,
    log_now,
)
from ironbridge.model import Event, IronbridgeError, from_datetime

__all__ = ["Gbt32960Server", "Gbt32960Session", "SessionState"]

_LOGGER = logging.getLogger(__name__)
_READ_SIZE = 65536
#: a peer that sends this much without one complete frame is not a terminal
_MAX_BUFFER = 4 * 65536


class SessionState(StrEnum):
    """Where a terminal session stands."""

    CONNECTED = "connected"
    LOGGED_IN = "logged_in"
    LOGGED_OUT = "logged_out"
    CLOSED = "closed"


@dataclass(slots=True)
class Gbt32960Session:
    """The state of one terminal connection."""

    peer: str
    state: SessionState = SessionState.CONNECTED
    vin: str = ""
    edition: Edition | None = None
    identity: VehicleIdentity | None = None
    login_serial: int | None = None
    frames: int = 0
    malformed: int = 0
    last_error: str = ""
    opened_at: float = field(default_factory=time.monotonic)
    writer: asyncio.StreamWriter | None = None


def _error_flag(edition: Edition, flag: ResponseFlag) -> int:
    # 2016 defines only success/error/VIN duplicate; the finer 2025 codes map to "error".
    if edition == Edition.V2016 and flag not in (ResponseFlag.SUCCESS, ResponseFlag.VIN_DUPLICATE):
        return ResponseFlag.ERROR
    return flag


def _header_only(raw: bytes) -> Frame | None:
    """Read command and VIN of a frame whose BCC or data unit is bad, to answer an error."""
    if len(raw) < 25 or raw[:2] not in (b"##", b"$$"):
        return None
    return Frame(
        edition=Edition.V2016 if raw[:2] == b"##" else Edition.V2025,
        command=raw[2],
        response=raw[3],
        vin=raw[4:21].rstrip(b"\x00 ").decode("ascii", errors="replace"),
        data=raw[24:30] if len(raw) >= 31 else b"",
    )


class Gbt32960Server:
    """An asyncio TCP server speaking the platform side of GB/T 32960.3."""

    def __init__(
        self,
        directory: VehicleDirectory,
        publisher: RawPublisher,
        *,
        host: str = "127.0.0.1",
        port: int = 32960,
        idle_timeout_s: float = 180.0,
        ack_realtime: bool = True,
        observers: tuple[FrameObserver, ...] = (),
    ) -> None:
        self._directory = directory
        self._host = host
        self._port = port
        self._idle = idle_timeout_s
        self._ack_realtime = ack_realtime
        self.stats = EndpointStats()
        self._sink = VehicleSink(publisher, self.stats, observers)
        self._server: asyncio.Server | None = None
        self.sessions: dict[str, Gbt32960Session] = {}
        self._by_vin: dict[str, Gbt32960Session] = {}

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting terminals."""
        self._server = await asyncio.start_server(
            self._handle, self._host, self._port, limit=_READ_SIZE, backlog=4096
        )
        _LOGGER.info("GB/T 32960 endpoint listening on %s:%d", self._host, self.port)

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

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        session = Gbt32960Session(peer=peer, writer=writer)
        key = f"{peer}#{id(session)}"
        self.sessions[key] = session
        self.stats.sessions_open += 1
        self.stats.sessions_total += 1
        buf = b""
        try:
            while True:
                try:
                    async with asyncio.timeout(self._idle):
                        chunk = await reader.read(_READ_SIZE)
                except TimeoutError:
                    self.stats.idle_closed += 1
                    _LOGGER.info("GB/T 32960 session %s (%s) idle, closing", peer, session.vin)
                    break
                if not chunk:
                    break
                received = time.perf_counter_ns()
                frames, buf, skipped = split_stream(buf + chunk)
                if skipped:
                    self._malformed(session, f"{skipped} bytes outside any frame")
                if len(buf) > _MAX_BUFFER:
                    self._malformed(session, "no frame boundary in 256 KiB")
                    buf = b""
                for raw in frames:
                    try:
                        answer = await self._frame(session, raw)
                    except IronbridgeError as exc:
                        # the registry or the bus failed: no answer, the terminal retries
                        self.stats.publish_errors += 1
                        if log_now(self.stats.publish_errors):
                            _LOGGER.warning("GB/T 32960 session %s: %s", peer, exc)
                        continue
                    if answer:
                        writer.write(answer)
                        self.stats.answered += 1
                        self.stats.note_latency((time.perf_counter_ns() - received) // 1000)
                    if session.state is SessionState.CLOSED:
                        break
                await writer.drain()
                if session.state is SessionState.CLOSED:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            session.state = SessionState.CLOSED
            self.sessions.pop(key, None)
            if session.vin and self._by_vin.get(session.vin) is session:
                del self._by_vin[session.vin]
            self.stats.sessions_open -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _malformed(self, session: Gbt32960Session, reason: str) -> None:
        session.malformed += 1
        session.last_error = reason
        self.stats.malformed += 1
        if session.malformed == 1:
            _LOGGER.warning(
                "GB/T 32960 session %s (%s): malformed input: %s (further ones counted only)",
                session.peer,
                session.vin or "no login",
                reason,
            )

    async def _frame(self, session: Gbt32960Session, raw: bytes) -> bytes | None:
        self.stats.frames += 1
        session.frames += 1
        try:
            msg = decode_frame(raw)
        except CodecError as exc:
            self._malformed(session, str(exc))
            head = _header_only(raw)
            if head is None or head.response != ResponseFlag.COMMAND:
                return None
            flag = ResponseFlag.STRUCTURE_ERROR if exc.field != "bcc" else ResponseFlag.ERROR
            return build_response(head, _error_flag(head.edition, flag))
        frame = msg.frame
        if not frame.is_command:
            return None  # a terminal's answer to a platform command: nothing to answer
        session.edition = frame.edition
        cmd = frame.command
        unit = msg.unit
        if frame.encryption != 0x01:
            self._malformed(session, f"encrypted data unit (method 0x{frame.encryption:02X})")
            return build_response(frame, _error_flag(frame.edition, ResponseFlag.DECRYPTION_ERROR))
        if cmd == Command.HEARTBEAT:
            return build_response(frame)
        if cmd == Command.TIME_SYNC:
            return build_response(frame, time=datetime.now(UTC))
        if cmd == Command.VEHICLE_LOGIN and isinstance(unit, VehicleLogin | VehicleLogin2025):
            return await self._login(session, frame, unit)
        if session.state is not SessionState.LOGGED_IN or frame.vin != session.vin:
            self.stats.rejected += 1
            return build_response(frame, _error_flag(frame.edition, ResponseFlag.VIN_UNKNOWN))
        assert session.identity is not None
        if cmd in (Command.REALTIME, Command.REISSUE) and isinstance(unit, RealtimeReport):
            flat = flatten_report(unit, frame.edition, asset_id=session.identity.asset_id)
            try:
                await self._sink.publish(
                    session.identity,
                    [(flat.ts_us, flat.values)],
                    flat.events,
                    msg_id=f"gb-{frame.vin}-{flat.ts_us}-{cmd}",
                )
            except IronbridgeError as exc:
                self.stats.publish_errors += 1
                if log_now(self.stats.publish_errors):
                    _LOGGER.warning("GB/T 32960 %s: not queued: %s", frame.vin, exc)
                return build_response(frame, ResponseFlag.ERROR)
            return build_response(frame) if self._ack_realtime else None
        if cmd == Command.VEHICLE_LOGOUT and isinstance(unit, VehicleLogout):
            await self._session_event(session, from_datetime(unit.time), "logout", {})
            session.state = SessionState.LOGGED_OUT
            return build_response(frame)
        # platform login/logout (relay platforms) and commands ironbridge does not model
        return build_response(frame, ResponseFlag.ERROR)

    async def _login(
        self, session: Gbt32960Session, frame: Frame, unit: VehicleLogin | VehicleLogin2025
    ) -> bytes:
        info = {"iccid": unit.iccid, "edition": str(frame.edition.value)}
        identity = await self._directory.resolve("gbt32960", frame.vin, info)
        if identity is None:
            self.stats.rejected += 1
            _LOGGER.info("GB/T 32960 login of unknown or pending VIN %s refused", frame.vin)
            return build_response(frame, _error_flag(frame.edition, ResponseFlag.VIN_UNKNOWN))
        older = self._by_vin.get(frame.vin)
        if older is not None and older is not session:
            _LOGGER.info("GB/T 32960 VIN %s logged in again; closing the older session", frame.vin)
            older.state = SessionState.CLOSED
            if older.writer is not None:
                older.writer.close()
        session.vin = frame.vin
        session.identity = identity
        session.login_serial = unit.serial
        session.state = SessionState.LOGGED_IN
        self._by_vin[frame.vin] = session
        payload: dict[str, object] = {"iccid": unit.iccid, "serial": unit.serial}
        payload["edition"] = frame.edition.value
        if not await self._session_event(session, from_datetime(unit.time), "login", payload):
            return build_response(frame, ResponseFlag.ERROR)
        return build_response(frame)

    async def _session_event(
        self, session: Gbt32960Session, ts_us: int, code: str, payload: dict[str, object]
    ) -> bool:
        assert session.identity is not None
        event = Event(
            asset_id=session.identity.asset_id,
            ts_us=ts_us,
            kind=SESSION_EVENT_KIND,
            code=code,
            payload={"protocol": "gbt32960", "vin": session.vin, **payload},
        )
        try:
            await self._sink.publish(session.identity, (), (event,))
        except IronbridgeError as exc:
            self.stats.publish_errors += 1
            if log_now(self.stats.publish_errors):
                _LOGGER.warning("GB/T 32960 %s: session event not queued: %s", session.vin, exc)
            return False
        return True
