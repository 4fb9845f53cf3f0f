"""The edge agent's configuration file (``edge.toml``), validated with pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from ironbridge.model import InvalidInput

__all__ = [
    "EdgeConfig",
    "ManagedConfig",
    "RuleConfig",
    "SourceConfig",
    "UplinkConfig",
    "load_config",
    "merge_managed",
    "parse_managed",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UplinkConfig(_Strict):
    """The platform's MQTT listener and this gateway's device credential."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str
    password: SecretStr
    #: seconds to wait for a PUBACK before the link counts as down
    ack_timeout_s: float = 10.0
    #: cap of the jittered exponential reconnect backoff (how late a returning link is
    #: noticed at worst)
    reconnect_max_s: float = Field(default=5.0, gt=0)


class SourceConfig(_Strict):
    """One local data source.

    kinds: ``candump`` (a ``candump -l`` log replayed, J1939 decoded), ``socketcan`` (a
    live CAN interface ``channel``, J1939 decoded), ``mqtt`` (local devices publishing
    telemetry JSON), ``opcua`` and ``modbus`` (a plant connector configuration under
    ``connector``, see docs/plant.md; ``device`` may be omitted there), ``synthetic``
    (``rate`` points/s over ``series`` series, for tests and benchmarks).
    """

    kind: Literal["candump", "socketcan", "mqtt", "opcua", "modbus", "synthetic"]
    path: str = ""
    #: socketcan interface name
    channel: str = "can0"
    #: opcua / modbus: the plant connector configuration (``kind`` is implied)
    connector: dict[str, Any] = Field(default_factory=dict)
    #: replay speed for candump: 0 = as fast as possible, 1 = real time
    speed: float = 0.0
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "local/#"
    rate: float = 1000.0
    series: int = 10
    #: stop after this many points (synthetic; 0 = never)
    limit: int = 0

    @model_validator(mode="after")
    def _check(self) -> SourceConfig:
        if self.kind in ("opcua", "modbus"):
            connector_config(self)  # raises ValueError naming the field
        elif self.connector:
            raise ValueError(f"connector is only for opcua and modbus sources, not {self.kind}")
        if self.kind == "candump" and not self.path:
            raise ValueError("path: a candump source needs the log file's path")
        return self


def connector_config(src: SourceConfig) -> Any:
    """The plant connector configuration of an ``opcua`` or ``modbus`` source.

    ``device`` of every node / register block defaults to ``edge`` (the agent forwards
    values under their measurement names as its own metrics).

    Raises:
        ValueError: ``connector.<field>: <reason>``.
    """
    from ironbridge.connect.config import parse_config

    raw = dict(src.connector)
    raw["kind"] = src.kind
    key = "nodes" if src.kind == "opcua" else "devices"
    if isinstance(raw.get(key), list):
        raw[key] = [
            {"device": "edge", **item} if isinstance(item, dict) else item for item in raw[key]
        ]
    try:
        return parse_config(raw)
    except InvalidInput as exc:
        raise ValueError(f"connector.{exc.field}: {exc.reason}") from None


class RuleConfig(_Strict):
    """A local threshold rule: raises an alarm event even while the uplink is down."""

    name: str
    metric: str
    op: Literal[">", ">=", "<", "<="]
    threshold: float


class EdgeConfig(_Strict):
    """The whole ``edge.toml``."""

    version: int = 1
    node_id: str
    group: str = "ironbridge"
    buffer_path: str = "edge-buffer.db"
    disk_budget_mb: float = 512.0
    backfill_points_per_s: float = 50_000.0
    batch_points: int = Field(default=5000, ge=1)
    #: batches published back to back before waiting for their acknowledgements
    inflight_batches: int = Field(default=4, ge=1, le=64)
    uplink: UplinkConfig
    sources: list[SourceConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)


class ManagedConfig(_Strict):
    """The part of the configuration the platform may push (a JSON document).

    Identity, buffer path and uplink credential stay in the local ``edge.toml``: a pushed
    configuration cannot cut the agent off the platform. Keys left out keep their value.
    """

    disk_budget_mb: float | None = Field(default=None, gt=0)
    backfill_points_per_s: float | None = Field(default=None, gt=0)
    batch_points: int | None = Field(default=None, ge=1)
    sources: list[SourceConfig] | None = None
    rules: list[RuleConfig] | None = None


def _invalid(exc: ValidationError, prefix: str = "") -> InvalidInput:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return InvalidInput(prefix + field if field else prefix.rstrip(".") or "config", err["msg"])


def parse_managed(document: str | dict[str, Any]) -> ManagedConfig:
    """Validate a pushed configuration (JSON text or an already parsed mapping).

    Raises:
        InvalidInput: not JSON, or a field that fails validation (named).
    """
    import json

    try:
        raw = json.loads(document) if isinstance(document, str) else document
    except ValueError as exc:
        raise InvalidInput("config", f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidInput("config", "must be a JSON object")
    try:
        return ManagedConfig.model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, "config.") from exc


def merge_managed(cfg: EdgeConfig, managed: ManagedConfig) -> EdgeConfig:
    """``cfg`` with the keys the pushed configuration sets replaced."""
    update = managed.model_dump(exclude_none=True)
    update = {key: getattr(managed, key) for key in update}
    return cfg.model_copy(update=update)


def load_config(path: str | Path) -> EdgeConfig:
    """Read and validate ``edge.toml``.

    Raises:
        InvalidInput: unreadable TOML or a field that fails validation (named).
    """
    try:
        raw = tomllib.loads(Path(path).read_text())
        return EdgeConfig.model_validate(raw)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput("config", str(exc)) from exc
    except ValidationError as exc:
        raise _invalid(exc) from exc
