"""Live inputs of supplier risk: what the platform measures at an enterprise's linked plants."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ironbridge.chain.risk import LiveInputs
from ironbridge.model import NotFound, Principal, now_us
from ironbridge.store import Registry, TelemetryStore

#: measurement or attribute names read from linked assets, in this order of preference
OEE = "oee"
DELIVERY = "delivery_performance"
#: event kind counted as a fault of a linked asset
FAULT_KIND = "fault"
DAY_US = 86_400 * 1_000_000


def _fraction(value: Any) -> float | None:
    """A 0–1 fraction; 1 < x <= 100 is read as a percentage; anything else is ignored."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        x = float(value)
    except ValueError:
        return None
    if not math.isfinite(x) or x < 0 or x > 100:
        return None
    return x / 100 if x > 1 else x


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def gather_live_inputs(
    registry: Registry,
    store: TelemetryStore,
    who: Principal,
    links: Mapping[str, Sequence[str]],
    *,
    window_days: float = 7.0,
    end_us: int | None = None,
    plant_oee: Mapping[str, float] | None = None,
) -> dict[str, LiveInputs]:
    """Read OEE, delivery performance and fault counts of each enterprise's linked assets.

    For each linked asset visible to ``who``: its OEE over the window as the plant
    module computed it (``plant_oee``, asset id -> OEE, for assets that are stations
    of a plant site), else the latest telemetry value of the measurement ``oee``,
    else the asset attribute ``oee``; and the latest value of
    ``delivery_performance`` (else the attribute), as fractions (values above 1 are
    percentages); and the number of ``fault`` events in the last ``window_days``.
    An enterprise's figure is the mean over its assets that report it. Assets the
    caller cannot see (or that were deleted) are skipped.
    """
    end = now_us() if end_us is None else end_us
    start = end - int(window_days * DAY_US)
    assets: dict[str, Mapping[str, Any]] = {}
    for asset_ids in links.values():
        for asset_id in asset_ids:
            if asset_id in assets:
                continue
            try:
                assets[asset_id] = registry.get_asset(who, asset_id).attributes
            except NotFound:
                continue
    visible = sorted(assets)
    latest: dict[tuple[str, str], float] = {}
    faults: dict[str, int] = {}
    if visible:
        refs = [r for r in registry.series_of(who, visible) if r.measurement in (OEE, DELIVERY)]
        if refs:
            by_id = {r.id: r for r in refs}
            table = store.latest([r.id for r in refs]).to_pydict()
            for sid, value in zip(table["series"], table["value"], strict=True):
                ref = by_id[int(sid)]
                latest[(ref.asset_id, ref.measurement)] = float(value)
        events = store.events(visible, start, end, kinds=[FAULT_KIND], limit=100_000).to_pydict()
        for asset_id in events["asset_id"]:
            faults[asset_id] = faults.get(asset_id, 0) + 1
    out: dict[str, LiveInputs] = {}
    for firm_id, asset_ids in links.items():
        seen = [a for a in asset_ids if a in assets]
        figures: dict[str, list[float]] = {OEE: [], DELIVERY: []}
        for asset_id in seen:
            for name, values in figures.items():
                value = _fraction(latest.get((asset_id, name), assets[asset_id].get(name)))
                if name == OEE and plant_oee and asset_id in plant_oee:
                    value = _fraction(plant_oee[asset_id])
                if value is not None:
                    values.append(value)
        out[firm_id] = LiveInputs(
            assets=tuple(seen),
            oee=_mean(figures[OEE]),
            delivery_performance=_mean(figures[DELIVERY]),
            fault_events=sum(faults.get(a, 0) for a in seen),
        )
    return out
