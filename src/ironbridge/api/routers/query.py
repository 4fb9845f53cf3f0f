"""Telemetry queries: latest values, raw ranges, time-bucket aggregates, chart series.

Every query is tenant-scoped through the registry (series of visible assets only).
Results are JSON by default, or Arrow IPC for ``Accept: application/vnd.apache.arrow.stream``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Query, Request, Response

from ironbridge.api.auth import Ctx, CurrentUser
from ironbridge.api.context import ApiContext
from ironbridge.api.responses import FastJSON
from ironbridge.model import InvalidInput, Principal, SeriesRef, from_datetime, now_us
from ironbridge.store import Agg

router = APIRouter(prefix="/api/v1/telemetry", tags=["query"])

ARROW_STREAM = "application/vnd.apache.arrow.stream"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s|m|h|d|w)$")
_UNIT_US = {
    "us": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "m": 60_000_000,
    "h": 3_600_000_000,
    "d": 86_400_000_000,
    "w": 604_800_000_000,
}

Assets = Annotated[list[str], Query(alias="asset")]
Measurements = Annotated[list[str], Query(alias="measurement")]


def parse_duration(text: str, field: str) -> int:
    """Parse ``90s``, ``15m``, ``1h``, ``1d`` (or plain seconds) into microseconds."""
    match = _DURATION.match(text.strip())
    if match:
        return int(float(match.group(1)) * _UNIT_US[match.group(2)])
    try:
        return int(float(text) * 1_000_000)
    except ValueError:
        raise InvalidInput(field, f"{text!r} is not a duration like 30s, 15m, 1h or 1d") from None


def parse_time(text: str | None, default_us: int, field: str) -> int:
    """Parse ISO 8601 (naive = UTC), epoch milliseconds, or ``now-1h`` into µs."""
    if text is None or text == "":
        return default_us
    text = text.strip()
    if text.startswith("now"):
        rest = text[3:]
        if not rest:
            return now_us()
        if rest[0] in "+-":
            delta = parse_duration(rest[1:], field)
            return now_us() + (delta if rest[0] == "+" else -delta)
    if re.fullmatch(r"-?\d+", text):
        return int(text) * 1_000
    try:
        return from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise InvalidInput(
            field, f"{text!r} is not ISO 8601, epoch milliseconds or now-<duration>"
        ) from None


def _window(start: str | None, end: str | None) -> tuple[int, int]:
    end_us = parse_time(end, now_us(), "end")
    start_us = parse_time(start, end_us - 3_600_000_000, "start")
    if start_us >= end_us:
        raise InvalidInput("start", "must be before end")
    return start_us, end_us


def resolve_series(
    ctx: ApiContext,
    who: Principal,
    assets: list[str],
    measurements: list[str],
    type_name: str | None = None,
) -> list[SeriesRef]:
    """Return the visible series of the named assets (or of every asset of a type)."""
    ids = list(dict.fromkeys(assets))
    if type_name:
        page, offset = 10_000, 0  # the registry's largest page
        while True:
            typed = ctx.registry.list_assets(who, type_name=type_name, limit=page, offset=offset)
            ids.extend(a.id for a in typed)
            if len(typed) < page:
                break
            offset += page
    if not ids:
        raise InvalidInput("asset", "name at least one asset (or a type)")
    refs = ctx.registry.series_of(who, ids)
    for unseen in set(ids) - {r.asset_id for r in refs}:
        ctx.registry.get_asset(who, unseen)  # NotFound for an invisible or unknown asset
    if measurements:
        wanted = set(measurements)
        known = {r.measurement for r in refs}
        missing = sorted(wanted - known)
        if missing:
            raise InvalidInput(
                "measurement", f"unknown measurement {missing[0]!r} for these assets"
            )
        refs = [r for r in refs if r.measurement in wanted]
    return refs


def _ms(column: pa.ChunkedArray) -> list[int]:
    return (column.to_numpy().astype("datetime64[us]").astype(np.int64) // 1000).tolist()  # type: ignore[no-any-return]


def _labelled(table: pa.Table, refs: list[SeriesRef]) -> pa.Table:
    by_id = {r.id: r for r in refs}
    series = table["series"].to_pylist()
    return table.append_column(
        "asset", pa.array([by_id[s].asset_id for s in series], pa.string())
    ).append_column("measurement", pa.array([by_id[s].measurement for s in series], pa.string()))


def _respond(request: Request, table: pa.Table, body: dict[str, Any]) -> Response:
    if ARROW_STREAM in request.headers.get("accept", ""):
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
    return FastJSON(body)


def _grouped(
    table: pa.Table, refs: list[SeriesRef], time_col: str, value_cols: list[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if table.num_rows == 0:
        return out
    series = table["series"].to_numpy()
    times = _ms(table[time_col])
    columns = {c: table[c].to_pylist() for c in value_cols}
    by_id = {r.id: r for r in refs}
    bounds = np.flatnonzero(np.diff(series)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(series)]
    for a, b in zip(starts, ends, strict=True):
        ref = by_id[int(series[a])]
        item: dict[str, Any] = {"asset": ref.asset_id, "measurement": ref.measurement}
        item[time_col] = times[a:b]
        for c in value_cols:
            item[c] = columns[c][a:b]
        out.append(item)
    return out


@router.get("/latest")
def latest(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    assets: Assets = [],  # noqa: B006 - FastAPI reads the default, never mutates it
    measurements: Measurements = [],  # noqa: B006
    type_name: Annotated[str | None, Query(alias="type")] = None,
) -> Response:
    """Latest value of each (asset, measurement), for one asset or thousands at once."""
    refs = resolve_series(ctx, who, assets, measurements, type_name)
    table = _labelled(ctx.store.latest([r.id for r in refs]), refs)
    times = _ms(table["ts"]) if table.num_rows else []
    values = [
        {"asset": a, "measurement": m, "ts": t, "value": v}
        for a, m, t, v in zip(
            table["asset"].to_pylist(),
            table["measurement"].to_pylist(),
            times,
            table["value"].to_pylist(),
            strict=True,
        )
    ]
    return _respond(request, table, {"values": values})


@router.get("/raw")
def raw(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    assets: Assets = [],  # noqa: B006
    measurements: Measurements = [],  # noqa: B006
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000_000)] = 100_000,
) -> Response:
    """Stored points in ``[start, end)`` (default: the last hour)."""
    refs = resolve_series(ctx, who, assets, measurements)
    start_us, end_us = _window(start, end)
    table = ctx.store.raw([r.id for r in refs], start_us, end_us, limit)
    return _respond(
        request, _labelled(table, refs), {"series": _grouped(table, refs, "ts", ["value"])}
    )


@router.get("/aggregate")
def aggregate(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    assets: Assets = [],  # noqa: B006
    measurements: Measurements = [],  # noqa: B006
    type_name: Annotated[str | None, Query(alias="type")] = None,
    start: str | None = None,
    end: str | None = None,
    bucket: str = "1h",
    agg: Annotated[list[Agg], Query()] = [Agg.AVG],  # noqa: B006
) -> Response:
    """Time-bucket aggregates (avg, min, max, sum, count, first, last) of any width."""
    refs = resolve_series(ctx, who, assets, measurements, type_name)
    start_us, end_us = _window(start, end)
    bucket_us = parse_duration(bucket, "bucket")
    if bucket_us <= 0:
        raise InvalidInput("bucket", "must be positive")
    aggs = list(dict.fromkeys(agg))
    table = ctx.store.aggregate([r.id for r in refs], start_us, end_us, bucket_us, aggs)
    body = {
        "bucket_ms": bucket_us // 1000,
        "series": _grouped(table, refs, "bucket", [a.value for a in aggs]),
    }
    return _respond(request, _labelled(table, refs), body)


@router.get("/chart")
def chart(
    request: Request,
    ctx: Ctx,
    who: CurrentUser,
    assets: Assets = [],  # noqa: B006
    measurements: Measurements = [],  # noqa: B006
    start: str | None = None,
    end: str | None = None,
    max_points: Annotated[int, Query(ge=4, le=100_000)] = 2000,
) -> Response:
    """Series downsampled (M4) to at most ``max_points`` points each, for charts.

    All series in one store query; long ranges are served from the store's roll-ups.
    """
    refs = resolve_series(ctx, who, assets, measurements)
    if len(refs) > 32:
        raise InvalidInput("measurement", "a chart takes at most 32 series")
    start_us, end_us = _window(start, end)
    table = ctx.store.downsample_many([r.id for r in refs], start_us, end_us, max_points)
    return _respond(
        request, _labelled(table, refs), {"series": _grouped(table, refs, "ts", ["value"])}
    )


@router.get("/events")
def events(
    ctx: Ctx,
    who: CurrentUser,
    assets: Assets = [],  # noqa: B006
    kind: Annotated[list[str] | None, Query()] = None,
    start: str | None = None,
    end: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> dict[str, Any]:
    """Events (fault codes, states) of visible assets."""
    if not assets:
        raise InvalidInput("asset", "name at least one asset")
    for a in assets:
        ctx.registry.get_asset(who, a)  # NotFound for invisible assets
    start_us, end_us = _window(start, end)
    table = ctx.store.events(assets, start_us, end_us, kind, limit)
    rows = table.to_pylist()
    times = _ms(table["ts"]) if table.num_rows else []
    for row, t in zip(rows, times, strict=True):
        row["ts"] = t
    return {"events": rows}
