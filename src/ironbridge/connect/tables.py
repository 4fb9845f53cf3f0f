"""Saved connector configurations (SQLAlchemy Core; migration ``plant_0001``).

Rows carry ``tenant_id``/``tenant_path``: a caller sees a row when the row's path
starts with the caller's; ``None`` (the platform itself) sees every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
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

from ironbridge.connect.config import ModbusConfig, OpcUaConfig, parse_config
from ironbridge.model import Conflict, NotFound, check_id

metadata = MetaData()

connectors = Table(
    "plant_connectors",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant_id", String(128), nullable=False),
    Column("tenant_path", String(1024), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("config", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class Scope(Protocol):
    """Who is asking (a ``Principal``): rows under ``tenant_path`` are visible."""

    @property
    def tenant_path(self) -> str:
        """The caller's tenant path."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SavedConnector:
    """A stored connector configuration.

    Attributes:
        id: connector id.
        tenant_id: owning tenant.
        tenant_path: its path.
        config: the validated configuration.
        enabled: whether the platform runs it.
        created_at: creation time (UTC).
    """

    id: str
    tenant_id: str
    tenant_path: str
    config: OpcUaConfig | ModbusConfig
    enabled: bool
    created_at: datetime


def _visible(who: Scope | None) -> Any:
    if who is None:
        return true()
    return connectors.c.tenant_path.startswith(who.tenant_path, autoescape=True)


def _row(row: Any) -> SavedConnector:
    return SavedConnector(
        id=row.id,
        tenant_id=row.tenant_id,
        tenant_path=row.tenant_path,
        config=parse_config(row.config),
        enabled=bool(row.enabled),
        created_at=row.created_at,
    )


class ConnectorRepository:
    """CRUD of saved connector configurations over the registry's engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        connector_id: str,
        tenant_id: str,
        tenant_path: str,
        config: OpcUaConfig | ModbusConfig,
        enabled: bool = True,
    ) -> SavedConnector:
        """Save a configuration.

        Raises:
            Conflict: the id is taken.
        """
        check_id(connector_id, "id")
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(connectors).values(
                        id=connector_id,
                        tenant_id=tenant_id,
                        tenant_path=tenant_path,
                        kind=config.kind,
                        config=config.model_dump(mode="json"),
                        enabled=enabled,
                        created_at=now,
                    )
                )
        except IntegrityError:
            raise Conflict(f"connector {connector_id!r} already exists") from None
        return SavedConnector(
            id=connector_id,
            tenant_id=tenant_id,
            tenant_path=tenant_path,
            config=config,
            enabled=enabled,
            created_at=now,
        )

    def get(self, who: Scope | None, connector_id: str) -> SavedConnector:
        """Return a visible connector.

        Raises:
            NotFound: no such connector visible to ``who``.
        """
        with self._engine.connect() as conn:
            row = conn.execute(
                select(connectors).where(connectors.c.id == connector_id, _visible(who))
            ).first()
        if row is None:
            raise NotFound("connector", connector_id)
        return _row(row)

    def list(self, who: Scope | None) -> list[SavedConnector]:
        """Every visible connector, by id."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(connectors).where(_visible(who)).order_by(connectors.c.id)
            ).all()
        return [_row(r) for r in rows]

    def delete(self, who: Scope | None, connector_id: str) -> None:
        """Delete a visible connector.

        Raises:
            NotFound: no such connector visible to ``who``.
        """
        with self._engine.begin() as conn:
            n = conn.execute(
                delete(connectors).where(connectors.c.id == connector_id, _visible(who))
            ).rowcount
        if not n:
            raise NotFound("connector", connector_id)


__all__ = ["ConnectorRepository", "SavedConnector", "Scope", "connectors", "metadata"]
