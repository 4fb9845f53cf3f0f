"""Identifier rules for tenants, assets, devices and measurements."""

from __future__ import annotations

import re

from ironbridge.model.errors import InvalidInput

# NATS maps MQTT topic levels to subject tokens ("/" -> "."), so an id that becomes a
# topic level must not contain ".", "*", ">", "/", "+", "#" or white space.
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def check_id(value: str, field: str = "id") -> str:
    """Return ``value`` if it is a valid entity id, else raise :class:`InvalidInput`.

    Args:
        value: candidate id (tenant, asset, device).
        field: field name used in the error.
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise InvalidInput(
            field,
            "must be 1-128 characters of letters, digits, '-' or '_', starting with a letter "
            "or digit (no '.', '*', '>', '/', '+', '#' or spaces: ids become MQTT topic levels)",
        )
    return value


def check_name(value: str, field: str = "name") -> str:
    """Return ``value`` if it is a valid measurement or attribute name.

    Names are lower snake case so they work unquoted in rule expressions and SQL.
    """
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise InvalidInput(
            field, "must be lower snake case: a-z first, then a-z, 0-9 or '_' (max 64)"
        )
    return value
