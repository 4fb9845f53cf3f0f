"""Sparkplug B topics, STATE, and the session rules (seq wrap, bdSeq, aliases, rebirth)."""

from __future__ import annotations

import pytest

from ironbridge.codec.binary import CodecError
from ironbridge.codec.sparkplug import (
    REBIRTH,
    DataType,
    EdgeNodeSession,
    HostTracker,
    MessageType,
    Metric,
    Payload,
    Topic,
    decode_payload,
    decode_state,
    encode_payload,
    encode_state,
    next_seq,
    parse_topic,
    rebirth_command,
    state_topic,
)


def test_topics() -> None:
    t = parse_topic("spBv1.0/plant1/DDATA/gw-1/press-3")
    assert (t.group, t.type, t.node, t.device) == ("plant1", MessageType.DDATA, "gw-1", "press-3")
    assert str(t) == "spBv1.0/plant1/DDATA/gw-1/press-3"
    assert parse_topic("spBv1.0/g/NBIRTH/n").device is None
    s = parse_topic("spBv1.0/STATE/host-a")
    assert s.type is MessageType.STATE
    assert s.node == "host-a"
    assert str(s) == state_topic("host-a")
    for bad in [
        "spBv1.0/g/NBIRTH/n/d",  # device forbidden on N*
        "spBv1.0/g/DDATA/n",  # device required on D*
        "spAv1.0/g/NDATA/n",
        "spBv1.0/g/XDATA/n",
        "spBv1.0/g/NDATA",
        "spBv1.0/g/NDATA/n/d/e",
        "spBv1.0/g/STATE/n",
    ]:
        with pytest.raises(CodecError):
            parse_topic(bad)
    with pytest.raises(CodecError):
        Topic(group="g+", type=MessageType.NDATA, node="n")


def test_state_payload() -> None:
    assert decode_state(encode_state(online=True, timestamp_ms=12)) == (True, 12)
    for bad in [b"ONLINE", b'{"online": 1, "timestamp": 2}', b"[]"]:
        with pytest.raises(CodecError):
            decode_state(bad)


def test_seq_wraps_at_255() -> None:
    assert next_seq(254) == 255
    assert next_seq(255) == 0
    edge = EdgeNodeSession(group="g", node="n")
    edge.connect()
    birth = edge.nbirth([("t", DataType.DOUBLE, 1.0)], ts=1)
    assert birth.seq == 0
    seqs = [edge.data(None, [("t", 2, float(i))]).seq for i in range(300)]
    assert seqs[:3] == [1, 2, 3]
    assert seqs[254] == 255
    assert seqs[255] == 0
    assert seqs[256] == 1
    host = HostTracker()
    topic = Topic(group="g", type=MessageType.NBIRTH, node="n")
    assert host.handle(topic, birth, 0).rebirth is None
    edge2 = EdgeNodeSession(group="g", node="n")
    edge2.connect()
    host.handle(topic, edge2.nbirth([("t", DataType.DOUBLE, 1.0)], ts=1), 0)
    data_topic = Topic(group="g", type=MessageType.NDATA, node="n")
    for i in range(600):  # across two wraps, no false gap
        result = host.handle(data_topic, edge2.data(None, [("t", 2, float(i))]), 0)
        assert result.rebirth is None
        assert [m.value for m in result.metrics] == [float(i)]


def test_bdseq_birth_death_matching() -> None:
    edge = EdgeNodeSession(group="g", node="n")
    will1 = edge.connect()
    birth1 = edge.nbirth([], ts=1)
    assert [m.value for m in birth1.metrics if m.name == "bdSeq"] == [0]
    assert will1.seq is None  # NDEATH carries no seq
    will2 = edge.connect()
    birth2 = edge.nbirth([], ts=2)
    assert [m.value for m in birth2.metrics if m.name == "bdSeq"] == [1]
    host = HostTracker()
    nbirth = Topic(group="g", type=MessageType.NBIRTH, node="n")
    ndeath = Topic(group="g", type=MessageType.NDEATH, node="n")
    host.handle(nbirth, birth1, 0)
    host.handle(nbirth, birth2, 0)
    # the broker delivers the old session's Will late: bdSeq 0 != 1, ignored
    assert host.handle(ndeath, decode_payload(encode_payload(will1)), 0).stale == ()
    assert host.online("g", "n")
    assert host.handle(ndeath, will2, 0).stale == (None,)
    assert not host.online("g", "n")
    # bdSeq wraps at 255 like seq (Sparkplug 3.0)
    edge.bd_seq = 255
    assert [m.value for m in edge.connect().metrics] == [0]


def test_aliases_resolve_and_devices() -> None:
    edge = EdgeNodeSession(group="g", node="gw")
    edge.connect()
    host = HostTracker()
    nb = edge.nbirth([("cpu", DataType.FLOAT, 0.5)], ts=10)
    assert any(m.name == REBIRTH and m.value is False for m in nb.metrics)
    host.handle(Topic(group="g", type=MessageType.NBIRTH, node="gw"), nb, 0)
    db = edge.dbirth("press", [("temp", DataType.INT16, -5), ("ok", DataType.BOOLEAN, True)], 11)
    res = host.handle(Topic(group="g", type=MessageType.DBIRTH, node="gw", device="press"), db, 0)
    assert res.born == ("press",)
    assert {m.name: m.value for m in res.metrics} == {
        "temp": -5,
        "ok": True,
    }
    dd = edge.data("press", [("temp", 12, -7)])
    assert all(m.name is None and m.alias is not None for m in dd.metrics)  # alias only
    wire = decode_payload(encode_payload(dd))
    topic = Topic(group="g", type=MessageType.DDATA, node="gw", device="press")
    res = host.handle(topic, wire, 0)
    assert [(m.device, m.name, m.timestamp, m.value) for m in res.metrics] == [
        ("press", "temp", 12, -7)
    ]
    # DDATA from a device that never sent DBIRTH -> rebirth
    other = Topic(group="g", type=MessageType.DDATA, node="gw", device="other")
    assert host.handle(other, edge.data("press", [("temp", 13, 1)]), 0).rebirth
    with pytest.raises(CodecError):
        edge.data(None, [("nope", 1, 1)])


def test_gap_and_unknown_node_ask_for_rebirth() -> None:
    edge = EdgeNodeSession(group="g", node="n")
    edge.connect()
    host = HostTracker()
    data = Topic(group="g", type=MessageType.NDATA, node="n")
    birth = edge.nbirth([("x", DataType.DOUBLE, 0.0)], ts=1)
    first = edge.data(None, [("x", 2, 1.0)])
    assert host.handle(data, first, 0).rebirth  # no birth seen yet
    host.handle(Topic(group="g", type=MessageType.NBIRTH, node="n"), birth, 0)
    edge.data(None, [("x", 3, 2.0)])  # lost in transit
    res = host.handle(data, edge.data(None, [("x", 4, 3.0)]), 0)
    assert res.rebirth
    assert "gap" in res.rebirth
    assert res.metrics[0].value == 3.0  # the value itself is still kept
    ok = edge.data(None, [])
    assert host.handle(data, ok, 0).rebirth is None
    bad_alias = Payload(seq=next_seq(edge.seq), metrics=(Metric(alias=99, value=1.0),))
    assert "alias" in str(host.handle(data, bad_alias, 0).rebirth)
    cmd = rebirth_command(5)
    assert decode_payload(encode_payload(cmd)).metrics[0].name == REBIRTH
