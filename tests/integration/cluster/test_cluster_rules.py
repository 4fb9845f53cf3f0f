"""Cluster mode: two ``worker rules`` processes split the assets and hand state over.

An on-delay alarm condition starts on every asset; once the workers have saved that
state, one rules worker is killed -9 and the devices go quiet. The survivor takes the
dead worker's partitions, loads their state and fires every pending on-delay at the
right (data) time, and no alarm is raised twice.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson
import psycopg
import pytest
from cluster_testkit import NatsCluster, WorkerProcess, provision

from harness import wait_for
from ironbridge.bus import Bus
from ironbridge.cluster.partitions import RULES_LEASE_BUCKET
from ironbridge.model import now_us

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.slow]

DEVICES = 8
PARTITIONS = 4
ON_DELAY_S = 20.0  # long enough to kill a worker while it runs, on a loaded machine
LIMIT = 50.0


def env_of(cluster: NatsCluster, pg_url: str) -> dict[str, str]:
    return {
        "IRONBRIDGE_TELEMETRY": pg_url,
        "IRONBRIDGE_REGISTRY_URL": pg_url.replace("postgresql://", "postgresql+psycopg://"),
        "IRONBRIDGE_NATS__EMBEDDED": "false",
        "IRONBRIDGE_NATS__URL": cluster.urls,
        "IRONBRIDGE_NATS__REPLICAS": "3",
        "IRONBRIDGE_INGEST__PARTITIONS": str(PARTITIONS),
        "IRONBRIDGE_INGEST__LEASE_TTL_S": "3",
        "IRONBRIDGE_INGEST__FETCH_TIMEOUT_S": "0.1",
    }


def add_rule(registry_url: str) -> None:
    import sqlalchemy as sa

    from ironbridge.rules import AlarmStore, parse_rule

    engine = sa.create_engine(registry_url)
    try:
        rule = parse_rule(
            {
                "id": "hot",
                "kind": "threshold",
                "asset_type": "test_sensor",
                "severity": "minor",
                "on_delay_s": ON_DELAY_S,
                "params": {"measurement": "temperature", "limit": LIMIT},
            },
            tenant_id="root",
            tenant_path="/root/",
        )
        AlarmStore(engine).put_rule(None, rule, create=True)
    finally:
        engine.dispose()


def saved_raw(pg_url: str) -> dict[str, tuple[str, bool]]:
    """asset -> (consumer, raw condition) in the saved engine states."""
    out: dict[str, tuple[str, bool]] = {}
    with psycopg.connect(pg_url) as conn:
        for consumer, state in conn.execute("SELECT consumer, state FROM rule_engine_state"):
            st = json.loads(state)
            for (asset, _), raw in zip(st.get("keys", []), st.get("raw", []), strict=True):
                out[asset] = (consumer, bool(raw))
    return out


def alarms(pg_url: str) -> tuple[dict[str, list[int]], dict[str, int]]:
    """asset -> raised_us of its alarms; asset -> number of 'activate' events."""
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT asset_id, raised_us FROM alarms WHERE rule_id = 'hot'")
        raised: dict[str, list[int]] = {}
        for asset, ts in rows:
            raised.setdefault(asset, []).append(int(ts))
        acts = dict(
            conn.execute(
                "SELECT asset_id, count(*) FROM alarm_events"
                " WHERE rule_id = 'hot' AND action = 'activate' GROUP BY asset_id"
            ).fetchall()
        )
    return raised, {str(k): int(v) for k, v in acts.items()}


async def publish(bus: Bus, devices: list[str], value: float, ts_ms: int) -> None:
    for dev in devices:
        body = orjson.dumps([{"ts": ts_ms, "values": {"temperature": value}}])
        await bus.publish(f"ib.v1.{dev}.telemetry", body, msg_id=f"{dev}-{ts_ms}")


async def owned_partitions(bus: Bus) -> dict[str, list[int]]:
    kv = await bus.client.jetstream().key_value(RULES_LEASE_BUCKET)
    out: dict[str, list[int]] = {}
    for k in range(PARTITIONS):
        try:
            entry = await kv.get(f"p{k}")
        except Exception:  # a free partition (no key)
            continue
        if entry.value:
            out.setdefault(entry.value.decode(), []).append(k)
    return out


async def test_rules_workers_hand_over_on_delay_state(
    tmp_path: Path, nats_cluster: NatsCluster, pg_url: str
) -> None:
    registry_url = pg_url.replace("postgresql://", "postgresql+psycopg://")
    series = provision(registry_url, DEVICES)
    add_rule(registry_url)
    devices = sorted(series)
    env = env_of(nats_cluster, pg_url)
    ingest = WorkerProcess(tmp_path, "i1", env).start()
    r1 = WorkerProcess(tmp_path, "r1", env, role="rules").start()
    r2 = WorkerProcess(tmp_path, "r2", env, role="rules").start()
    try:
        for w in (ingest, r1, r2):
            await asyncio.to_thread(w.wait_ready)

        def split() -> bool:
            a, b = r1.metric("ib_rules_partitions_owned"), r2.metric("ib_rules_partitions_owned")
            return a >= 1 and b >= 1 and a + b == PARTITIONS

        await asyncio.to_thread(wait_for, split, 30.0, 0.2, "rules partitions shared by both")
        async with Bus.connect(nats_cluster.urls, name="devices") as bus:
            for _ in range(5):  # normal readings first
                await publish(bus, devices, 10.0, now_us() // 1000)
                await asyncio.sleep(0.1)  # pacing of the devices
            crossed_ms = now_us() // 1000
            await publish(bus, devices, 100.0, crossed_ms)

            def pending_saved() -> bool:
                st = saved_raw(pg_url)
                return all(st.get(f"a-{d}", ("", False))[1] for d in devices)

            await asyncio.to_thread(wait_for, pending_saved, 20.0, 0.1, "on-delays saved")
            owners = await owned_partitions(bus)
            state = saved_raw(pg_url)
            per_worker = {
                w: [a for a, (c, _) in state.items() if int(c.rsplit("p", 1)[1]) in ks]
                for w, ks in owners.items()
            }
            victim = r1 if len(per_worker.get("r1", [])) >= len(per_worker.get("r2", [])) else r2
            survivor = r2 if victim is r1 else r1
            victim_assets = per_worker[victim.worker_id]
            assert victim_assets, per_worker
            raised, _ = alarms(pg_url)
            assert not raised  # the on-delay has not run out before the kill
            victim.kill()
            killed_ms = now_us() // 1000
            # the devices go quiet: only the saved state can fire the on-delay now

            def survivor_holds_all() -> bool:
                return survivor.metric("ib_rules_partitions_owned") == PARTITIONS

            await asyncio.to_thread(wait_for, survivor_holds_all, 20.0, 0.1, "takeover")
            takeover_s = (now_us() // 1000 - killed_ms) / 1000

            def all_raised() -> bool:
                got, _ = alarms(pg_url)
                return all(f"a-{d}" in got for d in devices)

            await asyncio.to_thread(wait_for, all_raised, 40.0, 0.2, "every on-delay fired")
        # a graceful stop drains what the survivor holds: nothing can be written later
        assert await asyncio.to_thread(survivor.stop) == 0
        raised, activations = alarms(pg_url)
        expected_us = crossed_ms * 1000 + int(ON_DELAY_S * 1_000_000)
        assert killed_ms * 1000 < expected_us  # the kill came while the delay was running
        for d in devices:
            assert raised[f"a-{d}"] == [expected_us], (d, raised[f"a-{d}"])
            assert activations[f"a-{d}"] == 1, (d, activations)
        print(  # noqa: T201
            f"rules takeover after kill -9: {takeover_s:.1f} s; {len(victim_assets)} assets"
            f" moved; every on-delay fired at crossing + {ON_DELAY_S:.0f} s, once"
        )
    finally:
        for w in (ingest, r1, r2):
            w.kill()
