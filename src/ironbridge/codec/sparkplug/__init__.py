"""Sparkplug B: payload codec (protobuf), topics, STATE, and the session rules."""

from ironbridge.codec.sparkplug.payload import (
    DataType,
    Metric,
    MetricValue,
    Payload,
    coerce_value,
    decode_payload,
    encode_payload,
)
from ironbridge.codec.sparkplug.session import (
    BDSEQ,
    REBIRTH,
    EdgeNodeSession,
    HostResult,
    HostTracker,
    ResolvedMetric,
    next_seq,
    numeric,
    rebirth_command,
)
from ironbridge.codec.sparkplug.topic import (
    NAMESPACE,
    MessageType,
    Topic,
    decode_state,
    encode_state,
    parse_topic,
    state_topic,
)

__all__ = [
    "BDSEQ",
    "NAMESPACE",
    "REBIRTH",
    "DataType",
    "EdgeNodeSession",
    "HostResult",
    "HostTracker",
    "MessageType",
    "Metric",
    "MetricValue",
    "Payload",
    "ResolvedMetric",
    "Topic",
    "coerce_value",
    "decode_payload",
    "decode_state",
    "encode_payload",
    "encode_state",
    "next_seq",
    "numeric",
    "parse_topic",
    "rebirth_command",
    "state_topic",
]
