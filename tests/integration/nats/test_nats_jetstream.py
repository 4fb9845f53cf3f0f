"""The JetStream wrapper against the embedded server: streams, publish, pull consumers."""

from __future__ import annotations

import asyncio
import time

import pytest
from nats_testkit import await_until

from ironbridge.bus import (
    STREAM_DEAD,
    STREAM_RAW,
    Bus,
    EmbeddedNatsServer,
    PullConsumer,
    RawMessage,
    StreamSpec,
    default_streams,
    telemetry_subject,
)
from ironbridge.cluster.partitions import fresh_pull_consumer
from ironbridge.model import AuthenticationFailed, NotFound, TransientError

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def _publish_n(bus: Bus, device_id: str, n: int) -> list[int]:
    return [await bus.publish(telemetry_subject(device_id), f"m{i}".encode()) for i in range(n)]


async def _fetch_all(consumer: PullConsumer, n: int, timeout: float = 5.0) -> list[RawMessage]:
    got: list[RawMessage] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += await consumer.fetch(n - len(got), timeout=0.5)
    return got


async def test_ensure_streams_is_idempotent_and_updates_limits(bus: Bus) -> None:
    await bus.ensure_streams(raw_max_bytes=256 * 1024 * 1024)  # again: no error
    raw = await bus.stream_info(STREAM_RAW)
    specs = list(default_streams(raw_max_bytes=256 * 1024 * 1024))
    specs[2] = StreamSpec(
        name=STREAM_DEAD, subjects=("ib.dead.>",), max_bytes=64 * 1024 * 1024, max_age_s=3600
    )
    await bus.ensure_streams(specs=specs)
    info = await bus._js.stream_info(STREAM_DEAD)
    assert info.config.max_bytes == 64 * 1024 * 1024
    assert info.config.max_age == 3600
    assert (await bus.stream_info(STREAM_RAW)).last_seq >= raw.last_seq
    for name in ("IB_RAW", "IB_NORM", "IB_DEAD"):
        assert (await bus.stream_info(name)).name == name


async def test_stream_info_counts_and_sequences(bus: Bus) -> None:
    before = await bus.stream_info(STREAM_RAW)
    seqs = await _publish_n(bus, "dev-info", 3)
    after = await bus.stream_info(STREAM_RAW)
    assert after.messages == before.messages + 3
    assert after.last_seq == seqs[-1]
    assert after.first_seq == 1
    with pytest.raises(NotFound):
        await bus.stream_info("NO_SUCH_STREAM")


async def test_publish_with_msg_id_dedupes(bus: Bus) -> None:
    first = await bus.publish_ack(telemetry_subject("dev-dup"), b"once", msg_id="dup-1")
    second = await bus.publish_ack(telemetry_subject("dev-dup"), b"once", msg_id="dup-1")
    other = await bus.publish_ack(telemetry_subject("dev-dup"), b"twice", msg_id="dup-2")
    assert not first.duplicate
    assert second.duplicate
    assert not other.duplicate
    assert second.seq == first.seq
    msgs = await bus.read_stream(STREAM_RAW, telemetry_subject("dev-dup"), 10)
    assert [m.data for m in msgs] == [b"once", b"twice"]


async def test_fetch_ack_and_lag(bus: Bus) -> None:
    seqs = await _publish_n(bus, "dev-fetch", 5)
    consumer = await bus.pull_consumer(
        STREAM_RAW, "t-fetch", filter_subject=telemetry_subject("dev-fetch")
    )
    assert (await consumer.info()).num_pending == 5
    msgs = await _fetch_all(consumer, 5)
    assert [m.stream_seq for m in msgs] == seqs
    assert [m.data for m in msgs] == [f"m{i}".encode() for i in range(5)]
    assert all(m.num_delivered == 1 and m.subject == "ib.v1.dev-fetch.telemetry" for m in msgs)
    assert all(m.timestamp_us > 1_600_000_000_000_000 for m in msgs)
    stats = await bus.consumer_info(STREAM_RAW, "t-fetch")
    assert (stats.num_pending, stats.num_ack_pending) == (0, 5)
    await consumer.ack_all(msgs)
    await await_until(lambda: _acked(bus, "t-fetch", seqs[-1]), what="acks to reach the server")
    assert await consumer.fetch(10, timeout=0.2) == []
    await consumer.close()


async def test_cumulative_consumer_acks_a_batch_with_its_last_message(bus: Bus) -> None:
    # ingest's partition consumers: AckAll, so one ack covers the whole batch
    seqs = await _publish_n(bus, "dev-cumul", 6)
    consumer = await fresh_pull_consumer(
        bus,
        STREAM_RAW,
        "t-cumul",
        telemetry_subject("dev-cumul"),
        start_seq=seqs[0],
        max_ack_pending=100,
        cumulative_ack=True,
    )
    msgs = await _fetch_all(consumer, 6)
    assert [m.stream_seq for m in msgs] == seqs
    await consumer.ack_all(msgs[:4])
    await await_until(lambda: _acked_to(bus, consumer.durable, seqs[3], 2), what="first acks")
    await consumer.ack_all(msgs[4:])
    await await_until(
        lambda: _acked(bus, consumer.durable, seqs[-1]), what="acks to reach the server"
    )
    assert await consumer.fetch(10, timeout=0.2) == []
    await consumer.close()


async def _acked_to(bus: Bus, durable: str, seq: int, pending: int) -> bool:
    stats = await bus.consumer_info(STREAM_RAW, durable)
    return stats.num_ack_pending == pending and stats.ack_floor_stream_seq == seq


async def _acked(bus: Bus, durable: str, seq: int) -> bool:
    stats = await bus.consumer_info(STREAM_RAW, durable)
    return stats.num_ack_pending == 0 and stats.ack_floor_stream_seq == seq


async def test_fetch_returns_what_is_there_without_waiting_for_a_full_batch(bus: Bus) -> None:
    await _publish_n(bus, "dev-early", 3)
    consumer = await bus.pull_consumer(
        STREAM_RAW, "t-early", filter_subject=telemetry_subject("dev-early")
    )
    started = time.monotonic()
    msgs = await consumer.fetch(1000, timeout=30)
    # three messages, long before the 30 s timeout (pytest's timeout would catch a hang)
    assert len(msgs) == 3
    assert time.monotonic() - started < 25
    await consumer.ack_all(msgs)
    await consumer.close()


async def test_nak_and_ack_wait_expiry_redeliver(bus: Bus) -> None:
    [seq_nak, seq_wait] = await _publish_n(bus, "dev-redeliver", 2)
    consumer = await bus.pull_consumer(
        STREAM_RAW,
        "t-redeliver",
        filter_subject=telemetry_subject("dev-redeliver"),
        ack_wait_s=1.5,
    )
    first = await _fetch_all(consumer, 2)
    assert [(m.stream_seq, m.num_delivered) for m in first] == [(seq_nak, 1), (seq_wait, 1)]
    await first[0].nak()  # the second is neither acked nor naked: its ack wait expires
    redelivered: dict[int, int] = {}
    deadline = time.monotonic() + 10
    while len(redelivered) < 2 and time.monotonic() < deadline:
        for m in await consumer.fetch(2, timeout=0.5):
            redelivered.setdefault(m.stream_seq, m.num_delivered)
            await m.ack()  # at once, so neither expires a second time
    assert redelivered == {seq_nak: 2, seq_wait: 2}
    await await_until(lambda: _acked(bus, "t-redeliver", seq_wait), what="acks")
    await consumer.close()


async def test_term_stops_redelivery(bus: Bus) -> None:
    [seq] = await _publish_n(bus, "dev-term", 1)
    consumer = await bus.pull_consumer(
        STREAM_RAW, "t-term", filter_subject=telemetry_subject("dev-term"), ack_wait_s=1.0
    )
    [msg] = await _fetch_all(consumer, 1)
    await msg.term()
    await await_until(lambda: _acked(bus, "t-term", seq), what="term to settle the message")
    await consumer.close()


async def test_read_stream_returns_the_last_n_matching(bus: Bus) -> None:
    for i in range(30):
        await bus.publish(f"ib.dead.dev-{'x' if i % 3 == 0 else 'y'}", f"d{i}".encode())
    last_x = await bus.read_stream(STREAM_DEAD, "ib.dead.dev-x", 4)
    assert [m.data for m in last_x] == [b"d18", b"d21", b"d24", b"d27"]
    everything = await bus.read_stream(STREAM_DEAD, None, 5)
    assert [m.data for m in everything] == [b"d25", b"d26", b"d27", b"d28", b"d29"]
    assert await bus.read_stream(STREAM_DEAD, "ib.dead.nobody", 5) == []
    many = await bus.read_stream(STREAM_DEAD, "ib.dead.dev-x", 100)
    assert len(many) == 10
    with pytest.raises(Exception, match="not consumed"):
        await many[0].ack()


async def test_wrong_credentials_and_no_server_map_to_ironbridge_errors(
    shared_server: EmbeddedNatsServer, bus: Bus
) -> None:
    with pytest.raises(AuthenticationFailed):
        async with Bus.connect(
            shared_server.client_url,
            user="ib-internal",
            password="wrong",
            connect_timeout_s=2,
            reconnect_wait_s=0.1,
        ):
            pass
    with pytest.raises(TransientError):
        async with Bus.connect("nats://127.0.0.1:1", connect_timeout_s=1, reconnect_wait_s=0.1):
            pass


async def test_unknown_consumer_is_not_found(bus: Bus) -> None:
    with pytest.raises(NotFound):
        await bus.consumer_info(STREAM_RAW, "no-such-consumer")
    await asyncio.sleep(0)
