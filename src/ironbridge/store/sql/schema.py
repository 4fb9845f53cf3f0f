"""Table definitions of the registry (SQLAlchemy Core, portable SQLite/PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)

# Stable constraint names so that Alembic migrations can refer to them on both dialects.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 128  # ids are 1-128 characters (model.check_id)
PATH = 1024  # materialised tenant path, "/root/child/"

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(ID), ForeignKey("tenants.id"), nullable=True),
    Column("path", String(PATH), nullable=False, unique=True),
)

asset_types = Table(
    "asset_types",
    metadata,
    Column("name", String(ID), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("tenant_id", String(ID), ForeignKey("tenants.id"), nullable=False),
    Column("tenant_path", String(PATH), nullable=False),
    Column("definition", JSON, nullable=False),
    Index("ix_asset_types_tenant_path", "tenant_path"),
)

assets = Table(
    "assets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), ForeignKey("tenants.id"), nullable=False),
    Column("tenant_path", String(PATH), nullable=False),
    Column("type_name", String(ID), nullable=False),
    Column("name", String(200), nullable=False),
    Column("parent_id", String(ID), ForeignKey("assets.id"), nullable=True),
    Column("attributes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_assets_tenant_path", "tenant_path"),
    Index("ix_assets_type_name", "type_name"),
    Index("ix_assets_parent_id", "parent_id"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("tenant_id", String(ID), ForeignKey("tenants.id"), nullable=False),
    Column("tenant_path", String(PATH), nullable=False),
    Column("name", String(200), nullable=False),
    Column("credential_hash", String(128), nullable=False),
    Column("revoked", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_devices_tenant_path", "tenant_path"),
)

device_assets = Table(
    "device_assets",
    metadata,
    Column("device_id", String(ID), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", String(ID), ForeignKey("assets.id"), primary_key=True),
    Column("position", Integer, nullable=False),
    Index("ix_device_assets_asset_id", "asset_id"),
)

# sqlite_autoincrement: never reuse a deleted row's id. A reused series id would attach
# the old series' points (still in the telemetry store) to a new series.
series = Table(
    "series",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("asset_id", String(ID), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    Column("measurement", String(64), nullable=False),
    UniqueConstraint("asset_id", "measurement", name="uq_series_asset_measurement"),
    sqlite_autoincrement=True,
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", String(ID), ForeignKey("tenants.id"), nullable=False),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("disabled", Boolean, nullable=False),
    sqlite_autoincrement=True,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("prefix", String(32), nullable=False, unique=True),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False),
    Index("ix_api_keys_user_id", "user_id"),
    sqlite_autoincrement=True,
)
