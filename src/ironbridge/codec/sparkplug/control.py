"""ironbridge's edge-agent management over Sparkplug B: status metrics and config commands.

An ironbridge edge agent reports its health in its NBIRTH and in NDATA every few
seconds as node metrics under ``Edge Status/`` (buffer depth, drops, configuration
version it runs...). The platform pushes a configuration with an NCMD carrying
``Node Control/Config Version`` (Int64) and ``Node Control/Config`` (String, a JSON
document); the agent validates and applies it, then reports the version it runs (or the
reason it refused it in ``Edge Status/Config Error``). Third-party edge nodes simply do
not send these metrics.
"""

from __future__ import annotations

from collections.abc import Mapping

from ironbridge.codec.sparkplug.payload import DataType, Metric, MetricValue, Payload

__all__ = [
    "CONFIG",
    "CONFIG_VERSION",
    "STATUS_METRICS",
    "STATUS_PREFIX",
    "config_command",
    "parse_config_command",
    "status_metrics",
    "status_values",
]

CONFIG = "Node Control/Config"
CONFIG_VERSION = "Node Control/Config Version"
STATUS_PREFIX = "Edge Status/"

#: status metric name (after the prefix) -> (datatype, key in the agent's status dict)
STATUS_METRICS: dict[str, tuple[DataType, str]] = {
    "Health": (DataType.STRING, "health"),
    "Buffer Points": (DataType.INT64, "buffer_points"),
    "Buffer Events": (DataType.INT64, "buffer_events"),
    "Buffer Bytes": (DataType.INT64, "buffer_bytes"),
    "Budget Bytes": (DataType.INT64, "budget_bytes"),
    "Dropped Points": (DataType.INT64, "dropped_points"),
    "Collected": (DataType.INT64, "collected"),
    "Delivered": (DataType.INT64, "delivered"),
    "Link Reconnects": (DataType.INT64, "reconnects"),
    "Last Outage S": (DataType.DOUBLE, "last_outage_s"),
    "Config Version": (DataType.INT64, "config_version"),
    "Config Error": (DataType.STRING, "config_error"),
    "Sources": (DataType.STRING, "sources"),
}
_BY_KEY = {key: (STATUS_PREFIX + name, dt) for name, (dt, key) in STATUS_METRICS.items()}
_BY_NAME = {STATUS_PREFIX + name: key for name, (_, key) in STATUS_METRICS.items()}


def status_metrics(status: Mapping[str, object]) -> list[tuple[str, int, MetricValue]]:
    """(metric name, datatype, value) of the status keys the agent reports."""
    out: list[tuple[str, int, MetricValue]] = []
    for key, (name, dt) in _BY_KEY.items():
        value = status.get(key)
        if value is not None and dt is DataType.STRING:
            value = str(value)
        elif value is not None and dt is DataType.INT64:
            value = int(value)  # type: ignore[call-overload]
        elif value is not None:
            value = float(value)  # type: ignore[arg-type]
        out.append((name, int(dt), value))
    return out


def status_values(metrics: Mapping[str, MetricValue]) -> dict[str, MetricValue]:
    """The status dict back from resolved metric names (others ignored)."""
    return {_BY_NAME[name]: value for name, value in metrics.items() if name in _BY_NAME}


def config_command(version: int, document: str, timestamp_ms: int) -> Payload:
    """The NCMD payload pushing configuration ``version`` (``document``: JSON text)."""
    return Payload(
        timestamp=timestamp_ms,
        metrics=(
            Metric(name=CONFIG_VERSION, datatype=DataType.INT64, value=version),
            Metric(name=CONFIG, datatype=DataType.STRING, value=document),
        ),
    )


def parse_config_command(payload: Payload) -> tuple[int, str] | None:
    """(version, document) of a config NCMD, or None if the payload is not one."""
    version: int | None = None
    document: str | None = None
    for m in payload.metrics:
        if m.name == CONFIG_VERSION and isinstance(m.value, int) and not isinstance(m.value, bool):
            version = m.value
        elif m.name == CONFIG and isinstance(m.value, str):
            document = m.value
    if version is None or document is None:
        return None
    return version, document
