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
import threading
import time
from typing import Any

from ironbridge.codec.sparkplug import (
    REBIRTH,
    DataType,
    EdgeNodeSession,
    MessageType,
    Topic,
    decode_payload,
    encode_payload,
)
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
        if self._client is None or not self._connected.is_set():
            raise UplinkDown("not connected")
        info = self._client.publish(topic, payload, qos=1)
        try:
            info.wait_for_publish(self.cfg.ack_timeout_s)
        except (RuntimeError, ValueError) as exc:
            raise UplinkDown(str(exc)) from exc
        if not info.is_published():
            raise UplinkDown("no PUBACK in time")

    def _birth(self) -> None:
        self.session.aliases.clear()
        now = int(time.time() * 1000)
        metrics = [(name, int(DataType.DOUBLE), None) for name in self.known]
        self._publish(
            self._topic(MessageType.NBIRTH), encode_payload(self.session.nbirth(metrics, now))
        )
        self._rebirth.clear()

    def send(self, batch: Batch) -> None:
        """Publish one buffer batch and wait for the broker's acknowledgement.

        Raises:
            UplinkDown: not connected or not acknowledged (the batch stays pending).
        """
        if self._rebirth.is_set():
            self._birth()
        if batch.kind is BatchKind.EVENTS:
            docs = [json.loads(e.body) for e in batch.events]
            self._publish(f"ib/v1/{self.session.node}/events", json.dumps(docs).encode())
            return
        new = [s for s in dict.fromkeys(batch.series) if (None, s) not in self.session.aliases]
        if new:
            self.known.extend(new)
            self._birth()
        payload = self.session.data(
            None,
            zip(batch.series, batch.ts, batch.values, strict=True),
            historical=batch.kind is BatchKind.HISTORY,
        )
        self._publish(self._topic(MessageType.NDATA), encode_payload(payload))

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
