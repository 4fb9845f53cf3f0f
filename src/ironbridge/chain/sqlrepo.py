"""The SQL :class:`~ironbridge.chain.catalog.ChainRepository`: chains in the registry database."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from ironbridge.chain import tables as t
from ironbridge.chain.catalog import ChainHeader
from ironbridge.chain.model import Chain, Component, Enterprise, SizeClass, SupplyLink
from ironbridge.model import (
    Conflict,
    InvalidInput,
    IronbridgeError,
    NotFound,
    PermanentError,
    TransientError,
    check_id,
)

# The registry engine's execution option for write transactions (BEGIN IMMEDIATE on
# SQLite, so two writers queue on the busy timeout); other engines ignore it.
_WRITE = "ironbridge_write"


@contextlib.contextmanager
def _translate() -> Iterator[None]:
    """Map SQLAlchemy errors to the ironbridge tree, once, at this adapter's edge."""
    try:
        yield
    except IronbridgeError:
        raise
    except IntegrityError as exc:
        raise Conflict(f"chain data conflicts with existing data: {exc.orig}") from exc
    except OperationalError as exc:
        raise TransientError(f"chain database unavailable: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        raise PermanentError(f"chain database error: {exc}") from exc


def _well_formed(path: str) -> bool:
    return path.startswith("/") and path.endswith("/")


def _visible(column: Any, caller_path: str) -> Any:
    """``column`` starts with ``caller_path`` (LIKE with the wildcards escaped)."""
    escaped = caller_path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"{escaped}%", escape="\\")


def _header(row: Any) -> ChainHeader:
    return ChainHeader(
        tenant_id=row["tenant_id"],
        tenant_path=row["tenant_path"],
        name=row["name"],
        revision=row["revision"],
        # SQLite hands back naive datetimes; they were written in UTC
        updated_at=row["updated_at"].replace(tzinfo=row["updated_at"].tzinfo or UTC),
        n_components=row["n_components"],
        n_enterprises=row["n_enterprises"],
        n_links=row["n_links"],
    )


class SqlChainRepository:
    """Chains stored in five tables (see :mod:`ironbridge.chain.tables`).

    ``put`` replaces a chain's rows in one transaction with bulk inserts (its asset
    links survive for the enterprises that remain); ``get`` reads the rows in file
    order and builds the validated :class:`Chain`.
    """

    def __init__(self, engine: Engine) -> None:
        """Use ``engine`` (the registry's); the tables must exist (migration chain_0001)."""
        self.engine = engine

    def create_tables(self) -> None:
        """Create the tables directly (tests and tools without Alembic)."""
        with _translate():
            t.metadata.create_all(self.engine)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Connection]:
        with _translate(), self.engine.connect() as conn:
            conn = conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[Connection]:
        with _translate(), self.engine.connect() as conn, conn.begin():
            yield conn

    @staticmethod
    def _chain_row(conn: Connection, tenant_id: str, name: str, caller_path: str) -> Any:
        check_id(tenant_id, "tenant_id")
        row = (
            conn.execute(
                select(t.chains).where(t.chains.c.tenant_id == tenant_id, t.chains.c.name == name)
            )
            .mappings()
            .first()
        )
        if row is None or not _well_formed(caller_path):
            raise NotFound("chain", f"{tenant_id}/{name}")
        if not str(row["tenant_path"]).startswith(caller_path):
            raise NotFound("chain", f"{tenant_id}/{name}")
        return row

    def put(self, chain: Chain, *, caller_path: str) -> None:
        """Store ``chain``, replacing the owner's chain of that name.

        Raises:
            NotFound: the caller may not write for the chain's tenant.
            Conflict: the stored chain of that name has another tenant path.
        """
        if not chain.visible_to(caller_path):
            raise NotFound("tenant", chain.tenant_id)
        owner = {"tenant_id": chain.tenant_id, "tenant_path": chain.tenant_path}
        now = datetime.now(UTC)
        counts = {
            "n_components": len(chain.components),
            "n_enterprises": len(chain.enterprises),
            "n_links": len(chain.links),
        }
        with self._write() as conn:
            current = conn.execute(
                select(t.chains.c.id, t.chains.c.tenant_path, t.chains.c.revision).where(
                    t.chains.c.tenant_id == chain.tenant_id, t.chains.c.name == chain.name
                )
            ).first()
            if current is None:
                key = conn.execute(
                    t.chains.insert().values(
                        **owner, name=chain.name, revision=1, updated_at=now, **counts
                    )
                ).inserted_primary_key
                if key is None:
                    raise PermanentError("the database returned no id for the new chain")
                chain_id = int(key[0])
            else:
                if current.tenant_path != chain.tenant_path:
                    raise Conflict(
                        f"chain {chain.name!r} of tenant {chain.tenant_id!r} has another "
                        "tenant path"
                    )
                chain_id = current.id
                conn.execute(
                    update(t.chains)
                    .where(t.chains.c.id == chain_id)
                    .values(revision=current.revision + 1, updated_at=now, **counts)
                )
                for table in (t.components, t.enterprises, t.supply_links):
                    conn.execute(delete(table).where(table.c.chain_id == chain_id))
                firm_ids = [f.id for f in chain.enterprises]
                stale = select(t.asset_links.c.enterprise_id).where(
                    t.asset_links.c.chain_id == chain_id
                )
                gone = set(conn.scalars(stale)) - set(firm_ids)
                if gone:
                    conn.execute(
                        delete(t.asset_links).where(
                            t.asset_links.c.chain_id == chain_id,
                            t.asset_links.c.enterprise_id.in_(sorted(gone)),
                        )
                    )
            self._insert_rows(conn, chain_id, owner, chain)

    @staticmethod
    def _insert_rows(conn: Connection, chain_id: int, owner: dict[str, str], chain: Chain) -> None:
        base = {"chain_id": chain_id, **owner}
        if chain.components:
            conn.execute(
                t.components.insert(),
                [
                    {
                        **base,
                        "position": i,
                        "id": c.id,
                        "name": c.name,
                        "parent_id": c.parent_id,
                        "level": c.level,
                        "importance": c.importance,
                        "critical": c.critical,
                    }
                    for i, c in enumerate(chain.components)
                ],
            )
        if chain.enterprises:
            conn.execute(
                t.enterprises.insert(),
                [
                    {
                        **base,
                        "position": i,
                        "id": f.id,
                        "name": f.name,
                        "province": f.province,
                        "city": f.city,
                        "district": f.district,
                        "lat": f.lat,
                        "lon": f.lon,
                        "size": f.size.value,
                        "components": ";".join(f.components),
                        "is_leader": f.is_leader,
                    }
                    for i, f in enumerate(chain.enterprises)
                ],
            )
        if chain.links:
            conn.execute(
                t.supply_links.insert(),
                [
                    {
                        **base,
                        "position": i,
                        "supplier_id": lk.supplier_id,
                        "customer_id": lk.customer_id,
                        "component_id": lk.component_id,
                        "volume_share": lk.volume_share,
                        "value_cny": lk.value_cny,
                        "lead_time_days": lk.lead_time_days,
                        "inventory_cover_days": lk.inventory_cover_days,
                        "recovery_days": lk.recovery_days,
                    }
                    for i, lk in enumerate(chain.links)
                ],
            )

    def get(self, tenant_id: str, name: str, *, caller_path: str) -> Chain:
        """Load a visible chain; NotFound if absent or owned outside the caller's subtree."""
        with self._read() as conn:
            row = self._chain_row(conn, tenant_id, name, caller_path)
            cid = row["id"]
            comp_rows = conn.execute(
                select(
                    t.components.c.id,
                    t.components.c.name,
                    t.components.c.parent_id,
                    t.components.c.level,
                    t.components.c.importance,
                    t.components.c.critical,
                )
                .where(t.components.c.chain_id == cid)
                .order_by(t.components.c.position)
            ).all()
            firm_rows = conn.execute(
                select(
                    t.enterprises.c.id,
                    t.enterprises.c.name,
                    t.enterprises.c.province,
                    t.enterprises.c.city,
                    t.enterprises.c.district,
                    t.enterprises.c.lat,
                    t.enterprises.c.lon,
                    t.enterprises.c.size,
                    t.enterprises.c.components,
                    t.enterprises.c.is_leader,
                )
                .where(t.enterprises.c.chain_id == cid)
                .order_by(t.enterprises.c.position)
            ).all()
            link_rows = conn.execute(
                select(
                    t.supply_links.c.supplier_id,
                    t.supply_links.c.customer_id,
                    t.supply_links.c.component_id,
                    t.supply_links.c.volume_share,
                    t.supply_links.c.value_cny,
                    t.supply_links.c.lead_time_days,
                    t.supply_links.c.inventory_cover_days,
                    t.supply_links.c.recovery_days,
                )
                .where(t.supply_links.c.chain_id == cid)
                .order_by(t.supply_links.c.position)
            ).all()
        sizes = {s.value: s for s in SizeClass}
        try:
            return Chain(
                name=row["name"],
                tenant_id=row["tenant_id"],
                tenant_path=row["tenant_path"],
                components=tuple(
                    Component(
                        id=r[0],
                        name=r[1],
                        parent_id=r[2],
                        level=r[3],
                        importance=r[4],
                        critical=bool(r[5]),
                    )
                    for r in comp_rows
                ),
                enterprises=tuple(
                    Enterprise(
                        id=r[0],
                        name=r[1],
                        province=r[2],
                        city=r[3],
                        district=r[4],
                        lat=r[5],
                        lon=r[6],
                        size=sizes[r[7]],
                        components=tuple(r[8].split(";")) if r[8] else (),
                        is_leader=bool(r[9]),
                    )
                    for r in firm_rows
                ),
                links=tuple(
                    SupplyLink(
                        supplier_id=r[0],
                        customer_id=r[1],
                        component_id=r[2],
                        volume_share=r[3],
                        value_cny=r[4],
                        lead_time_days=r[5],
                        inventory_cover_days=r[6],
                        recovery_days=r[7],
                    )
                    for r in link_rows
                ),
            )
        except (InvalidInput, KeyError) as exc:
            raise PermanentError(f"stored chain {tenant_id}/{name} is corrupt: {exc}") from exc

    def header(self, tenant_id: str, name: str, *, caller_path: str) -> ChainHeader:
        """Return the header (counts, revision) of a visible chain, else NotFound."""
        with self._read() as conn:
            return _header(self._chain_row(conn, tenant_id, name, caller_path))

    def list(self, *, caller_path: str) -> list[Chain]:
        """Load every chain visible to the caller (use :meth:`summaries` for a listing)."""
        return [
            self.get(h.tenant_id, h.name, caller_path=caller_path)
            for h in self.summaries(caller_path=caller_path)
        ]

    def summaries(self, *, caller_path: str) -> builtins.list[ChainHeader]:
        """Return the headers of the chains visible to the caller, by tenant path then name."""
        if not _well_formed(caller_path):
            return []
        with self._read() as conn:
            rows = (
                conn.execute(
                    select(t.chains)
                    .where(_visible(t.chains.c.tenant_path, caller_path))
                    .order_by(t.chains.c.tenant_path, t.chains.c.name)
                )
                .mappings()
                .all()
            )
        return [_header(r) for r in rows]

    def delete(self, tenant_id: str, name: str, *, caller_path: str) -> None:
        """Remove a visible chain and all its rows, else NotFound."""
        with self._write() as conn:
            cid = self._chain_row(conn, tenant_id, name, caller_path)["id"]
            for table in (t.asset_links, t.supply_links, t.enterprises, t.components):
                conn.execute(delete(table).where(table.c.chain_id == cid))
            conn.execute(delete(t.chains).where(t.chains.c.id == cid))

    def asset_links(
        self, tenant_id: str, name: str, *, caller_path: str
    ) -> dict[str, tuple[str, ...]]:
        """Return enterprise id -> linked platform asset ids of a visible chain."""
        with self._read() as conn:
            cid = self._chain_row(conn, tenant_id, name, caller_path)["id"]
            rows = conn.execute(
                select(t.asset_links.c.enterprise_id, t.asset_links.c.asset_id)
                .where(t.asset_links.c.chain_id == cid)
                .order_by(t.asset_links.c.enterprise_id, t.asset_links.c.asset_id)
            ).all()
        out: dict[str, list[str]] = {}
        for firm, asset in rows:
            out.setdefault(firm, []).append(asset)
        return {k: tuple(v) for k, v in out.items()}

    def set_asset_links(
        self,
        tenant_id: str,
        name: str,
        enterprise_id: str,
        asset_ids: Sequence[str],
        *,
        caller_path: str,
    ) -> None:
        """Replace the assets linked to ``enterprise_id`` (an empty list unlinks it).

        The caller checks that the assets exist and are visible (the registry's job);
        here the enterprise must be one of the chain's.
        """
        for i, asset_id in enumerate(asset_ids):
            check_id(asset_id, f"asset_ids[{i}]")
        with self._write() as conn:
            row = self._chain_row(conn, tenant_id, name, caller_path)
            cid = row["id"]
            known = conn.scalar(
                select(func.count())
                .select_from(t.enterprises)
                .where(t.enterprises.c.chain_id == cid, t.enterprises.c.id == enterprise_id)
            )
            if not known:
                raise NotFound("enterprise", enterprise_id)
            conn.execute(
                delete(t.asset_links).where(
                    t.asset_links.c.chain_id == cid, t.asset_links.c.enterprise_id == enterprise_id
                )
            )
            if asset_ids:
                conn.execute(
                    t.asset_links.insert(),
                    [
                        {
                            "chain_id": cid,
                            "enterprise_id": enterprise_id,
                            "asset_id": a,
                            "tenant_id": row["tenant_id"],
                            "tenant_path": row["tenant_path"],
                        }
                        for a in dict.fromkeys(asset_ids)
                    ],
                )
