"""Device authorisation on the embedded server's MQTT listener, against paho-mqtt 2.x."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from nats_testkit import MqttDevice, await_until, cred

from ironbridge.bus import Bus, EmbeddedNatsServer, telemetry_subject, telemetry_topic
from ironbridge.model import InvalidInput

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

Devices = Callable[..., MqttDevice]


async def _connect(dev: MqttDevice) -> bool:
    return await asyncio.to_thread(dev.connect)


async def _stored(bus: Bus, device_id: str) -> list[bytes]:
    msgs = await bus.read_stream("IB_RAW", telemetry_subject(device_id), 100)
    return [m.data for m in msgs]


async def _mqtt_users(server: EmbeddedNatsServer) -> list[str]:
    async with httpx.AsyncClient() as http:
        connz = (await http.get(f"{server.monitor_url}/connz?auth=true&limit=1000")).json()
    return [c.get("authorized_user", "") for c in connz.get("connections") or []]


async def test_anonymous_and_wrong_password_are_refused(
    shared_server: EmbeddedNatsServer, bus: Bus, mqtt_devices: Devices
) -> None:
    await shared_server.set_devices([cred("dev-auth", "right")])
    anonymous = mqtt_devices(shared_server.mqtt_port, None, None, "anon")
    assert not await _connect(anonymous)
    assert anonymous.connack is not None
    assert anonymous.connack.is_failure
    wrong = mqtt_devices(shared_server.mqtt_port, "dev-auth", "wrong", "dev-auth")
    assert not await _connect(wrong)
    assert wrong.connack is not None
    assert wrong.connack.is_failure


async def test_device_publishes_qos1_on_its_own_topic_into_ib_raw(
    shared_server: EmbeddedNatsServer, bus: Bus, mqtt_devices: Devices
) -> None:
    await shared_server.set_devices([cred("dev-pub", "pw")])
    dev = mqtt_devices(shared_server.mqtt_port, "dev-pub", "pw", "dev-pub")
    assert await _connect(dev)
    mid = dev.publish(telemetry_topic("dev-pub"), b'{"ts": 1, "values": {"rpm": 900}}')
    await await_until(lambda: mid in dev.puback, what="PUBACK")
    msgs = await bus.read_stream("IB_RAW", telemetry_subject("dev-pub"), 10)
    assert [(m.subject, m.data) for m in msgs] == [
        ("ib.v1.dev-pub.telemetry", b'{"ts": 1, "values": {"rpm": 900}}')
    ]


async def test_device_cannot_publish_for_another_device(
    shared_server: EmbeddedNatsServer, bus: Bus, mqtt_devices: Devices
) -> None:
    await shared_server.set_devices([cred("dev-a", "pa"), cred("dev-b", "pb")])
    dev = mqtt_devices(shared_server.mqtt_port, "dev-a", "pa", "dev-a")
    assert await _connect(dev)
    dev.publish(telemetry_topic("dev-b"), b"forged")
    # MQTT 3.1.1 has no negative PUBACK: the server acks and drops the forged message.
    # Publishing a marker on the device's own topic afterwards and waiting for it
    # proves the forged one was processed (same connection, in order) before we look.
    dev.publish(telemetry_topic("dev-a"), b"marker")
    await await_until(lambda: _stored(bus, "dev-a"), what="marker")
    assert await _stored(bus, "dev-b") == []
    assert await _stored(bus, "dev-a") == [b"marker"]


async def test_device_credential_is_refused_on_plain_nats(
    shared_server: EmbeddedNatsServer, bus: Bus
) -> None:
    await shared_server.set_devices([cred("dev-nats", "pw")])
    # the NATS client protocol by hand: nats-py leaks the socket of a refused connect
    host, port = shared_server.client_url.removeprefix("nats://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        assert (await reader.readline()).startswith(b"INFO ")
        connect = {"user": "dev-nats", "pass": "pw", "verbose": False, "pedantic": False}
        writer.write(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()
    assert answer.startswith(b"-ERR 'Authorization Violation'")


async def test_revocation_disconnects_at_once_and_a_new_device_connects(
    shared_server: EmbeddedNatsServer, bus: Bus, mqtt_devices: Devices
) -> None:
    await shared_server.set_devices([cred("dev-old", "po")])
    old = mqtt_devices(shared_server.mqtt_port, "dev-old", "po", "dev-old")
    assert await _connect(old)
    assert "dev-old" in await _mqtt_users(shared_server)

    await shared_server.set_devices([cred("dev-new", "pn")])
    # the reload is confirmed when set_devices returns: the connection is already gone
    assert "dev-old" not in await _mqtt_users(shared_server)
    assert await asyncio.to_thread(old.disconnected.wait, 5)
    again = mqtt_devices(shared_server.mqtt_port, "dev-old", "po", "dev-old-2")
    assert not await _connect(again)

    new = mqtt_devices(shared_server.mqtt_port, "dev-new", "pn", "dev-new")
    assert await _connect(new)
    mid = new.publish(telemetry_topic("dev-new"), b"hello")
    await await_until(lambda: mid in new.puback, what="PUBACK")
    assert await _stored(bus, "dev-new") == [b"hello"]


async def test_set_devices_rejects_bad_input_and_keeps_the_old_list(
    shared_server: EmbeddedNatsServer, bus: Bus, mqtt_devices: Devices
) -> None:
    await shared_server.set_devices([cred("dev-keep", "pk")])
    with pytest.raises(InvalidInput):
        await shared_server.set_devices([cred("dev-keep", "pk"), cred("bad.id", "x")])
    with pytest.raises(InvalidInput, match="bcrypt"):
        await shared_server.set_devices([type(cred("d", "p"))("dev-argon", "$argon2id$v=19$x")])
    keep = mqtt_devices(shared_server.mqtt_port, "dev-keep", "pk", "dev-keep")
    assert await _connect(keep)
