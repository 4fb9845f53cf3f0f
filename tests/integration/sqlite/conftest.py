"""Fixtures of the SQL registry tests: a real database per test, SQLite or PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sql_registry_support import TRUCK, Tree, principal

from harness import require
from ironbridge.model import Role
from ironbridge.store.sql import SqlRegistry

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


def _postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    import psycopg

    name = f"ib_registry_test_{secrets.token_hex(4)}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        require(False, f"PostgreSQL at 127.0.0.1:5432 ({exc})", "start PostgreSQL with trust auth")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of an empty database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('registry') / 'registry.sqlite3'}"
    else:
        yield from _postgres_url(request)


@pytest.fixture
def registry(db_url: str) -> Iterator[SqlRegistry]:
    """A migrated registry on an empty database."""
    reg = SqlRegistry.open(db_url)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def tree(registry: SqlRegistry) -> Tree:
    """A small tenant tree with callers of every role; ``truck`` defined at root."""
    root = registry.create_tenant(None, "root", "Root", None)
    acme = registry.create_tenant(None, "acme", "ACME Group", "root")
    acme_sub = registry.create_tenant(None, "acme_sub", "ACME Trucks", "acme")
    other = registry.create_tenant(None, "other", "Other Corp", "root")
    registry.put_asset_type(None, "root", TRUCK)
    return Tree(
        root=root,
        acme=acme,
        acme_sub=acme_sub,
        other=other,
        system_admin=principal(root),
        acme_admin=principal(acme),
        acme_operator=principal(acme, Role.OPERATOR),
        acme_viewer=principal(acme, Role.VIEWER),
        sub_operator=principal(acme_sub, Role.OPERATOR),
        other_operator=principal(other, Role.OPERATOR),
    )
