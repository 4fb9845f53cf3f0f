"""Fixtures of the telemetry-store contract suite: one store factory per adapter."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_contract_support import Opener

from harness import require
from ironbridge.store import TelemetryStore

PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    import psycopg

    name = f"ib_contract_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN_DSN, autocommit=True)
    except psycopg.OperationalError as exc:  # pragma: no cover - depends on the machine
        require(False, "PostgreSQL on 127.0.0.1:5432", f"start PostgreSQL ({exc})")
        raise
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["duckdb", pytest.param("postgresql", marks=pytest.mark.postgres)])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Return a function opening the adapter under test (same location every call)."""
    opened: list[TelemetryStore] = []
    if request.param == "duckdb":
        from ironbridge.store.duckdb import DuckDBTelemetryStore

        def open_store() -> TelemetryStore:
            s = DuckDBTelemetryStore(tmp_path / "telemetry.duckdb", threads=1)
            opened.append(s)
            return s
    else:
        from ironbridge.store.postgres import PostgresTelemetryStore

        url = request.getfixturevalue("pg_url")

        def open_store() -> TelemetryStore:
            s = PostgresTelemetryStore(url, pool_size=3)
            opened.append(s)
            return s

    yield open_store
    for s in opened:
        s.close()


@pytest.fixture
def store(opener: Opener) -> TelemetryStore:
    """The adapter under test, empty."""
    return opener()
