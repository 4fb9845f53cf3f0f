"""NEV battery safety and health from GB/T 32960 data.

Per sample (``BatteryWatch``, a stateful observer fed by the GB/T 32960 endpoint):

* cell voltage spread ``max - min`` and robust-z outliers ``(V - median) / (1.4826 MAD)``;
* probe temperature spread and the rise rate of the hottest probe (°C/s);
* SOC jumps (|ΔSOC| above a threshold between consecutive samples);
* the thermal-runaway confirmation of GB 38031-2025 Annex C.5.3.7: (a) a cell voltage
  drop above 25 % of its previous value OR (b) a probe at the maximum operating
  temperature, AND (c) dT/dt >= 1 °C/s held for more than 3 s -> a ``critical`` event.
  An alarm of level 4 / flag bit 23 ("RESS thermal event", 2025) is also critical. A
  confirmed thermal runaway latches (it is never cleared by later samples); the other
  findings are raised once and cleared when they no longer hold.

Per vehicle over time (``soh_from_charging``): ampere-hour counting over charging
sessions, ``C = ∫|I|dt / (ΔSOC / 100)``, SOH = C / rated capacity, keeping sessions with
ΔSOC >= ``min_dsoc`` and monotone SOC (vehicle-protocols.md section 2.2).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from ironbridge.model import Event

__all__ = [
    "BATTERY_EVENT_KIND",
    "BatteryLimits",
    "BatteryWatch",
    "ChargeSession",
    "cell_outliers",
    "soh_from_charging",
]

BATTERY_EVENT_KIND = "battery_safety"
_CELL = re.compile(r"^cell_voltage_\d+_\d+$")
_PROBE = re.compile(r"^probe_temp_\d+_\d+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class BatteryLimits:
    """Thresholds (tune per chemistry and OEM)."""

    spread_warning_v: float = 0.3
    outlier_z: float = 4.0
    temp_spread_warning_c: float = 10.0
    rise_warning_c_per_s: float = 0.5
    soc_jump_pct: float = 10.0
    #: GB 38031-2025 C.5.3.7 b): the manufacturer's maximum operating temperature
    max_operating_temp_c: float = 65.0
    #: c): dT/dt at or above this, held for longer than ``tr_hold_s``
    tr_rise_c_per_s: float = 1.0
    tr_hold_s: float = 3.0
    #: a): cell voltage drop above this fraction of the previous value
    tr_voltage_drop: float = 0.25


@cache
def _kind(name: str) -> int:
    """1 for a cell voltage, 2 for a probe temperature, 0 otherwise (cached per name)."""
    if _CELL.match(name):
        return 1
    return 2 if _PROBE.match(name) else 0


def _median(v: np.ndarray) -> float:
    """The median of a short 1-D array without NaN (np.median's set-up costs ~20 µs)."""
    s = np.sort(v)
    n = s.shape[0]
    mid = n // 2
    return float(s[mid]) if n % 2 else float(s[mid - 1] + s[mid]) / 2


def cell_outliers(voltages: np.ndarray, z: float) -> np.ndarray:
    """Indices of cells whose robust z-score magnitude exceeds ``z`` (MAD 0 -> none)."""
    v = np.asarray(voltages, dtype=np.float64)
    if v.size < 3:
        return np.zeros(0, dtype=np.int64)
    med = _median(v)
    mad = _median(np.abs(v - med)) * 1.4826
    if mad <= 0:
        mad = 1e-3  # 1 mV resolution: a flat pack has no outlier below this
    return np.flatnonzero(np.abs(v - med) / mad > z)


#: the cell and probe keys of each layout of sample keys seen (a fleet has a few)
_LAYOUTS: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}
_LAYOUTS_MAX = 256


def _layout(keys: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(cell voltage keys, probe temperature keys) among ``keys``, in their order."""
    found = _LAYOUTS.get(keys)
    if found is None:
        found = (
            tuple(k for k in keys if _kind(k) == 1),
            tuple(k for k in keys if _kind(k) == 2),
        )
        if len(_LAYOUTS) >= _LAYOUTS_MAX:
            _LAYOUTS.clear()
        _LAYOUTS[keys] = found
    return found


@dataclass(slots=True)
class _State:
    ts_us: int | None = None
    tmax: float | None = None
    soc: float | None = None
    #: the last sample's cell voltages: their keys and values (NaN where absent)
    cell_keys: tuple[str, ...] = ()
    cell_v: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rising_since_us: int | None = None
    open_codes: set[str] = field(default_factory=set)


class BatteryWatch:
    """Stateful per-vehicle battery checks; returns events on transitions (raised once)."""

    def __init__(self, limits: BatteryLimits | None = None) -> None:
        self.limits = limits or BatteryLimits()
        self._state: dict[str, _State] = {}

    def observe(
        self, asset_id: str, ts_us: int, values: Mapping[str, float | None]
    ) -> Sequence[Event]:
        """Check one sample of an asset; return the events it raises."""
        lim = self.limits
        st = self._state.setdefault(asset_id, _State())
        found: dict[str, tuple[str, dict[str, object]]] = {}
        cell_keys, probe_keys = _layout(tuple(values))
        # one array per kind, NaN where a value is absent (invalid / abnormal markers)
        cell_v = np.array([values[k] for k in cell_keys], dtype=np.float64)
        probes = [v for v in (values[k] for k in probe_keys) if v is not None]
        present = ~np.isnan(cell_v)
        if int(present.sum()) >= 2:
            arr = cell_v[present]
            spread = float(arr.max() - arr.min())
            if spread >= lim.spread_warning_v:
                found["cell_voltage_spread"] = ("warning", {"spread_v": round(spread, 4)})
            out_idx = cell_outliers(arr, lim.outlier_z)
            if out_idx.size:
                names = [k for k, ok in zip(cell_keys, present.tolist(), strict=True) if ok]
                found["cell_voltage_outlier"] = (
                    "warning",
                    {"cells": [names[i] for i in out_idx.tolist()]},
                )
        tmax = values.get("max_probe_temp")
        if probes:
            tmax = max(probes) if tmax is None else max(tmax, max(probes))
            spread_t = max(probes) - min(probes)
            if spread_t >= lim.temp_spread_warning_c:
                found["temperature_spread"] = ("warning", {"spread_c": spread_t})
        dt_s = (ts_us - st.ts_us) / 1e6 if st.ts_us is not None else 0.0
        rate = None
        if tmax is not None and st.tmax is not None and 0 < dt_s <= 60:
            rate = (tmax - st.tmax) / dt_s
            if rate >= lim.rise_warning_c_per_s:
                found["temperature_rise"] = ("warning", {"rate_c_per_s": round(rate, 3)})
        # c) dT/dt >= 1 °C/s held for more than 3 s
        if rate is not None and rate >= lim.tr_rise_c_per_s:
            if st.rising_since_us is None:
                st.rising_since_us = st.ts_us if st.ts_us is not None else ts_us
        else:
            st.rising_since_us = None
        held = st.rising_since_us is not None and (ts_us - st.rising_since_us) / 1e6 > lim.tr_hold_s
        drop = _voltage_drop(st, cell_keys, cell_v, lim.tr_voltage_drop)
        too_hot = tmax is not None and tmax >= lim.max_operating_temp_c
        alarm_level = values.get("alarm_level")
        flags = values.get("alarm_flags")
        thermal_flag = flags is not None and (int(flags) >> 23) & 1 == 1
        if (held and (drop or too_hot)) or alarm_level == 4 or thermal_flag:
            found["thermal_runaway"] = (
                "critical",
                {
                    "voltage_drop": drop,
                    "max_temp_c": tmax,
                    "rise_held": held,
                    "alarm_level": alarm_level,
                    "standard": "GB 38031-2025 C.5.3.7",
                },
            )
        elif "thermal_runaway" in st.open_codes:
            # a confirmed thermal event latches: it never clears itself
            found["thermal_runaway"] = ("critical", {"latched": True})
        soc = values.get("soc")
        if soc is not None and st.soc is not None and abs(soc - st.soc) >= lim.soc_jump_pct:
            found["soc_jump"] = ("warning", {"from": st.soc, "to": soc})
        events = [
            Event(
                asset_id=asset_id,
                ts_us=ts_us,
                kind=BATTERY_EVENT_KIND,
                code=code,
                payload={"severity": severity, "state": "raised", **detail},
            )
            for code, (severity, detail) in found.items()
            if code not in st.open_codes or code == "soc_jump"
        ]
        events.extend(
            Event(
                asset_id=asset_id,
                ts_us=ts_us,
                kind=BATTERY_EVENT_KIND,
                code=code,
                payload={"severity": "info", "state": "cleared"},
            )
            for code in sorted(st.open_codes - set(found))
        )
        st.open_codes = set(found) - {"soc_jump"}
        st.ts_us = ts_us
        if tmax is not None:
            st.tmax = tmax
        if soc is not None:
            st.soc = soc
        if present.any():
            st.cell_keys, st.cell_v = cell_keys, cell_v
        return events


def _voltage_drop(st: _State, keys: tuple[str, ...], now: np.ndarray, limit: float) -> bool:
    """True if a cell present now and before fell by more than ``limit`` of its value."""
    if not st.cell_keys:
        return False
    if keys == st.cell_keys:
        prev = st.cell_v
    else:  # another layout (a reconfigured terminal): line the cells up by name
        before = dict(zip(st.cell_keys, st.cell_v.tolist(), strict=True))
        prev = np.array([before.get(k, np.nan) for k in keys], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fell = (prev > 0) & ((prev - now) / prev > limit)  # NaN compares False
    return bool(fell.any())


@dataclass(frozen=True, slots=True, kw_only=True)
class ChargeSession:
    """One charging session and its capacity estimate."""

    start_us: int
    end_us: int
    soc_start: float
    soc_end: float
    charge_ah: float
    capacity_ah: float
    soh: float | None


def soh_from_charging(
    ts_us: np.ndarray,
    current_a: np.ndarray,
    soc: np.ndarray,
    charging: np.ndarray,
    *,
    rated_ah: float | None,
    min_dsoc: float = 30.0,
    max_gap_s: float = 120.0,
) -> list[ChargeSession]:
    """Capacity and SOH per charging session by ampere-hour counting.

    Args:
        ts_us: sample times (ascending), aligned with the other arrays.
        current_a: pack current (GB/T 32960: negative while charging; abs is used).
        soc: state of charge in %.
        charging: True where the vehicle reports charging (status 1 or 2).
        rated_ah: rated capacity; None gives capacities without SOH.
        min_dsoc: sessions with a smaller SOC gain are dropped (1 % SOC quantisation).
        max_gap_s: a gap longer than this ends a session.
    """
    t = np.asarray(ts_us, dtype=np.int64)
    i_abs = np.abs(np.asarray(current_a, dtype=np.float64))
    s = np.asarray(soc, dtype=np.float64)
    ch = np.asarray(charging, dtype=bool)
    out: list[ChargeSession] = []
    n = t.size
    k = 0
    while k < n:
        if not ch[k]:
            k += 1
            continue
        j = k
        while j + 1 < n and ch[j + 1] and (t[j + 1] - t[j]) / 1e6 <= max_gap_s:
            j += 1
        seg = slice(k, j + 1)
        dsoc = float(s[j] - s[k])
        monotone = bool(np.all(np.diff(s[seg]) >= 0))
        if j > k and dsoc >= min_dsoc and monotone:
            hours = np.diff(t[seg]) / 3.6e9
            ah = float(np.sum((i_abs[seg][1:] + i_abs[seg][:-1]) / 2 * hours))
            cap = ah / (dsoc / 100)
            out.append(
                ChargeSession(
                    start_us=int(t[k]),
                    end_us=int(t[j]),
                    soc_start=float(s[k]),
                    soc_end=float(s[j]),
                    charge_ah=ah,
                    capacity_ah=cap,
                    soh=None if not rated_ah else cap / rated_ah,
                )
            )
        k = j + 1
    return out
