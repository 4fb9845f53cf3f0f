"""Pure helpers of the SQL registry: secrets, caches, visibility paths, input checks."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ironbridge.model import Asset, InvalidInput, PermissionDenied, Principal, Role
from ironbridge.store.sql import credentials as cred
from ironbridge.store.sql._common import (
    ancestor_paths,
    check_json_object,
    check_label,
    check_page,
    chunks,
    require,
    utc,
)
from ironbridge.store.sql.accounts import check_username
from ironbridge.store.sql.yamlio import _parents_first


def test_device_credential_is_192_bits_and_bcrypt_cost_8() -> None:
    credential = cred.new_device_credential()
    assert len(credential) == 32
    assert credential != cred.new_device_credential()
    hashed = cred.hash_device_credential(credential)
    assert hashed.startswith("$2b$08$")
    assert cred.check_device_credential(credential, hashed)
    assert not cred.check_device_credential(credential + "x", hashed)
    assert not cred.check_device_credential(credential, None)  # unknown device
    assert not cred.check_device_credential("x" * 73, hashed)  # over bcrypt's limit
    assert not cred.check_device_credential(credential, "not a hash")


def test_passwords_are_argon2id_with_a_length_policy() -> None:
    hashed = cred.hash_password("long enough")
    assert hashed.startswith("$argon2id$")
    assert cred.check_password("long enough", hashed)
    assert not cred.check_password("long enougH", hashed)
    assert not cred.check_password("long enough", None)
    assert not cred.check_password("long enough", "garbage")
    assert not cred.password_needs_rehash(hashed)
    for bad in ("", "1234567", "x" * 1025):
        with pytest.raises(InvalidInput) as exc:
            cred.hash_password(bad)
        assert exc.value.field == "password"


def test_api_key_format_round_trips() -> None:
    key = cred.new_api_key()
    assert key.secret.startswith(f"ib_{key.prefix}_")
    assert cred.parse_api_key(key.secret) == key
    for bad in (
        "",
        "ib_",
        "xx_0123456789ab_abc",
        "ib_0123456789ab_",
        "ib_XYZ456789abc_a",
        "ib_12_a",
    ):
        assert cred.parse_api_key(bad) is None
    digest = cred.sha256_hex(key.secret)
    assert len(digest) == 64
    assert cred.same_digest(digest, cred.sha256_hex(key.secret))
    assert not cred.same_digest(digest, cred.sha256_hex(key.secret + "x"))


def test_verified_cache_hits_misses_and_invalidation() -> None:
    cache: cred.VerifiedCache[str] = cred.VerifiedCache(max_entries=2)
    gen = cache.generation()
    cache.put("d1", "secret", "device-1", gen)
    assert cache.get("d1", "secret") == "device-1"
    assert cache.get("d1", "other") is None
    assert cache.get("d2", "secret") is None
    cache.invalidate("d1")
    assert cache.get("d1", "secret") is None
    # a put that raced with an invalidation is dropped
    stale = cache.generation()
    cache.invalidate("d1")
    cache.put("d1", "secret", "device-1", stale)
    assert cache.get("d1", "secret") is None
    # bounded: the least recently used entry goes first
    gen = cache.generation()
    for key in ("a", "b"):
        cache.put(key, "s", key, gen)
    assert cache.get("a", "s") == "a"
    cache.put("c", "s", "c", gen)
    assert len(cache) == 2
    assert cache.get("b", "s") is None
    assert cache.get("a", "s") == "a"


def test_verified_cache_entries_expire() -> None:
    cache: cred.VerifiedCache[str] = cred.VerifiedCache(ttl_s=0.0)
    cache.put("d1", "secret", "device-1", cache.generation())
    assert cache.get("d1", "secret") is None


def test_ancestor_paths() -> None:
    assert ancestor_paths("/root/") == ["/root/"]
    assert ancestor_paths("/root/a/b/") == ["/root/", "/root/a/", "/root/a/b/"]


def test_require_roles() -> None:
    viewer = Principal(user_id=1, username="v", tenant_id="t", tenant_path="/t/", role=Role.VIEWER)
    require(None, Role.ADMIN)
    require(viewer, Role.VIEWER)
    with pytest.raises(PermissionDenied, match="operator"):
        require(viewer, Role.OPERATOR)


def test_input_checks_name_the_field() -> None:
    assert check_label("  Truck 1 ", "name") == "Truck 1"
    assert check_label("", "name", allow_empty=True) == ""
    for value in ("", "   ", 5, "x" * 201):
        with pytest.raises(InvalidInput) as exc:
            check_label(value, "name")
        assert exc.value.field == "name"
    assert check_json_object({"a": [1, {"b": None}]}, "attributes") == {"a": [1, {"b": None}]}
    for value, field in [
        ([1], "attributes"),
        ({1: "x"}, "attributes"),
        ({"ok": 1, "when": datetime.now(UTC)}, "attributes.when"),
        ({"x": math.nan}, "attributes.x"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            check_json_object(value, "attributes")
        assert exc.value.field == field
    check_page(1, 0)
    for limit, offset, field in [
        (0, 0, "limit"),
        (10_001, 0, "limit"),
        (True, 0, "limit"),
        (5, -1, "offset"),
    ]:
        with pytest.raises(InvalidInput) as exc:
            check_page(limit, offset)
        assert exc.value.field == field
    assert check_username("ops.lead+1@example.com") == "ops.lead+1@example.com"
    for bad in ("", "a b", "-lead", "x" * 129):
        with pytest.raises(InvalidInput):
            check_username(bad)


def test_chunks_and_utc() -> None:
    assert [list(c) for c in chunks(list(range(5)), 2)] == [[0, 1], [2, 3], [4]]
    assert list(chunks([], 2)) == []
    naive = datetime(2024, 1, 1, 12)
    assert utc(naive) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    shifted = datetime(2024, 1, 1, 13, tzinfo=timezone(timedelta(hours=1)))
    assert utc(shifted) == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert utc(shifted).tzinfo is UTC  # type: ignore[union-attr]
    assert utc(None) is None


def _a(asset_id: str, parent: str | None = None) -> Asset:
    return Asset(id=asset_id, tenant_id="t", type_name="x", name=asset_id, parent_id=parent)


def test_parents_first_order() -> None:
    docs = [_a("c", "b"), _a("x", "outside"), _a("b", "a"), _a("a")]
    order = [docs[i].id for i in _parents_first(docs)]
    assert order.index("a") < order.index("b") < order.index("c")
    assert sorted(order) == ["a", "b", "c", "x"]
    with pytest.raises(InvalidInput) as exc:
        _parents_first([_a("a", "b"), _a("b", "c"), _a("c", "a")])
    assert exc.value.field == "assets[2].parent_id"
