"""Edge management over Sparkplug: status metrics and configuration commands round-trip."""

from __future__ import annotations

from ironbridge.codec.sparkplug import DataType, Metric, Payload, decode_payload, encode_payload
from ironbridge.codec.sparkplug.control import (
    CONFIG,
    STATUS_PREFIX,
    config_command,
    parse_config_command,
    status_metrics,
    status_values,
)


def test_status_metrics_round_trip_through_the_codec() -> None:
    status = {"health": "ok", "buffer_points": 12, "config_version": 3, "last_outage_s": 2}
    metrics = status_metrics(status)
    names = {name: dt for name, dt, _ in metrics}
    assert names[STATUS_PREFIX + "Health"] == DataType.STRING
    assert names[STATUS_PREFIX + "Buffer Points"] == DataType.INT64
    payload = Payload(
        timestamp=1,
        seq=0,
        metrics=tuple(
            Metric(name=n, datatype=dt, value=v, is_null=v is None) for n, dt, v in metrics
        ),
    )
    decoded = decode_payload(encode_payload(payload))
    back = status_values({m.name: m.value for m in decoded.metrics if m.name})
    assert back["health"] == "ok"
    assert back["buffer_points"] == 12
    assert back["config_version"] == 3
    assert back["last_outage_s"] == 2.0
    assert back["config_error"] is None  # not reported: null
    assert "temperature" not in status_values({"temperature": 1.0})


def test_config_command_round_trip() -> None:
    doc = '{"rules": []}'
    decoded = decode_payload(encode_payload(config_command(7, doc, 123)))
    assert parse_config_command(decoded) == (7, doc)
    only_doc = Payload(metrics=(Metric(name=CONFIG, datatype=DataType.STRING, value=doc),))
    assert parse_config_command(only_doc) is None
