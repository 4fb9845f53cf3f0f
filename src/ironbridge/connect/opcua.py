"""OPC UA connector on asyncua: browse, test, subscribe to data changes and publish them.

Data changes arrive through one subscription (asyncua's iterator mode, a bounded
queue), are scaled, batched per device/asset and published as columnar telemetry to
``ib.v1.<device>.telemetry``. A watchdog reads the server's ``ServerStatus/State``
every few seconds: a server that goes away is reported once, retried with jittered
backoff, reported once more when it is back, and the subscription is recreated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.common.subscription import DataChangeEvent, OverflowPolicy
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from ironbridge.connect.config import NodeMap, OpcUaConfig
from ironbridge.connect.link import Backoff, Link, pause
from ironbridge.connect.publish import Publisher, SampleBatcher
from ironbridge.model import InvalidInput, IronbridgeError, PermanentError, TransientError

_LOGGER = logging.getLogger(__name__)

#: ServerStatus/State (ns=0;i=2259), read by the watchdog.
_SERVER_STATE = "i=2259"
_OBJECTS = "i=85"
_QUEUE_MAX = 200_000


@contextlib.contextmanager
def _mapped(what: str) -> Iterator[None]:
    """Map asyncua and socket exceptions to ironbridge errors."""
    try:
        yield
    except IronbridgeError:
        raise
    except UaStatusCodeError as exc:
        raise PermanentError(f"{what}: {exc}") from exc
    except (OSError, TimeoutError, ConnectionError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc
    except (UaError, ValueError, RuntimeError) as exc:
        raise TransientError(f"{what}: {type(exc).__name__}: {exc}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowseEntry:
    """One child node found by :func:`browse`.

    Attributes:
        node_id: the node id string to map (``ns=2;s=Press1.State``).
        browse_name: qualified browse name (``2:State``).
        display_name: display name.
        node_class: ``Object``, ``Variable``, ``Method``...
        data_type: variant type of a variable's value (``Double``), else ``""``.
        has_children: whether it has hierarchical children (a folder to open).
    """

    node_id: str
    browse_name: str
    display_name: str
    node_class: str
    data_type: str
    has_children: bool


def _client(config: OpcUaConfig) -> Client:
    # asyncua's own health probe times out after its watchdog interval (1 s by default):
    # a server busy creating thousands of monitored items looks dead. Our watchdog
    # (``OpcUaConnector.watchdog_s`` with the request timeout) decides instead.
    client = Client(
        config.url, timeout=config.timeout_s, watchdog_intervall=max(10.0, 2 * config.timeout_s)
    )
    client.session_timeout = 600_000  # what asyncua servers grant; avoids a warning
    if config.username:
        client.set_user(config.username)
        client.set_password(config.password)
    return client


@contextlib.asynccontextmanager
async def _session(config: OpcUaConfig) -> AsyncIterator[Client]:
    client = _client(config)
    with _mapped(f"connect to {config.url}"):
        await asyncio.wait_for(client.connect(), timeout=config.timeout_s + 1)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout=2)


async def _describe(node: Node) -> BrowseEntry:
    node_class = await node.read_node_class()
    data_type = ""
    if node_class == ua.NodeClass.Variable:
        with contextlib.suppress(Exception):
            data_type = (await node.read_data_type_as_variant_type()).name
    name = await node.read_browse_name()
    display = await node.read_display_name()
    children = await node.get_children()
    return BrowseEntry(
        node_id=node.nodeid.to_string(),
        browse_name=name.to_string(),
        display_name=display.Text or name.Name,
        node_class=node_class.name,
        data_type=data_type,
        has_children=bool(children),
    )


async def browse(config: OpcUaConfig, node_id: str | None = None) -> list[BrowseEntry]:
    """List the children of ``node_id`` (default the Objects folder).

    Raises:
        InvalidInput: ``node_id`` is malformed or unknown (field ``node``).
        TransientError: the server cannot be reached.
    """
    async with _session(config) as client:
        try:
            node = client.get_node(node_id or _OBJECTS)
        except (ValueError, UaError) as exc:
            raise InvalidInput("node", f"not a node id: {exc}") from None
        try:
            children = await node.get_children()
        except UaStatusCodeError as exc:
            raise InvalidInput("node", f"{node_id!r}: {exc}") from None
        with _mapped(f"browse {config.url}"):
            return [await _describe(child) for child in children]


async def variables_under(config: OpcUaConfig, node_id: str, depth: int = 4) -> list[BrowseEntry]:
    """Every variable under a folder/object, depth-first (for "map a whole folder").

    Raises:
        InvalidInput: ``node_id`` is unknown.
        TransientError: the server cannot be reached.
    """
    out: list[BrowseEntry] = []

    async def walk(node: Node, level: int) -> None:
        for child in await node.get_children():
            entry = await _describe(child)
            if entry.node_class == "Variable":
                out.append(entry)
            elif entry.has_children and level < depth:
                await walk(child, level + 1)

    async with _session(config) as client:
        try:
            await walk(client.get_node(node_id), 1)
        except (ValueError, UaStatusCodeError) as exc:
            raise InvalidInput("node", f"{node_id!r}: {exc}") from None
    return out


async def check_connection(config: OpcUaConfig) -> dict[str, Any]:
    """Connect and check that every mapped node exists and is a variable.

    Returns:
        ``{"server_state": ..., "nodes": n}``.

    Raises:
        InvalidInput: field ``url`` when the server cannot be reached, or
            ``nodes[i].node`` when a node is missing or not a variable.
    """
    try:
        async with _session(config) as client:
            state = await client.get_node(_SERVER_STATE).read_value()
            for i, mapping in enumerate(config.nodes):
                try:
                    node = client.get_node(mapping.node)
                    node_class = await node.read_node_class()
                except (ValueError, UaError) as exc:
                    raise InvalidInput(f"nodes[{i}].node", f"{mapping.node!r}: {exc}") from None
                if node_class != ua.NodeClass.Variable:
                    raise InvalidInput(
                        f"nodes[{i}].node",
                        f"{mapping.node!r} is a {node_class.name}, not a variable",
                    )
    except (TransientError, PermanentError) as exc:
        raise InvalidInput("url", f"cannot reach the OPC UA server: {exc}") from None
    with contextlib.suppress(ValueError, TypeError):
        state = ua.ServerState(state).name
    return {"server_state": str(state), "nodes": len(config.nodes)}


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    return None


def _ts_ms(data_value: ua.DataValue | None) -> int:
    stamp: datetime | None = None
    if data_value is not None:
        stamp = data_value.SourceTimestamp or data_value.ServerTimestamp
    if stamp is None:
        return int(datetime.now().timestamp() * 1000)
    return int(stamp.timestamp() * 1000)


class OpcUaConnector:
    """Subscribes to the mapped nodes of one OPC UA server and publishes their changes.

    Args:
        config: server and node mappings.
        publisher: the bus (``Bus``) or any :class:`~ironbridge.connect.publish.Publisher`.
        name: name used in log lines and status.
        watchdog_s: period of the liveness check.
        backoff: reconnect policy.
    """

    def __init__(
        self,
        config: OpcUaConfig,
        publisher: Publisher,
        *,
        name: str = "opcua",
        watchdog_s: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        self.config = config
        self.batcher = SampleBatcher(publisher)
        self.link = Link(f"opcua connector {name} ({config.url})", backoff)
        self.watchdog_s = watchdog_s
        self.notifications = 0
        self.skipped = 0
        self.subscribed = 0

    def status(self) -> dict[str, Any]:
        """Link state and counters."""
        s = self.batcher.stats
        return {
            **self.link.status(),
            "subscribed": self.subscribed,
            "notifications": self.notifications,
            "skipped": self.skipped,
            "published": s.published,
            "pending": self.batcher.pending,
            "dropped": s.dropped,
        }

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, subscribe and publish until ``stop`` is set; reconnect on loss."""
        flusher = asyncio.create_task(self.batcher.run(stop), name="opcua-flush")
        try:
            while not stop.is_set():
                try:
                    await self._session(stop)
                except IronbridgeError as exc:
                    if await pause(stop, self.link.down(exc)):
                        break
        finally:
            self.link.stopped()
            await flusher

    async def _session(self, stop: asyncio.Event) -> None:
        client = _client(self.config)
        with _mapped(f"connect to {self.config.url}"):
            await asyncio.wait_for(client.connect(), timeout=self.config.timeout_s + 1)
        try:
            with _mapped(f"subscribe on {self.config.url}"):
                sub = await client.create_subscription(
                    self.config.publishing_interval_ms,
                    None,
                    queue_maxsize=_QUEUE_MAX,
                    overflow=OverflowPolicy.WARN,
                )
                by_node = await self._subscribe(client, sub)
            self.link.up()
            consume = asyncio.create_task(self._consume(sub, by_node), name="opcua-consume")
            watch = asyncio.create_task(self._watchdog(client, stop), name="opcua-watchdog")
            done, _ = await asyncio.wait({consume, watch}, return_when="FIRST_COMPLETED")
            for task in (consume, watch):
                task.cancel()
            await asyncio.gather(consume, watch, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout=2)

    async def _subscribe(self, client: Client, sub: Any) -> dict[str, list[NodeMap]]:
        by_node: dict[str, list[NodeMap]] = {}
        for m in self.config.nodes:
            by_node.setdefault(client.get_node(m.node).nodeid.to_string(), []).append(m)
        nodes = [client.get_node(n) for n in by_node]
        self.subscribed = 0
        # Create monitored items in chunks: one request for 5 000 items is slow to build.
        for lo in range(0, len(nodes), 1000):
            handles = await sub.subscribe_data_change(
                nodes[lo : lo + 1000],
                queuesize=10,
                sampling_interval=self.config.sampling_interval_ms,
            )
            for node, handle in zip(nodes[lo : lo + 1000], handles, strict=True):
                if isinstance(handle, ua.StatusCode):
                    _LOGGER.warning("cannot monitor %s: %s", node.nodeid.to_string(), handle)
                else:
                    self.subscribed += 1
        return by_node

    async def _consume(self, sub: Any, by_node: dict[str, list[NodeMap]]) -> None:
        add = self.batcher.add
        key_cache: dict[Any, list[NodeMap]] = {}
        while True:
            event = await sub.next_event()
            if not isinstance(event, DataChangeEvent):
                continue
            self.notifications += 1
            maps = key_cache.get(event.node.nodeid)
            if maps is None:
                maps = key_cache[event.node.nodeid] = by_node.get(event.node.nodeid.to_string(), [])
            value = _number(event.value)
            if value is None or not maps:
                self.skipped += 1
                continue
            ts = _ts_ms(event.data.monitored_item.Value)
            for m in maps:
                add(m.device, m.asset, m.measurement, ts, value * m.scale + m.offset)

    async def _watchdog(self, client: Client, stop: asyncio.Event) -> None:
        node = client.get_node(_SERVER_STATE)
        while not await pause(stop, self.watchdog_s):
            with _mapped(f"watchdog {self.config.url}"):
                await asyncio.wait_for(node.read_value(), timeout=self.config.timeout_s)


__all__ = ["BrowseEntry", "OpcUaConnector", "browse", "check_connection", "variables_under"]
