"""Saved plant sites (SQLAlchemy Core; migration ``plant_0001``) and where stations' data lives.

A site is stored as its definition (the mapping :func:`parse_site` reads: calendar,
lines, stations with their ideal cycle times) plus the site's stop reason codes. A
station's id is the id of the asset whose measurements carry its data:

* ``state``: :class:`~ironbridge.analytics.plant.StationState` code (0 running,
  1 idle, 2 down, 3 planned_stop, 4 setup, 5 unknown) -- from an OPC UA node, a
  Modbus register or an HTTP/MQTT message, it is a measurement like any other;
* ``reason``: stop reason code, named by the site's ``reason_codes`` (0 = none);
* ``good_count`` and ``scrap_count``: cumulative part counters as a PLC holds them
  (a drop is a counter reset: the new value counts as parts made since).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    true,
)
from sqlalchemy.exc import IntegrityError

from ironbridge.analytics.plant import Site, parse_site
from ironbridge.model import Conflict, InvalidInput, NotFound

metadata = MetaData()

sites = Table(
    "plant_sites",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("tenant_path", String(1024), nullable=False, index=True),
    Column("definition", JSON, nullable=False),
    Column("reason_codes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class Scope(Protocol):
    """Who is asking (a ``Principal``)."""

    @property
    def tenant_path(self) -> str:
        """The caller's tenant path."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedSite:
    """A stored site.

    Attributes:
        site: the parsed plant model.
        definition: the mapping it was parsed from.
        reason_codes: stop reason code -> name.
        tenant_id: owning tenant.
    """

    site: Site
    definition: dict[str, Any]
    reason_codes: dict[int, str]
    tenant_id: str


def parse_reason_codes(data: object) -> dict[int, str]:
    """Validate ``{code: name}`` (codes 1-65535; JSON keys may be strings).

    Raises:
        InvalidInput: field ``reason_codes.<code>``.
    """
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise InvalidInput("reason_codes", "must be a mapping of code to name")
    out: dict[int, str] = {}
    for key, name in data.items():
        try:
            code = int(key)
        except (TypeError, ValueError):
            raise InvalidInput(f"reason_codes.{key}", "a code must be an integer") from None
        if not 1 <= code <= 65535:
            raise InvalidInput(f"reason_codes.{key}", "a code must be 1-65535 (0 means none)")
        if not isinstance(name, str) or not name:
            raise InvalidInput(f"reason_codes.{key}", "must name the reason")
        out[code] = name
    return out


def _visible(who: Scope | None) -> Any:
    if who is None:
        return true()
    return sites.c.tenant_path.startswith(who.tenant_path, autoescape=True)


def _saved(row: Any) -> SavedSite:
    return SavedSite(
        site=parse_site(row.definition),
        definition=dict(row.definition),
        reason_codes={int(k): str(v) for k, v in row.reason_codes.items()},
        tenant_id=row.tenant_id,
    )


class SiteRepository:
    """CRUD of plant sites over the registry's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        tenant_id: str,
        tenant_path: str,
        definition: Mapping[str, Any],
        reason_codes: Mapping[int, str],
    ) -> SavedSite:
        """Validate and save a site.

        Raises:
            InvalidInput: naming the field of the definition.
            Conflict: the site id is taken.
        """
        site = parse_site(definition)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(sites).values(
                        id=site.id,
                        tenant_id=tenant_id,
                        tenant_path=tenant_path,
                        definition=dict(definition),
                        reason_codes={str(k): v for k, v in reason_codes.items()},
                        created_at=datetime.now(UTC),
                    )
                )
        except IntegrityError:
            raise Conflict(f"site {site.id!r} already exists") from None
        return SavedSite(
            site=site,
            definition=dict(definition),
            reason_codes=dict(reason_codes),
            tenant_id=tenant_id,
        )

    def get(self, who: Scope | None, site_id: str) -> SavedSite:
        """Return a visible site.

        Raises:
            NotFound: no such site visible to ``who``.
        """
        with self._engine.connect() as conn:
            row = conn.execute(select(sites).where(sites.c.id == site_id, _visible(who))).first()
        if row is None:
            raise NotFound("site", site_id)
        return _saved(row)

    def list(self, who: Scope | None) -> list[SavedSite]:
        """Every visible site, by id."""
        with self._engine.connect() as conn:
            rows = conn.execute(select(sites).where(_visible(who)).order_by(sites.c.id)).all()
        return [_saved(r) for r in rows]

    def delete(self, who: Scope | None, site_id: str) -> None:
        """Delete a visible site.

        Raises:
            NotFound: no such site visible to ``who``.
        """
        with self._engine.begin() as conn:
            n = conn.execute(delete(sites).where(sites.c.id == site_id, _visible(who))).rowcount
        if not n:
            raise NotFound("site", site_id)


__all__ = ["SavedSite", "Scope", "SiteRepository", "parse_reason_codes", "sites"]
