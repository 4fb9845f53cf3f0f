"""A fetched batch validated at once gives what validating each message alone gives."""

from __future__ import annotations

import numpy as np
import orjson
from test_ingest_validate import NOW_US, RECEIVED_US, ROUTE, WIDE_ROUTE

from ironbridge.codec import decode_telemetry
from ironbridge.ingest import to_points
from ironbridge.ingest.batch import Item, to_points_many
from ironbridge.model import InvalidInput
from ironbridge.store import DeviceRoute, PointBatch
from ironbridge.store.duckdb.columnar import prepare_batch

MS = NOW_US // 1000


def _messages(rng: np.random.Generator, n: int) -> list[tuple[dict[str, object], DeviceRoute]]:
    """Random messages: mostly valid, some with one thing wrong, many sharing keys."""
    out: list[tuple[dict[str, object], DeviceRoute]] = []
    for _ in range(n):
        kind = int(rng.integers(0, 12))
        t0 = MS - int(rng.integers(0, 20)) * 1000  # few distinct timestamps: duplicates
        ts = [t0 + 1000 * i for i in range(int(rng.integers(2, 6)))]
        rpm = [float(x) for x in rng.uniform(0, 4000, len(ts)).round(1)]
        gear = [int(x) for x in rng.integers(-2, 17, len(ts))]
        doc: dict[str, object] = {"ts": ts, "values": {"rpm": rpm, "gear": gear}}
        route = ROUTE
        if kind == 0:
            doc["values"] = {"rpm": rpm}  # another measurement set, same series
        elif kind == 1:
            rpm[-1] = 5000.0  # out of range
        elif kind == 2:
            gear[0] = 1.5  # type: ignore[call-overload]  # not an integer
        elif kind == 3:
            doc = {"ts": t0, "values": {"rpm": rpm[0], "ignition": 1}}  # one row
        elif kind == 4:
            doc = {"ts": t0, "values": {"rpm": rpm[0], "ignition": True}}  # a boolean
        elif kind == 5:
            doc = {"values": {"rpm": rpm[0]}}  # stamped on receipt
        elif kind == 6:
            doc["ts"] = [t + 3 * 86_400_000 for t in ts]  # in the future
        elif kind == 7:
            doc["values"] = {"rpm": rpm, "oil": rpm}  # unknown measurement
        elif kind == 8:
            doc["asset"] = "truck-2"
        elif kind == 9:
            doc["values"] = {"rpm": [None, *rpm[1:]], "gear": gear}  # a missing value
        elif kind == 10:
            cells = {f"cell_{i}": [float(i % 5)] * len(ts) for i in range(20)}
            doc["values"] = cells
            route = WIDE_ROUTE
        out.append((doc, route))
    return out


def _one_by_one(items: list[Item]) -> tuple[PointBatch, dict[int, InvalidInput]]:
    parts, errors = [], {}
    for i, (blocks, route, received) in enumerate(items):
        try:
            parts.append(to_points(blocks, route, received, NOW_US))
        except InvalidInput as exc:
            errors[i] = exc
    return PointBatch.concat(parts), errors


def _sorted(batch: PointBatch) -> list[tuple[int, int, float]]:
    return sorted(zip(batch.series.tolist(), batch.ts.tolist(), batch.value.tolist(), strict=True))


def test_batch_matches_one_message_at_a_time() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        items: list[Item] = [
            (decode_telemetry(orjson.dumps(doc)), route, RECEIVED_US)
            for doc, route in _messages(rng, 40)
        ]
        got, got_errors = to_points_many(items, NOW_US)
        want, want_errors = _one_by_one(items)
        assert {i: (e.field, e.reason) for i, e in got_errors.items()} == {
            i: (e.field, e.reason) for i, e in want_errors.items()
        }
        assert _sorted(got) == _sorted(want)
        # duplicates of a (series, ts) resolve the same way: the later message wins
        a = prepare_batch(got.series, got.ts, got.value)
        b = prepare_batch(want.series, want.ts, want.value)
        assert a.series.tolist() == b.series.tolist()
        assert a.ts.tolist() == b.ts.tolist()
        assert a.value.tolist() == b.value.tolist()


def test_a_bad_block_rejects_its_whole_message_only() -> None:
    good = {"ts": [MS, MS + 1000], "values": {"rpm": [1.0, 2.0]}}
    # the second block is bad (in a set of its own): the first, valid and checked
    # together with the good messages' blocks, must not be kept
    bad = [
        {"ts": MS + 5000, "values": {"rpm": 3.0}},
        {"ts": MS + 6000, "values": {"gear": 99}},
    ]
    items: list[Item] = [
        (decode_telemetry(orjson.dumps(doc)), ROUTE, RECEIVED_US) for doc in (good, bad, good)
    ]
    batch, errors = to_points_many(items, NOW_US)
    assert list(errors) == [1]
    assert errors[1].field == "[1].values.gear"
    assert sorted(set(batch.ts.tolist())) == [NOW_US, NOW_US + 1_000_000]
    assert len(batch) == 4


def test_a_later_message_wins_across_measurement_sets() -> None:
    first = {"ts": [MS, MS + 1000], "values": {"rpm": [1.0, 1.0], "gear": [1, 1]}}
    second = {"ts": [MS, MS + 1000], "values": {"rpm": [2.0, 2.0]}}
    third = {"ts": [MS, MS + 1000], "values": {"rpm": [3.0, 3.0], "gear": [3, 3]}}
    items: list[Item] = [
        (decode_telemetry(orjson.dumps(doc)), ROUTE, RECEIVED_US) for doc in (first, second, third)
    ]
    batch, errors = to_points_many(items, NOW_US)
    assert errors == {}
    final = prepare_batch(batch.series, batch.ts, batch.value)
    rpm = final.value[final.series == 1].tolist()
    # the third message came last, although its set was first seen before the second's
    assert rpm == [3.0, 3.0]


def test_normalised_batches_travel_compressed_and_read_back_whole() -> None:
    import pyarrow as pa

    from ironbridge.ingest import batch_to_ipc, ipc_to_batch

    series = np.repeat(np.arange(50, dtype=np.int64), 200)
    ts = np.tile(NOW_US + np.arange(200, dtype=np.int64) * 1_000_000, 50)
    value = np.random.default_rng(2).normal(size=10_000)
    payload = batch_to_ipc(PointBatch(series, ts, value))
    back = ipc_to_batch(payload)
    assert back.series.tolist() == series.tolist()
    assert back.ts.tolist() == ts.tolist()
    assert back.value.tolist() == value.tolist()
    # a plain Arrow reader reads it too; the runs of ids and times shrink it well
    assert pa.ipc.open_stream(payload).read_all().num_rows == 10_000
    assert len(payload) < 10_000 * 24 * 0.6
