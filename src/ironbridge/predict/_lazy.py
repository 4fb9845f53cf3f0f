"""Lazy imports of the optional heavy libraries (the ``predict`` extra)."""

from __future__ import annotations

import importlib
from types import ModuleType

from ironbridge.model import IronbridgeError

__all__ = ["MissingExtra", "require"]


class MissingExtra(IronbridgeError):
    """An optional dependency of ironbridge.predict is not installed."""


def require(module: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingExtra` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{module} is needed for this model; install it with: pip install 'ironbridge[predict]'"
        ) from exc
