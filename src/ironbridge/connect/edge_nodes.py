"""Sparkplug edge nodes known to the platform: approval, status, configuration versions.

Every edge node that births on the platform's broker is recorded (SQLAlchemy Core,
migration ``edge_0001``) with its tenant (that of the ironbridge device whose id is its
``edge_node_id``). Under the ``approve`` policy a node seen for the first time waits as
*pending*: the host drops its data (counted) until an operator approves it, optionally
mapping its Sparkplug devices to assets. Under ``auto`` a node is approved on its first
birth.

ironbridge edge agents report ``Edge Status/`` metrics (health, buffer depth, the
configuration version they run); the latest values are kept per node. Configurations
pushed to an agent are stored as numbered versions per node; ``desired_version`` says
which one the agent should run (a rollback points it back at an older version).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)

from ironbridge.model import Conflict, InvalidInput, NotFound

__all__ = [
    "ConfigVersion",
    "EdgeNode",
    "EdgeNodes",
    "NodeState",
    "Policy",
    "edge_configs",
    "edge_nodes",
    "metadata",
]

Policy = Literal["auto", "approve"]
NodeState = Literal["pending", "approved", "rejected"]

metadata = MetaData()

edge_nodes = Table(
    "edge_nodes",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("group_id", String(128), nullable=False),
    Column("tenant_id", String(128), nullable=False),
    Column("tenant_path", String(1024), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("assets", JSON, nullable=False),
    Column("desired_version", Integer, nullable=True),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("approved_by", String(128), nullable=True),
)

edge_configs = Table(
    "edge_configs",
    metadata,
    Column("node_id", String(128), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("config", Text, nullable=False),
    Column("comment", String(512), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


class Scope(Protocol):
    """Who is asking (a ``Principal``): nodes under ``tenant_path`` are visible."""

    @property
    def tenant_path(self) -> str:
        """The caller's tenant path."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigVersion:
    """One stored configuration version of an agent."""

    node_id: str
    version: int
    config: str
    comment: str
    created_by: str
    created_at: datetime


@dataclass(slots=True, kw_only=True)
class EdgeNode:
    """What the platform knows of one edge node.

    Attributes:
        state: ``pending``, ``approved`` or ``rejected``.
        assets: Sparkplug device id -> asset id (default: the asset with that id).
        online: has a live birth (no NDEATH since).
        agent: reports ``Edge Status/`` metrics (an ironbridge agent).
        status: the latest reported status values.
        devices: Sparkplug devices born under the node.
        dropped_points: values dropped while the node was not approved.
    """

    node_id: str
    group_id: str
    tenant_id: str
    tenant_path: str
    state: NodeState
    assets: dict[str, str]
    desired_version: int | None
    first_seen: datetime
    approved_by: str | None = None
    online: bool = False
    agent: bool = False
    births: int = 0
    last_seen_ms: int | None = None
    status: dict[str, Any] = field(default_factory=dict)
    status_ms: int | None = None
    devices: set[str] = field(default_factory=set)
    dropped_points: int = 0

    @property
    def reported_version(self) -> int | None:
        """The configuration version the agent says it runs."""
        v = self.status.get("config_version")
        return int(v) if isinstance(v, int | float) else None

    def public(self) -> dict[str, Any]:
        """The API's view."""
        return {
            "node_id": self.node_id,
            "group_id": self.group_id,
            "tenant_id": self.tenant_id,
            "state": self.state,
            "kind": "agent" if self.agent else "sparkplug",
            "online": self.online,
            "link": "up" if self.online else "down",
            "births": self.births,
            "first_seen": self.first_seen.isoformat(),
            "last_seen_ms": self.last_seen_ms,
            "approved_by": self.approved_by,
            "devices": sorted(self.devices),
            "assets": dict(self.assets),
            "dropped_points": self.dropped_points,
            "status": dict(self.status),
            "status_ms": self.status_ms,
            "desired_version": self.desired_version,
            "reported_version": self.reported_version,
            "in_sync": self.desired_version is None
            or self.desired_version == self.reported_version,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes: they are UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EdgeNodes:
    """Registry of edge nodes (SQL for what must survive, memory for live state).

    Args:
        engine: the registry's engine (tables of migration ``edge_0001``).
        policy: ``auto`` (approve on first birth) or ``approve`` (operator approves).
        tenant_of: the (tenant id, tenant path) of the device with the node's id, or
            None if there is no such device.
        clock_ms: wall clock in ms.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        policy: Policy = "auto",
        tenant_of: Callable[[str], tuple[str, str] | None],
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        """Load the stored nodes."""
        self._engine = engine
        self.policy: Policy = policy
        self._tenant_of = tenant_of
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._nodes: dict[str, EdgeNode] = {}
        with engine.connect() as conn:
            for row in conn.execute(select(edge_nodes)):
                self._nodes[row.node_id] = EdgeNode(
                    node_id=row.node_id,
                    group_id=row.group_id,
                    tenant_id=row.tenant_id,
                    tenant_path=row.tenant_path,
                    state=row.state,
                    assets=dict(row.assets or {}),
                    desired_version=row.desired_version,
                    first_seen=_utc(row.first_seen),
                    approved_by=row.approved_by,
                )

    # -- host side (called for every Sparkplug message) --------------------------------

    def _seen(self, group: str, node_id: str) -> EdgeNode | None:
        node = self._nodes.get(node_id)
        if node is not None:
            node.last_seen_ms = self._clock_ms()
            node.group_id = group
            return node
        tenant = self._tenant_of(node_id)
        if tenant is None:
            return None  # no device with that id: the broker would not have let it in
        node = EdgeNode(
            node_id=node_id,
            group_id=group,
            tenant_id=tenant[0],
            tenant_path=tenant[1],
            state="approved" if self.policy == "auto" else "pending",
            assets={},
            desired_version=None,
            first_seen=_now(),
            approved_by="auto" if self.policy == "auto" else None,
            last_seen_ms=self._clock_ms(),
        )
        with self._engine.begin() as conn:
            conn.execute(
                insert(edge_nodes).values(
                    node_id=node.node_id,
                    group_id=group,
                    tenant_id=node.tenant_id,
                    tenant_path=node.tenant_path,
                    state=node.state,
                    assets={},
                    desired_version=None,
                    first_seen=node.first_seen,
                    approved_by=node.approved_by,
                )
            )
        self._nodes[node_id] = node
        return node

    def born(self, group: str, node_id: str) -> EdgeNode | None:
        """An NBIRTH arrived: record the node (pending under ``approve``), mark it online."""
        with self._lock:
            node = self._seen(group, node_id)
            if node is not None:
                node.online = True
                node.births += 1
                node.devices.clear()
            return node

    def died(self, group: str, node_id: str) -> None:
        """A matching NDEATH arrived: the node is offline."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is not None:
                node.online = False

    def device_born(self, group: str, node_id: str, device: str) -> None:
        """A DBIRTH arrived for ``device``."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is not None:
                node.devices.add(device)

    def accepts(self, group: str, node_id: str, points: int = 0) -> bool:
        """Whether the node's data may be stored; counts ``points`` dropped if not."""
        with self._lock:
            node = self._seen(group, node_id)
            if node is None:
                return False
            if node.state == "approved":
                return True
            node.dropped_points += points
            return False

    def asset_for(self, node_id: str, device: str) -> str:
        """The asset a Sparkplug device's values go to (the mapping, else its own id)."""
        node = self._nodes.get(node_id)
        return node.assets.get(device, device) if node is not None else device

    def report(self, node_id: str, status: dict[str, Any]) -> EdgeNode | None:
        """An agent reported ``Edge Status/`` values."""
        with self._lock:
            node = self._nodes.get(node_id)
            if node is None or not status:
                return node
            node.agent = True
            node.status.update(status)
            node.status_ms = self._clock_ms()
            return node

    # -- operator side ---------------------------------------------------------------

    def _visible(self, who: Scope | None, node_id: str) -> EdgeNode:
        node = self._nodes.get(node_id)
        if node is None or (who is not None and not node.tenant_path.startswith(who.tenant_path)):
            raise NotFound("edge node", node_id)
        return node

    def get(self, who: Scope | None, node_id: str) -> EdgeNode:
        """A visible node.

        Raises:
            NotFound: no such node visible to ``who``.
        """
        with self._lock:
            return replace(self._visible(who, node_id))

    def all(self, who: Scope | None, state: str | None = None) -> list[EdgeNode]:
        """Visible nodes, by id (optionally only those in ``state``)."""
        with self._lock:
            return [
                replace(n)
                for _, n in sorted(self._nodes.items())
                if (who is None or n.tenant_path.startswith(who.tenant_path))
                and (state is None or n.state == state)
            ]

    def decide(
        self,
        who: Scope | None,
        node_id: str,
        state: NodeState,
        *,
        by: str,
        assets: dict[str, str] | None = None,
    ) -> EdgeNode:
        """Approve (with an optional device -> asset mapping) or reject a node.

        Raises:
            NotFound: no such node visible to ``who``.
        """
        with self._lock:
            node = self._visible(who, node_id)
            node.state = state
            node.approved_by = by if state == "approved" else None
            if assets is not None:
                node.assets = dict(assets)
            with self._engine.begin() as conn:
                conn.execute(
                    update(edge_nodes)
                    .where(edge_nodes.c.node_id == node_id)
                    .values(state=state, approved_by=node.approved_by, assets=node.assets)
                )
            return replace(node)

    def add_version(
        self, who: Scope | None, node_id: str, config: str, *, comment: str, by: str
    ) -> ConfigVersion:
        """Store the next configuration version and make it the desired one.

        Raises:
            NotFound: no such node visible to ``who``.
            InvalidInput: ``config`` is not a JSON object.
        """
        try:
            if not isinstance(json.loads(config), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise InvalidInput("config", f"must be a JSON object: {exc}") from None
        with self._lock:
            node = self._visible(who, node_id)
            now = _now()
            with self._engine.begin() as conn:
                latest = conn.execute(
                    select(func.max(edge_configs.c.version)).where(
                        edge_configs.c.node_id == node_id
                    )
                ).scalar()
                version = int(latest or 0) + 1
                conn.execute(
                    insert(edge_configs).values(
                        node_id=node_id,
                        version=version,
                        config=config,
                        comment=comment,
                        created_by=by,
                        created_at=now,
                    )
                )
                conn.execute(
                    update(edge_nodes)
                    .where(edge_nodes.c.node_id == node_id)
                    .values(desired_version=version)
                )
            node.desired_version = version
            return ConfigVersion(
                node_id=node_id,
                version=version,
                config=config,
                comment=comment,
                created_by=by,
                created_at=now,
            )

    def versions(self, who: Scope | None, node_id: str) -> list[ConfigVersion]:
        """Every stored configuration version of a node, newest first."""
        with self._lock:
            self._visible(who, node_id)
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(edge_configs)
                .where(edge_configs.c.node_id == node_id)
                .order_by(edge_configs.c.version.desc())
            ).all()
        return [
            ConfigVersion(
                node_id=r.node_id,
                version=r.version,
                config=r.config,
                comment=r.comment,
                created_by=r.created_by,
                created_at=_utc(r.created_at),
            )
            for r in rows
        ]

    def version(self, who: Scope | None, node_id: str, version: int) -> ConfigVersion:
        """One stored version.

        Raises:
            NotFound: no such node or version.
        """
        for v in self.versions(who, node_id):
            if v.version == version:
                return v
        raise NotFound("configuration version", f"{node_id}/{version}")

    def roll_back(self, who: Scope | None, node_id: str, version: int) -> ConfigVersion:
        """Make an older stored version the desired one again.

        Raises:
            NotFound: no such node or version.
            Conflict: it is already the desired version.
        """
        target = self.version(who, node_id, version)
        with self._lock:
            node = self._visible(who, node_id)
            if node.desired_version == version:
                raise Conflict(f"version {version} is already the desired configuration")
            with self._engine.begin() as conn:
                conn.execute(
                    update(edge_nodes)
                    .where(edge_nodes.c.node_id == node_id)
                    .values(desired_version=version)
                )
            node.desired_version = version
        return target

    def desired(self, node_id: str) -> ConfigVersion | None:
        """The version a node should run, if one was pushed."""
        node = self._nodes.get(node_id)
        if node is None or node.desired_version is None:
            return None
        try:
            return self.version(None, node_id, node.desired_version)
        except NotFound:
            return None
