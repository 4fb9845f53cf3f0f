"""Industrial-chain tables: chains, components, enterprises, supply links, asset links.

Revision ID: chain_0001
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chain_0001"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = ("chain",)
depends_on: str | Sequence[str] | None = None


def _owner() -> list[sa.Column[str]]:
    return [
        sa.Column("tenant_id", sa.String(length=128), nullable=False),
        sa.Column("tenant_path", sa.String(length=1024), nullable=False),
    ]


def _chain_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["chain_id"], ["chains.id"], name=f"fk_{table}_chain_id_chains", ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "chains",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        *_owner(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_components", sa.Integer(), nullable=False),
        sa.Column("n_enterprises", sa.Integer(), nullable=False),
        sa.Column("n_links", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_chains"),
        sa.UniqueConstraint("tenant_id", "name", name="uq_chains_tenant_name"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_chains_tenant_path", "chains", ["tenant_path"])
    op.create_table(
        "chain_components",
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_owner(),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("parent_id", sa.String(length=128), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("importance", sa.Float(), nullable=False),
        sa.Column("critical", sa.Boolean(), nullable=False),
        _chain_fk("chain_components"),
        sa.PrimaryKeyConstraint("chain_id", "position", name="pk_chain_components"),
    )
    op.create_index("ix_chain_components_tenant_path", "chain_components", ["tenant_path"])
    op.create_table(
        "chain_enterprises",
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_owner(),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("province", sa.String(length=100), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("district", sa.String(length=100), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("size", sa.String(length=16), nullable=False),
        sa.Column("components", sa.Text(), nullable=False),
        sa.Column("is_leader", sa.Boolean(), nullable=False),
        _chain_fk("chain_enterprises"),
        sa.PrimaryKeyConstraint("chain_id", "position", name="pk_chain_enterprises"),
    )
    op.create_index("ix_chain_enterprises_tenant_path", "chain_enterprises", ["tenant_path"])
    op.create_table(
        "chain_supply_links",
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        *_owner(),
        sa.Column("supplier_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("component_id", sa.String(length=128), nullable=False),
        sa.Column("volume_share", sa.Float(), nullable=False),
        sa.Column("value_cny", sa.Float(), nullable=False),
        sa.Column("lead_time_days", sa.Float(), nullable=False),
        sa.Column("inventory_cover_days", sa.Float(), nullable=False),
        sa.Column("recovery_days", sa.Float(), nullable=False),
        _chain_fk("chain_supply_links"),
        sa.PrimaryKeyConstraint("chain_id", "position", name="pk_chain_supply_links"),
    )
    op.create_index("ix_chain_supply_links_tenant_path", "chain_supply_links", ["tenant_path"])
    op.create_table(
        "chain_asset_links",
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("enterprise_id", sa.String(length=128), nullable=False),
        sa.Column("asset_id", sa.String(length=128), nullable=False),
        *_owner(),
        _chain_fk("chain_asset_links"),
        sa.PrimaryKeyConstraint(
            "chain_id", "enterprise_id", "asset_id", name="pk_chain_asset_links"
        ),
    )
    op.create_index("ix_chain_asset_links_tenant_path", "chain_asset_links", ["tenant_path"])


def downgrade() -> None:
    for table in (
        "chain_asset_links",
        "chain_supply_links",
        "chain_enterprises",
        "chain_components",
        "chains",
    ):
        op.drop_index(f"ix_{table}_tenant_path", table_name=table)
        op.drop_table(table)
