"""Ports of the storage layer: the telemetry store and the registry.

Adapters (DuckDB, SQLite, PostgreSQL) implement these protocols; everything above the
store depends only on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import pyarrow as pa

from ironbridge.model import (
    ApiKey,
    Asset,
    AssetType,
    Device,
    Event,
    Principal,
    Role,
    SeriesRef,
    Tenant,
    User,
)
from ironbridge.store.points import PointBatch


class Agg(StrEnum):
    """Aggregate functions over a time bucket."""

    AVG = "avg"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """The highest stream sequence a consumer has applied, committed with its data."""

    consumer: str
    seq: int


class TelemetryStore(Protocol):
    """Time-series storage of points and events.

    Guarantees: one value per (series, timestamp), last write wins; ``append`` with a
    checkpoint commits the points, the events and the checkpoint in one transaction.
    All query results are Arrow tables with timestamps as ``timestamp[us, tz=UTC]``.
    """

    def append(
        self,
        points: PointBatch,
        events: Sequence[Event] = (),
        checkpoint: Checkpoint | Sequence[Checkpoint] | None = None,
    ) -> int:
        """Store points and events; return the number of points written.

        ``checkpoint`` may be several (a consumer's applied sequence and its
        published-through mark): all commit in the same transaction as the data.
        """
        ...

    def checkpoint(self, consumer: str) -> int:
        """Return the highest sequence committed for ``consumer`` (0 if none)."""
        ...

    def raw(
        self, series: Sequence[int], start_us: int, end_us: int, limit: int | None = None
    ) -> pa.Table:
        """Points in ``[start_us, end_us)``: columns series, ts, value; ordered by series, ts."""
        ...

    def aggregate(
        self,
        series: Sequence[int],
        start_us: int,
        end_us: int,
        bucket_us: int,
        aggs: Sequence[Agg],
    ) -> pa.Table:
        """Time-bucket aggregates: columns series, bucket, then one column per agg.

        Buckets are aligned to the Unix epoch (``floor(ts / bucket_us) * bucket_us``);
        empty buckets are omitted.
        """
        ...

    def latest(self, series: Sequence[int]) -> pa.Table:
        """Latest point of each series: columns series, ts, value (absent series omitted)."""
        ...

    def downsample(self, series: int, start_us: int, end_us: int, max_points: int) -> pa.Table:
        """At most ``max_points`` points (ts, value) that draw like the full series (M4)."""
        ...

    def downsample_many(
        self, series: Sequence[int], start_us: int, end_us: int, max_points: int
    ) -> pa.Table:
        """:meth:`downsample` of several series in one query: columns series, ts, value.

        Ordered by series, ts; at most ``max_points`` points per series; series without
        points in the range are omitted. Each of at most ``max_points // 4`` columns of
        the range keeps its first, last, lowest and highest stored point; a series with
        at most ``max_points`` points in the range is returned whole.
        """
        ...

    def events(
        self,
        asset_ids: Sequence[str],
        start_us: int,
        end_us: int,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> pa.Table:
        """Events in the range: columns asset_id, ts, kind, code, payload (JSON text)."""
        ...

    def count(self) -> int:
        """Return the number of stored points."""
        ...

    def close(self) -> None:
        """Flush and release the store."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceRoute:
    """What ingest needs to turn a device's message into points of its assets."""

    device_id: str
    tenant_id: str
    revoked: bool
    #: bound asset ids; the first is the default target of the device's messages
    asset_ids: tuple[str, ...]
    #: asset id -> its asset type
    types: Mapping[str, AssetType]
    #: asset id -> measurement name -> series id
    series: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceCredential:
    """A device id and the bcrypt hash of its credential (for broker authorisation)."""

    device_id: str
    credential_hash: str


class Registry(Protocol):
    """Tenants, asset types, assets, devices, series, users and API keys.

    Every read and write that a user triggers takes the caller's :class:`Principal`
    and is confined to the caller's tenant subtree; entities outside it behave as
    if they did not exist (:class:`NotFound`). ``who=None`` is a system call (bootstrap,
    provisioning by the platform itself) that sees and may change everything.
    """

    # -- tenants ---------------------------------------------------------------------
    def create_tenant(
        self, who: Principal | None, tenant_id: str, name: str, parent_id: str | None
    ) -> Tenant:
        """Create a tenant under ``parent_id`` (``None`` only for the root, at bootstrap)."""
        ...

    def get_tenant(self, who: Principal | None, tenant_id: str) -> Tenant:
        """Return a tenant visible to ``who`` (``None``: internal, sees everything)."""
        ...

    def list_tenants(self, who: Principal | None) -> list[Tenant]:
        """Return ``who``'s tenant and all tenants below it."""
        ...

    # -- asset types ---------------------------------------------------------------
    def put_asset_type(
        self, who: Principal | None, tenant_id: str, asset_type: AssetType
    ) -> AssetType:
        """Create a type, or store a new version of it (version must grow)."""
        ...

    def get_asset_type(self, who: Principal | None, name: str) -> AssetType:
        """Return the latest version of a visible type."""
        ...

    def list_asset_types(self, who: Principal | None) -> list[tuple[str, AssetType]]:
        """Return (tenant id, latest version) of every visible type."""
        ...

    def delete_asset_type(self, who: Principal | None, name: str) -> None:
        """Delete a type no asset uses (:class:`Conflict` otherwise)."""
        ...

    # -- assets ----------------------------------------------------------------------
    def create_asset(self, who: Principal | None, asset: Asset) -> Asset:
        """Create an asset (type must exist, attributes valid); creates its series."""
        ...

    def get_asset(self, who: Principal | None, asset_id: str) -> Asset:
        """Return a visible asset."""
        ...

    def list_assets(
        self,
        who: Principal | None,
        *,
        type_name: str | None = None,
        parent_id: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Asset]:
        """Return visible assets, ordered by id."""
        ...

    def update_asset(
        self,
        who: Principal | None,
        asset_id: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Asset:
        """Change an asset's name, parent or attributes."""
        ...

    def delete_asset(self, who: Principal | None, asset_id: str) -> None:
        """Delete an asset with no children and no bound device (:class:`Conflict`)."""
        ...

    # -- devices ---------------------------------------------------------------------
    def create_device(self, who: Principal | None, device: Device) -> tuple[Device, str]:
        """Create a device bound to visible assets; return it and its new credential."""
        ...

    def get_device(self, who: Principal | None, device_id: str) -> Device:
        """Return a visible device."""
        ...

    def list_devices(
        self, who: Principal | None, *, limit: int = 1000, offset: int = 0
    ) -> list[Device]:
        """Return visible devices, ordered by id."""
        ...

    def rotate_device_credential(self, who: Principal | None, device_id: str) -> str:
        """Issue a new credential (the old one stops working); return it."""
        ...

    def set_device_revoked(self, who: Principal | None, device_id: str, revoked: bool) -> Device:
        """Revoke (or reinstate) a device."""
        ...

    def delete_device(self, who: Principal | None, device_id: str) -> None:
        """Delete a device."""
        ...

    def verify_device(self, device_id: str, credential: str) -> Device:
        """Return the device if ``credential`` is its current one and it is not revoked."""
        ...

    def device_credentials(self) -> list[DeviceCredential]:
        """Every non-revoked device's credential hash (for broker authorisation)."""
        ...

    def device_route(self, device_id: str) -> DeviceRoute:
        """Return what ingest needs to route the device's readings (:class:`NotFound`)."""
        ...

    # -- series ----------------------------------------------------------------------
    def series_of(self, who: Principal | None, asset_ids: Sequence[str]) -> list[SeriesRef]:
        """Series of visible assets."""
        ...

    def series_by_id(self, who: Principal | None, series_ids: Sequence[int]) -> list[SeriesRef]:
        """Visible series among ``series_ids`` (others are left out)."""
        ...

    # -- users and keys --------------------------------------------------------------
    def create_user(
        self, who: Principal | None, tenant_id: str, username: str, password: str, role: Role
    ) -> User:
        """Create a user (password hashed with argon2)."""
        ...

    def list_users(self, who: Principal | None) -> list[User]:
        """Return users of ``who``'s subtree."""
        ...

    def authenticate_user(self, username: str, password: str) -> Principal:
        """Return the principal for a correct username/password (:class:`AuthenticationFailed`)."""
        ...

    def principal_for_user(self, user_id: int) -> Principal:
        """Return the principal of an enabled user (:class:`AuthenticationFailed`)."""
        ...

    def set_password(self, who: Principal | None, user_id: int, password: str) -> None:
        """Change a user's password."""
        ...

    def create_api_key(self, who: Principal | None, name: str) -> tuple[ApiKey, str]:
        """Create an API key for ``who``; return it and its secret (shown once)."""
        ...

    def list_api_keys(self, who: Principal | None) -> list[ApiKey]:
        """Return ``who``'s API keys."""
        ...

    def revoke_api_key(self, who: Principal | None, key_id: int) -> None:
        """Revoke one of ``who``'s API keys."""
        ...

    def authenticate_api_key(self, secret: str) -> Principal:
        """Return the principal owning a valid API key (:class:`AuthenticationFailed`)."""
        ...

    def has_users(self) -> bool:
        """Return True once any user exists (first-start bootstrap checks this)."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...
