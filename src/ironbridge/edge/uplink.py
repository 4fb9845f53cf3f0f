"""The edge agent's uplink: Sparkplug B over MQTT to the platform (paho-mqtt 2).

The MQTT Will is the NDEATH with the session's bdSeq (kept in the buffer's meta table so
it increases across restarts). After CONNECT the uplink publishes NBIRTH with every
series ever buffered (DOUBLE, current value null); a series seen for the first time, or
an NCMD ``Node Control/Rebirth``, causes a new NBIRTH. Points go out as NDATA (aliases
only; history flagged ``is_historical``), alarms and events as ironbridge event JSON on
``ib/v1/<node>/events``.

Deviation from Sparkplug (QoS 0 for N* messages): NDATA is published with QoS 1 and the
buffer acknowledges a batch only after the PUBACK, which is what makes delivery
at-least-once; the platform store keeps one value per (series, ts), so a resend after a
crash stores nothing twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ironbridge.codec.sparkplug import (
    REBIRTH,
    DataType,
    EdgeNodeSession,
    MessageType,
    MetricValue,
    Topic,
    decode_payload,
    encode_payload,
)
from ironbridge.codec.sparkplug.columnar import encode_double_columns
from ironbridge.codec.sparkplug.control import parse_config_command, status_metrics
from ironbridge.edge.buffer import Batch, BatchKind
from ironbridge.edge.config import UplinkConfig

__all__ = ["SparkplugUplink", "UplinkDown"]

_LOGGER = logging.getLogger(__name__)


class UplinkDown(Exception):
    """The uplink is not connected or a publish was not acknowledged in time."""


class SparkplugUplink:
    """One MQTT session at a time to the platform, speaking Sparkplug B (blocking API).

    Args:
        cfg: broker address and credential.
        group: Sparkplug group id.
        node: edge node id (= the ironbridge device id = the MQTT user name).
        bd_seq: the bdSeq of the previous session (-1 if none).
    """

    def __init__(self, cfg: UplinkConfig, *, group: str, node: str, bd_seq: int = -1) -> None:
        """Create the uplink (not connected)."""
        self.cfg = cfg
        self.session = EdgeNodeSession(group=group, node=node, bd_seq=bd_seq)
        self.known: list[str] = []
        self._client: Any = None
        self._connected = threading.Event()
        self._rebirth = threading.Event()
        self.connects = 0
        #: the agent's status (``Edge Status/`` metrics in NBIRTH and status NDATA)
        self.status: Callable[[], dict[str, object]] = dict
        #: configuration commands received: (version, JSON document)
        self.commands: queue.Queue[tuple[int, str]] = queue.Queue()

    @property
    def connected(self) -> bool:
        """True while the MQTT session is up."""
        return self._connected.is_set()

    def _topic(self, mtype: MessageType) -> str:
        return str(Topic(group=self.session.group, type=mtype, node=self.session.node))

    def connect(self, series: list[str], timeout: float = 10.0) -> int:
        """Open a session (Will = NDEATH), publish NBIRTH; return the new bdSeq.

        Raises:
            UplinkDown: the broker refused or did not answer.
        """
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.close()
        will = encode_payload(self.session.connect())
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"edge-{self.session.node}", clean_session=True
        )
        client.username_pw_set(self.cfg.username, self.cfg.password.get_secret_value())
        client.will_set(self._topic(MessageType.NDEATH), will, qos=1, retain=False)
        result: list[Any] = []

        def on_connect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
            result.append(rc)
            if not rc.is_failure:
                c.subscribe(self._topic(MessageType.NCMD), qos=1)
                self._connected.set()

        def on_disconnect(c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
            if self._connected.is_set():
                _LOGGER.warning("uplink lost: %s", rc)
            self._connected.clear()

        def on_message(c: Any, u: Any, msg: Any) -> None:
            try:
                payload = decode_payload(msg.payload)
            except ValueError:
                return
            if any(m.name == REBIRTH and m.value is True for m in payload.metrics):
                self._rebirth.set()
            command = parse_config_command(payload)
            if command is not None:
                self.commands.put(command)

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_message = on_message
        try:
            client.connect(self.cfg.host, self.cfg.port, keepalive=15)
        except OSError as exc:
            raise UplinkDown(f"connect to {self.cfg.host}:{self.cfg.port}: {exc}") from exc
        client.loop_start()
        self._client = client
        deadline = time.monotonic() + timeout
        while not result and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._connected.is_set():
            self.close()
            raise UplinkDown(f"no CONNACK accepted: {result}")
        self.connects += 1
        self.known = list(dict.fromkeys(series))
        self._birth()
        _LOGGER.info("uplink connected (bdSeq %d)", self.session.bd_seq)
        return self.session.bd_seq

    def _publish(self, topic: str, payload: bytes) -> None:
        self._wait(self._start(topic, payload))

    def _start(self, topic: str, payload: bytes) -> Any:
        if self._client is None or not self._connected.is_set():
            raise UplinkDown("not connected")
        return self._client.publish(topic, payload, qos=1)

    def _wait(self, info: Any) -> None:
        try:
            info.wait_for_publish(self.cfg.ack_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise UplinkDown(str(exc)) from exc
        if not info.is_published():
            raise UplinkDown("no PUBACK in time")

    def _birth(self) -> None:
        self.session.aliases.clear()
        now = int(time.time() * 1000)
        metrics: list[tuple[str, int, MetricValue]] = [
            (name, int(DataType.DOUBLE), None) for name in self.known
        ]
        metrics.extend(status_metrics(self.status()))
        self._publish(
            self._topic(MessageType.NBIRTH), encode_payload(self.session.nbirth(metrics, now))
        )
        self._rebirth.clear()

    def send(self, batch: Batch) -> None:
        """Publish one buffer batch and wait for the broker's acknowledgement.

        Raises:
            UplinkDown: not connected or not acknowledged (the batch stays pending).
        """
        prepared = self._prepare(batch)
        if prepared is not None:
            self._publish(*prepared)

    def send_many(self, batches: list[Batch]) -> int:
        """Publish batches back to back, then wait for their acknowledgements in order.

        Returns how many, from the first, the broker acknowledged (the rest stay
        pending and are sent again, in order, after a reconnect).
        """
        infos: list[Any] = []
        try:
            for batch in batches:
                prepared = self._prepare(batch)
                infos.append(None if prepared is None else self._start(*prepared))
        except UplinkDown as exc:
            _LOGGER.info("publish failed: %s", exc)
        for done, info in enumerate(infos):
            if info is None:
                continue
            try:
                self._wait(info)
            except UplinkDown as exc:
                _LOGGER.info("batch %d not acknowledged: %s", batches[done].id, exc)
                return done
        return len(infos)

    def _prepare(self, batch: Batch) -> tuple[str, bytes] | None:
        """The topic and payload of a batch (None: nothing to send)."""
        if self._rebirth.is_set():
            self._birth()
        if batch.kind is BatchKind.EVENTS:
            docs = [json.loads(e.body) for e in batch.events]
            return f"ib/v1/{self.session.node}/events", json.dumps(docs).encode()
        if not len(batch.ts):
            return None  # every point of it was already delivered as a current value
        aliases = self.session.aliases
        new = [n for n in batch.names.values() if (None, n) not in aliases]
        if new:
            self.known.extend(new)
            self._birth()
        sids = np.array(sorted(batch.names), dtype=np.int64)
        alias_of = np.array([aliases[(None, batch.names[int(k)])][0] for k in sids])
        payload = encode_double_columns(
            alias_of[np.searchsorted(sids, batch.sids)],
            batch.ts,
            batch.values,
            seq=self.session.advance(),
            timestamp=int(batch.ts.max()),
            historical=batch.kind is BatchKind.HISTORY,
        )
        return self._topic(MessageType.NDATA), payload

    def send_status(self) -> None:
        """Publish the agent's status as an NDATA of ``Edge Status/`` metrics.

        Raises:
            UplinkDown: not connected or not acknowledged.
        """
        if self._rebirth.is_set():
            self._birth()  # the birth carries the status
            return
        now = int(time.time() * 1000)
        values = [(name, now, value) for name, _, value in status_metrics(self.status())]
        self._publish(
            self._topic(MessageType.NDATA), encode_payload(self.session.data(None, values))
        )

    def close(self) -> None:
        """Publish NDEATH and disconnect (a clean DISCONNECT makes the broker drop the Will)."""
        client = self._client
        if client is not None and self._connected.is_set():
            with contextlib.suppress(UplinkDown):
                self._publish(
                    self._topic(MessageType.NDEATH), encode_payload(self.session.ndeath())
                )
        self._client = None
        self._connected.clear()
        if client is not None:
            client.disconnect()
            client.loop_stop()
