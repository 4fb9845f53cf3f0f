"""Sparkplug B topic names and the host application's STATE message (spec chapter 4)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

from ironbridge.codec.binary import CodecError

__all__ = [
    "NAMESPACE",
    "MessageType",
    "Topic",
    "decode_state",
    "encode_state",
    "parse_topic",
    "state_topic",
]

NAMESPACE = "spBv1.0"
_FORBIDDEN = set("+/#")


class MessageType(enum.StrEnum):
    """The Sparkplug B message types (STATE has its own topic form)."""

    NBIRTH = "NBIRTH"
    NDEATH = "NDEATH"
    NDATA = "NDATA"
    NCMD = "NCMD"
    DBIRTH = "DBIRTH"
    DDEATH = "DDEATH"
    DDATA = "DDATA"
    DCMD = "DCMD"
    STATE = "STATE"

    @property
    def device_level(self) -> bool:
        """True for the D* types, which require a device id."""
        return self.value.startswith("D")


def _check_id(value: str, what: str) -> str:
    if not value or _FORBIDDEN & set(value):
        raise CodecError(f"{what} must be non-empty without '+', '/' or '#'", field=what)
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Topic:
    """A parsed Sparkplug topic.

    Attributes:
        group: group id (for STATE: empty).
        type: the message type.
        node: edge node id (for STATE: the host id).
        device: device id, required for D* types and forbidden otherwise.
    """

    group: str
    type: MessageType
    node: str
    device: str | None = None

    def __post_init__(self) -> None:
        """Validate ids and the device-id rule."""
        _check_id(self.node, "edge_node_id")
        if self.type is MessageType.STATE:
            return
        _check_id(self.group, "group_id")
        if self.type.device_level != (self.device is not None):
            rule = "required" if self.type.device_level else "forbidden"
            raise CodecError(f"{self.type}: device_id is {rule}", field="device_id")
        if self.device is not None:
            _check_id(self.device, "device_id")

    def __str__(self) -> str:
        """The MQTT topic name."""
        if self.type is MessageType.STATE:
            return state_topic(self.node)
        tail = f"/{self.device}" if self.device is not None else ""
        return f"{NAMESPACE}/{self.group}/{self.type}/{self.node}{tail}"


def state_topic(host_id: str) -> str:
    """``spBv1.0/STATE/<host id>`` (Sparkplug 3.0)."""
    return f"{NAMESPACE}/STATE/{_check_id(host_id, 'host_id')}"


def parse_topic(topic: str) -> Topic:
    """Parse a Sparkplug B topic name.

    Raises:
        CodecError: not a Sparkplug B topic, unknown type, or a device-id rule broken.
    """
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != NAMESPACE:
        raise CodecError(f"not a {NAMESPACE} topic: {topic!r}", field="topic")
    if parts[1] == "STATE" and len(parts) == 3:
        return Topic(group="", type=MessageType.STATE, node=parts[2])
    if len(parts) not in (4, 5):
        raise CodecError(f"wrong number of topic levels: {topic!r}", field="topic")
    try:
        mtype = MessageType(parts[2])
    except ValueError as exc:
        raise CodecError(f"unknown message type {parts[2]!r}", field="topic") from exc
    if mtype is MessageType.STATE:
        raise CodecError("STATE topic is spBv1.0/STATE/<host id>", field="topic")
    device = parts[4] if len(parts) == 5 else None
    return Topic(group=parts[1], type=mtype, node=parts[3], device=device)


def encode_state(*, online: bool, timestamp_ms: int) -> bytes:
    """The STATE payload: JSON ``{"online": bool, "timestamp": ms}``."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def decode_state(data: bytes) -> tuple[bool, int]:
    """Decode a STATE payload into (online, timestamp ms).

    Raises:
        CodecError: not the Sparkplug 3.0 JSON form.
    """
    try:
        obj = json.loads(data)
    except ValueError as exc:
        raise CodecError("STATE payload is not JSON", field="state") from exc
    if (
        not isinstance(obj, dict)
        or not isinstance(obj.get("online"), bool)
        or not isinstance(obj.get("timestamp"), int)
    ):
        raise CodecError("STATE payload needs online (bool) and timestamp (int)", field="state")
    return obj["online"], obj["timestamp"]
