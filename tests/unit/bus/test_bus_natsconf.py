"""Rendering of the embedded nats-server configuration and the subject helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from ironbridge.bus import (
    INTERNAL_USER,
    ServerOptions,
    device_id_from_subject,
    render_config,
    telemetry_subject,
    telemetry_topic,
)
from ironbridge.model import InvalidInput

HASH = "$2b$04$" + "a" * 53


@dataclass(frozen=True)
class Cred:
    device_id: str
    credential_hash: str


def _render(*devices: Cred, **options: object) -> str:
    opts = ServerOptions(data_dir="/data/nats", **options)  # type: ignore[arg-type]
    return render_config(opts, internal_password_hash=HASH, devices=devices)


def test_listeners_jetstream_and_mqtt() -> None:
    text = _render(port=1, mqtt_port=2, monitor_port=3, mqtt_ack_wait_s=2.5)
    assert "port: 1\n" in text
    assert 'http: "127.0.0.1:3"' in text
    assert 'store_dir: "/data/nats"' in text
    assert re.search(r"mqtt \{\n  host: \"127.0.0.1\"\n  port: 2\n  ack_wait: \"2500ms\"", text)
    assert "sync_interval" not in text
    assert 'sync_interval: "always"' in _render(sync_always=True)
    assert 'http: "[::1]:3"' in _render(monitor_host="::1", monitor_port=3)


def test_users_and_permissions() -> None:
    text = _render(Cred("truck-2", HASH), Cred("truck-1", HASH))
    assert f'{{ user: "{INTERNAL_USER}", password: "{HASH}" }}' in text
    assert "no_auth_user" not in text
    lines = [line for line in text.splitlines() if '"truck-' in line]
    assert [line.split('"')[1] for line in lines] == ["truck-1", "truck-2"]  # sorted
    assert (
        'allowed_connection_types: ["MQTT"], permissions: { publish: { allow: '
        '["ib.v1.truck-1.>", "spBv1//0.*.*.truck-1", "spBv1//0.*.*.truck-1.*"] }, '
        'subscribe: { allow: ["ib.v1.truck-1.>", "spBv1//0.*.NCMD.truck-1", '
        '"spBv1//0.*.DCMD.truck-1.*", "spBv1//0.STATE.*"] } }'
    ) in lines[0]


@pytest.mark.parametrize(
    ("devices", "field"),
    [
        ((Cred("a.b", HASH),), "device_id"),
        ((Cred(INTERNAL_USER, HASH),), "device_id"),
        ((Cred("x", HASH), Cred("x", HASH)), "device_id"),
        ((Cred("x", "plaintext"),), "x.credential_hash"),
        ((Cred("x", "$argon2id$v=19$m=65536"),), "x.credential_hash"),
    ],
)
def test_rejects_bad_devices(devices: tuple[Cred, ...], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _render(*devices)
    assert info.value.field == field


def test_internal_hash_must_be_bcrypt() -> None:
    with pytest.raises(InvalidInput):
        render_config(ServerOptions(data_dir="/d"), internal_password_hash="pw", devices=())


def test_subject_helpers() -> None:
    assert telemetry_subject("dev-1") == "ib.v1.dev-1.telemetry"
    assert telemetry_topic("dev-1") == "ib/v1/dev-1/telemetry"
    assert device_id_from_subject("ib.v1.dev-1.telemetry") == "dev-1"
    for bad in ("ib.v2.dev.telemetry", "ib.v1..x", "foo", "ib.v1.dev"):
        with pytest.raises(InvalidInput):
            device_id_from_subject(bad)
    with pytest.raises(InvalidInput):
        telemetry_subject("dev.1")
