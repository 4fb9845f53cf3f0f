"""A thin typed wrapper over nats-py JetStream: streams, publish, pull consumers."""

from __future__ import annotations

import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from ironbridge.bus.subjects import (
    DEAD_SUBJECTS,
    NORM_SUBJECTS,
    RAW_SUBJECTS,
    STREAM_DEAD,
    STREAM_NORM,
    STREAM_RAW,
)
from ironbridge.model.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    IronbridgeError,
    NotFound,
    PermanentError,
    TransientError,
)

_LOGGER = logging.getLogger(__name__)

_GIB = 1024**3
_DAY_S = 86_400.0
_JS_CONFLICT_CODES = frozenset({10058, 10065, 10148})  # name in use, subjects overlap, ...


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Map nats-py exceptions raised inside the block to ironbridge errors."""
    try:
        yield
    except IronbridgeError:
        raise
    except nats.js.errors.NotFoundError as exc:
        raise NotFound(what, str(exc.description or exc)) from exc
    except nats.js.errors.ServiceUnavailableError as exc:
        raise TransientError(f"{what}: JetStream unavailable: {exc}") from exc
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code in _JS_CONFLICT_CODES:
            raise Conflict(f"{what}: {exc.description}") from exc
        raise PermanentError(f"{what}: {exc.description}") from exc
    except nats.js.errors.APIError as exc:
        if exc.code is not None and exc.code >= 500:
            raise TransientError(f"{what}: {exc.description}") from exc
        raise PermanentError(f"{what}: {exc.description}") from exc
    except (
        nats.errors.TimeoutError,
        nats.errors.NoRespondersError,
        nats.errors.ConnectionClosedError,
        nats.errors.NoServersError,
        nats.errors.StaleConnectionError,
        nats.errors.OutboundBufferLimitError,
        nats.js.errors.NoStreamResponseError,
        TimeoutError,
        OSError,
    ) as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except nats.errors.Error as exc:
        if "authorization" in str(exc).lower() or "authentication" in str(exc).lower():
            raise AuthenticationFailed(f"{what}: {exc}") from exc
        raise PermanentError(f"{what}: {exc}") from exc


# -- values -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class StreamSpec:
    """The configuration ironbridge wants for one of its streams."""

    name: str
    subjects: tuple[str, ...]
    max_bytes: int
    #: 0 = keep until ``max_bytes`` forces the oldest out
    max_age_s: float = 0.0
    duplicate_window_s: float = 120.0
    replicas: int = 1

    def to_config(self) -> StreamConfig:
        """Return the nats-py stream configuration."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_bytes=self.max_bytes,
            max_age=self.max_age_s,
            duplicate_window=self.duplicate_window_s,
            num_replicas=self.replicas,
            allow_direct=True,
        )


def default_streams(
    *,
    replicas: int = 1,
    raw_max_bytes: int = 10 * _GIB,
    norm_max_bytes: int = 2 * _GIB,
    norm_max_age_s: float = _DAY_S,
    dead_max_bytes: int = _GIB,
    dead_max_age_s: float = 7 * _DAY_S,
) -> tuple[StreamSpec, ...]:
    """Return ironbridge's streams: ``IB_RAW``, ``IB_NORM`` and ``IB_DEAD``.

    ``IB_RAW`` has no age limit: a raw message stays until the size limit pushes it out,
    so a store that lags behind loses nothing until the stream is full. Size its
    ``max_bytes`` for the longest store outage to ride out.
    """
    if replicas < 1:
        raise InvalidInput("replicas", "must be at least 1")
    return (
        StreamSpec(
            name=STREAM_RAW, subjects=RAW_SUBJECTS, max_bytes=raw_max_bytes, replicas=replicas
        ),
        StreamSpec(
            name=STREAM_NORM,
            subjects=NORM_SUBJECTS,
            max_bytes=norm_max_bytes,
            max_age_s=norm_max_age_s,
            replicas=replicas,
        ),
        StreamSpec(
            name=STREAM_DEAD,
            subjects=DEAD_SUBJECTS,
            max_bytes=dead_max_bytes,
            max_age_s=dead_max_age_s,
            replicas=replicas,
        ),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PubAck:
    """JetStream's acknowledgement of a publish."""

    stream: str
    seq: int
    #: the message id was seen within the duplicate window: nothing was stored
    duplicate: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStats:
    """A stream's size and sequence range."""

    name: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    consumers: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsumerStats:
    """A durable consumer's lag: messages not yet delivered and delivered but unacked."""

    stream: str
    name: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int
    #: highest stream sequence acknowledged in order (all at or below are acked)
    ack_floor_stream_seq: int


def _ack_metadata(reply: str) -> tuple[int, int, int, int]:
    """Return (times delivered, stream seq, stored at in µs, pending) from a reply subject."""
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        raise PermanentError(f"not a JetStream message (reply subject {reply!r})")
    base = 2 if len(tokens) == 9 else 4
    return (
        int(tokens[base + 2]),
        int(tokens[base + 3]),
        int(tokens[base + 5]) // 1000,
        int(tokens[base + 6]),
    )


class RawMessage:
    """One message from a stream, with its JetStream metadata and acknowledgement."""

    __slots__ = (
        "_msg",
        "data",
        "headers",
        "num_delivered",
        "stream_seq",
        "subject",
        "timestamp_us",
    )

    def __init__(
        self,
        *,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None,
        stream_seq: int,
        num_delivered: int,
        timestamp_us: int,
        msg: Msg | None = None,
    ) -> None:
        self.subject = subject
        self.data = data
        self.headers: Mapping[str, str] = headers or {}
        self.stream_seq = stream_seq
        self.num_delivered = num_delivered
        #: when the stream stored the message (µs since the epoch)
        self.timestamp_us = timestamp_us
        self._msg = msg

    def __repr__(self) -> str:
        return (
            f"RawMessage(subject={self.subject!r}, stream_seq={self.stream_seq}, "
            f"num_delivered={self.num_delivered}, size={len(self.data)})"
        )

    @classmethod
    def _from_js(cls, msg: Msg) -> RawMessage:
        # The reply subject carries the metadata: $JS.ACK.<stream>.<consumer>.<delivered>.
        # <stream seq>.<consumer seq>.<ts>.<pending> (v1) or with <domain>.<account hash>
        # after ACK and a token at the end (v2). Parsing it here is cheaper than nats-py's
        # Msg.metadata, which builds two more objects per message.
        delivered, stream_seq, ts_us, _ = _ack_metadata(msg.reply)
        return cls(
            subject=msg.subject,
            data=msg.data,
            headers=msg.headers,
            stream_seq=stream_seq,
            num_delivered=delivered,
            timestamp_us=ts_us,
            msg=msg,
        )

    def _acker(self) -> Msg:
        if self._msg is None:
            raise PermanentError("this message was read from the stream, not consumed: no ack")
        return self._msg

    async def ack(self) -> None:
        """Acknowledge without waiting for the server (fire and forget, ~2 µs)."""
        with _mapped("ack"):
            await self._acker().ack()

    async def ack_sync(self, timeout: float = 5.0) -> None:
        """Acknowledge and wait for the server to confirm it (one round trip)."""
        with _mapped("ack"):
            await self._acker().ack_sync(timeout=timeout)

    async def nak(self, delay_s: float | None = None) -> None:
        """Ask for redelivery, now or after ``delay_s`` seconds."""
        with _mapped("nak"):
            await self._acker().nak(delay=delay_s)

    async def in_progress(self) -> None:
        """Reset the ack-wait timer: processing takes longer than usual."""
        with _mapped("in_progress"):
            await self._acker().in_progress()

    async def term(self) -> None:
        """Never redeliver this message (it is dead-lettered elsewhere)."""
        with _mapped("term"):
            await self._acker().term()


# -- consumers -------------------------------------------------------------------------
class PullConsumer:
    """A durable pull consumer with explicit acks (or cumulative ones: AckAll)."""

    def __init__(
        self,
        bus: Bus,
        stream: str,
        durable: str,
        sub: JetStreamContext.PullSubscription,
        *,
        cumulative_ack: bool = False,
    ):
        """Wrap a bound pull subscription.

        Args:
            bus: the connection.
            stream: the stream consumed.
            durable: the consumer's name.
            sub: nats-py's subscription bound to it.
            cumulative_ack: the consumer's ack policy is AckAll: :meth:`ack_all` then
                acks only the last message, which covers the ones before it.
        """
        self._bus = bus
        self.stream = stream
        self.durable = durable
        self._sub = sub
        self._cumulative = cumulative_ack

    async def fetch(self, batch: int, timeout: float) -> list[RawMessage]:
        """Return up to ``batch`` messages; ``[]`` when none came within ``timeout``.

        Returns as soon as messages are there: it does not wait for a full batch.
        """
        if batch < 1:
            raise InvalidInput("batch", "must be at least 1")
        if timeout <= 0:
            raise InvalidInput("timeout", "must be positive")
        with _mapped(f"fetch {self.stream}/{self.durable}"):
            try:
                msgs = await self._sub.fetch(batch, timeout=timeout)
            except (nats.errors.TimeoutError, TimeoutError):
                # nats-py signals "no messages" with a timeout (its own or asyncio's)
                return []
        from_js = RawMessage._from_js
        return [from_js(m) for m in msgs]

    async def ack_all(self, messages: Sequence[object]) -> None:
        """Acknowledge every message, fire and forget (one publish each, no round trip).

        Args:
            messages: :class:`RawMessage` objects from :meth:`fetch` (typed loosely so
                the consumer satisfies ports that name their own message protocol).
        """
        # Measured: nats-py's Msg.ack() costs the same ~2 µs as a bare publish of
        # "+ACK" to the reply subject; ack_sync costs a round trip (~240 µs).
        for m in messages:
            if not isinstance(m, RawMessage):
                raise InvalidInput("messages", f"not a RawMessage: {type(m).__name__}")
        if self._cumulative:
            # AckAll: the message delivered last acknowledges every one before it
            messages = messages[-1:]
        with _mapped("ack"):
            for m in messages:
                await m._acker().ack()  # type: ignore[attr-defined]

    async def info(self) -> ConsumerStats:
        """Return this consumer's lag."""
        return await self._bus.consumer_info(self.stream, self.durable)

    async def close(self) -> None:
        """Stop receiving (the durable consumer stays on the server)."""
        with _mapped("unsubscribe"), contextlib.suppress(nats.errors.BadSubscriptionError):
            await self._sub.unsubscribe()


# -- the connection --------------------------------------------------------------------
class Bus:
    """One NATS connection with JetStream, used by every ironbridge service.

    Open it with ``async with Bus.connect(urls, user=..., password=...) as bus:``.
    """

    def __init__(self, nc: Client, js: JetStreamContext) -> None:
        self._nc = nc
        self._js = js

    @classmethod
    @contextlib.asynccontextmanager
    async def connect(
        cls,
        urls: str | Sequence[str],
        *,
        user: str = "",
        password: str = "",
        name: str = "ironbridge",
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 5.0,
        reconnect_wait_s: float = 1.0,
        max_reconnect_attempts: int = -1,
    ) -> AsyncIterator[Bus]:
        """Connect, yield the bus, drain and close on exit.

        Args:
            urls: one URL, comma-separated URLs, or a sequence of URLs.
            user: user name (``ib-internal`` on the embedded server).
            password: its password.
            name: the connection name shown in the server's monitor.
            connect_timeout_s: timeout of each connection attempt.
            request_timeout_s: timeout of JetStream API calls and publish acks.
            reconnect_wait_s: pause between reconnect attempts (the client adds jitter).
            max_reconnect_attempts: -1 to retry for ever once connected.

        Raises:
            AuthenticationFailed: the server refused the credentials.
            TransientError: no server could be reached.
        """
        servers = [u.strip() for u in urls.split(",")] if isinstance(urls, str) else list(urls)
        if not servers or not all(servers):
            raise InvalidInput("urls", "at least one NATS URL is needed")

        errors: list[Exception] = []

        async def _on_error(exc: Exception) -> None:
            if len(errors) < 16:
                errors.append(exc)
            if nc.is_connected:
                _LOGGER.warning("nats connection %s: %s", name, exc)
            else:  # a failed (re)connect attempt: the transitions are logged below
                _LOGGER.debug("nats connection %s: %s", name, exc)

        closing = False

        async def _on_disconnected() -> None:
            if not closing:
                _LOGGER.warning("nats connection %s lost", name)

        async def _on_reconnected() -> None:
            _LOGGER.info("nats connection %s recovered", name)

        options: dict[str, Any] = {
            "servers": servers,
            "name": name,
            "connect_timeout": connect_timeout_s,
            "reconnect_time_wait": reconnect_wait_s,
            # nats-py applies this to the first connect too, where -1 would retry for
            # ever (a wrong password included): try each server twice at start, then
            # switch to the caller's value once connected.
            "max_reconnect_attempts": 1,
            "allow_reconnect": True,
            "error_cb": _on_error,
            "disconnected_cb": _on_disconnected,
            "reconnected_cb": _on_reconnected,
        }
        if user:
            options["user"] = user
            options["password"] = password
        nc = Client()
        where = ", ".join(servers)
        try:
            await nc.connect(**options)
        except BaseException:
            # nats-py leaves the socket of a refused connection open
            with contextlib.suppress(Exception):
                await nc.close()
            for cause in errors:
                if "authorization" in str(cause).lower():
                    raise AuthenticationFailed(
                        f"NATS at {where} refused the credentials"
                    ) from cause
            with _mapped(f"connect to {where}"):
                raise
            raise  # pragma: no cover - _mapped re-raises mapped
        nc.options["max_reconnect_attempts"] = max_reconnect_attempts
        bus = cls(nc, nc.jetstream(timeout=request_timeout_s))
        try:
            yield bus
        finally:
            closing = True
            # flush then close, not drain: drain waits for pull subscriptions' queues,
            # which nobody reads any more, until its 30 s timeout
            with contextlib.suppress(Exception):
                await nc.flush(timeout=2)
            with contextlib.suppress(Exception):
                await nc.close()

    @property
    def client(self) -> Client:
        """The underlying nats-py client (for the bus package's own helpers)."""
        return self._nc

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return bool(self._nc.is_connected)

    # -- streams --------------------------------------------------------------------
    async def ensure_streams(
        self,
        replicas: int = 1,
        *,
        raw_max_bytes: int = 10 * _GIB,
        specs: Sequence[StreamSpec] | None = None,
    ) -> None:
        """Create or update ironbridge's streams; a no-op when they already match.

        Args:
            replicas: JetStream replicas of each stream (3 on a cluster).
            raw_max_bytes: size limit of ``IB_RAW``.
            specs: the streams to ensure, instead of :func:`default_streams`.
        """
        if specs is None:
            specs = default_streams(replicas=replicas, raw_max_bytes=raw_max_bytes)
        for spec in specs:
            await self.ensure_stream(spec)

    async def ensure_stream(self, spec: StreamSpec) -> None:
        """Create the stream, or update it when its settings differ from ``spec``."""
        want = spec.to_config()
        with _mapped(f"stream {spec.name}"):
            try:
                have = (await self._js.stream_info(spec.name)).config
            except nats.js.errors.NotFoundError:
                await self._js.add_stream(want)
                _LOGGER.info("created stream %s", spec.name)
                return
            if _differs(have, want):
                await self._js.update_stream(want)
                _LOGGER.info("updated stream %s", spec.name)

    async def stream_info(self, name: str) -> StreamStats:
        """Return the stream's message count and sequence range."""
        with _mapped(f"stream {name}"):
            info = await self._js.stream_info(name)
        state = info.state
        return StreamStats(
            name=name,
            messages=state.messages,
            bytes=state.bytes,
            first_seq=state.first_seq,
            last_seq=state.last_seq,
            consumers=state.consumer_count,
        )

    async def delete_stream(self, name: str) -> None:
        """Delete a stream and its messages (tests and admin tools)."""
        with _mapped(f"stream {name}"):
            await self._js.delete_stream(name)

    # -- publishing -----------------------------------------------------------------
    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Publish into a stream, wait for JetStream's ack, return the stream sequence.

        For a duplicate ``msg_id`` the sequence is that of the message first stored.
        See :meth:`publish_ack` for the arguments.
        """
        return (await self.publish_ack(subject, payload, headers=headers, msg_id=msg_id)).seq

    async def publish_ack(
        self,
        subject: str,
        payload: bytes,
        *,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
        timeout_s: float | None = None,
    ) -> PubAck:
        """Publish into a stream and return JetStream's ack (with the duplicate flag).

        Args:
            subject: a subject a stream captures.
            payload: the message body.
            headers: extra headers.
            msg_id: sets ``Nats-Msg-Id``: a second publish with the same id within the
                stream's duplicate window is acked as a duplicate and not stored.
            timeout_s: ack timeout; default the connection's request timeout.
        """
        hdrs = dict(headers) if headers else {}
        if msg_id is not None:
            hdrs["Nats-Msg-Id"] = msg_id
        with _mapped(f"publish {subject}"):
            ack = await self._js.publish(subject, payload, timeout=timeout_s, headers=hdrs or None)
        return PubAck(stream=ack.stream, seq=ack.seq, duplicate=bool(ack.duplicate))

    # -- consuming ------------------------------------------------------------------
    async def pull_consumer(
        self,
        stream: str,
        durable: str,
        *,
        filter_subject: str | None = None,
        max_ack_pending: int = 20_000,
        ack_wait_s: float = 30.0,
        max_deliver: int = -1,
        start_seq: int | None = None,
    ) -> PullConsumer:
        """Create (or update) a durable pull consumer with explicit acks and bind to it.

        Args:
            stream: the stream to consume.
            durable: the consumer's durable name (survives restarts).
            filter_subject: only subjects matching this; default all of the stream.
            max_ack_pending: delivered-but-unacked messages before the server pauses.
            ack_wait_s: redeliver a message not acked within this time.
            max_deliver: give up after this many deliveries (-1: never).
            start_seq: recreate the consumer so that delivery restarts at this stream
                sequence (a single writer that committed everything below it uses
                this at start-up: messages delivered to it before a crash then come
                again at once and in order, rather than after ``ack_wait``).
        """
        config = ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=(
                DeliverPolicy.BY_START_SEQUENCE if start_seq is not None else DeliverPolicy.ALL
            ),
            opt_start_seq=start_seq,
            ack_wait=ack_wait_s,
            max_ack_pending=max_ack_pending,
            max_deliver=max_deliver,
            filter_subject=filter_subject,
        )
        with _mapped(f"consumer {stream}/{durable}"):
            if start_seq is not None:
                with contextlib.suppress(nats.js.errors.NotFoundError):
                    await self._js.delete_consumer(stream, durable)
            await self._js.add_consumer(stream, config)
            sub = await self._js.pull_subscribe_bind(
                durable=durable, stream=stream, pending_msgs_limit=-1, pending_bytes_limit=-1
            )
        return PullConsumer(self, stream, durable, sub)

    async def consumer_info(self, stream: str, durable: str) -> ConsumerStats:
        """Return a consumer's lag (``num_pending``, ``num_ack_pending``)."""
        with _mapped(f"consumer {stream}/{durable}"):
            info = await self._js.consumer_info(stream, durable)
        return ConsumerStats(
            stream=stream,
            name=durable,
            num_pending=info.num_pending or 0,
            num_ack_pending=info.num_ack_pending or 0,
            num_redelivered=info.num_redelivered or 0,
            ack_floor_stream_seq=info.ack_floor.stream_seq if info.ack_floor else 0,
        )

    async def delete_consumer(self, stream: str, durable: str) -> None:
        """Delete a durable consumer."""
        with _mapped(f"consumer {stream}/{durable}"):
            await self._js.delete_consumer(stream, durable)

    async def read_stream(
        self, stream: str, subject_filter: str | None = None, last_n: int = 100
    ) -> list[RawMessage]:
        """Return the last ``last_n`` messages of a stream (oldest first), without consuming.

        Uses a short-lived ephemeral consumer (no acks, in memory). With a filter, the
        start is found by widening a window back from the end until it holds
        ``last_n`` matching messages. The messages cannot be acked.
        """
        if last_n < 1:
            raise InvalidInput("last_n", "must be at least 1")
        stats = await self.stream_info(stream)
        if stats.messages == 0:
            return []
        window = last_n
        while True:
            start = max(stats.first_seq, stats.last_seq - window + 1)
            name, pending = await self._reader(stream, subject_filter, start)
            if pending >= last_n or start == stats.first_seq:
                break
            await self._drop_reader(stream, name)
            window *= 4
        kept: collections.deque[RawMessage] = collections.deque(maxlen=last_n)
        try:
            with _mapped(f"read {stream}"):
                sub = await self._js.pull_subscribe_bind(consumer=name, stream=stream)
                try:
                    while pending > 0:
                        try:
                            batch = await sub.fetch(min(pending, 1000), timeout=2.0)
                        except nats.errors.TimeoutError:
                            break
                        for msg in batch:
                            delivered, seq, ts_us, pending = _ack_metadata(msg.reply)
                            kept.append(
                                RawMessage(
                                    subject=msg.subject,
                                    data=msg.data,
                                    headers=msg.headers,
                                    stream_seq=seq,
                                    num_delivered=delivered,
                                    timestamp_us=ts_us,
                                )
                            )
                finally:
                    await sub.unsubscribe()
        finally:
            await self._drop_reader(stream, name)
        return list(kept)

    async def _reader(self, stream: str, subject_filter: str | None, start: int) -> tuple[str, int]:
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
            filter_subject=subject_filter,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=30.0,
        )
        with _mapped(f"read {stream}"):
            info = await self._js.add_consumer(stream, config)
        return info.name, info.num_pending or 0

    async def _drop_reader(self, stream: str, name: str) -> None:
        with contextlib.suppress(Exception):
            await self._js.delete_consumer(stream, name)


def _differs(have: StreamConfig, want: StreamConfig) -> bool:
    fields = (
        "subjects",
        "retention",
        "storage",
        "discard",
        "max_bytes",
        "max_age",
        "duplicate_window",
        "num_replicas",
        "allow_direct",
    )
    for field in fields:
        a, b = getattr(have, field), getattr(want, field)
        if field == "subjects":
            a, b = sorted(a or []), sorted(b or [])
        elif field in ("max_age", "duplicate_window"):
            a, b = round(float(a or 0), 3), round(float(b or 0), 3)
        if a != b:
            return True
    return False
