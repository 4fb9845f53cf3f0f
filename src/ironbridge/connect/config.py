"""Stored connector configurations (OPC UA, Modbus TCP), versioned and validated.

A configuration says where the machine is and how its values map to measurements of
ironbridge devices/assets. It is plain JSON (YAML for the CLI); parsing errors name the
field, e.g. ``nodes[3].measurement`` or ``devices[0].registers[2].dtype``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ironbridge.codec.modbus import RegisterSpec, parse_register_map
from ironbridge.model import InvalidInput, check_id, check_name

CONFIG_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _id(value: str | None) -> str | None:
    try:
        return None if value is None else check_id(value, "id")
    except InvalidInput as exc:  # pydantic reports ValueError with the field's location
        raise ValueError(exc.reason) from None


class NodeMap(_Strict):
    """One OPC UA variable mapped to a measurement.

    Attributes:
        node: node id string (``ns=2;s=Press1.State`` or ``ns=2;i=17``).
        device: ironbridge device the value is published for.
        measurement: measurement name in the asset's type.
        asset: target asset; default the device's first asset.
        scale: multiplier applied to the value.
        offset: added after scaling.
    """

    node: str = Field(min_length=1)
    device: str
    measurement: str
    asset: str | None = None
    scale: float = 1.0
    offset: float = 0.0

    @field_validator("device", "asset")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        return _id(v)

    @field_validator("measurement")
    @classmethod
    def _name(cls, v: str) -> str:
        try:
            return check_name(v, "measurement")
        except InvalidInput as exc:
            raise ValueError(exc.reason) from None


class OpcUaConfig(_Strict):
    """An OPC UA server and the nodes to subscribe to.

    Attributes:
        kind: ``opcua``.
        url: endpoint URL (``opc.tcp://host:4840/path``).
        publishing_interval_ms: subscription publishing interval.
        sampling_interval_ms: requested sampling interval of each monitored item.
        username: user name (anonymous when empty).
        password: its password.
        timeout_s: request timeout.
        nodes: node mappings.
    """

    version: int = CONFIG_VERSION
    kind: Literal["opcua"] = "opcua"
    url: str = Field(pattern=r"^opc\.tcp://.+")
    publishing_interval_ms: float = Field(default=500.0, ge=10, le=3_600_000)
    sampling_interval_ms: float = Field(default=0.0, ge=0, le=3_600_000)
    username: str = ""
    password: str = ""
    timeout_s: float = Field(default=4.0, gt=0, le=120)
    nodes: list[NodeMap] = Field(default_factory=list)


class ModbusDevice(_Strict):
    """The registers of one ironbridge device/asset behind a Modbus TCP endpoint.

    Attributes:
        device: ironbridge device the values are published for.
        asset: target asset; default the device's first asset.
        registers: register map entries (see :class:`~ironbridge.codec.modbus.RegisterSpec`).
    """

    device: str
    asset: str | None = None
    registers: list[dict[str, Any]]

    @field_validator("device", "asset")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        return _id(v)

    def specs(self) -> list[RegisterSpec]:
        """The parsed register map.

        Raises:
            InvalidInput: a field like ``registers[2].dtype``.
        """
        return parse_register_map(self.registers)


class ModbusConfig(_Strict):
    """A Modbus TCP endpoint polled through register maps.

    Attributes:
        kind: ``modbus``.
        host: device host name or address.
        port: TCP port.
        scan_interval_s: time between two scans of the whole map.
        timeout_s: request timeout.
        max_gap: unmapped registers one read may span (see ``plan_reads``).
        devices: register maps per ironbridge device.
    """

    version: int = CONFIG_VERSION
    kind: Literal["modbus"] = "modbus"
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    scan_interval_s: float = Field(default=1.0, ge=0.01, le=3600)
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    max_gap: int = Field(default=0, ge=0, le=100)
    devices: list[ModbusDevice] = Field(min_length=1)


ConnectorConfig = Annotated[OpcUaConfig | ModbusConfig, Field(discriminator="kind")]


class _Envelope(_Strict):
    config: ConnectorConfig


def parse_config(data: object) -> OpcUaConfig | ModbusConfig:
    """Validate a connector configuration (a mapping with ``kind``).

    Raises:
        InvalidInput: naming the field and the reason.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput("", "a connector configuration must be a mapping")
    if data.get("version", CONFIG_VERSION) != CONFIG_VERSION:
        raise InvalidInput("version", f"unsupported version {data.get('version')!r}")
    try:
        config = _Envelope.model_validate({"config": dict(data)}).config
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(p) for p in err["loc"][1:] if p not in ("opcua", "modbus")]
        field = ""
        for part in loc:
            field += f"[{part}]" if part.isdigit() else (f".{part}" if field else part)
        msg = str(err["msg"])
        if "Input tag" in msg or "discriminator" in msg:
            field, msg = "kind", "must be 'opcua' or 'modbus'"
        raise InvalidInput(field, msg.removeprefix("Value error, ")) from None
    if isinstance(config, ModbusConfig):
        for i, dev in enumerate(config.devices):
            try:
                dev.specs()
            except InvalidInput as exc:
                raise InvalidInput(f"devices[{i}].{exc.field}", exc.reason) from None
    return config


def load_yaml_config(text: str, **overrides: object) -> OpcUaConfig | ModbusConfig:
    """Parse a configuration from YAML text, with top-level keys overridden.

    Raises:
        InvalidInput: malformed YAML or an invalid field.
    """
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput("", f"malformed YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput("", "the map file must hold a mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_config(data)


__all__ = [
    "CONFIG_VERSION",
    "ConnectorConfig",
    "ModbusConfig",
    "ModbusDevice",
    "NodeMap",
    "OpcUaConfig",
    "load_yaml_config",
    "parse_config",
]
