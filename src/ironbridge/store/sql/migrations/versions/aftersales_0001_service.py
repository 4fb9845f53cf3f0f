"""After-sales schema: stations, technicians, parts and stock, work orders, plans, warranty.

Revision ID: aftersales_0001
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "aftersales_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("aftersales",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "as_maintenance_plans",
        sa.Column("asset_type", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("asset_type", name="pk_as_maintenance_plans"),
    )
    op.create_index("ix_as_maintenance_plans_tenant_path", "as_maintenance_plans", ["tenant_path"])
    op.create_table(
        "as_parts",
        sa.Column("part_no", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit_cost", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("part_no", name="pk_as_parts"),
    )
    op.create_index("ix_as_parts_tenant_path", "as_parts", ["tenant_path"])
    op.create_table(
        "as_reservations",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=128), nullable=False),
        sa.Column("part_no", sa.String(length=128), nullable=False),
        sa.Column("qty", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_reservations"),
    )
    op.create_index("ix_as_reservations_station_part", "as_reservations", ["station_id", "part_no"])
    op.create_index("ix_as_reservations_tenant_path", "as_reservations", ["tenant_path"])
    op.create_index("ix_as_reservations_work_order_id", "as_reservations", ["work_order_id"])
    op.create_table(
        "as_service_history",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("asset_id", sa.String(length=128), nullable=False),
        sa.Column("interval", sa.String(length=128), nullable=False),
        sa.Column("hours", sa.Float(), nullable=False),
        sa.Column("km", sa.Float(), nullable=True),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_as_service_history"),
    )
    op.create_index("ix_as_service_history_asset_id", "as_service_history", ["asset_id"])
    op.create_index("ix_as_service_history_tenant_path", "as_service_history", ["tenant_path"])
    op.create_table(
        "as_stations",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("is_warehouse", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_stations"),
    )
    op.create_index("ix_as_stations_tenant_path", "as_stations", ["tenant_path"])
    op.create_table(
        "as_stock",
        sa.Column("station_id", sa.String(length=128), nullable=False),
        sa.Column("part_no", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("on_hand", sa.Float(), nullable=False),
        sa.Column("available", sa.Float(), nullable=False),
        sa.Column("reorder_point", sa.Float(), nullable=False),
        sa.Column("reorder_qty", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("station_id", "part_no", name="pk_as_stock"),
    )
    op.create_index("ix_as_stock_tenant_path", "as_stock", ["tenant_path"])
    op.create_table(
        "as_technicians",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("station_id", sa.String(length=128), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("shift_start_h", sa.Float(), nullable=False),
        sa.Column("shift_end_h", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_technicians"),
    )
    op.create_index("ix_as_technicians_station_id", "as_technicians", ["station_id"])
    op.create_index("ix_as_technicians_tenant_path", "as_technicians", ["tenant_path"])
    op.create_table(
        "as_transfers",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("part_no", sa.String(length=128), nullable=False),
        sa.Column("from_station", sa.String(length=128), nullable=False),
        sa.Column("to_station", sa.String(length=128), nullable=False),
        sa.Column("qty", sa.Float(), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_transfers"),
    )
    op.create_index("ix_as_transfers_tenant_path", "as_transfers", ["tenant_path"])
    op.create_table(
        "as_warranty_claims",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("asset_id", sa.String(length=128), nullable=False),
        sa.Column("term_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_warranty_claims"),
    )
    op.create_index("ix_as_warranty_claims_tenant_path", "as_warranty_claims", ["tenant_path"])
    op.create_index("ix_as_warranty_claims_work_order_id", "as_warranty_claims", ["work_order_id"])
    op.create_table(
        "as_warranty_terms",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("coverage", sa.String(length=64), nullable=False),
        sa.Column("months", sa.Integer(), nullable=False),
        sa.Column("hours_cap", sa.Float(), nullable=True),
        sa.Column("components", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_warranty_terms"),
    )
    op.create_index("ix_as_warranty_terms_model", "as_warranty_terms", ["model"])
    op.create_index("ix_as_warranty_terms_tenant_path", "as_warranty_terms", ["tenant_path"])
    op.create_table(
        "as_work_order_events",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_as_work_order_events"),
    )
    op.create_index("ix_as_work_order_events_tenant_path", "as_work_order_events", ["tenant_path"])
    op.create_index(
        "ix_as_work_order_events_work_order_id", "as_work_order_events", ["work_order_id"]
    )
    op.create_table(
        "as_work_order_lines",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("work_order_id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ts_us", sa.BigInteger(), nullable=False),
        sa.Column("technician_id", sa.String(length=128), nullable=True),
        sa.Column("hours", sa.Float(), nullable=True),
        sa.Column("part_no", sa.String(length=128), nullable=True),
        sa.Column("qty", sa.Float(), nullable=True),
        sa.Column("filled_from_stock", sa.Boolean(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_as_work_order_lines"),
    )
    op.create_index("ix_as_work_order_lines_tenant_path", "as_work_order_lines", ["tenant_path"])
    op.create_index(
        "ix_as_work_order_lines_work_order_id", "as_work_order_lines", ["work_order_id"]
    )
    op.create_table(
        "as_work_orders",
        sa.Column("id", sa.Integer(), nullable=False, autoincrement=True),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("asset_id", sa.String(length=128), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_ref", sa.String(length=256), nullable=True),
        sa.Column("priority", sa.String(length=4), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("skill", sa.String(length=64), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("duration_min", sa.Float(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("response_due_us", sa.BigInteger(), nullable=False),
        sa.Column("repair_due_us", sa.BigInteger(), nullable=False),
        sa.Column("technician_id", sa.String(length=128), nullable=True),
        sa.Column("station_id", sa.String(length=128), nullable=True),
        sa.Column("arrived_us", sa.BigInteger(), nullable=True),
        sa.Column("completed_us", sa.BigInteger(), nullable=True),
        sa.Column("closed_us", sa.BigInteger(), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("held_from", sa.String(length=16), nullable=True),
        sa.Column("region", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("dedup_key", sa.String(length=512), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_as_work_orders"),
        sa.UniqueConstraint("dedup_key", name="uq_as_work_orders_dedup_key"),
    )
    op.create_index("ix_as_work_orders_asset_id", "as_work_orders", ["asset_id"])
    op.create_index("ix_as_work_orders_state", "as_work_orders", ["state"])
    op.create_index("ix_as_work_orders_tenant_path", "as_work_orders", ["tenant_path"])


def downgrade() -> None:
    op.drop_table("as_work_orders")
    op.drop_table("as_work_order_lines")
    op.drop_table("as_work_order_events")
    op.drop_table("as_warranty_terms")
    op.drop_table("as_warranty_claims")
    op.drop_table("as_transfers")
    op.drop_table("as_technicians")
    op.drop_table("as_stock")
    op.drop_table("as_stations")
    op.drop_table("as_service_history")
    op.drop_table("as_reservations")
    op.drop_table("as_parts")
    op.drop_table("as_maintenance_plans")
