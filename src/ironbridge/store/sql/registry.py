"""The registry on SQLAlchemy: tenants, asset types, assets and series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Row

from ironbridge.model import (
    Asset,
    AssetType,
    Conflict,
    Device,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Principal,
    Role,
    SeriesRef,
    Tenant,
    check_id,
    parse_asset_type,
)
from ironbridge.store.sql import credentials as cred
from ironbridge.store.sql._common import (
    ancestor_paths,
    check_json_object,
    check_label,
    check_page,
    chunks,
    require,
    tenant_of,
    utc,
    utcnow,
    visible,
)
from ironbridge.store.sql.accounts import AccountsMixin
from ironbridge.store.sql.devices import DevicesMixin
from ironbridge.store.sql.engine import migrate_engine
from ironbridge.store.sql.schema import (
    asset_types,
    assets,
    device_assets,
    series,
    tenants,
)

_MAX_DEPTH = 1000  # asset hierarchy walk guard


def _asset(row: Row[Any]) -> Asset:
    return Asset(
        id=row.id,
        tenant_id=row.tenant_id,
        type_name=row.type_name,
        name=row.name,
        parent_id=row.parent_id,
        attributes=dict(row.attributes or {}),
        created_at=utc(row.created_at),
    )


def _type_visible_from(path: str | None) -> ColumnElement[bool]:
    """Types defined at ``path``, in an ancestor (group-level types) or a descendant."""
    if path is None:
        return true()
    return or_(
        asset_types.c.tenant_path.in_(ancestor_paths(path)),
        asset_types.c.tenant_path.startswith(path, autoescape=True),
    )


class SqlRegistry(DevicesMixin, AccountsMixin):
    """The :class:`~ironbridge.store.ports.Registry` on SQLite (embedded) or PostgreSQL.

    Thread-safe: every call runs in its own connection and transaction, so one instance
    serves FastAPI's thread pool. ``who=None`` marks an internal call that sees and may
    change everything (bootstrap, import by the system, ingest).
    """

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self._verified: cred.VerifiedCache[Device] = cred.VerifiedCache()
        self._route_types: dict[tuple[str, int], tuple[object, AssetType]] = {}

    @classmethod
    def open(cls, url: str) -> SqlRegistry:
        """Open the registry at ``url`` and migrate its schema to the latest revision."""
        registry = cls(url)
        try:
            migrate_engine(registry._engine)
        except BaseException:
            registry.close()
            raise
        return registry

    # -- tenants ---------------------------------------------------------------------
    def create_tenant(
        self, who: Principal | None, tenant_id: str, name: str, parent_id: str | None
    ) -> Tenant:
        """Create a tenant under ``parent_id`` (``None`` only for the root, at bootstrap)."""
        require(who, Role.ADMIN)
        check_id(tenant_id, "tenant_id")
        name = check_label(name, "name")
        with self._write() as conn:
            if parent_id is None:
                if who is not None:
                    raise PermissionDenied("only the system creates a root tenant")
                path = f"/{tenant_id}/"
            else:
                path = f"{self._visible_tenant(conn, who, parent_id, 'parent_id').path}{tenant_id}/"
            if conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first():
                raise Conflict(f"tenant {tenant_id!r} already exists")
            conn.execute(
                insert(tenants).values(id=tenant_id, name=name, parent_id=parent_id, path=path)
            )
        return Tenant(id=tenant_id, name=name, parent_id=parent_id, path=path)

    def get_tenant(self, who: Principal | None, tenant_id: str) -> Tenant:
        """Return a tenant visible to ``who`` (``None``: internal, sees everything)."""
        with self._read() as conn:
            row = conn.execute(
                select(tenants).where(tenants.c.id == tenant_id, visible(tenants.c.path, who))
            ).first()
        if row is None:
            raise NotFound("tenant", tenant_id)
        return tenant_of(row)

    def list_tenants(self, who: Principal | None) -> list[Tenant]:
        """Return ``who``'s tenant and all tenants below it, ordered by path."""
        with self._read() as conn:
            rows = conn.execute(
                select(tenants).where(visible(tenants.c.path, who)).order_by(tenants.c.path)
            ).all()
        return [tenant_of(r) for r in rows]

    # -- asset types -----------------------------------------------------------------
    @staticmethod
    def _latest_type(conn: Connection, name: str, from_path: str | None) -> AssetType | None:
        row = conn.execute(
            select(asset_types.c.definition)
            .where(asset_types.c.name == name, _type_visible_from(from_path))
            .order_by(asset_types.c.version.desc())
            .limit(1)
        ).first()
        return None if row is None else parse_asset_type(row.definition)

    def put_asset_type(
        self, who: Principal | None, tenant_id: str, asset_type: AssetType
    ) -> AssetType:
        """Create a type, or store a new version of it (version must grow).

        A new version creates the series of its new measurements for every existing
        asset of the type; series of dropped measurements are kept (their data stays).
        """
        require(who, Role.OPERATOR)
        if not isinstance(asset_type, AssetType):
            raise InvalidInput("asset_type", "must be an AssetType")
        checked = parse_asset_type(asset_type.to_dict())  # names any bad field
        with self._write() as conn:
            tenant = self._visible_tenant(conn, who, tenant_id, "tenant_id")
            owners = conn.execute(
                select(asset_types.c.tenant_id, func.max(asset_types.c.version))
                .where(asset_types.c.name == checked.name)
                .group_by(asset_types.c.tenant_id)
            ).all()
            if owners:
                owner, latest = owners[0]
                if owner != tenant.id:
                    raise Conflict(f"asset type {checked.name!r} is defined by another tenant")
                if checked.version <= latest:
                    raise Conflict(
                        f"asset type {checked.name!r}: version {checked.version} must be "
                        f"greater than the latest version {latest}"
                    )
            conn.execute(
                insert(asset_types).values(
                    name=checked.name,
                    version=checked.version,
                    tenant_id=tenant.id,
                    tenant_path=tenant.path,
                    definition=checked.to_dict(),
                )
            )
            if owners:
                self._add_missing_series(conn, checked)
        return checked

    @staticmethod
    def _add_missing_series(conn: Connection, asset_type: AssetType) -> None:
        """Create the series of ``asset_type``'s measurements that its assets lack."""
        for m in asset_type.measurements:
            missing = ~exists().where(
                series.c.asset_id == assets.c.id, series.c.measurement == m.name
            )
            conn.execute(
                insert(series).from_select(
                    ["asset_id", "measurement"],
                    select(assets.c.id, literal(m.name, String(64))).where(
                        assets.c.type_name == asset_type.name, missing
                    ),
                )
            )

    def get_asset_type(self, who: Principal | None, name: str) -> AssetType:
        """Return the latest version of a visible type."""
        with self._read() as conn:
            found = self._latest_type(conn, name, None if who is None else who.tenant_path)
        if found is None:
            raise NotFound("asset type", name)
        return found

    def list_asset_types(self, who: Principal | None) -> list[tuple[str, AssetType]]:
        """Return (tenant id, latest version) of every visible type, ordered by name."""
        latest = (
            select(asset_types.c.name, func.max(asset_types.c.version).label("version"))
            .group_by(asset_types.c.name)
            .subquery()
        )
        query = (
            select(asset_types.c.tenant_id, asset_types.c.definition)
            .join(
                latest,
                and_(
                    latest.c.name == asset_types.c.name,
                    latest.c.version == asset_types.c.version,
                ),
            )
            .where(_type_visible_from(None if who is None else who.tenant_path))
            .order_by(asset_types.c.name)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [(r.tenant_id, parse_asset_type(r.definition)) for r in rows]

    def delete_asset_type(self, who: Principal | None, name: str) -> None:
        """Delete every version of a type no asset uses (:class:`Conflict` otherwise)."""
        require(who, Role.OPERATOR)
        with self._write() as conn:
            row = conn.execute(
                select(asset_types.c.tenant_path)
                .where(
                    asset_types.c.name == name,
                    _type_visible_from(None if who is None else who.tenant_path),
                )
                .limit(1)
            ).first()
            if row is None:
                raise NotFound("asset type", name)
            if who is not None and not who.can_see(row.tenant_path):
                raise PermissionDenied(f"asset type {name!r} belongs to an ancestor tenant")
            used = conn.execute(
                select(func.count()).select_from(assets).where(assets.c.type_name == name)
            ).scalar_one()
            if used:
                raise Conflict(f"asset type {name!r} is used by {used} asset(s)")
            conn.execute(delete(asset_types).where(asset_types.c.name == name))

    # -- assets ----------------------------------------------------------------------
    @staticmethod
    def _check_parent(
        conn: Connection,
        who: Principal | None,
        asset_id: str,
        parent_id: str,
        tenant_path: str,
    ) -> None:
        """Check that ``parent_id`` may be the parent of the asset ``asset_id``."""
        parent = conn.execute(
            select(assets.c.tenant_path).where(
                assets.c.id == parent_id, visible(assets.c.tenant_path, who)
            )
        ).first()
        if parent is None:
            raise InvalidInput("parent_id", f"asset {parent_id!r} not found")
        if not tenant_path.startswith(parent.tenant_path):
            # Whoever sees a parent must see all its children.
            raise InvalidInput(
                "parent_id", f"asset {parent_id!r} belongs to a tenant outside this asset's"
            )
        current: str | None = parent_id
        for _ in range(_MAX_DEPTH):
            if current is None:
                return
            if current == asset_id:
                raise InvalidInput("parent_id", f"asset {parent_id!r} would create a cycle")
            current = conn.execute(
                select(assets.c.parent_id).where(assets.c.id == current)
            ).scalar_one_or_none()
        raise InvalidInput("parent_id", f"hierarchy deeper than {_MAX_DEPTH} levels")

    def create_asset(self, who: Principal | None, asset: Asset) -> Asset:
        """Create an asset (type must exist, attributes valid); creates its series."""
        require(who, Role.OPERATOR)
        check_id(asset.id, "id")
        name = check_label(asset.name, "name")
        attributes = check_json_object(asset.attributes, "attributes")
        if not isinstance(asset.type_name, str) or not asset.type_name:
            raise InvalidInput("type_name", "is required")
        created = utcnow()
        with self._write() as conn:
            tenant = self._visible_tenant(conn, who, asset.tenant_id, "tenant_id")
            if conn.execute(select(assets.c.id).where(assets.c.id == asset.id)).first():
                raise Conflict(f"asset {asset.id!r} already exists")
            asset_type = self._latest_type(conn, asset.type_name, tenant.path)
            if asset_type is None:
                raise InvalidInput("type_name", f"asset type {asset.type_name!r} not found")
            asset_type.check_attributes(attributes)
            if asset.parent_id is not None:
                self._check_parent(conn, who, asset.id, asset.parent_id, tenant.path)
            conn.execute(
                insert(assets).values(
                    id=asset.id,
                    tenant_id=tenant.id,
                    tenant_path=tenant.path,
                    type_name=asset_type.name,
                    name=name,
                    parent_id=asset.parent_id,
                    attributes=attributes,
                    created_at=created,
                )
            )
            if asset_type.measurements:
                conn.execute(
                    insert(series),
                    [
                        {"asset_id": asset.id, "measurement": m.name}
                        for m in asset_type.measurements
                    ],
                )
        return Asset(
            id=asset.id,
            tenant_id=tenant.id,
            type_name=asset_type.name,
            name=name,
            parent_id=asset.parent_id,
            attributes=attributes,
            created_at=created,
        )

    def _asset_row(self, conn: Connection, who: Principal | None, asset_id: str) -> Row[Any]:
        row = conn.execute(
            select(assets).where(assets.c.id == asset_id, visible(assets.c.tenant_path, who))
        ).first()
        if row is None:
            raise NotFound("asset", asset_id)
        return row

    def get_asset(self, who: Principal | None, asset_id: str) -> Asset:
        """Return a visible asset."""
        with self._read() as conn:
            return _asset(self._asset_row(conn, who, asset_id))

    def list_assets(
        self,
        who: Principal | None,
        *,
        type_name: str | None = None,
        parent_id: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Asset]:
        """Return visible assets, ordered by id.

        Args:
            who: the caller.
            type_name: only assets of this type.
            parent_id: only children of this asset (``""``: only top-level assets).
            limit: page size (1-10000).
            offset: rows to skip.
        """
        check_page(limit, offset)
        query = select(assets).where(visible(assets.c.tenant_path, who))
        if type_name is not None:
            query = query.where(assets.c.type_name == type_name)
        if parent_id == "":
            query = query.where(assets.c.parent_id.is_(None))
        elif parent_id is not None:
            query = query.where(assets.c.parent_id == parent_id)
        with self._read() as conn:
            rows = conn.execute(query.order_by(assets.c.id).limit(limit).offset(offset)).all()
        return [_asset(r) for r in rows]

    def update_asset(
        self,
        who: Principal | None,
        asset_id: str,
        *,
        name: str | None = None,
        parent_id: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> Asset:
        """Change an asset's name, parent or attributes (``None``: leave unchanged).

        ``parent_id=""`` makes the asset a top-level one; ``attributes`` replaces the
        whole mapping and is checked against the latest version of the asset's type.
        """
        require(who, Role.OPERATOR)
        values: dict[str, Any] = {}
        if name is not None:
            values["name"] = check_label(name, "name")
        if attributes is not None:
            values["attributes"] = check_json_object(attributes, "attributes")
        with self._write() as conn:
            row = self._asset_row(conn, who, asset_id)
            if attributes is not None:
                asset_type = self._latest_type(conn, row.type_name, row.tenant_path)
                if asset_type is None:  # pragma: no cover - types in use cannot be deleted
                    raise NotFound("asset type", row.type_name)
                asset_type.check_attributes(values["attributes"])
            if parent_id == "":
                values["parent_id"] = None
            elif parent_id is not None:
                self._check_parent(conn, who, asset_id, parent_id, row.tenant_path)
                values["parent_id"] = parent_id
            if values:
                conn.execute(update(assets).where(assets.c.id == asset_id).values(**values))
            return _asset(conn.execute(select(assets).where(assets.c.id == asset_id)).one())

    def delete_asset(self, who: Principal | None, asset_id: str) -> None:
        """Delete an asset with no children and no bound device (:class:`Conflict`)."""
        require(who, Role.OPERATOR)
        with self._write() as conn:
            self._asset_row(conn, who, asset_id)
            if conn.execute(select(assets.c.id).where(assets.c.parent_id == asset_id)).first():
                raise Conflict(f"asset {asset_id!r} has child assets")
            bound = conn.execute(
                select(device_assets.c.device_id).where(device_assets.c.asset_id == asset_id)
            ).first()
            if bound is not None:
                raise Conflict(f"asset {asset_id!r} is bound to device {bound.device_id!r}")
            conn.execute(delete(series).where(series.c.asset_id == asset_id))
            conn.execute(delete(assets).where(assets.c.id == asset_id))

    # -- series ----------------------------------------------------------------------
    def _series(self, who: Principal | None, column: Any, keys: Sequence[Any]) -> list[SeriesRef]:
        out: list[SeriesRef] = []
        with self._read() as conn:
            for part in chunks(keys):
                rows = conn.execute(
                    select(series.c.id, series.c.asset_id, series.c.measurement)
                    .join(assets, assets.c.id == series.c.asset_id)
                    .where(column.in_(part), visible(assets.c.tenant_path, who))
                ).all()
                out.extend(
                    SeriesRef(id=r.id, asset_id=r.asset_id, measurement=r.measurement) for r in rows
                )
        out.sort(key=lambda s: s.id)
        return out

    def series_of(self, who: Principal | None, asset_ids: Sequence[str]) -> list[SeriesRef]:
        """Series of visible assets (invisible or unknown assets are left out), by id."""
        return self._series(who, series.c.asset_id, list(dict.fromkeys(asset_ids)))

    def series_by_id(self, who: Principal | None, series_ids: Sequence[int]) -> list[SeriesRef]:
        """Visible series among ``series_ids`` (others are left out), ordered by id."""
        return self._series(who, series.c.id, list(dict.fromkeys(series_ids)))
