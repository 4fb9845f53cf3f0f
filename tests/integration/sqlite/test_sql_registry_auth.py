"""Device credentials, users, passwords, API keys, bootstrap and concurrency."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import bcrypt
import pytest
import sqlalchemy as sa
from sql_registry_support import Tree, principal

from ironbridge.model import (
    Asset,
    AuthenticationFailed,
    Conflict,
    Device,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Role,
)
from ironbridge.store.sql import SqlRegistry, bootstrap_admin, ensure_root
from ironbridge.store.sql import credentials as cred

pytestmark = pytest.mark.integration


def _asset(asset_id: str, tenant_id: str) -> Asset:
    return Asset(
        id=asset_id, tenant_id=tenant_id, type_name="truck", name=asset_id, attributes={"vin": "v"}
    )


@pytest.fixture
def bcrypt_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every bcrypt verification the registry makes (the real one still runs)."""
    calls: list[str] = []
    real = cred.check_device_credential

    def spy(credential: str, hashed: str | None) -> bool:
        calls.append(credential)
        return real(credential, hashed)

    monkeypatch.setattr(cred, "check_device_credential", spy)
    return calls


# -- devices -------------------------------------------------------------------------
def test_device_credential_lifecycle(
    registry: SqlRegistry, tree: Tree, bcrypt_checks: list[str]
) -> None:
    who = tree.acme_operator
    registry.create_asset(who, _asset("t1", "acme_sub"))
    device, first = registry.create_device(
        who, Device(id="dev-1", tenant_id="acme", asset_ids=("t1",), name="Gateway")
    )
    assert len(first) == 32
    assert (device.asset_ids, device.name, device.revoked) == (("t1",), "Gateway", False)
    assert registry.get_device(tree.acme_viewer, "dev-1") == device
    assert registry.verify_device("dev-1", first) == device
    assert registry.verify_device("dev-1", first) == device
    assert len(bcrypt_checks) == 1  # the second check was served from the cache

    second = registry.rotate_device_credential(who, "dev-1")
    assert second != first
    with pytest.raises(AuthenticationFailed):
        registry.verify_device("dev-1", first)  # stops working at once, cache or not
    assert registry.verify_device("dev-1", second).id == "dev-1"

    assert registry.set_device_revoked(who, "dev-1", True).revoked
    with pytest.raises(AuthenticationFailed, match="revoked"):
        registry.verify_device("dev-1", second)
    assert registry.device_credentials() == []
    registry.set_device_revoked(who, "dev-1", False)
    assert registry.verify_device("dev-1", second).id == "dev-1"

    registry.delete_device(who, "dev-1")
    with pytest.raises(AuthenticationFailed):
        registry.verify_device("dev-1", second)
    with pytest.raises(NotFound):
        registry.get_device(who, "dev-1")
    registry.delete_asset(who, "t1")  # no longer bound


def test_wrong_and_odd_credentials_fail(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, _asset("t1", "acme"))
    _, secret = registry.create_device(None, Device(id="d1", tenant_id="acme", asset_ids=("t1",)))
    for device_id, credential in [
        ("d1", secret[:-1] + ("A" if secret[-1] != "A" else "B")),
        ("d1", ""),
        ("d1", "x" * 100),  # beyond bcrypt's 72 bytes
        ("nope", secret),
    ]:
        with pytest.raises(AuthenticationFailed):
            registry.verify_device(device_id, credential)


def test_device_credentials_are_bcrypt_hashes_for_the_broker(
    registry: SqlRegistry, tree: Tree
) -> None:
    registry.create_asset(None, _asset("t1", "acme"))
    _, s1 = registry.create_device(None, Device(id="d1", tenant_id="acme", asset_ids=("t1",)))
    registry.create_device(None, Device(id="d2", tenant_id="acme", asset_ids=("t1",)))
    registry.set_device_revoked(None, "d2", True)
    creds = registry.device_credentials()
    assert [c.device_id for c in creds] == ["d1"]
    assert creds[0].credential_hash.startswith("$2b$08$")
    assert bcrypt.checkpw(s1.encode(), creds[0].credential_hash.encode())


def test_device_listing_and_scoping(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, _asset("ta", "acme"))
    registry.create_asset(None, _asset("ts", "acme_sub"))
    registry.create_asset(None, _asset("to", "other"))
    registry.create_device(None, Device(id="da", tenant_id="acme", asset_ids=("ta", "ts")))
    registry.create_device(None, Device(id="ds", tenant_id="acme_sub", asset_ids=("ts",)))
    registry.create_device(None, Device(id="do", tenant_id="other", asset_ids=("to",)))
    assert [d.id for d in registry.list_devices(tree.acme_viewer)] == ["da", "ds"]
    assert registry.list_devices(tree.acme_viewer)[0].asset_ids == ("ta", "ts")
    assert [d.id for d in registry.list_devices(tree.sub_operator)] == ["ds"]
    assert [d.id for d in registry.list_devices(tree.system_admin, limit=1, offset=2)] == ["ds"]
    for action in (
        lambda: registry.get_device(tree.sub_operator, "da"),
        lambda: registry.rotate_device_credential(tree.sub_operator, "da"),
        lambda: registry.set_device_revoked(tree.other_operator, "da", True),
        lambda: registry.delete_device(tree.other_operator, "da"),
    ):
        with pytest.raises(NotFound):
            action()
    with pytest.raises(Conflict, match="bound to device"):
        registry.delete_asset(None, "ts")


@pytest.mark.parametrize(
    ("device", "field"),
    [
        (Device(id="dev.1", tenant_id="acme", asset_ids=("t1",)), "id"),
        (Device(id="dev/1", tenant_id="acme", asset_ids=("t1",)), "id"),
        (Device(id="dev 1", tenant_id="acme", asset_ids=("t1",)), "id"),
        (Device(id="d", tenant_id="acme", asset_ids=()), "asset_ids"),
        (Device(id="d", tenant_id="acme", asset_ids=("t1", "ghost")), "asset_ids[1]"),
        (Device(id="d", tenant_id="acme", asset_ids=("t1", "t1")), "asset_ids[1]"),
        (Device(id="d", tenant_id="acme", asset_ids=("to",)), "asset_ids[0]"),  # invisible
        (Device(id="d", tenant_id="acme_sub", asset_ids=("t1",)), "asset_ids[0]"),  # above
        (Device(id="d", tenant_id="ghost", asset_ids=("t1",)), "tenant_id"),
    ],
)
def test_device_validation_names_the_field(
    registry: SqlRegistry, tree: Tree, device: Device, field: str
) -> None:
    registry.create_asset(None, _asset("t1", "acme"))
    registry.create_asset(None, _asset("to", "other"))
    with pytest.raises(InvalidInput) as bad:
        registry.create_device(tree.acme_operator, device)
    assert bad.value.field == field
    assert registry.list_devices(tree.system_admin) == []


def test_duplicate_device_is_a_conflict(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_asset(None, _asset("t1", "acme"))
    registry.create_device(None, Device(id="d1", tenant_id="acme", asset_ids=("t1",)))
    with pytest.raises(Conflict):
        registry.create_device(None, Device(id="d1", tenant_id="acme", asset_ids=("t1",)))


# -- users ---------------------------------------------------------------------------
def test_users_and_argon2_login(registry: SqlRegistry, tree: Tree) -> None:
    admin = tree.acme_admin
    alice = registry.create_user(admin, "acme", "alice", "correct horse", Role.OPERATOR)
    bob = registry.create_user(admin, "acme_sub", "bob@example.com", "battery staple", Role.VIEWER)
    registry.create_user(None, "other", "carol", "password123", Role.ADMIN)
    who = registry.authenticate_user("alice", "correct horse")
    assert (who.user_id, who.tenant_id, who.tenant_path, who.role) == (
        alice.id,
        "acme",
        "/root/acme/",
        Role.OPERATOR,
    )
    assert registry.principal_for_user(bob.id).tenant_path == "/root/acme/acme_sub/"
    assert [u.username for u in registry.list_users(admin)] == ["alice", "bob@example.com"]
    with pytest.raises(PermissionDenied):
        registry.list_users(who)
    for username, password in [("alice", "wrong password"), ("nobody", "correct horse")]:
        with pytest.raises(AuthenticationFailed):
            registry.authenticate_user(username, password)
    with registry._engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM users WHERE username='alice'"))
        assert stored.scalar_one().startswith("$argon2id$")

    registry.set_password(who, alice.id, "new password!")  # one's own
    registry.authenticate_user("alice", "new password!")
    with pytest.raises(PermissionDenied):
        registry.set_password(who, bob.id, "hijacked!!")
    registry.set_password(admin, bob.id, "reset by admin")
    registry.authenticate_user("bob@example.com", "reset by admin")
    with pytest.raises(NotFound):
        registry.set_password(principal(tree.acme_sub), alice.id, "upwards!!")

    registry.set_user_disabled(admin, alice.id, True)
    with pytest.raises(AuthenticationFailed):
        registry.authenticate_user("alice", "new password!")
    with pytest.raises(AuthenticationFailed):
        registry.principal_for_user(alice.id)


def test_user_validation(registry: SqlRegistry, tree: Tree) -> None:
    admin = tree.acme_admin
    cases: list[tuple[Callable[[], object], str]] = [
        (lambda: registry.create_user(admin, "acme", "dave", "short", Role.VIEWER), "password"),
        (
            lambda: registry.create_user(admin, "acme", "da ve", "long enough", Role.VIEWER),
            "username",
        ),
        (lambda: registry.create_user(admin, "acme", "dave", "long enough", "boss"), "role"),  # type: ignore[arg-type]
        (
            lambda: registry.create_user(admin, "other", "dave", "long enough", Role.VIEWER),
            "tenant_id",
        ),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as bad:
            call()
        assert bad.value.field == field
    registry.create_user(admin, "acme", "dave", "long enough", Role.VIEWER)
    with pytest.raises(Conflict):
        registry.create_user(admin, "acme_sub", "dave", "long enough", Role.VIEWER)
    with pytest.raises(PermissionDenied):
        registry.create_user(tree.acme_operator, "acme", "eve", "long enough", Role.ADMIN)
    with pytest.raises(InvalidInput) as bad:
        registry.set_password(None, 1, "short")
    assert bad.value.field == "password"


# -- API keys ------------------------------------------------------------------------
def test_api_keys(registry: SqlRegistry, tree: Tree) -> None:
    registry.create_user(None, "acme", "alice", "password-a", Role.OPERATOR)
    registry.create_user(None, "acme_sub", "bob", "password-b", Role.VIEWER)
    alice = registry.authenticate_user("alice", "password-a")
    bob = registry.authenticate_user("bob", "password-b")
    key, secret = registry.create_api_key(alice, "grafana")
    assert re.fullmatch(r"ib_[0-9a-f]{12}_[A-Za-z0-9_\-]{43}", secret)
    assert secret.split("_")[1] == key.prefix
    assert registry.authenticate_api_key(secret) == alice
    assert registry.list_api_keys(alice) == [key]
    assert registry.list_api_keys(bob) == []

    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for bad in (tampered, "ib_000000000000_x", "nonsense", "", f"ib_{key.prefix}_"):
        with pytest.raises(AuthenticationFailed):
            registry.authenticate_api_key(bad)

    bob_key, bob_secret = registry.create_api_key(bob, "script")
    with pytest.raises(NotFound):
        registry.revoke_api_key(alice, bob_key.id)  # not hers, and she is no admin
    registry.revoke_api_key(tree.acme_admin, bob_key.id)  # an admin above bob may
    with pytest.raises(AuthenticationFailed, match="revoked"):
        registry.authenticate_api_key(bob_secret)
    registry.revoke_api_key(alice, key.id)
    assert registry.list_api_keys(alice)[0].revoked
    with pytest.raises(AuthenticationFailed):
        registry.authenticate_api_key(secret)
    with pytest.raises(InvalidInput) as bad_name:
        registry.create_api_key(alice, "")
    assert bad_name.value.field == "name"


# -- bootstrap -----------------------------------------------------------------------
def test_bootstrap_root_and_admin(registry: SqlRegistry) -> None:
    assert not registry.has_users()
    root = ensure_root(registry, name="Group")
    assert ensure_root(registry) == root
    assert root.path == "/root/"
    password = bootstrap_admin(registry)
    assert password is not None
    assert len(password) >= 16
    assert registry.has_users()
    who = registry.authenticate_user("admin", password)
    assert (who.role, who.tenant_id) == (Role.ADMIN, "root")
    assert bootstrap_admin(registry) is None
    registry.reset_password("admin", "from the cli")  # the lost-password path
    registry.authenticate_user("admin", "from the cli")
    with pytest.raises(NotFound):
        registry.reset_password("nobody", "from the cli")


def test_bootstrap_admin_with_a_configured_password(registry: SqlRegistry) -> None:
    assert bootstrap_admin(registry, "boss", password="configured pw") == "configured pw"
    assert registry.get_tenant(None, "root").path == "/root/"
    assert registry.authenticate_user("boss", "configured pw").role is Role.ADMIN


# -- concurrency ---------------------------------------------------------------------
def test_concurrent_writes_from_threads(registry: SqlRegistry, tree: Tree) -> None:
    n_threads, per_thread = 4, 15
    errors: list[BaseException] = []
    dup_outcomes: list[str] = []
    start = threading.Barrier(n_threads + 2)

    def creator(k: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                registry.create_asset(tree.acme_operator, _asset(f"t{k}-{i}", "acme"))
                if i % 5 == 0:
                    registry.create_device(
                        None, Device(id=f"d{k}-{i}", tenant_id="acme", asset_ids=(f"t{k}-{i}",))
                    )
                registry.list_assets(tree.acme_viewer, limit=10)
        except BaseException as exc:  # reported below
            errors.append(exc)

    def duplicator() -> None:
        start.wait()
        for _ in range(2):
            try:
                registry.create_asset(None, _asset("same", "acme"))
                dup_outcomes.append("created")
            except Conflict:
                dup_outcomes.append("conflict")

    threads = [threading.Thread(target=creator, args=(k,)) for k in range(n_threads)]
    threads += [threading.Thread(target=duplicator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(dup_outcomes) == ["conflict"] * 3 + ["created"]
    assets = registry.list_assets(None, limit=10_000)
    assert len(assets) == n_threads * per_thread + 1
    series = registry.series_of(None, [a.id for a in assets])
    assert len(series) == 2 * len(assets)
    assert len({s.id for s in series}) == len(series)
    assert len(registry.list_devices(None)) == n_threads * 3
