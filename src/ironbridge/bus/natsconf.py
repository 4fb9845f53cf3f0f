"""Rendering of the embedded nats-server's configuration file (pure, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ironbridge.bus.subjects import device_subjects
from ironbridge.model.errors import InvalidInput
from ironbridge.model.ids import check_id

#: the user ironbridge's own services connect as (full permissions)
INTERNAL_USER = "ib-internal"

_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")


class DeviceCredentialLike(Protocol):
    """A device id and the bcrypt hash of its credential.

    ``ironbridge.store.DeviceCredential`` has this shape; the bus cannot import the store.
    """

    @property
    def device_id(self) -> str:
        """The device id, which is also its MQTT user name."""
        ...

    @property
    def credential_hash(self) -> str:
        """The bcrypt hash (``$2b$...``) of the device's credential."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerOptions:
    """Everything the embedded server's configuration file says, except the users."""

    data_dir: str
    server_name: str = "ironbridge"
    host: str = "127.0.0.1"
    port: int = 14222
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    monitor_host: str = "127.0.0.1"
    monitor_port: int = 18222
    #: how long the server waits for a device's PUBACK on a QoS 1 delivery
    mqtt_ack_wait_s: float = 30.0
    #: unacknowledged QoS 1 deliveries per device subscription
    mqtt_max_ack_pending: int = 1024
    #: fsync every JetStream write (safe against power loss, several times slower);
    #: default: the server's 2-minute sync interval
    sync_always: bool = False


def _q(value: str) -> str:
    # JSON string quoting is valid NATS config syntax and keeps "$2b$..." from being
    # taken for a variable reference (that only happens to unquoted values).
    return json.dumps(value)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_bcrypt_hash(value: str, field: str) -> str:
    """Return ``value`` if it is a bcrypt hash, else raise :class:`InvalidInput`.

    nats-server treats any password not starting with ``$2`` as plain text, so a hash of
    another kind (argon2, sha256) would silently become a password equal to the hash.
    """
    if not value.startswith(_BCRYPT_PREFIXES) or len(value) != 60:
        raise InvalidInput(field, "must be a bcrypt hash ($2a$/$2b$/$2y$, 60 characters)")
    return value


#: Sparkplug B namespace as a NATS subject token (nats-server >= 2.10 maps the MQTT
#: topic ``spBv1.0/g/NDATA/n`` to the subject ``spBv1//0.g.NDATA.n``)
SPARKPLUG_PREFIX = "spBv1//0"


def sparkplug_permissions(device_id: str) -> tuple[list[str], list[str]]:
    """Return (publish, subscribe) subjects of a device acting as a Sparkplug edge node.

    A device may be the Sparkplug edge node whose ``edge_node_id`` equals its device id,
    in any group: it publishes N*/D* messages of that node (and its devices) and
    receives the NCMD/DCMD addressed to it and the host applications' STATE.
    """
    node = device_id
    publish = [f"{SPARKPLUG_PREFIX}.*.*.{node}", f"{SPARKPLUG_PREFIX}.*.*.{node}.*"]
    subscribe = [
        f"{SPARKPLUG_PREFIX}.*.NCMD.{node}",
        f"{SPARKPLUG_PREFIX}.*.DCMD.{node}.*",
        f"{SPARKPLUG_PREFIX}.STATE.*",
    ]
    return publish, subscribe


def _device_user(cred: DeviceCredentialLike) -> str:
    own = _q(device_subjects(cred.device_id))
    spb_pub, spb_sub = sparkplug_permissions(cred.device_id)
    pub = ", ".join([own, *(_q(s) for s in spb_pub)])
    sub = ", ".join([own, *(_q(s) for s in spb_sub)])
    hashed = check_bcrypt_hash(cred.credential_hash, f"{cred.device_id}.credential_hash")
    return (
        f"    {{ user: {_q(cred.device_id)}, "
        f"password: {_q(hashed)}, "
        # devices speak MQTT only: a plain NATS connection with a device credential
        # could subscribe to subjects an MQTT client never sees
        'allowed_connection_types: ["MQTT"], '
        f"permissions: {{ publish: {{ allow: [{pub}] }}, subscribe: {{ allow: [{sub}] }} }} }}"
    )


def render_config(
    options: ServerOptions,
    *,
    internal_password_hash: str,
    devices: Sequence[DeviceCredentialLike],
) -> str:
    """Return the text of the nats-server configuration file.

    Users: ``ib-internal`` with full permissions, and one user per device whose
    password is its bcrypt hash, allowed to connect over MQTT only, publish and
    subscribe only under ``ib.v1.<device-id>.>`` and, as a Sparkplug B edge node of that
    id, on the subjects of :func:`sparkplug_permissions`. Tested on nats-server 2.15: an MQTT
    client needs no permission on the ``$MQTT.>`` internals for QoS 0/1/2 publishing or
    QoS 1 subscriptions (the server grants those implicitly), so none are given. There
    is no ``no_auth_user``: anonymous connections are refused.

    Raises:
        InvalidInput: a device id is invalid, reserved or repeated, or a hash is not bcrypt.
    """
    check_bcrypt_hash(internal_password_hash, "internal_password_hash")
    seen: set[str] = set()
    for cred in devices:
        check_id(cred.device_id, "device_id")
        if cred.device_id == INTERNAL_USER:
            raise InvalidInput("device_id", f"{INTERNAL_USER!r} is reserved")
        if cred.device_id in seen:
            raise InvalidInput("device_id", f"{cred.device_id!r} appears twice")
        seen.add(cred.device_id)
    users = [f"    {{ user: {_q(INTERNAL_USER)}, password: {_q(internal_password_hash)} }}"]
    users.extend(_device_user(cred) for cred in sorted(devices, key=lambda c: c.device_id))
    sync = '  sync_interval: "always"\n' if options.sync_always else ""
    ack_wait_ms = max(1, round(options.mqtt_ack_wait_s * 1000))
    user_lines = "\n".join(users)
    return (
        "# Written by ironbridge; rewritten on every change of the device list.\n"
        f"server_name: {_q(options.server_name)}\n"
        f"host: {_q(options.host)}\n"
        f"port: {options.port}\n"
        f"http: {_q(_hostport(options.monitor_host, options.monitor_port))}\n"
        "jetstream {\n"
        # nats-server appends "jetstream" to store_dir: the store is <data_dir>/jetstream
        f"  store_dir: {_q(options.data_dir)}\n"
        f"{sync}"
        "}\n"
        "mqtt {\n"
        f"  host: {_q(options.mqtt_host)}\n"
        f"  port: {options.mqtt_port}\n"
        f'  ack_wait: "{ack_wait_ms}ms"\n'
        f"  max_ack_pending: {options.mqtt_max_ack_pending}\n"
        "}\n"
        "authorization {\n"
        "  users: [\n"
        f"{user_lines}\n"
        "  ]\n"
        "}\n"
    )
