"""The edge agent's configuration file (``edge.toml``), validated with pydantic."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from ironbridge.model import InvalidInput

__all__ = ["EdgeConfig", "RuleConfig", "SourceConfig", "UplinkConfig", "load_config"]


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


class SourceConfig(_Strict):
    """One local data source.

    kinds: ``candump`` (a ``candump -l`` log replayed, J1939 decoded), ``mqtt`` (local
    devices publishing telemetry JSON), ``synthetic`` (``rate`` points/s over ``series``
    series, for tests and benchmarks).
    """

    kind: Literal["candump", "mqtt", "synthetic"]
    path: str = ""
    #: replay speed for candump: 0 = as fast as possible, 1 = real time
    speed: float = 0.0
    host: str = "127.0.0.1"
    port: int = 1883
    topic: str = "local/#"
    rate: float = 1000.0
    series: int = 10
    #: stop after this many points (synthetic; 0 = never)
    limit: int = 0


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
    uplink: UplinkConfig
    sources: list[SourceConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)


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
        err = exc.errors()[0]
        raise InvalidInput(".".join(str(p) for p in err["loc"]), err["msg"]) from exc
