"""Connector configuration parsing, backoff and the sample batcher (no sockets)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson
import pytest

from ironbridge.connect.config import ModbusConfig, OpcUaConfig, load_yaml_config, parse_config
from ironbridge.connect.link import Backoff, Link, LinkState
from ironbridge.connect.publish import SampleBatcher, columnar_payload
from ironbridge.model import InvalidInput, TransientError

OPCUA = {"kind": "opcua", "url": "opc.tcp://h:4840", "nodes": [
    {"node": "ns=2;s=a", "device": "d1", "measurement": "temp"}]}  # fmt: skip
MODBUS = {"kind": "modbus", "host": "h", "devices": [
    {"device": "d1", "registers": [{"measurement": "t", "address": 0}]}]}  # fmt: skip


def test_valid_configs_parse() -> None:
    assert isinstance(parse_config(OPCUA), OpcUaConfig)
    cfg = parse_config(MODBUS)
    assert isinstance(cfg, ModbusConfig)
    assert cfg.port == 502
    assert cfg.devices[0].specs()[0].address == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**OPCUA, "kind": "mqtt"}, "kind"),
        ({**OPCUA, "url": "http://h"}, "url"),
        ({**OPCUA, "nodes": [{"node": "x", "device": "d 1", "measurement": "t"}]},
         "nodes[0].device"),
        ({**OPCUA, "nodes": [{"node": "x", "device": "d", "measurement": "T"}]},
         "nodes[0].measurement"),
        ({**OPCUA, "extra": 1}, "extra"),
        ({**MODBUS, "port": 70000}, "port"),
        ({**MODBUS, "devices": []}, "devices"),
        ({**MODBUS, "devices": [{"device": "d", "registers": [
            {"measurement": "t", "address": 0, "dtype": "int12"}]}]},
         "devices[0].registers[0].dtype"),
        ({**MODBUS, "devices": [{"device": "d", "registers": [
            {"measurement": "t", "address": 0}, {"measurement": "t", "address": 1}]}]},
         "devices[0].registers[1].measurement"),
        ({**MODBUS, "version": 9}, "version"),
    ],
)  # fmt: skip
def test_invalid_configs_name_the_field(data: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_config(data)
    assert err.value.field == field


def test_yaml_overrides() -> None:
    cfg = load_yaml_config("kind: modbus\nhost: a\ndevices: [{device: d, registers: []}]\n",
                           host="b", port=1502)  # fmt: skip
    assert isinstance(cfg, ModbusConfig)
    assert (cfg.host, cfg.port) == ("b", 1502)


def test_backoff_is_jittered_and_capped() -> None:
    b = Backoff(initial_s=1.0, max_s=8.0)
    delays = [b.next_delay() for _ in range(8)]
    bounds = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(bound / 2 <= d <= bound for d, bound in zip(delays, bounds, strict=True))
    b.reset()
    assert b.next_delay() <= 1.0


def test_link_counts_transitions_not_failures() -> None:
    link = Link("x", Backoff(initial_s=0.01))
    link.up()
    for _ in range(5):
        link.down(OSError("gone"))
    assert (link.state, link.losses, link.failures) == (LinkState.LOST, 1, 5)
    link.up()
    link.up()
    assert (link.state, link.recoveries, link.failures) == (LinkState.CONNECTED, 1, 0)


def test_columnar_payload_aligns_rows() -> None:
    doc = orjson.loads(columnar_payload([2, 1, 2], ["a", "a", "b"], [5.0, 4.0, 6.0], "x"))
    assert doc == {"ts": [1, 2], "values": {"a": [4.0, 5.0], "b": [None, 6.0]}, "asset": "x"}


class _Flaky:
    def __init__(self) -> None:
        self.fail = True
        self.sent: list[tuple[str, bytes]] = []

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        if self.fail:
            raise TransientError("down")
        self.sent.append((subject, payload))
        return len(self.sent)


async def test_batcher_keeps_samples_until_the_bus_is_back_and_bounds_them() -> None:
    bus = _Flaky()
    batcher = SampleBatcher(bus, max_samples=10, max_buffer=3)
    for i in range(5):
        batcher.add("d1", None, "m", i, float(i))
    assert batcher.full.is_set() is False
    with pytest.raises(TransientError):
        await batcher.flush()
    assert (batcher.pending, batcher.stats.dropped) == (3, 2)  # oldest dropped
    bus.fail = False
    assert await batcher.flush() == 3
    subject, payload = bus.sent[0]
    assert subject == "ib.v1.d1.telemetry"
    assert orjson.loads(payload)["values"]["m"] == [2.0, 3.0, 4.0]
