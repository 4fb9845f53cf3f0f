"""JT/T 808 TCP endpoint (2013 and 2019): registration, authentication, locations, answers.

Each connection is one :class:`Jt808Session` with an explicit state
(``connected`` -> ``registered`` -> ``authenticated``). Registration answers 0x8100 with
an authentication code derived from the terminal phone and the platform secret (HMAC,
so nothing needs storing and a terminal that re-registers gets the same code);
authentication, heartbeats and location reports get the platform general response
0x8001. A malformed frame is answered with result 2 ("message error") when its header
can be read, logged once per session, and the session goes on.

Subpackaged messages (body-properties bit 13) are joined per session by a
:class:`~ironbridge.codec.jt808.Reassembler`: every packet but the last is answered
0x8001 result 0 as it arrives; the packet that completes the message gets the answer of
the whole message (result 0 once queued). A message that makes no progress for
``reassembly_timeout_s`` gets a 0x8003 re-transmission request naming the missing
packets, twice at most, and is then dropped and counted as malformed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

from ironbridge.codec.jt808 import (
    Authentication,
    BatchLocation,
    CodecError,
    Frame,
    GeneralResponse,
    Header,
    Heartbeat,
    LocationReport,
    Message,
    MsgId,
    Reassembler,
    Registration,
    RegistrationResponse,
    RetransmissionRequest,
    Version,
    decode_frame,
    encode_message,
    flatten_location,
    parse_frame,
    split_stream,
    unescape,
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
from ironbridge.model import Event, IronbridgeError, now_us

__all__ = ["Jt808Server", "Jt808Session", "Result", "SessionState", "auth_code_for"]

_LOGGER = logging.getLogger(__name__)
_READ_SIZE = 65536
_MAX_BUFFER = 4 * 65536


class SessionState(StrEnum):
    """Where a terminal session stands."""

    CONNECTED = "connected"
    REGISTERED = "registered"
    AUTHENTICATED = "authenticated"
    CLOSED = "closed"


class Result(IntEnum):
    """Result byte of the platform general response (0x8001)."""

    OK = 0
    FAILURE = 1
    MESSAGE_ERROR = 2
    UNSUPPORTED = 3
    ALARM_ACK = 4


#: 0x8100 results: 0 ok, 1 vehicle registered, 2 no such vehicle, 3 terminal registered,
#: 4 no such terminal
_REG_NO_SUCH_TERMINAL = 4


def auth_code_for(secret: bytes, phone: str) -> str:
    """The authentication code ironbridge hands a terminal at registration."""
    return hmac.new(secret, phone.encode(), hashlib.sha256).hexdigest()[:16].upper()


@dataclass(slots=True)
class Jt808Session:
    """The state of one terminal connection."""

    peer: str
    state: SessionState = SessionState.CONNECTED
    phone: str = ""
    version: Version | None = None
    identity: VehicleIdentity | None = None
    serial: int = 0
    frames: int = 0
    malformed: int = 0
    last_error: str = ""
    opened_at: float = field(default_factory=time.monotonic)
    writer: asyncio.StreamWriter | None = None
    #: created at the first subpackaged message (most terminals never send one)
    reassembler: Reassembler | None = None
    retransmission_requests: int = 0

    def next_serial(self) -> int:
        """The platform's own message serial, wrapping at 65535."""
        self.serial = (self.serial + 1) & 0xFFFF
        return self.serial


def _best_effort_header(raw: bytes) -> Header | None:
    """Read msg id, phone and serial of a frame that failed its checksum or body."""
    try:
        inner = unescape(raw[1:-1])
    except CodecError:
        return None
    if len(inner) < 13:
        return None
    msg_id = int.from_bytes(inner[0:2], "big")
    props = int.from_bytes(inner[2:4], "big")
    v2019 = bool(props & 0x4000) and len(inner) >= 18
    phone_raw = inner[5:15] if v2019 else inner[4:10]
    serial_at = 15 if v2019 else 10
    phone = phone_raw.hex()
    if not phone.isdigit():
        return None
    return Header(
        msg_id=msg_id,
        phone=phone,
        serial=int.from_bytes(inner[serial_at : serial_at + 2], "big"),
        version=Version.V2019 if v2019 else Version.V2013,
        protocol_version=inner[4] if v2019 else None,
    )


class Jt808Server(FramedServer[Jt808Session]):
    """An asyncio TCP server speaking the platform side of JT/T 808."""

    label = "JT/T 808"

    def __init__(
        self,
        directory: VehicleDirectory,
        publisher: RawPublisher,
        *,
        secret: bytes,
        host: str = "127.0.0.1",
        port: int = 18808,
        idle_timeout_s: float = 180.0,
        reassembly_timeout_s: float = 30.0,
        observers: tuple[FrameObserver, ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            publisher, host=host, port=port, idle_timeout_s=idle_timeout_s, observers=observers
        )
        self._directory = directory
        self._secret = secret
        self._reassembly_timeout = reassembly_timeout_s
        self._clock = clock
        self._reassembling: dict[int, Jt808Session] = {}
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Bind, and watch subpackaged messages that stall."""
        await super().start()
        self._sweeper = asyncio.create_task(self._sweep(), name="jt808-reassembly-sweeper")

    async def close(self) -> None:
        """Stop the sweeper, then the sessions."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await super().close()

    async def _sweep(self) -> None:
        period = min(1.0, self._reassembly_timeout / 4)
        while True:
            await asyncio.sleep(period)
            self.sweep_reassembly()

    def sweep_reassembly(self) -> None:
        """Ask for the missing packets of stalled messages; drop the hopeless ones."""
        now = self._clock()
        for key, session in list(self._reassembling.items()):
            r = session.reassembler
            if r is None or session.state is SessionState.CLOSED:
                self._reassembling.pop(key, None)
                continue
            for late in r.overdue(now):
                h = late.header
                if late.abandoned:
                    self._malformed(
                        session,
                        f"subpackaged 0x{h.msg_id:04X} serial {h.serial} dropped: "
                        f"packets {list(late.missing)} never came",
                    )
                    continue
                ids = late.missing[: 0xFF if h.version == Version.V2013 else 0xFFFF]
                request = encode_message(
                    Header(
                        msg_id=MsgId.RETRANSMISSION_REQUEST,
                        phone=h.phone,
                        serial=session.next_serial(),
                        version=h.version,
                        protocol_version=h.protocol_version,
                    ),
                    RetransmissionRequest(original_serial=h.serial, packet_ids=ids),
                )
                session.retransmission_requests += 1
                self.stats.retransmission_requests += 1
                if session.writer is not None and not session.writer.is_closing():
                    session.writer.write(request)
            if not r:
                self._reassembling.pop(key, None)

    def _new_session(self, peer: str, writer: asyncio.StreamWriter) -> Jt808Session:
        return Jt808Session(peer=peer, writer=writer)

    def _split(self, buf: bytes) -> tuple[list[bytes], bytes, int]:
        frames, rest = split_stream(buf)
        return list(frames), rest, 0

    def _who(self, session: Jt808Session) -> str:
        return session.phone or "unregistered"

    def _forget(self, session: Jt808Session) -> None:
        session.state = SessionState.CLOSED
        self._reassembling.pop(id(session), None)

    def _general(self, session: Jt808Session, request: Header, result: int) -> bytes:
        header = Header(
            msg_id=MsgId.PLATFORM_RESPONSE,
            phone=request.phone,
            serial=session.next_serial(),
            version=request.version,
            protocol_version=request.protocol_version,
        )
        return encode_message(
            header,
            GeneralResponse(reply_serial=request.serial, reply_id=request.msg_id, result=result),
        )

    async def _frame(self, session: Jt808Session, raw: bytes) -> bytes | None:
        self.stats.frames += 1
        session.frames += 1
        try:
            frame = parse_frame(raw)
            h = frame.header
            if h.packet is not None and not h.encryption:
                whole = self._packet(session, frame)
                if whole is None:
                    return self._general(session, h, Result.OK)
                frame = whole
            msg = decode_frame(frame)
        except CodecError as exc:
            self._malformed(session, str(exc))
            head = _best_effort_header(raw)
            return None if head is None else self._general(session, head, Result.MESSAGE_ERROR)
        # the answer goes to the frame that arrived (for a reassembled message: its last packet)
        return await self._message(session, msg, h)

    def _packet(self, session: Jt808Session, frame: Frame) -> Frame | None:
        if session.reassembler is None:
            session.reassembler = Reassembler(timeout_s=self._reassembly_timeout)
        whole = session.reassembler.add(frame, self._clock())
        if session.reassembler:
            self._reassembling[id(session)] = session
        if whole is not None:
            self.stats.reassembled += 1
        return whole

    async def _message(self, session: Jt808Session, msg: Message, h: Header) -> bytes | None:
        body = msg.body
        session.version = h.version
        if h.msg_id == MsgId.TERMINAL_RESPONSE:
            return None
        if h.encryption:
            return self._general(session, h, Result.UNSUPPORTED)
        if isinstance(body, Heartbeat):
            return self._general(session, h, Result.OK)
        if isinstance(body, Registration):
            return await self._register(session, h, body)
        if isinstance(body, Authentication):
            return await self._authenticate(session, h, body)
        if isinstance(body, LocationReport | BatchLocation):
            if session.state is not SessionState.AUTHENTICATED or h.phone != session.phone:
                self.stats.rejected += 1
                return self._general(session, h, Result.FAILURE)
            assert session.identity is not None
            reports = body.reports if isinstance(body, BatchLocation) else (body,)
            samples: list[tuple[int, dict[str, float | None]]] = []
            events: list[Event] = []
            received = now_us()
            for report in reports:
                flat = flatten_location(
                    report, asset_id=session.identity.asset_id, version=h.version
                )
                ts = flat.ts_us if flat.ts_us is not None else received
                samples.append((ts, flat.values))
                events.extend(
                    e if e.ts_us else dataclasses.replace(e, ts_us=ts) for e in flat.events
                )
            try:
                await self._sink.publish(
                    session.identity,
                    samples,
                    events,
                    msg_id=f"jt-{h.phone}-{samples[0][0] if samples else 0}-{h.serial}",
                )
            except IronbridgeError as exc:
                self.stats.publish_errors += 1
                if log_now(self.stats.publish_errors):
                    _LOGGER.warning("JT/T 808 %s: not queued: %s", h.phone, exc)
                return self._general(session, h, Result.FAILURE)
            return self._general(session, h, Result.OK)
        return self._general(session, h, Result.UNSUPPORTED)

    async def _register(self, session: Jt808Session, h: Header, body: Registration) -> bytes | None:
        info = {
            "plate": body.plate,
            "terminal_id": body.terminal_id,
            "manufacturer": body.manufacturer,
            "model": body.model,
            "province_code": str(body.province),
        }
        if body.plate_color == 0:
            info["vin"] = body.plate
        identity = await self._directory.resolve("jt808", h.phone, info)
        response_header = Header(
            msg_id=MsgId.REGISTRATION_RESPONSE,
            phone=h.phone,
            serial=session.next_serial(),
            version=h.version,
            protocol_version=h.protocol_version,
        )
        if identity is None:
            self.stats.rejected += 1
            _LOGGER.info("JT/T 808 registration of unknown or pending terminal %s refused", h.phone)
            return encode_message(
                response_header,
                RegistrationResponse(reply_serial=h.serial, result=_REG_NO_SUCH_TERMINAL),
            )
        session.phone = h.phone
        session.identity = identity
        session.state = SessionState.REGISTERED
        if not await self._session_event(session, "registered", {"plate": body.plate}):
            # not queued: no answer, so the terminal registers again (the standard's
            # registration results have no "try later"); nothing is lost
            return None
        return encode_message(
            response_header,
            RegistrationResponse(
                reply_serial=h.serial, result=0, auth_code=auth_code_for(self._secret, h.phone)
            ),
        )

    async def _authenticate(self, session: Jt808Session, h: Header, body: Authentication) -> bytes:
        expected = auth_code_for(self._secret, h.phone)
        if not hmac.compare_digest(body.auth_code.encode(), expected.encode()):
            self.stats.rejected += 1
            return self._general(session, h, Result.FAILURE)
        if session.identity is None or session.phone != h.phone:
            # a terminal that registered earlier on another connection
            identity = await self._directory.resolve("jt808", h.phone, {})
            if identity is None:
                self.stats.rejected += 1
                return self._general(session, h, Result.FAILURE)
            session.identity = identity
            session.phone = h.phone
        previous, session.state = session.state, SessionState.AUTHENTICATED
        if not await self._session_event(session, "authenticated", {"imei": body.imei or ""}):
            session.state = previous
            return self._general(session, h, Result.FAILURE)  # the terminal authenticates again
        return self._general(session, h, Result.OK)

    async def _session_event(
        self, session: Jt808Session, code: str, payload: dict[str, object]
    ) -> bool:
        """Queue a session event; False (counted, logged) if the bus did not take it."""
        assert session.identity is not None
        event = Event(
            asset_id=session.identity.asset_id,
            ts_us=now_us(),
            kind=SESSION_EVENT_KIND,
            code=code,
            payload={"protocol": "jt808", "phone": session.phone, **payload},
        )
        try:
            await self._sink.publish(session.identity, (), (event,))
        except IronbridgeError as exc:
            self.stats.publish_errors += 1
            if log_now(self.stats.publish_errors):
                _LOGGER.warning("JT/T 808 %s: session event not queued: %s", session.phone, exc)
            return False
        return True
