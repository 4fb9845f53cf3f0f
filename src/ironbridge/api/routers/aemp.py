"""ISO 15143-3 (AEMP 2.0) telematics API: fleet snapshot and time series, XML or JSON, paged.

Base URL ``/api/v1/aemp``. XML (namespace ``http://standards.iso.org/iso/15143/-3``) is the
default; ``Accept: application/json`` gives JSON. Pages hold 100 equipment (or records)
and start at 1; every answer carries ``Links`` with ``self``/``next``/``prev``/``last``.
Times are ``YYYY-MM-DDThh:mm:ssZ``. The equipment identifier is the asset's VIN / PIN /
serial attribute or the asset id.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ironbridge.analytics.fleet_query import visible_assets
from ironbridge.api.auth import Ctx, CurrentUser
from ironbridge.api.context import ApiContext
from ironbridge.api.routers.query import parse_time
from ironbridge.model import Asset, InvalidInput, NotFound, Principal, now_us, to_datetime

router = APIRouter(prefix="/api/v1/aemp", tags=["aemp"])

NAMESPACE = "http://standards.iso.org/iso/15143/-3"
VERSION = "2"
PAGE_SIZE = 100
_FAULT_KINDS = ("j1939_dtc", "gbt32960_fault", "gbt32960_alarm", "jt808_alarm")

#: data element -> (measurement candidates, child field, extra fixed children)
_SERIES: dict[str, tuple[tuple[str, ...], str, dict[str, str]]] = {
    "CumulativeOperatingHours": (("engine_hours",), "Hour", {}),
    "CumulativeIdleHours": (("idle_hours",), "Hour", {}),
    "Distance": (
        ("odometer", "mileage", "total_distance"),
        "Odometer",
        {"OdometerUnits": "kilometre"},
    ),
    "FuelUsed": (("total_fuel_used",), "FuelConsumed", {"FuelUnits": "litre"}),
    "FuelRemaining": (("fuel_level",), "Percent", {}),
    "EngineCondition": (("engine_speed",), "Running", {}),
}


def _iso(ts_us: int) -> str:
    return to_datetime(ts_us).strftime("%Y-%m-%dT%H:%M:%SZ")


def _identifier(a: Asset) -> str:
    for key in ("pin", "vin", "serial"):
        value = a.attributes.get(key)
        if value:
            return str(value)
    return a.id


def _links(base: str, page: int, last: int) -> list[dict[str, str]]:
    links = [{"rel": "self", "href": f"{base}/{page}"}]
    if page < last:
        links.append({"rel": "next", "href": f"{base}/{page + 1}"})
    if page > 1:
        links.append({"rel": "prev", "href": f"{base}/{page - 1}"})
    links.append({"rel": "last", "href": f"{base}/{last}"})
    return links


def _latest(
    ctx: ApiContext, who: Principal, assets: Sequence[Asset]
) -> dict[str, dict[str, tuple[int, float]]]:
    refs = ctx.registry.series_of(who, [a.id for a in assets]) if assets else []
    by_id = {r.id: r for r in refs}
    out: dict[str, dict[str, tuple[int, float]]] = {}
    if not by_id:
        return out
    table = ctx.store.latest(list(by_id))
    ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
    for s, t, v in zip(
        table["series"].to_pylist(), ts.tolist(), table["value"].to_pylist(), strict=True
    ):
        r = by_id[s]
        out.setdefault(r.asset_id, {})[r.measurement] = (int(t), float(v))
    return out


def _equipment(a: Asset, latest: dict[str, tuple[int, float]]) -> dict[str, Any]:
    attrs = a.attributes
    eq: dict[str, Any] = {
        "EquipmentHeader": {
            "OEMName": str(attrs.get("make") or attrs.get("manufacturer") or "ironbridge"),
            "Model": str(attrs.get("model") or a.type_name),
            "EquipmentID": a.id,
            "SerialNumber": str(attrs.get("serial") or attrs.get("vin") or a.id),
            "PIN": _identifier(a),
        }
    }
    lat, lon = latest.get("latitude"), latest.get("longitude")
    if lat and lon:
        loc: dict[str, Any] = {
            "datetime": _iso(max(lat[0], lon[0])),
            "Latitude": lat[1],
            "Longitude": lon[1],
        }
        alt = latest.get("altitude")
        if alt:
            loc.update(Altitude=alt[1], AltitudeUnits="metre")
        eq["Location"] = loc
    for element, (names, child, fixed) in _SERIES.items():
        for name in names:
            hit = latest.get(name)
            if hit is None:
                continue
            value: Any = hit[1] > 300 if element == "EngineCondition" else round(hit[1], 3)
            if element == "EngineCondition":
                eq["EngineStatus"] = {"datetime": _iso(hit[0]), "EngineNumber": 1, "Running": value}
            else:
                eq[element] = {"datetime": _iso(hit[0]), **fixed, child: value}
            break
    return eq


def _snapshot(ctx: ApiContext, who: Principal, page: int, base: str) -> dict[str, Any]:
    assets = visible_assets(ctx.registry, who)
    last = max(1, math.ceil(len(assets) / PAGE_SIZE))
    if page > last:
        raise NotFound("page", str(page))
    chunk = assets[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    latest = _latest(ctx, who, chunk)
    return {
        "version": VERSION,
        "snapshotTime": _iso(now_us()),
        "Links": _links(base, page, last),
        "Equipment": [_equipment(a, latest.get(a.id, {})) for a in chunk],
    }


def _find(ctx: ApiContext, who: Principal, identifier: str) -> Asset:
    for a in visible_assets(ctx.registry, who):
        if identifier in (a.id, _identifier(a)):
            return a
    raise NotFound("equipment", identifier)


def _series(
    ctx: ApiContext,
    who: Principal,
    identifier: str,
    element: str,
    start_us: int,
    end_us: int,
    page: int,
    base: str,
) -> dict[str, Any]:
    a = _find(ctx, who, identifier)
    refs = {r.measurement: r.id for r in ctx.registry.series_of(who, [a.id])}
    records: list[dict[str, Any]] = []
    if element == "Faults":
        table = ctx.store.events([a.id], start_us, end_us, list(_FAULT_KINDS), 100_000)
        ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
        for t, kind, code, payload in zip(
            ts.tolist(),
            table["kind"].to_pylist(),
            table["code"].to_pylist(),
            table["payload"].to_pylist(),
            strict=True,
        ):
            p = orjson.loads(payload) if payload else {}
            if p.get("state") == "cleared":
                continue
            records.append(
                {
                    "datetime": _iso(int(t)),
                    "CodeIdentifier": code.removeprefix("SPN").replace("-FMI", "-")
                    if kind == "j1939_dtc"
                    else code,
                    "CodeSeverity": str(p.get("level", "")),
                    "CodeDescription": kind,
                    "CodeSource": str(p.get("sa", "")),
                }
            )
    elif element == "Locations":
        if "latitude" in refs and "longitude" in refs:
            table = ctx.store.raw([refs["latitude"], refs["longitude"]], start_us, end_us)
            sid = table["series"].to_numpy()
            ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
            val = table["value"].to_numpy()
            lat = dict(
                zip(
                    ts[sid == refs["latitude"]].tolist(),
                    val[sid == refs["latitude"]].tolist(),
                    strict=True,
                )
            )
            lon = dict(
                zip(
                    ts[sid == refs["longitude"]].tolist(),
                    val[sid == refs["longitude"]].tolist(),
                    strict=True,
                )
            )
            for t in sorted(set(lat) & set(lon)):
                records.append({"datetime": _iso(t), "Latitude": lat[t], "Longitude": lon[t]})
    elif element in _SERIES:
        names, child, fixed = _SERIES[element]
        name = next((n for n in names if n in refs), None)
        if name is not None:
            table = ctx.store.raw([refs[name]], start_us, end_us)
            ts = table["ts"].to_numpy().astype("datetime64[us]").astype(np.int64)
            for t, v in zip(ts.tolist(), table["value"].to_pylist(), strict=True):
                value: Any = v > 300 if element == "EngineCondition" else round(v, 3)
                records.append({"datetime": _iso(t), **fixed, child: value})
    else:
        raise InvalidInput(
            "DataElement",
            f"unknown data element {element!r}; one of: Locations, Faults, {', '.join(_SERIES)}",
        )
    last = max(1, math.ceil(len(records) / PAGE_SIZE))
    if page > last:
        raise NotFound("page", str(page))
    return {
        "version": VERSION,
        "snapshotTime": _iso(now_us()),
        "Links": _links(base, page, last),
        "EquipmentHeader": _equipment(a, {})["EquipmentHeader"],
        element: records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE],
    }


def _xml_value(name: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        dt = value.get("datetime")
        attr = f" datetime={quoteattr(dt)}" if dt else ""
        out.append(f"<{name}{attr}>")
        for k, v in value.items():
            if k != "datetime":
                _xml_value(k, v, out)
        out.append(f"</{name}>")
    elif isinstance(value, list):
        for item in value:
            _xml_value(name, item, out)
    elif isinstance(value, bool):
        out.append(f"<{name}>{'true' if value else 'false'}</{name}>")
    else:
        out.append(f"<{name}>{escape(str(value))}</{name}>")


def to_xml(root: str, body: dict[str, Any]) -> str:
    """Serialise an AEMP body: ``version``/``snapshotTime`` become root attributes."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<{root} xmlns={quoteattr(NAMESPACE)} version={quoteattr(body['version'])} "
        f"snapshotTime={quoteattr(body['snapshotTime'])}>",
    ]
    for link in body["Links"]:
        out.append(f"<Links><rel>{link['rel']}</rel><href>{escape(link['href'])}</href></Links>")
    for k, v in body.items():
        if k not in ("version", "snapshotTime", "Links"):
            _xml_value(k, v, out)
    out.append(f"</{root}>")
    return "".join(out)


def _respond(request: Request, root: str, body: dict[str, Any]) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return Response(orjson.dumps(body), media_type="application/json")
    return Response(to_xml(root, body), media_type="application/xml")


@router.get("/Fleet/{page}")
async def fleet(request: Request, ctx: Ctx, who: CurrentUser, page: int = 1) -> Response:
    """Fleet snapshot, page ``page`` (100 equipment per page, from 1)."""
    if page < 1:
        raise InvalidInput("page", "pages start at 1")
    body = await run_in_threadpool(_snapshot, ctx, who, page, "/api/v1/aemp/Fleet")
    return _respond(request, "Fleet", body)


@router.get("/Fleet/Equipment/ID/{identifier}")
async def equipment(request: Request, ctx: Ctx, who: CurrentUser, identifier: str) -> Response:
    """Snapshot of one equipment (by PIN/VIN/serial or asset id)."""

    def one() -> dict[str, Any]:
        a = _find(ctx, who, identifier)
        latest = _latest(ctx, who, [a]).get(a.id, {})
        base = f"/api/v1/aemp/Fleet/Equipment/ID/{identifier}"
        return {
            "version": VERSION,
            "snapshotTime": _iso(now_us()),
            "Links": [{"rel": "self", "href": base}],
            "Equipment": [_equipment(a, latest)],
        }

    return _respond(request, "Fleet", await run_in_threadpool(one))


@router.get("/Fleet/Equipment/ID/{identifier}/{element}/{start}/{end}/{page}")
async def time_series(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    identifier: str,
    element: str,
    start: str,
    end: str,
    page: int,
) -> Response:
    """Time series of one data element (``Locations``, ``Faults``, ``Distance``, ...)."""
    if page < 1:
        raise InvalidInput("page", "pages start at 1")
    start_us = parse_time(start, 0, "startDateUTC")
    end_us = parse_time(end, now_us(), "endDateUTC")
    if start_us >= end_us:
        raise InvalidInput("startDateUTC", "must be before endDateUTC")
    base = f"/api/v1/aemp/Fleet/Equipment/ID/{identifier}/{element}/{start}/{end}"
    body = await run_in_threadpool(
        _series, ctx, who, identifier, element, start_us, end_us, page, base
    )
    return _respond(request, element, body)
