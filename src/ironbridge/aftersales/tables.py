"""The after-sales tables (SQLAlchemy Core), created by migration ``aftersales_0001``."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()


def _tenant() -> list[Column[str]]:
    return [
        Column("tenant_id", String(128), nullable=False),
        Column("tenant_path", String(1024), nullable=False, index=True),
    ]


stations = Table(
    "as_stations",
    metadata,
    Column("id", String(128), primary_key=True),
    *_tenant(),
    Column("name", String(200), nullable=False),
    Column("region", String(128), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    #: the central warehouse is a station with is_warehouse
    Column("is_warehouse", Boolean, nullable=False),
)

technicians = Table(
    "as_technicians",
    metadata,
    Column("id", String(128), primary_key=True),
    *_tenant(),
    Column("name", String(200), nullable=False),
    Column("station_id", String(128), nullable=False, index=True),
    Column("skills", JSON, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("shift_start_h", Float, nullable=False),
    Column("shift_end_h", Float, nullable=False),
    Column("active", Boolean, nullable=False),
)

parts = Table(
    "as_parts",
    metadata,
    Column("part_no", String(128), primary_key=True),
    *_tenant(),
    Column("name", String(200), nullable=False),
    Column("unit_cost", Float, nullable=False),
)

stock = Table(
    "as_stock",
    metadata,
    Column("station_id", String(128), primary_key=True),
    Column("part_no", String(128), primary_key=True),
    *_tenant(),
    Column("on_hand", Float, nullable=False),
    #: on hand minus reserved; never negative (conditional UPDATE)
    Column("available", Float, nullable=False),
    Column("reorder_point", Float, nullable=False),
    Column("reorder_qty", Float, nullable=False),
)

reservations = Table(
    "as_reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("work_order_id", Integer, nullable=False, index=True),
    Column("station_id", String(128), nullable=False),
    Column("part_no", String(128), nullable=False),
    Column("qty", Float, nullable=False),
    #: reserved, consumed, released
    Column("status", String(16), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
)

transfers = Table(
    "as_transfers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("part_no", String(128), nullable=False),
    Column("from_station", String(128), nullable=False),
    Column("to_station", String(128), nullable=False),
    Column("qty", Float, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
)

work_orders = Table(
    "as_work_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("asset_id", String(128), nullable=False, index=True),
    Column("title", String(300), nullable=False),
    Column("description", Text, nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_ref", String(256), nullable=True),
    Column("priority", String(4), nullable=False),
    Column("state", String(16), nullable=False, index=True),
    Column("skill", String(64), nullable=True),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("duration_min", Float, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("response_due_us", BigInteger, nullable=False),
    Column("repair_due_us", BigInteger, nullable=False),
    Column("technician_id", String(128), nullable=True),
    Column("station_id", String(128), nullable=True),
    Column("arrived_us", BigInteger, nullable=True),
    Column("completed_us", BigInteger, nullable=True),
    Column("closed_us", BigInteger, nullable=True),
    Column("visits", Integer, nullable=False),
    Column("held_from", String(16), nullable=True),
    Column("region", String(128), nullable=True),
    Column("model", String(128), nullable=True),
    #: one open order per (asset, source, source_ref): repeated alarms do not pile up
    Column("dedup_key", String(512), nullable=True),
    UniqueConstraint("dedup_key", name="uq_as_work_orders_dedup_key"),
)

work_order_events = Table(
    "as_work_order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, nullable=False, index=True),
    *_tenant(),
    Column("ts_us", BigInteger, nullable=False),
    #: transition, sla_warning, sla_breached, labour, part, finding, attachment, ...
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=True),
    Column("data", JSON, nullable=False),
)

work_order_lines = Table(
    "as_work_order_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("work_order_id", Integer, nullable=False, index=True),
    *_tenant(),
    #: labour, part, finding, attachment
    Column("kind", String(16), nullable=False),
    Column("ts_us", BigInteger, nullable=False),
    Column("technician_id", String(128), nullable=True),
    Column("hours", Float, nullable=True),
    Column("part_no", String(128), nullable=True),
    Column("qty", Float, nullable=True),
    Column("filled_from_stock", Boolean, nullable=True),
    Column("text", Text, nullable=True),
    #: attachment metadata: file name, content type, size, URL
    Column("meta", JSON, nullable=True),
)

plans = Table(
    "as_maintenance_plans",
    metadata,
    Column("asset_type", String(128), primary_key=True),
    *_tenant(),
    Column("definition", JSON, nullable=False),
)

service_history = Table(
    "as_service_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("asset_id", String(128), nullable=False, index=True),
    Column("interval", String(128), nullable=False),
    Column("hours", Float, nullable=False),
    Column("km", Float, nullable=True),
    Column("ts_us", BigInteger, nullable=False),
    Column("work_order_id", Integer, nullable=True),
)

warranty_terms = Table(
    "as_warranty_terms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("model", String(128), nullable=False, index=True),
    Column("coverage", String(64), nullable=False),
    Column("months", Integer, nullable=False),
    Column("hours_cap", Float, nullable=True),
    Column("components", JSON, nullable=False),
)

warranty_claims = Table(
    "as_warranty_claims",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *_tenant(),
    Column("work_order_id", Integer, nullable=False, index=True),
    Column("asset_id", String(128), nullable=False),
    Column("term_id", Integer, nullable=True),
    Column("status", String(16), nullable=False),
    Column("amount", Float, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_us", BigInteger, nullable=False),
)

Index("ix_as_reservations_station_part", reservations.c.station_id, reservations.c.part_no)
