"""Pure pieces of cluster mode: partition names, metrics text, binary COPY, roll-up states."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from ironbridge.cluster.health import render_metrics
from ironbridge.cluster.partitions import (
    events_filter,
    norm_subject,
    partition_consumer,
    partition_dest,
    partition_filter,
    rules_consumer,
)
from ironbridge.cluster.stores import is_postgres_url, open_telemetry_store
from ironbridge.model import InvalidInput
from ironbridge.store.postgres.schema import DAY_US, partition_name
from ironbridge.store.postgres.store import _ROW3, _decode_copy, encode_copy, rollup_states


def test_partition_subjects_and_names() -> None:
    assert partition_dest(16) == "ib.v1.{{wildcard(1)}}.{{partition(16,1)}}.{{wildcard(2)}}"
    assert partition_filter(3) == "ib.v1.*.3.*"
    assert partition_consumer(3) == "ingest-p3"
    # rules partition k reads what ingest partition k published, and k's events
    assert norm_subject(3) == "ib.norm.points.3"
    assert events_filter(3) == "ib.v1.*.3.events"
    assert rules_consumer(3) == "rules-p3"
    assert partition_name(19_716) == "tm_blocks_20231225"
    assert partition_name(-1) == "tm_blocks_m1"
    assert DAY_US == 86_400 * 1_000_000


def test_store_choice_by_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert is_postgres_url("postgresql://h/db")
    assert is_postgres_url("postgresql+psycopg://h/db")
    assert not is_postgres_url("sqlite:///x")
    with pytest.raises(InvalidInput) as err:
        open_telemetry_store("mysql://x", tmp_path)
    assert err.value.field == "telemetry"


def test_metrics_text_format() -> None:
    text = render_metrics(
        [
            ("ib_x_total", "counter", "things", {}, 3),
            ("ib_lag", "gauge", "lag", {"consumer": "ingest-p1"}, 5),
            ("ib_lag", "gauge", "lag", {"consumer": "ingest-p2"}, 0),
        ]
    )
    assert text.splitlines() == [
        "# HELP ib_x_total things",
        "# TYPE ib_x_total counter",
        "ib_x_total 3",
        "# HELP ib_lag lag",
        "# TYPE ib_lag gauge",
        'ib_lag{consumer="ingest-p1"} 5',
        'ib_lag{consumer="ingest-p2"} 0',
    ]


def test_binary_copy_round_trip() -> None:
    s = np.array([1, 2, 3], np.int64)
    t = np.array([-5, 0, 2**62], np.int64)
    v = np.array([0.5, -1.0, np.inf])
    data = encode_copy(s, t, v)
    assert data.startswith(b"PGCOPY\n\xff\r\n\x00")
    assert data.endswith(struct.pack(">h", -1))
    rows = _decode_copy(data, _ROW3)
    assert rows["a"].tolist() == [1, 2, 3]
    assert rows["b"].tolist() == t.tolist()
    assert rows["c"].tolist() == v.tolist()
    assert _decode_copy(b"", _ROW3).shape == (0,)


def test_rollup_states_group_by_series_and_floor_bucket() -> None:
    s = np.array([1, 1, 1, 2, 2], np.int64)
    t = np.array([-30, 10, 70, 5, 6], np.int64)
    v = np.array([1.0, 2.0, 3.0, 4.0, -4.0])
    cols = rollup_states(s, t, v, 60)
    assert [c.tolist() for c in cols] == [
        [1, 1, 1, 2],  # series
        [-60, 0, 60, 0],  # bucket: floored, also below zero
        [1, 1, 1, 2],  # n
        [1.0, 2.0, 3.0, 0.0],  # sum
        [1.0, 2.0, 3.0, -4.0],  # min
        [1.0, 2.0, 3.0, 4.0],  # max
        [-30, 10, 70, 5],  # first_ts
        [1.0, 2.0, 3.0, 4.0],  # first_v
        [-30, 10, 70, 6],  # last_ts
        [1.0, 2.0, 3.0, -4.0],  # last_v
    ]


class _Leases:
    def __init__(self, worker_id: str) -> None:
        self.worker_id = worker_id


def test_workers_list_free_partitions_from_their_own_starting_points() -> None:
    from ironbridge.cluster.supervisor import PartitionSupervisor

    def free(worker: str, owners: dict[int, str], running: tuple[int, ...] = ()) -> list[int]:
        sup = PartitionSupervisor(_Leases(worker), 6.0, 8)  # type: ignore[arg-type]
        sup.running = {k: None for k in running}
        return sup._free(owners)

    owners = {1: "other", 5: "a"}
    # unowned and own-but-not-running partitions, none held by another worker
    assert sorted(free("a", owners)) == [0, 2, 3, 4, 5, 6, 7]
    assert sorted(free("a", owners, running=(5, 6))) == [0, 2, 3, 4, 7]
    # workers claiming at once start from different partitions (a hash of their id)
    firsts = {free(f"host-{i}", {})[0] for i in range(20)}
    assert len(firsts) > 3
    order = free("host-1", {})
    assert order == [(order[0] + i) % 8 for i in range(8)]
