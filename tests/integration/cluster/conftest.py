"""Fixtures of the cluster-mode tests: a 3-node NATS cluster and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_testkit import NatsCluster, PrivatePostgres, pg_database, private_postgres


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Three routed nats-server processes with JetStream, on free loopback ports."""
    cluster = NatsCluster(tmp_path / "nats").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL database of the test's own (libpq URL)."""
    with pg_database() as url:
        yield url


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own on a free port, free to restart.

    Skips locally (fails in CI) when initdb / pg_ctl are not installed.
    """
    with private_postgres() as pg:
        yield pg
