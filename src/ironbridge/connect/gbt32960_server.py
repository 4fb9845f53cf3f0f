"""GB/T 32960.3 TCP endpoint (2016 ``##`` and 2025 ``$$``): sessions, platform answers, publish.

Each connection is one :class:`Gbt32960Session` with an explicit state
(``connected`` -> ``logged_in`` -> ``logged_out``). A malformed frame is answered with
an error flag where the header can still be read, logged once per session, counted,
and the session goes on; an idle session is closed after ``idle_timeout_s``. A second
login of the same VIN closes the older session (GB/T 32960 Annex B).
"""

from __future__ import annotations

import asyncio
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
from ironbridge.connect.tcp import FramedServer
from ironbridge.connect.vehicles import (
    SESSION_EVENT_KIND,
    FrameObserver,
    RawPublisher,
    VehicleDirectory,
    VehicleIdentity,
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


class Gbt32960Server(FramedServer[Gbt32960Session]):
    """An asyncio TCP server speaking the platform side of GB/T 32960.3."""

    label = "GB/T 32960"

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
        super().__init__(
            publisher, host=host, port=port, idle_timeout_s=idle_timeout_s, observers=observers
        )
        self._directory = directory
        self._ack_realtime = ack_realtime
        self._by_vin: dict[str, Gbt32960Session] = {}

    def _new_session(self, peer: str, writer: asyncio.StreamWriter) -> Gbt32960Session:
        return Gbt32960Session(peer=peer, writer=writer)

    def _split(self, buf: bytes) -> tuple[list[bytes], bytes, int]:
        frames, rest, skipped = split_stream(buf)
        return list(frames), rest, skipped

    def _who(self, session: Gbt32960Session) -> str:
        return session.vin or "no login"

    def _closed(self, session: Gbt32960Session) -> bool:
        return session.state is SessionState.CLOSED

    def _forget(self, session: Gbt32960Session) -> None:
        session.state = SessionState.CLOSED
        if session.vin and self._by_vin.get(session.vin) is session:
            del self._by_vin[session.vin]

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
            if not await self._session_event(session, from_datetime(unit.time), "logout", {}):
                return build_response(frame, ResponseFlag.ERROR)  # the terminal logs out again
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
