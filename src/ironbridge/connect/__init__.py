"""Connectors: read machines over OPC UA and Modbus TCP and publish into the backbone.

Names are imported lazily: asyncua and pymodbus take seconds to import, and the other
connectors of this package (GB/T 32960, JT/T 808, Sparkplug) do not need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ironbridge.connect.config import (
        ModbusConfig,
        ModbusDevice,
        NodeMap,
        OpcUaConfig,
        load_yaml_config,
        parse_config,
    )
    from ironbridge.connect.link import Backoff, Link, LinkState
    from ironbridge.connect.manager import ConnectorManager, make_connector
    from ironbridge.connect.modbus import ModbusConnector
    from ironbridge.connect.opcua import BrowseEntry, OpcUaConnector, browse, variables_under
    from ironbridge.connect.publish import Publisher, SampleBatcher
    from ironbridge.connect.tables import ConnectorRepository, SavedConnector

_EXPORTS = {
    "Backoff": "link",
    "BrowseEntry": "opcua",
    "ConnectorManager": "manager",
    "ConnectorRepository": "tables",
    "Link": "link",
    "LinkState": "link",
    "ModbusConfig": "config",
    "ModbusConnector": "modbus",
    "ModbusDevice": "config",
    "NodeMap": "config",
    "OpcUaConfig": "config",
    "OpcUaConnector": "opcua",
    "Publisher": "publish",
    "SampleBatcher": "publish",
    "SavedConnector": "tables",
    "browse": "opcua",
    "load_yaml_config": "config",
    "make_connector": "manager",
    "parse_config": "config",
    "variables_under": "opcua",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ironbridge.connect' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ironbridge.connect.{module}"), name)


__all__ = [
    "Backoff",
    "BrowseEntry",
    "ConnectorManager",
    "ConnectorRepository",
    "Link",
    "LinkState",
    "ModbusConfig",
    "ModbusConnector",
    "ModbusDevice",
    "NodeMap",
    "OpcUaConfig",
    "OpcUaConnector",
    "Publisher",
    "SampleBatcher",
    "SavedConnector",
    "browse",
    "load_yaml_config",
    "make_connector",
    "parse_config",
    "variables_under",
]
