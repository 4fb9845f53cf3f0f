"""Devices of the SQL registry: bindings, credentials, verification and routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Select,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row

from ironbridge.model import (
    AssetType,
    AuthenticationFailed,
    Conflict,
    Device,
    InvalidInput,
    NotFound,
    Principal,
    Role,
    check_id,
    parse_asset_type,
)
from ironbridge.store.ports import DeviceCredential, DeviceRoute
from ironbridge.store.sql import credentials as cred
from ironbridge.store.sql._common import (
    SqlBase,
    check_label,
    check_page,
    chunks,
    require,
    utc,
    utcnow,
    visible,
)
from ironbridge.store.sql.schema import asset_types, assets, device_assets, devices, series


def _route_statements() -> tuple[Select[Any], Select[Any]]:
    """Build once the two queries of :meth:`SqlRegistry.device_route` (hot on cache miss)."""
    device_id: BindParameter[str] = bindparam("device_id", type_=String())
    newest = asset_types.alias("newest")
    latest_version = (
        select(func.max(newest.c.version))
        .where(newest.c.name == assets.c.type_name)
        .scalar_subquery()
    )
    bindings = (
        select(
            devices.c.tenant_id,
            devices.c.revoked,
            device_assets.c.asset_id,
            asset_types.c.name.label("type_name"),
            asset_types.c.version,
            asset_types.c.definition,
        )
        .select_from(devices)
        .outerjoin(device_assets, device_assets.c.device_id == devices.c.id)
        .outerjoin(assets, assets.c.id == device_assets.c.asset_id)
        .outerjoin(
            asset_types,
            and_(
                asset_types.c.name == assets.c.type_name,
                asset_types.c.version == latest_version,
            ),
        )
        .where(devices.c.id == device_id)
        .order_by(device_assets.c.position)
    )
    series_rows = (
        select(series.c.id, series.c.asset_id, series.c.measurement)
        .join(device_assets, device_assets.c.asset_id == series.c.asset_id)
        .where(device_assets.c.device_id == device_id)
    )
    return bindings, series_rows


_ROUTE_BINDINGS, _ROUTE_SERIES = _route_statements()


class DevicesMixin(SqlBase):
    """Devices: bcrypt credentials, a verification cache and ingest routes."""

    _verified: cred.VerifiedCache[Device]
    _route_types: dict[tuple[str, int], tuple[object, AssetType]]

    @staticmethod
    def _bindings(conn: Connection, device_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = {d: [] for d in device_ids}
        for part in chunks(device_ids):
            rows = conn.execute(
                select(device_assets.c.device_id, device_assets.c.asset_id)
                .where(device_assets.c.device_id.in_(part))
                .order_by(device_assets.c.device_id, device_assets.c.position)
            ).all()
            for r in rows:
                out[r.device_id].append(r.asset_id)
        return {d: tuple(a) for d, a in out.items()}

    @staticmethod
    def _device(row: Row[Any], asset_ids: tuple[str, ...]) -> Device:
        return Device(
            id=row.id,
            tenant_id=row.tenant_id,
            asset_ids=asset_ids,
            name=row.name,
            revoked=bool(row.revoked),
            created_at=utc(row.created_at),
        )

    def create_device(self, who: Principal | None, device: Device) -> tuple[Device, str]:
        """Create a device bound to visible assets; return it and its new credential.

        The assets must belong to the device's tenant or one below it.
        """
        require(who, Role.OPERATOR)
        check_id(device.id, "id")
        name = check_label(device.name, "name", allow_empty=True)
        asset_ids = tuple(device.asset_ids)
        if not asset_ids:
            raise InvalidInput("asset_ids", "a device must be bound to at least one asset")
        for i, asset_id in enumerate(asset_ids):
            if asset_id in asset_ids[:i]:
                raise InvalidInput(f"asset_ids[{i}]", f"asset {asset_id!r} is listed twice")
        credential = cred.new_device_credential()
        hashed = cred.hash_device_credential(credential)  # outside the write lock
        created = utcnow()
        with self._write() as conn:
            tenant = self._visible_tenant(conn, who, device.tenant_id, "tenant_id")
            if conn.execute(select(devices.c.id).where(devices.c.id == device.id)).first():
                raise Conflict(f"device {device.id!r} already exists")
            found = {
                r.id: r.tenant_path
                for r in conn.execute(
                    select(assets.c.id, assets.c.tenant_path).where(
                        assets.c.id.in_(asset_ids), visible(assets.c.tenant_path, who)
                    )
                )
            }
            for i, asset_id in enumerate(asset_ids):
                path = found.get(asset_id)
                if path is None:
                    raise InvalidInput(f"asset_ids[{i}]", f"asset {asset_id!r} not found")
                if not path.startswith(tenant.path):
                    raise InvalidInput(
                        f"asset_ids[{i}]",
                        f"asset {asset_id!r} belongs to a tenant outside the device's",
                    )
            conn.execute(
                insert(devices).values(
                    id=device.id,
                    tenant_id=tenant.id,
                    tenant_path=tenant.path,
                    name=name,
                    credential_hash=hashed,
                    revoked=False,
                    created_at=created,
                )
            )
            conn.execute(
                insert(device_assets),
                [
                    {"device_id": device.id, "asset_id": a, "position": i}
                    for i, a in enumerate(asset_ids)
                ],
            )
        made = Device(
            id=device.id,
            tenant_id=tenant.id,
            asset_ids=asset_ids,
            name=name,
            revoked=False,
            created_at=created,
        )
        return made, credential

    def _device_row(self, conn: Connection, who: Principal | None, device_id: str) -> Row[Any]:
        row = conn.execute(
            select(devices).where(devices.c.id == device_id, visible(devices.c.tenant_path, who))
        ).first()
        if row is None:
            raise NotFound("device", device_id)
        return row

    def get_device(self, who: Principal | None, device_id: str) -> Device:
        """Return a visible device."""
        with self._read() as conn:
            row = self._device_row(conn, who, device_id)
            return self._device(row, self._bindings(conn, [device_id])[device_id])

    def list_devices(
        self, who: Principal | None, *, limit: int = 1000, offset: int = 0
    ) -> list[Device]:
        """Return visible devices, ordered by id."""
        check_page(limit, offset)
        with self._read() as conn:
            rows = conn.execute(
                select(devices)
                .where(visible(devices.c.tenant_path, who))
                .order_by(devices.c.id)
                .limit(limit)
                .offset(offset)
            ).all()
            bound = self._bindings(conn, [r.id for r in rows])
        return [self._device(r, bound[r.id]) for r in rows]

    def rotate_device_credential(self, who: Principal | None, device_id: str) -> str:
        """Issue a new credential (the old one stops working at once); return it."""
        require(who, Role.OPERATOR)
        credential = cred.new_device_credential()
        hashed = cred.hash_device_credential(credential)
        with self._write() as conn:
            self._device_row(conn, who, device_id)
            conn.execute(
                update(devices).where(devices.c.id == device_id).values(credential_hash=hashed)
            )
        self._verified.invalidate(device_id)
        return credential

    def set_device_revoked(self, who: Principal | None, device_id: str, revoked: bool) -> Device:
        """Revoke (or reinstate) a device."""
        require(who, Role.OPERATOR)
        with self._write() as conn:
            self._device_row(conn, who, device_id)
            conn.execute(
                update(devices).where(devices.c.id == device_id).values(revoked=bool(revoked))
            )
            row = conn.execute(select(devices).where(devices.c.id == device_id)).one()
            device = self._device(row, self._bindings(conn, [device_id])[device_id])
        self._verified.invalidate(device_id)
        return device

    def delete_device(self, who: Principal | None, device_id: str) -> None:
        """Delete a device."""
        require(who, Role.OPERATOR)
        with self._write() as conn:
            self._device_row(conn, who, device_id)
            conn.execute(delete(device_assets).where(device_assets.c.device_id == device_id))
            conn.execute(delete(devices).where(devices.c.id == device_id))
        self._verified.invalidate(device_id)

    def verify_device(self, device_id: str, credential: str) -> Device:
        """Return the device if ``credential`` is its current one and it is not revoked.

        Successful checks are cached (by SHA-256 of the credential, never the credential)
        so that HTTP ingest is not bound by bcrypt; rotation, revocation and deletion
        in this process invalidate the entry at once, other processes within 60 s.
        """
        cached = self._verified.get(device_id, credential)
        if cached is not None:
            return cached
        generation = self._verified.generation()
        with self._read() as conn:
            row = conn.execute(select(devices).where(devices.c.id == device_id)).first()
            bound = self._bindings(conn, [device_id])[device_id] if row is not None else ()
        if not cred.check_device_credential(
            credential, None if row is None else row.credential_hash
        ):
            raise AuthenticationFailed("unknown device or wrong credential")
        assert row is not None  # check_device_credential is False for an unknown device
        if row.revoked:
            raise AuthenticationFailed(f"device {device_id!r} is revoked")
        device = self._device(row, bound)
        self._verified.put(device_id, credential, device, generation)
        return device

    def device_credentials(self) -> list[DeviceCredential]:
        """Every non-revoked device's credential hash (for broker authorisation)."""
        with self._read() as conn:
            rows = conn.execute(
                select(devices.c.id, devices.c.credential_hash)
                .where(devices.c.revoked.is_(False))
                .order_by(devices.c.id)
            ).all()
        return [DeviceCredential(device_id=r.id, credential_hash=r.credential_hash) for r in rows]

    def device_route(self, device_id: str) -> DeviceRoute:
        """Return what ingest needs to route the device's readings (two queries)."""
        with self._read() as conn:
            rows = conn.execute(_ROUTE_BINDINGS, {"device_id": device_id}).all()
            srows = conn.execute(_ROUTE_SERIES, {"device_id": device_id}).all()
        if not rows:
            raise NotFound("device", device_id)
        asset_ids = tuple(r.asset_id for r in rows if r.asset_id is not None)
        # Parsing a type of ~200 measurements dominated a lookup: keep the parsed type while
        # its stored definition is the same (comparing is far cheaper than validating).
        parsed = self._route_types
        types: dict[str, AssetType] = {}
        for r in rows:
            if r.asset_id is None or r.definition is None:
                continue
            key = (r.type_name, r.version)
            hit = parsed.get(key)
            if hit is None or hit[0] != r.definition:
                hit = parsed[key] = (r.definition, parse_asset_type(r.definition))
            types[r.asset_id] = hit[1]
        by_asset: dict[str, dict[str, int]] = {a: {} for a in asset_ids}
        for s in srows:
            by_asset[s.asset_id][s.measurement] = s.id
        return DeviceRoute(
            device_id=device_id,
            tenant_id=rows[0].tenant_id,
            revoked=bool(rows[0].revoked),
            asset_ids=asset_ids,
            types=types,
            series=by_asset,
        )
