"""Load the bucket frames of :mod:`ironbridge.analytics.fleet` from the registry and store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ironbridge.analytics.fleet import BucketFrame
from ironbridge.model import Asset, Principal
from ironbridge.store import Agg, Registry, TelemetryStore

__all__ = ["ROLES", "FleetData", "load_fleet", "visible_assets"]

#: role -> measurement names that can play it, in order of preference
ROLES: dict[str, tuple[str, ...]] = {
    "on": ("engine_speed", "acc_on", "vehicle_status", "running", "working"),
    "speed": ("vehicle_speed", "speed"),
    "fuel_rate": ("fuel_rate",),
    "odometer": ("odometer", "mileage", "total_distance"),
    "hour_meter": ("engine_hours",),
}
_ENGINE_ON_RPM = 300.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetData:
    """Assets (row codes of the frame) and their bucket frame."""

    assets: list[Asset]
    frame: BucketFrame


def visible_assets(registry: Registry, who: Principal, type_name: str | None = None) -> list[Asset]:
    """Every asset ``who`` can see (optionally of one type), in id order."""
    out: list[Asset] = []
    page, offset = 10_000, 0
    while True:
        chunk = registry.list_assets(who, type_name=type_name, limit=page, offset=offset)
        out.extend(chunk)
        if len(chunk) < page:
            return out
        offset += page


def _on_value(measurement: str, avg: np.ndarray) -> np.ndarray:
    if measurement == "engine_speed":
        return (avg >= _ENGINE_ON_RPM).astype(np.float64)
    if measurement == "vehicle_status":  # GB/T 32960: 1 started, 2 off
        return (np.abs(avg - 1.0) < 0.5).astype(np.float64)
    return avg


def load_fleet(
    registry: Registry,
    store: TelemetryStore,
    who: Principal,
    assets: Sequence[Asset],
    start_us: int,
    end_us: int,
    bucket_us: int,
) -> FleetData:
    """Aggregate the KPI signals of ``assets`` into one bucket frame."""
    assets = list(assets)
    code = {a.id: i for i, a in enumerate(assets)}
    refs = registry.series_of(who, [a.id for a in assets]) if assets else []
    chosen: dict[tuple[str, str], tuple[int, str]] = {}
    for role, names in ROLES.items():
        rank = {n: i for i, n in enumerate(names)}
        for r in refs:
            if r.measurement in rank:
                key = (r.asset_id, role)
                cur = chosen.get(key)
                if cur is None or rank[r.measurement] < rank[cur[1]]:
                    chosen[key] = (r.id, r.measurement)
    series_role = {sid: (aid, role, m) for (aid, role), (sid, m) in chosen.items()}
    empty = np.zeros(0)
    if not series_role:
        frame = BucketFrame(
            asset=empty.astype(np.int64),
            bucket_us=empty.astype(np.int64),
            on=empty,
            speed=empty,
            fuel_rate=empty,
            odometer=empty,
            hour_meter=empty,
        )
        return FleetData(assets=assets, frame=frame)
    table: pa.Table = store.aggregate(
        list(series_role), start_us, end_us, bucket_us, [Agg.AVG, Agg.LAST]
    )
    sid = table["series"].to_numpy()
    bucket = table["bucket"].to_numpy().astype("datetime64[us]").astype(np.int64)
    avg = table["avg"].to_numpy().astype(np.float64)
    last = table["last"].to_numpy().astype(np.float64)
    asset_of = np.array([code[series_role[int(s)][0]] for s in sid], dtype=np.int64)
    key = asset_of * (1 << 40) + (bucket // bucket_us)
    keys, row = np.unique(key, return_inverse=True)
    n = keys.size
    cols = {role: np.full(n, np.nan) for role in ROLES}
    roles = np.array([series_role[int(s)][1] for s in sid])
    for role in ROLES:
        sel = roles == role
        if not sel.any():
            continue
        if role == "on":
            meas = np.array([series_role[int(s)][2] for s in sid[sel]])
            vals = avg[sel].copy()
            for m in set(meas.tolist()):
                msel = meas == m
                vals[msel] = _on_value(m, vals[msel])
        elif role in ("odometer", "hour_meter"):
            vals = last[sel]
        else:
            vals = avg[sel]
        cols[role][row[sel]] = vals
    frame = BucketFrame(
        asset=(keys >> 40).astype(np.int64),
        bucket_us=(keys & ((1 << 40) - 1)) * bucket_us,
        on=cols["on"],
        speed=cols["speed"],
        fuel_rate=cols["fuel_rate"],
        odometer=cols["odometer"],
        hour_meter=cols["hour_meter"],
    )
    return FleetData(assets=assets, frame=frame)
