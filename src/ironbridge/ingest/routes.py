"""A cache of device routes in front of the registry (ingest must not query it per message)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection

from ironbridge.model import NotFound
from ironbridge.store import DeviceRoute, Registry

#: Subject token of readings the platform computes itself for one asset (predictions):
#: ``ib.v1._asset-<asset id>.telemetry``. Device ids start with a letter or a digit, so no
#: device can be registered under this token, and only the platform's internal NATS user
#: may publish outside its own ``ib.v1.<device-id>.>``.
ASSET_SOURCE_PREFIX = "_asset-"


def asset_source(asset_id: str) -> str:
    """The subject token under which the platform publishes computed readings of an asset."""
    return f"{ASSET_SOURCE_PREFIX}{asset_id}"


def platform_routes(
    registry: Registry, *, computed: Collection[str] | None = None
) -> Callable[[str], DeviceRoute]:
    """A route lookup for :class:`RouteCache`: devices, plus the platform's asset sources.

    A device id is looked up in the registry as before. An :func:`asset_source` token
    routes to that one asset, whether or not a device is bound to it, and only to its
    ``computed`` measurements (default: all of them): a reading of any other measurement
    on that source is rejected like an unknown measurement of a device.
    """
    allowed = None if computed is None else frozenset(computed)

    def lookup(source: str) -> DeviceRoute:
        if not source.startswith(ASSET_SOURCE_PREFIX):
            return registry.device_route(source)
        asset_id = source[len(ASSET_SOURCE_PREFIX) :]
        asset = registry.get_asset(None, asset_id)
        asset_type = registry.get_asset_type(None, asset.type_name)
        series = {
            s.measurement: s.id
            for s in registry.series_of(None, [asset_id])
            if allowed is None or s.measurement in allowed
        }
        return DeviceRoute(
            device_id=source,
            tenant_id=asset.tenant_id,
            revoked=False,
            asset_ids=(asset_id,),
            types={asset_id: asset_type},
            series={asset_id: series},
        )

    return lookup


class RouteCache:
    """Device id -> :class:`DeviceRoute`, refreshed after ``ttl_s`` or on invalidation.

    Unknown devices are cached too (as ``None``) for a shorter time, so a flood from an
    unregistered id costs one registry lookup per ``negative_ttl_s``.
    """

    def __init__(
        self,
        lookup: Callable[[str], DeviceRoute],
        *,
        ttl_s: float = 60.0,
        negative_ttl_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, DeviceRoute | None]] = {}

    def cached(self, device_id: str) -> tuple[bool, DeviceRoute | None]:
        """Return (hit, route) without touching the registry."""
        entry = self._entries.get(device_id)
        if entry is None or entry[0] < self._clock():
            return False, None
        return True, entry[1]

    def get(self, device_id: str) -> DeviceRoute | None:
        """Return the route of a device, or ``None`` if it is not registered."""
        hit, route = self.cached(device_id)
        if hit:
            return route
        try:
            route = self._lookup(device_id)
            expires = self._clock() + self._ttl
        except NotFound:
            route = None
            expires = self._clock() + self._negative_ttl
        self._entries[device_id] = (expires, route)
        return route

    async def aget(self, device_id: str) -> DeviceRoute | None:
        """Like :meth:`get`, with the registry lookup off the event loop."""
        hit, route = self.cached(device_id)
        if hit:
            return route
        return await asyncio.to_thread(self.get, device_id)

    def invalidate(self, device_id: str | None = None) -> None:
        """Forget one device's route (or all routes)."""
        if device_id is None:
            self._entries.clear()
        else:
            self._entries.pop(device_id, None)
