"""Cluster mode end to end: ingest worker processes on a 3-node NATS cluster and PostgreSQL.

Devices publish at a steady rate while a worker is killed -9, the stream leader is
killed -9 and PostgreSQL drops every connection; afterwards every point JetStream
acknowledged is in the store exactly once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest
from cluster_testkit import (
    ApiProcess,
    NatsCluster,
    Publisher,
    WorkerProcess,
    assert_exactly_once,
    provision,
    worker_env,
)

from harness import wait_for
from ironbridge.bus import STREAM_RAW, Bus

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

DEVICES = 8


async def test_killed_worker_hands_over_with_no_loss(
    tmp_path: Path, nats_cluster: NatsCluster, pg_url: str
) -> None:
    series = provision(pg_url.replace("postgresql://", "postgresql+psycopg://"), DEVICES)
    env = worker_env(nats_cluster, pg_url)
    w1 = WorkerProcess(tmp_path, "w1", env).start()
    w2 = WorkerProcess(tmp_path, "w2", env).start()
    api = ApiProcess(tmp_path, env).start()  # `ironbridge api`: no ingest of its own
    try:
        await asyncio.to_thread(w1.wait_ready)
        await asyncio.to_thread(w2.wait_ready)

        def split() -> bool:
            a, b = w1.metric("ib_ingest_partitions_owned"), w2.metric("ib_ingest_partitions_owned")
            return a >= 1 and b >= 1 and a + b == 4

        await asyncio.to_thread(wait_for, split, 30.0, 0.2, "partitions shared by both")
        async with Bus.connect(nats_cluster.urls, name="devices") as bus:
            pub = Publisher(bus, series)
            await pub.run(30)
            await asyncio.to_thread(
                wait_for, lambda: w1.metric("ib_ingest_points_total") > 0, 20.0, 0.1, "w1 ingests"
            )
            w1.kill()
            killed = time.monotonic()
            await pub.run(40)

            def w2_has_all() -> bool:
                return w2.metric("ib_ingest_partitions_owned") == 4

            await asyncio.to_thread(wait_for, w2_has_all, 20.0, 0.1, "w2 takes over")
            takeover_s = time.monotonic() - killed
            await asyncio.to_thread(assert_exactly_once, pg_url, pub)
            print(f"takeover after kill -9 of a worker: {takeover_s:.1f} s")  # noqa: T201
            assert pub.longest_gap_s < 10
            assert "ib_ingest_consumer_pending" in w2.get("/metrics").text
        # what the workers stored is what users read through the API process
        with await asyncio.to_thread(api.client) as http:
            r = http.get("/api/v1/telemetry/latest", params={"asset": "a-dev-000"})
            assert r.status_code == 200, r.text
            (latest,) = r.json()["values"]
            assert latest["value"] == float(pub.round - 1)
        assert w2.stop() == 0  # graceful: drain, ack, release, exit 0
        assert api.stop() == 0
    finally:
        w1.kill()
        w2.kill()
        api.stop()


async def test_stream_leader_killed_and_postgres_dropped(
    tmp_path: Path, nats_cluster: NatsCluster, pg_url: str
) -> None:
    series = provision(pg_url.replace("postgresql://", "postgresql+psycopg://"), DEVICES)
    w1 = WorkerProcess(tmp_path, "w1", worker_env(nats_cluster, pg_url)).start()
    try:
        await asyncio.to_thread(w1.wait_ready)
        async with Bus.connect(nats_cluster.urls, name="devices") as bus:
            pub = Publisher(bus, series)
            await pub.run(20)
            leader = (await bus.client.jetstream().stream_info(STREAM_RAW)).cluster
            assert leader is not None
            assert leader.leader
            nats_cluster.node(leader.leader).kill()
            await pub.run(30)
            outage_leader = pub.longest_gap_s
            # PostgreSQL drops every connection of the store (as a restart would)
            with psycopg.connect(pg_url, autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            dropped = time.monotonic()
            await pub.run(30)
            await asyncio.to_thread(assert_exactly_once, pg_url, pub)
            print(f"caught up {time.monotonic() - dropped:.1f} s after the drop")  # noqa: T201
            print(f"longest publish gap: {outage_leader:.2f} s (leader kill)")  # noqa: T201
            assert pub.longest_gap_s < 10
    finally:
        w1.kill()
