"""Plant tables: saved connector configurations and plant sites (lines, stations, calendar).

Revision ID: plant_0001
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "plant_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("plant",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plant_connectors",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plant_connectors")),
    )
    op.create_index("ix_plant_connectors_tenant_path", "plant_connectors", ["tenant_path"])
    op.create_table(
        "plant_sites",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("reason_codes", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plant_sites")),
    )
    op.create_index("ix_plant_sites_tenant_path", "plant_sites", ["tenant_path"])


def downgrade() -> None:
    op.drop_index("ix_plant_sites_tenant_path", table_name="plant_sites")
    op.drop_table("plant_sites")
    op.drop_index("ix_plant_connectors_tenant_path", table_name="plant_connectors")
    op.drop_table("plant_connectors")
