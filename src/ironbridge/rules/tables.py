"""SQL tables of the rules package (its own metadata; created by migration rules_0001)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

rules = sa.Table(
    "rules",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("tenant_path", sa.String(1024), nullable=False, index=True),
    sa.Column("definition", sa.JSON(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("updated_us", sa.BigInteger(), nullable=False),
)

alarms = sa.Table(
    "alarms",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("tenant_path", sa.String(1024), nullable=False, index=True),
    sa.Column("asset_id", sa.String(128), nullable=False),
    sa.Column("asset_type", sa.String(128), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("message", sa.String(500), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
    sa.Column("count", sa.Integer(), nullable=False),
    sa.Column("raised_us", sa.BigInteger(), nullable=False),
    sa.Column("changed_us", sa.BigInteger(), nullable=False),
    sa.Column("activated_us", sa.BigInteger(), nullable=False),
    sa.Column("shelved_until_us", sa.BigInteger(), nullable=True),
    sa.Column("acked_by", sa.String(128), nullable=True),
    sa.Column("acked_us", sa.BigInteger(), nullable=True),
    sa.Column("escalated", sa.Boolean(), nullable=False),
    sa.Column("closed", sa.Boolean(), nullable=False),
    sa.Index("ix_alarms_asset_rule_closed", "asset_id", "rule_id", "closed"),
)

alarm_events = sa.Table(
    "alarm_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("alarm_id", sa.Integer(), nullable=False, index=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("tenant_path", sa.String(1024), nullable=False, index=True),
    sa.Column("asset_id", sa.String(128), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("ts_us", sa.BigInteger(), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("from_state", sa.String(32), nullable=False),
    sa.Column("to_state", sa.String(32), nullable=False),
    sa.Column("comment", sa.String(2000), nullable=False),
    sa.Column("value", sa.Float(), nullable=True),
)

alarm_subscriptions = sa.Table(
    "alarm_subscriptions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("tenant_path", sa.String(1024), nullable=False, index=True),
    sa.Column("definition", sa.JSON(), nullable=False),
)

rule_engine_state = sa.Table(
    "rule_engine_state",
    metadata,
    sa.Column("consumer", sa.String(128), primary_key=True),
    sa.Column("tenant_id", sa.String(128), nullable=False),
    sa.Column("tenant_path", sa.String(1024), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("state", sa.Text(), nullable=False),
    sa.Column("updated_us", sa.BigInteger(), nullable=False),
)
