"""Fleet KPIs from time-bucket aggregates: engine hours, idle, fuel, utilisation, activity index.

Definitions (also in docs/vehicles.md). Input: per asset and time bucket of ``bucket_h``
hours, the bucket averages of the "on" signal and the speed, the bucket average fuel
rate, and the last odometer and hour-meter readings of the bucket.

* a bucket is **on** when the on-signal average is at least ``on_threshold`` (engine
  speed above 300 rpm, ACC on, or GB/T 32960 vehicle status "started", normalised to
  1/0 by the caller) and **moving** when the average speed is at least ``moving_kmh``;
* **engine hours** = the hour-meter increase in the period when the asset reports one
  (capped at the period length), else ``bucket_h`` × number of on buckets;
* **idle hours** = ``bucket_h`` × on-and-not-moving buckets; **idle ratio** = idle hours /
  on hours (bucket counts, so both use the same clock);
* **fuel used** = Σ over buckets of average fuel rate (L/h) × ``bucket_h``;
  **fuel per hour** = fuel used / engine hours; **fuel per 100 km** = 100 × fuel used /
  distance, distance = odometer increase (negative or implausible deltas are dropped);
* **utilisation** = engine hours / planned hours (``planned_h_per_day`` × days);
* **monthly activity index** of a province (after the KOMTRAX index and the Sany
  excavator index): ``avg_hours`` = Σ engine hours / number of machines that worked
  (hours > 0) in the month; ``operating_rate`` = machines with at least ``h_min`` hours /
  machines that reported at all in the month.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ActivityRow",
    "BucketFrame",
    "FleetKpis",
    "activity_index",
    "fleet_kpis",
    "roll_up",
]

#: an hour meter may not advance faster than the clock (plus rounding)
_MAX_HOURS_PER_HOUR = 1.05
#: odometer deltas above this speed-equivalent are garbage (ECU swap, reset)
_MAX_KMH = 200.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketFrame:
    """Aligned arrays, one row per (asset, bucket); NaN where a value is absent.

    Attributes:
        asset: integer code of the asset (index into the caller's asset list).
        bucket_us: bucket start.
        on: average of the 0/1 on-signal.
        speed: average speed, km/h.
        fuel_rate: average fuel rate, L/h.
        odometer: last odometer reading in the bucket, km.
        hour_meter: last hour-meter reading in the bucket, h.
    """

    asset: np.ndarray
    bucket_us: np.ndarray
    on: np.ndarray
    speed: np.ndarray
    fuel_rate: np.ndarray
    odometer: np.ndarray
    hour_meter: np.ndarray


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetKpis:
    """KPIs per asset (arrays indexed by asset code) or per group after :func:`roll_up`."""

    engine_hours: np.ndarray
    idle_hours: np.ndarray
    on_hours: np.ndarray
    fuel_l: np.ndarray
    distance_km: np.ndarray
    planned_hours: np.ndarray
    reporting: np.ndarray

    @property
    def idle_ratio(self) -> np.ndarray:
        """Idle hours / on hours (NaN without on hours)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.on_hours > 0, self.idle_hours / self.on_hours, np.nan)

    @property
    def fuel_per_hour(self) -> np.ndarray:
        """Litres per engine hour (NaN without hours or fuel data)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                (self.engine_hours > 0) & (self.fuel_l > 0), self.fuel_l / self.engine_hours, np.nan
            )

    @property
    def fuel_per_100km(self) -> np.ndarray:
        """Litres per 100 km (NaN below 1 km or without fuel data)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                (self.distance_km >= 1) & (self.fuel_l > 0),
                100 * self.fuel_l / self.distance_km,
                np.nan,
            )

    @property
    def utilisation(self) -> np.ndarray:
        """Engine hours / planned hours."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.planned_hours > 0, self.engine_hours / self.planned_hours, np.nan)


def _counter_increase(
    asset: np.ndarray, ts: np.ndarray, value: np.ndarray, n: int, max_rate_per_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of plausible positive increments of a counter per asset; and has-counter flags."""
    ok = ~np.isnan(value)
    a, t, v = asset[ok], ts[ok], value[ok]
    order = np.lexsort((t, a))
    a, t, v = a[order], t[order], v[order]
    total = np.zeros(n)
    has = np.zeros(n, dtype=bool)
    has[np.unique(a)] = True
    if a.size < 2:
        return total, has
    same = a[1:] == a[:-1]
    dv = np.diff(v)
    dh = np.diff(t) / 3.6e9
    plausible = same & (dv >= 0) & (dv <= np.maximum(dh, 0) * max_rate_per_h + 1e-9)
    np.add.at(total, a[1:][plausible], dv[plausible])
    return total, has


def fleet_kpis(
    frame: BucketFrame,
    n_assets: int,
    *,
    bucket_h: float,
    period_days: float,
    planned_h_per_day: float = 10.0,
    on_threshold: float = 0.5,
    moving_kmh: float = 1.0,
) -> FleetKpis:
    """Compute the KPIs of each asset over the frame's period (vectorised)."""
    a = frame.asset.astype(np.int64)
    on = np.nan_to_num(frame.on, nan=0.0) >= on_threshold
    moving = np.nan_to_num(frame.speed, nan=0.0) >= moving_kmh
    on_h = np.bincount(a, weights=on * bucket_h, minlength=n_assets)
    idle_h = np.bincount(a, weights=(on & ~moving) * bucket_h, minlength=n_assets)
    fuel = np.bincount(
        a, weights=np.nan_to_num(frame.fuel_rate, nan=0.0) * bucket_h, minlength=n_assets
    )
    meter, has_meter = _counter_increase(
        a, frame.bucket_us, frame.hour_meter, n_assets, _MAX_HOURS_PER_HOUR
    )
    engine_h = np.where(has_meter, meter, on_h)
    distance, _ = _counter_increase(a, frame.bucket_us, frame.odometer, n_assets, _MAX_KMH)
    reporting = np.bincount(a, minlength=n_assets) > 0
    planned = np.full(n_assets, planned_h_per_day * period_days)
    return FleetKpis(
        engine_hours=engine_h,
        idle_hours=idle_h,
        on_hours=on_h,
        fuel_l=fuel,
        distance_km=distance,
        planned_hours=planned,
        reporting=reporting,
    )


def roll_up(kpis: FleetKpis, group: np.ndarray, n_groups: int) -> FleetKpis:
    """Sum the additive quantities per group (ratios recompute from the sums)."""
    g = group.astype(np.int64)

    def s(x: np.ndarray) -> np.ndarray:
        return np.bincount(g, weights=x.astype(np.float64), minlength=n_groups)

    return FleetKpis(
        engine_hours=s(kpis.engine_hours),
        idle_hours=s(kpis.idle_hours),
        on_hours=s(kpis.on_hours),
        fuel_l=s(kpis.fuel_l),
        distance_km=s(kpis.distance_km),
        planned_hours=s(kpis.planned_hours),
        reporting=s(kpis.reporting) > 0,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityRow:
    """The activity index of one region and month."""

    region: str
    month: str
    machines_reporting: int
    machines_working: int
    operating_rate: float
    avg_hours: float
    total_hours: float


def activity_index(
    months: Sequence[str],
    regions: Sequence[str],
    hours: np.ndarray,
    reported: np.ndarray,
    *,
    h_min: float = 1.0,
) -> list[ActivityRow]:
    """Monthly activity index per region.

    Args:
        months: labels ``YYYY-MM`` of the columns.
        regions: region (province) of each machine (row).
        hours: engine hours per machine (rows) and month (columns).
        reported: True where the machine reported at all that month.
        h_min: hours a machine must work in a month to count as operating.
    """
    out: list[ActivityRow] = []
    region_arr = np.asarray(regions)
    for region in sorted(set(regions)):
        rows = region_arr == region
        for j, month in enumerate(months):
            h = hours[rows, j]
            rep = reported[rows, j]
            working = int(np.count_nonzero(h > 0))
            operating = int(np.count_nonzero(h >= h_min))
            n_rep = int(np.count_nonzero(rep))
            total = float(h.sum())
            out.append(
                ActivityRow(
                    region=region,
                    month=month,
                    machines_reporting=n_rep,
                    machines_working=working,
                    operating_rate=operating / n_rep if n_rep else 0.0,
                    avg_hours=total / working if working else 0.0,
                    total_hours=total,
                )
            )
    return out
