"""Edge tables: Sparkplug edge nodes (approval, asset mapping) and agent configuration versions.

Revision ID: edge_0001
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "edge_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("edge",)
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "edge_nodes",
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("assets", sa.JSON(), nullable=False),
        sa.Column("desired_version", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_edge_nodes")),
    )
    op.create_index("ix_edge_nodes_tenant_path", "edge_nodes", ["tenant_path"])
    op.create_table(
        "edge_configs",
        sa.Column("node_id", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("comment", sa.String(length=512), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("node_id", "version", name=op.f("pk_edge_configs")),
    )


def downgrade() -> None:
    op.drop_table("edge_configs")
    op.drop_index("ix_edge_nodes_tenant_path", table_name="edge_nodes")
    op.drop_table("edge_nodes")
