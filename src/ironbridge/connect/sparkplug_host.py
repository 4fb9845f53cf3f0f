"""The platform as a Sparkplug B host application, over the embedded broker's MQTT side.

nats-server (>= 2.10) maps the MQTT topic ``spBv1.0/<group>/<type>/<node>[/<device>]``
to the NATS subject ``spBv1//0.<group>.<type>.<node>[.<device>]``, so the host needs no
MQTT connection of its own: it subscribes to ``spBv1//0.>`` with the platform's internal
NATS user, and what it publishes there (NCMD rebirth requests, STATE) reaches MQTT
subscribers.

Mapping to ironbridge: a Sparkplug edge node authenticates as the ironbridge *device*
whose id equals its ``edge_node_id`` (its MQTT user name; bus/natsconf.py grants every
device the Sparkplug subjects of its own node). Node metrics go to the device's default
asset; the metrics of a Sparkplug device ``D`` go to the asset with id ``D``, which must
be bound to that ironbridge device. Metric names are measurement names of the asset's
type; ingest validates them like any telemetry and dead-letters what it refuses.
Values are published as columnar telemetry JSON on ``ib.v1.<node>.telemetry``.

Edge nodes (``connect/edge_nodes.py``), when given: every birth records the node; under
the ``approve`` policy the data of a node an operator has not approved is dropped
(counted); ``Edge Status/`` metrics of ironbridge agents are kept as the node's status
(not stored as telemetry); an agent that births running another configuration version
than the desired one is sent that version (NCMD ``Node Control/Config``).

Limits: STATE is published by the host on start and every ``state_interval_s`` but is
not an MQTT *retained* message (a NATS publish cannot set the MQTT retain flag); a
sequence gap asks for a rebirth at once (reorder timeout 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from ironbridge.codec.binary import CodecError
from ironbridge.codec.sparkplug import (
    HostTracker,
    MessageType,
    ResolvedMetric,
    Topic,
    decode_payload,
    encode_payload,
    encode_state,
    parse_topic,
    rebirth_command,
)
from ironbridge.codec.sparkplug.control import STATUS_PREFIX, config_command, status_values
from ironbridge.connect.edge_nodes import EdgeNodes
from ironbridge.model import IronbridgeError
from ironbridge.model.retry import retry_transient

__all__ = [
    "SUBJECT_PREFIX",
    "HostStats",
    "SparkplugHost",
    "metrics_to_telemetry",
    "subject_to_topic",
    "topic_to_subject",
]

_LOGGER = logging.getLogger(__name__)

SUBJECT_PREFIX = "spBv1//0"
_SKIP_PREFIXES = ("Node Control/", "Device Control/", "Properties/", STATUS_PREFIX)


class _Nats(Protocol):
    async def subscribe(
        self,
        subject: str,
        queue: str = "",
        cb: Callable[[Any], Awaitable[None]] | None = None,
    ) -> Any: ...

    async def publish(self, subject: str, payload: bytes = b"") -> None: ...


class _Publisher(Protocol):
    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int: ...


def subject_to_topic(subject: str) -> str:
    """``spBv1//0.g.NDATA.n`` -> ``spBv1.0/g/NDATA/n`` (nats-server's MQTT mapping)."""
    return "/".join(token.replace("//", ".") for token in subject.split("."))


def topic_to_subject(topic: str) -> str:
    """``spBv1.0/g/NCMD/n`` -> ``spBv1//0.g.NCMD.n``."""
    return ".".join(level.replace(".", "//") for level in topic.split("/"))


def metrics_to_telemetry(
    metrics: tuple[ResolvedMetric, ...], asset_for: Callable[[str], str] = str
) -> list[bytes]:
    """Columnar telemetry JSON bodies, one per Sparkplug device (None = the node).

    ``asset_for`` maps a Sparkplug device id to its asset id (default: the same id).
    """
    groups: dict[str | None, dict[int, dict[str, Any]]] = {}
    for m in metrics:
        if m.name.startswith(_SKIP_PREFIXES) or m.value is None:
            continue
        if not isinstance(m.value, bool | int | float):
            continue
        groups.setdefault(m.device, {}).setdefault(m.timestamp, {})[m.name] = m.value
    bodies = []
    for device, rows in groups.items():
        ts = sorted(rows)
        names = sorted({n for row in rows.values() for n in row})
        body: dict[str, Any] = {
            "ts": ts,
            "values": {n: [rows[t].get(n) for t in ts] for n in names},
        }
        if device is not None:
            body["asset"] = asset_for(device)
        bodies.append(orjson.dumps(body))
    return bodies


@dataclass(slots=True)
class HostStats:
    """Counters of the host application."""

    messages: int = 0
    rejected: int = 0
    points: int = 0
    rebirths_requested: int = 0
    births: int = 0
    deaths: int = 0
    not_approved: int = 0
    configs_pushed: int = 0


class SparkplugHost:
    """Sparkplug B host application on the platform's NATS connection.

    Args:
        nc: a nats-py client (``Bus.client``) with the internal user's permissions.
        publisher: JetStream publisher for the telemetry (``Bus``).
        host_id: the Sparkplug host id in ``spBv1.0/STATE/<host_id>``.
    """

    def __init__(
        self,
        nc: _Nats,
        publisher: _Publisher,
        *,
        host_id: str = "ironbridge",
        state_interval_s: float = 10.0,
        nodes: EdgeNodes | None = None,
    ) -> None:
        """Create the host; :meth:`run` starts it."""
        self.nodes = nodes
        self._nc = nc
        self._publisher = publisher
        self.host_id = host_id
        self.state_interval_s = state_interval_s
        self.tracker = HostTracker()
        self.stats = HostStats()
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(maxsize=10_000)
        #: set by :meth:`run`; a failing publish is retried until then
        self._stop: asyncio.Event | None = None

    async def _publish_state(self, online: bool) -> None:
        body = encode_state(online=online, timestamp_ms=int(time.time() * 1000))
        await self._nc.publish(f"{SUBJECT_PREFIX}.STATE.{self.host_id}", body)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then publish STATE offline."""

        async def on_msg(msg: Any) -> None:
            try:
                self._queue.put_nowait((msg.subject, msg.data))
            except asyncio.QueueFull:
                self.stats.rejected += 1  # the gap detection will ask for a rebirth

        self._stop = stop
        sub = await self._nc.subscribe(f"{SUBJECT_PREFIX}.>", cb=on_msg)
        await self._publish_state(True)
        _LOGGER.info("sparkplug host %r online", self.host_id)
        next_state = time.monotonic() + self.state_interval_s
        try:
            while not stop.is_set():
                try:
                    subject, data = await asyncio.wait_for(self._queue.get(), timeout=0.5)
                except TimeoutError:
                    pass
                else:
                    await self.handle(subject, data)
                if time.monotonic() >= next_state:
                    try:
                        await self._publish_state(True)
                    except Exception as exc:  # a reconnecting client: try again next time
                        _LOGGER.warning("sparkplug: STATE publish failed: %s", exc)
                    next_state = time.monotonic() + self.state_interval_s
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            with contextlib.suppress(Exception):
                await self._publish_state(False)

    async def handle(self, subject: str, data: bytes) -> None:
        """Process one Sparkplug message (given as its NATS subject and payload)."""
        try:
            topic = parse_topic(subject_to_topic(subject))
            if topic.type in (MessageType.STATE, MessageType.NCMD, MessageType.DCMD):
                return
            payload = decode_payload(data)
        except CodecError as exc:
            self.stats.rejected += 1
            _LOGGER.warning("sparkplug: rejected message on %s: %s", subject, exc)
            return
        self.stats.messages += 1
        result = self.tracker.handle(topic, payload, int(time.time() * 1000))
        if result.born:
            self.stats.births += 1
        if result.stale:
            self.stats.deaths += 1
            _LOGGER.info("sparkplug: %s/%s stale: %s", topic.group, topic.node, result.stale)
        asset_for: Callable[[str], str] = str
        if self.nodes is not None:
            if not await self._track_node(topic, result):
                self.stats.not_approved += 1
                if result.rebirth:
                    await self.request_rebirth(topic, result.rebirth)
                return
            node_id = topic.node
            nodes = self.nodes
            asset_for = lambda device: nodes.asset_for(node_id, device)  # noqa: E731
        for body in metrics_to_telemetry(result.metrics, asset_for):
            subject = f"ib.v1.{topic.node}.telemetry"
            # a retry after a publish that did land is a no-op (JetStream dedupe by msg id)
            msg_id = f"spb-{uuid.uuid4().hex}"
            try:
                await retry_transient(
                    functools.partial(self._publisher.publish, subject, body, msg_id=msg_id),
                    f"sparkplug: publish for {topic.node}",
                    stop=self._stop,
                    logger=_LOGGER,
                )
            except IronbridgeError as exc:
                _LOGGER.warning("sparkplug: publish for %s failed: %s", topic.node, exc)
        self.stats.points += len(result.metrics)
        if result.rebirth:
            await self.request_rebirth(topic, result.rebirth)

    async def _track_node(self, topic: Topic, result: Any) -> bool:
        """Record births, deaths and agent status; False if the data must be dropped."""
        nodes = self.nodes
        assert nodes is not None
        group, node_id = topic.group, topic.node
        status = status_values(
            {m.name: m.value for m in result.metrics if m.name.startswith(STATUS_PREFIX)}
        )
        if None in result.born:
            node = await asyncio.to_thread(nodes.born, group, node_id)
            if node is not None and status:
                node = nodes.report(node_id, status)
            if (
                node is not None
                and node.agent
                and node.state == "approved"
                and node.desired_version is not None
                and node.desired_version != node.reported_version
            ):
                await self.push_config(node_id)
        elif status:
            nodes.report(node_id, status)
        for device in result.born:
            if device is not None:
                nodes.device_born(group, node_id, device)
        if None in result.stale:
            nodes.died(group, node_id)
        points = sum(1 for m in result.metrics if not m.name.startswith(_SKIP_PREFIXES))
        return await asyncio.to_thread(nodes.accepts, group, node_id, points)

    async def push_config(self, node_id: str) -> bool:
        """Send a node its desired configuration version (NCMD); False if it has none."""
        if self.nodes is None:
            return False
        desired = await asyncio.to_thread(self.nodes.desired, node_id)
        if desired is None:
            return False
        node = self.nodes.get(None, node_id)
        cmd = Topic(group=node.group_id, type=MessageType.NCMD, node=node_id)
        payload = config_command(desired.version, desired.config, int(time.time() * 1000))
        await self._nc.publish(topic_to_subject(str(cmd)), encode_payload(payload))
        self.stats.configs_pushed += 1
        _LOGGER.info("sparkplug: configuration version %d sent to %s", desired.version, node_id)
        return True

    async def rebirth_node(self, node_id: str, reason: str) -> None:
        """Ask a known node to rebirth (e.g. after an operator approved it)."""
        if self.nodes is None:
            return
        node = self.nodes.get(None, node_id)
        await self.request_rebirth(
            Topic(group=node.group_id, type=MessageType.NBIRTH, node=node_id), reason
        )

    async def request_rebirth(self, topic: Topic, reason: str) -> None:
        """Send NCMD ``Node Control/Rebirth = true`` to the topic's edge node."""
        self.stats.rebirths_requested += 1
        _LOGGER.info("sparkplug: rebirth %s/%s: %s", topic.group, topic.node, reason)
        cmd = Topic(group=topic.group, type=MessageType.NCMD, node=topic.node)
        payload = encode_payload(rebirth_command(int(time.time() * 1000)))
        await self._nc.publish(topic_to_subject(str(cmd)), payload)
