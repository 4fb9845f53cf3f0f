"""Built-in asset types of the simulated fleet, shipped as YAML files in this package."""

from __future__ import annotations

from importlib import resources

import yaml

from ironbridge.model import AssetType, InvalidInput, parse_asset_type

#: File names of the built-in types, in the order they are loaded.
BUILTIN_FILES: tuple[str, ...] = ("heavy_truck.yaml", "excavator.yaml", "genset.yaml")


def builtin_asset_type_texts() -> dict[str, str]:
    """Return the raw YAML text of every built-in type, keyed by file name."""
    root = resources.files(__name__)
    return {name: root.joinpath(name).read_text(encoding="utf-8") for name in BUILTIN_FILES}


def load_builtin_asset_types() -> list[AssetType]:
    """Parse and return the built-in asset types (heavy_truck, excavator, genset).

    Raises:
        InvalidInput: if a shipped file is broken (a packaging bug, never user input).
    """
    types: list[AssetType] = []
    for name, text in builtin_asset_type_texts().items():
        raw = yaml.safe_load(text)
        if not isinstance(raw, dict):
            raise InvalidInput(name, "asset type file must hold a mapping")
        types.append(parse_asset_type(raw))
    return types


__all__ = ["BUILTIN_FILES", "builtin_asset_type_texts", "load_builtin_asset_types"]
