import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ironbridge.predict import PREDICTION_MEASUREMENTS
from ironbridge.sim import (
    FleetSimulator,
    MachineKind,
    SimConfig,
    load_builtin_asset_types,
    plan_fleet,
)

pytestmark = pytest.mark.integration

NATS_SERVER = Path(sys.prefix) / "bin" / "nats-server"
TYPES = {t.name: t for t in load_builtin_asset_types()}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            threading.Event().wait(0.05)
    raise TimeoutError(f"port {port} not open")


def _wait(cond, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        threading.Event().wait(0.02)
    return cond()


@pytest.fixture
def broker(tmp_path):
    plan = plan_fleet(5, 2, 2, seed=1)
    creds = {d.device_id: f"pw-{d.device_id}-secret" for d in plan.devices}
    mqtt_port, client_port = _free_port(), _free_port()
    users = "\n".join(f'    {{user: "{d}", password: "{p}"}}' for d, p in creds.items())
    conf = tmp_path / "nats.conf"
    conf.write_text(
        f"""
server_name: sim_test
listen: 127.0.0.1:{client_port}
jetstream {{ store_dir: "{tmp_path / "js"}" }}
mqtt {{ listen: 127.0.0.1:{mqtt_port} }}
authorization {{
  users = [
{users}
    {{user: "observer", password: "observe", permissions: {{subscribe: ">", publish: ">"}}}}
  ]
}}
"""
    )
    proc = subprocess.Popen(
        [str(NATS_SERVER), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(mqtt_port)
        yield plan, creds, mqtt_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def observer(broker):
    _, _, port = broker
    received: list[tuple[str, dict]] = []
    lock = threading.Lock()
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="observer", clean_session=True)
    client.username_pw_set("observer", "observe")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe("ib/v1/+/telemetry", qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()

    def on_message(c, u, msg):
        with lock:
            received.append((msg.topic, json.loads(msg.payload)))

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert subscribed.wait(10)
    yield received
    client.disconnect()
    client.loop_stop()


def test_fleet_publishes_row_messages(broker, observer):
    plan, creds, port = broker
    sim = FleetSimulator(SimConfig(plan=plan, credentials=creds, port=port), start_s=time.time())
    sim.start()
    try:
        assert sim.wait_connected(15)
        for _ in range(3):
            sim.tick(MachineKind.TRUCK)
        sim.tick(MachineKind.EXCAVATOR)
        sim.tick(MachineKind.GENSET)
        assert _wait(lambda: len(observer) >= 3 * 5 + 2 + 2)
        assert _wait(lambda: sim.stats().messages_acked == 19)
    finally:
        sim.close()
    stats = sim.stats()
    assert stats.messages_published == 19
    assert stats.dropped == 0
    assert stats.auth_failures == 0
    by_device: dict[str, list[dict]] = {}
    for topic, payload in observer:
        _, _, dev, leaf = topic.split("/")
        assert leaf == "telemetry"
        by_device.setdefault(dev, []).append(payload)
    assert set(by_device) == set(creds)
    kinds = {d.device_id: d.type_name for d in plan.devices}
    for dev, payloads in by_device.items():
        at = TYPES[kinds[dev]]
        for p in payloads:
            assert isinstance(p["ts"], int)
            assert abs(p["ts"] / 1000 - time.time()) < 60
            for name, value in p["values"].items():
                assert at.measurement(name).check(value) is None, (dev, name, value)
    truck = by_device["truck-0001"]
    assert len(truck) == 3
    assert [p["ts"] for p in truck] == sorted(p["ts"] for p in truck)
    # every measurement a truck senses; predictions are written by the platform itself
    sensed = {m.name for m in TYPES["heavy_truck"].measurements} - set(PREDICTION_MEASUREMENTS)
    assert set(truck[0]["values"]) == sensed
    assert stats.points_acked == sum(len(p["values"]) for _, p in observer)


def test_fleet_publishes_columnar_batches(broker, observer):
    plan, creds, port = broker
    cfg = SimConfig(plan=plan, credentials=creds, port=port, batch_size=4)
    sim = FleetSimulator(cfg)
    sim.start()
    try:
        assert sim.wait_connected(15)
        for _ in range(8):
            sim.tick(MachineKind.TRUCK)
        assert _wait(lambda: len(observer) >= 10)
    finally:
        sim.close()
    assert len(observer) == 10  # 5 trucks x 2 batches of 4 samples
    for _, payload in observer:
        assert len(payload["ts"]) == 4
        for col in payload["values"].values():
            assert len(col) == 4
        assert payload["ts"] == sorted(payload["ts"])
        assert payload["ts"][1] - payload["ts"][0] == 1000


def test_run_until_stopped_and_wrong_credentials_are_counted(broker, observer):
    plan, creds, port = broker
    bad = dict(creds)
    bad["truck-0005"] = "wrong"
    sim = FleetSimulator(
        SimConfig(
            plan=plan,
            credentials=bad,
            port=port,
            intervals={MachineKind.TRUCK: 0.2, MachineKind.EXCAVATOR: 0.2, MachineKind.GENSET: 0.2},
        )
    )
    stop = threading.Event()
    runner = threading.Thread(target=sim.run, args=(stop,))
    runner.start()
    try:
        assert _wait(lambda: len({t for t, _ in observer}) >= 8)
        assert _wait(lambda: sim.stats().auth_failures >= 1)
    finally:
        stop.set()
        runner.join(timeout=20)
    assert not runner.is_alive()
    topics = {t for t, _ in observer}
    assert "ib/v1/truck-0005/telemetry" not in topics
    assert sim.stats().connected == 0  # closed
