"""SQL tables of the chain package (SQLAlchemy Core, portable SQLite/PostgreSQL).

Every row carries its owner's ``tenant_id`` and ``tenant_path``: a caller sees a row
when the row's path starts with the caller's. Child rows repeat them so that a scoped
query never needs a join to decide visibility. The Alembic migration ``chain_0001``
creates the same tables (keep the two in step).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 128  # ids are 1-128 characters (model.check_id)
PATH = 1024


def _owner() -> tuple[Column[str], Column[str]]:
    return (
        Column("tenant_id", String(ID), nullable=False),
        Column("tenant_path", String(PATH), nullable=False),
    )


def _chain_fk() -> Column[int]:
    return Column("chain_id", Integer, ForeignKey("chains.id", ondelete="CASCADE"), nullable=False)


chains = Table(
    "chains",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_owner(),
    Column("name", String(200), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("n_components", Integer, nullable=False),
    Column("n_enterprises", Integer, nullable=False),
    Column("n_links", Integer, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_chains_tenant_name"),
    Index("ix_chains_tenant_path", "tenant_path"),
    sqlite_autoincrement=True,
)

# (chain_id, position) keys keep the file's row order, so a load rebuilds the same Chain
components = Table(
    "chain_components",
    metadata,
    _chain_fk(),
    Column("position", Integer, nullable=False),
    *_owner(),
    Column("id", String(ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(ID), nullable=True),
    Column("level", Integer, nullable=False),
    Column("importance", Float, nullable=False),
    Column("critical", Boolean, nullable=False),
    PrimaryKeyConstraint("chain_id", "position"),
    Index("ix_chain_components_tenant_path", "tenant_path"),
)

enterprises = Table(
    "chain_enterprises",
    metadata,
    _chain_fk(),
    Column("position", Integer, nullable=False),
    *_owner(),
    Column("id", String(ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("province", String(100), nullable=False),
    Column("city", String(100), nullable=False),
    Column("district", String(100), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("size", String(16), nullable=False),
    # component ids joined by ";" (ids never contain it: model.check_id)
    Column("components", Text, nullable=False),
    Column("is_leader", Boolean, nullable=False),
    PrimaryKeyConstraint("chain_id", "position"),
    Index("ix_chain_enterprises_tenant_path", "tenant_path"),
)

supply_links = Table(
    "chain_supply_links",
    metadata,
    _chain_fk(),
    Column("position", Integer, nullable=False),
    *_owner(),
    Column("supplier_id", String(ID), nullable=False),
    Column("customer_id", String(ID), nullable=False),
    Column("component_id", String(ID), nullable=False),
    Column("volume_share", Float, nullable=False),
    Column("value_cny", Float, nullable=False),
    Column("lead_time_days", Float, nullable=False),
    Column("inventory_cover_days", Float, nullable=False),
    Column("recovery_days", Float, nullable=False),
    PrimaryKeyConstraint("chain_id", "position"),
    Index("ix_chain_supply_links_tenant_path", "tenant_path"),
)

#: an enterprise's plants and machines on the platform (asset ids of the registry)
asset_links = Table(
    "chain_asset_links",
    metadata,
    _chain_fk(),
    Column("enterprise_id", String(ID), nullable=False),
    Column("asset_id", String(ID), nullable=False),
    *_owner(),
    PrimaryKeyConstraint("chain_id", "enterprise_id", "asset_id"),
    Index("ix_chain_asset_links_tenant_path", "tenant_path"),
)

__all__ = ["asset_links", "chains", "components", "enterprises", "metadata", "supply_links"]
