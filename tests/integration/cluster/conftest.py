"""Fixtures of the cluster-mode tests: a 3-node NATS cluster and a PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster_testkit import NatsCluster, pg_database


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
