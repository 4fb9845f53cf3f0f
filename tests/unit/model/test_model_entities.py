"""Roles, tenant visibility and time conversions."""

from datetime import UTC, datetime

from ironbridge.model import Principal, Role, Tenant, from_datetime, to_datetime


def test_role_order() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.ADMIN)


def test_parent_sees_children_never_the_reverse() -> None:
    group = Principal(user_id=1, username="g", tenant_id="g", tenant_path="/g/", role=Role.ADMIN)
    child = Principal(user_id=2, username="c", tenant_id="c", tenant_path="/g/c/", role=Role.ADMIN)
    assert group.can_see("/g/c/")
    assert not child.can_see("/g/")
    # a sibling whose id starts like ours is not below us
    assert not child.can_see("/g/cc/")
    assert Tenant(id="g", name="G", parent_id=None, path="/g/").contains("/g/c/d/")


def test_time_round_trip() -> None:
    dt = datetime(2026, 11, 23, 8, 30, 15, 123456, tzinfo=UTC)
    us = from_datetime(dt)
    assert us == 1_795_422_615_123_456
    assert to_datetime(us) == dt
    assert from_datetime(dt.replace(tzinfo=None)) == us
