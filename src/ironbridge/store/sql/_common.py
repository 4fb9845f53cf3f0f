"""Shared pieces of the SQL registry: base class, visibility filters and input checks."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, select, true

from ironbridge.model import InvalidInput, PermissionDenied, Principal, Role, Tenant
from ironbridge.store.sql.engine import WRITE, make_engine, translate_errors
from ironbridge.store.sql.schema import tenants

MAX_PAGE = 10_000
_CHUNK = 1000  # ids per IN (...) list; far below SQLite's and PostgreSQL's bind limits

_T = TypeVar("_T")


def require(who: Principal | None, role: Role) -> None:
    """Raise :class:`PermissionDenied` unless ``who`` (``None``: system) has ``role``."""
    if who is not None and not who.role.allows(role):
        raise PermissionDenied(f"requires the {role.value} role (you are {who.role.value})")


def visible(path_column: Any, who: Principal | None) -> ColumnElement[bool]:
    """SQL filter: rows whose tenant path lies in ``who``'s subtree.

    ``autoescape`` matters: ids may contain ``_``, a LIKE wildcard.
    """
    if who is None:
        return true()
    result: ColumnElement[bool] = path_column.startswith(who.tenant_path, autoescape=True)
    return result


def ancestor_paths(path: str) -> list[str]:
    """Return the paths of a tenant and its ancestors: ``/a/b/`` -> ``/a/``, ``/a/b/``."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) + "/" for i in range(len(parts))]


def check_label(value: object, field: str, *, allow_empty: bool = False, max_len: int = 200) -> str:
    """Return a display name stripped of outer white space, or name what is wrong."""
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a string")
    value = value.strip()
    if not value and not allow_empty:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidInput(field, f"must be at most {max_len} characters")
    return value


def check_json_object(value: object, field: str) -> dict[str, Any]:
    """Return a copy of a JSON-serialisable mapping with string keys."""
    if not isinstance(value, Mapping):
        raise InvalidInput(field, "must be a mapping")
    for key in value:
        if not isinstance(key, str):
            raise InvalidInput(field, f"key {key!r} is not a string")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = next(
            (k for k, v in value.items() if not _json_ok(v)),
            "",
        )
        raise InvalidInput(f"{field}.{bad}" if bad else field, f"not JSON data: {exc}") from None
    return dict(value)


def _json_ok(value: object) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return not (isinstance(value, float) and not math.isfinite(value))


def check_page(limit: int, offset: int) -> None:
    """Validate a page request."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("limit", f"must be an integer from 1 to {MAX_PAGE}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset", "must be a non-negative integer")


def chunks(items: Sequence[_T], size: int = _CHUNK) -> Iterator[Sequence[_T]]:
    """Yield ``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def utcnow() -> datetime:
    """Return the current time, aware UTC, to the microsecond."""
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """Return ``value`` as aware UTC (SQLite hands back naive datetimes)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def tenant_of(row: Any) -> Tenant:
    """Build a :class:`Tenant` from a ``tenants`` row."""
    return Tenant(id=row.id, name=row.name, parent_id=row.parent_id, path=row.path)


class SqlBase:
    """Engine, per-call transactions and tenant lookups shared by the registry parts."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, shared with packages that keep their own tables here."""
        return self._engine

    def close(self) -> None:
        """Release connections."""
        self._engine.dispose()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with translate_errors(), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with translate_errors(), self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @staticmethod
    def _visible_tenant(
        conn: Connection, who: Principal | None, tenant_id: str, field: str
    ) -> Tenant:
        """Return a tenant referenced by an input field, or name the field."""
        row = conn.execute(
            select(tenants).where(tenants.c.id == tenant_id, visible(tenants.c.path, who))
        ).first()
        if row is None:
            raise InvalidInput(field, f"tenant {tenant_id!r} not found")
        return tenant_of(row)
