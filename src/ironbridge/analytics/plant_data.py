"""Build OEE inputs (state and count logs) from stored station measurements.

See :mod:`ironbridge.analytics.sites` for where a station's data lives. States are
taken where they change (repeated samples, as a Modbus poll produces, collapse); a
stop reason sampled up to :data:`REASON_TOLERANCE_US` after a state change still
belongs to it (OPC UA publishes state and reason as separate notifications).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ironbridge.analytics.oee import CountLog, StateLog
from ironbridge.analytics.plant import STATE_ORDER, StationState
from ironbridge.store import TelemetryStore

#: How far back to look for the state a station was in when the range starts.
LOOKBACK_US = 86_400_000_000
REASON_TOLERANCE_US = 1_000_000
STATE, REASON, GOOD, SCRAP = "state", "reason", "good_count", "scrap_count"
MEASUREMENTS = (STATE, REASON, GOOD, SCRAP)
_WITH_REASON = frozenset(
    s.code
    for s in (
        StationState.DOWN,
        StationState.IDLE,
        StationState.SETUP,
        StationState.PLANNED_STOP,
    )
)
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def _columns(table: pa.Table) -> tuple[I64, I64, F64]:
    series = table.column("series").to_numpy().astype(np.int64)
    ts = table.column("ts").cast(pa.int64()).to_numpy().astype(np.int64)
    value = table.column("value").to_numpy().astype(np.float64)
    return series, ts, value


def _changes(ts: I64, v: F64) -> tuple[I64, F64]:
    if len(ts) == 0:
        return ts, v
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = v[1:] != v[:-1]
    return ts[keep], v[keep]


def _increments(ts: I64, v: F64) -> tuple[I64, I64]:
    """Parts made between consecutive counter samples (a drop is a reset)."""
    if len(ts) < 2:
        return ts[:0], np.zeros(0, np.int64)
    d = np.diff(v)
    inc = np.where(d >= 0, d, v[1:])
    keep = inc > 0
    return ts[1:][keep], np.rint(inc[keep]).astype(np.int64)


def load_logs(
    store: TelemetryStore,
    series: Mapping[tuple[str, str], int],
    stations: Sequence[str],
    reason_codes: Mapping[int, str],
    start_us: int,
    end_us: int,
) -> tuple[StateLog, CountLog]:
    """Read the stations' state, reason and counters and build the OEE logs.

    Args:
        store: the telemetry store.
        series: (asset id, measurement) -> series id, for the visible stations.
        stations: station (asset) ids.
        reason_codes: reason code -> name (unknown codes become ``code <n>``).
        start_us: range start, UTC µs.
        end_us: range end.
    """
    wanted = {
        series_id: (station, m)
        for station in stations
        for m in MEASUREMENTS
        if (series_id := series.get((station, m))) is not None
    }
    if wanted:
        table = store.raw(list(wanted), start_us - LOOKBACK_US, end_us)
        sid, ts, value = _columns(table)
    else:
        sid, ts, value = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    per: dict[tuple[str, str], tuple[I64, F64]] = {}
    for s, key in wanted.items():
        sel = sid == s
        order = np.argsort(ts[sel], kind="stable")
        per[key] = (ts[sel][order], value[sel][order])
    empty = (np.zeros(0, np.int64), np.zeros(0, np.float64))
    st_station: list[str] = []
    st_ts: list[I64] = []
    st_state: list[npt.NDArray[np.int8]] = []
    st_reason: list[str | None] = []
    ct_station: list[str] = []
    ct_ts: list[I64] = []
    ct_good: list[I64] = []
    ct_scrap: list[I64] = []
    unknown = StationState.UNKNOWN.code
    for station in stations:
        s_ts, s_v = _changes(*per.get((station, STATE), empty))
        r_ts, r_v = _changes(*per.get((station, REASON), empty))
        if len(s_ts):
            times = np.union1d(s_ts, r_ts[r_ts >= s_ts[0]])
            s_idx = np.searchsorted(s_ts, times, side="right") - 1
            codes = np.rint(s_v[s_idx]).astype(np.int64)
            codes = np.where((codes >= 0) & (codes < len(STATE_ORDER)), codes, unknown)
            r_idx = np.searchsorted(r_ts, times + REASON_TOLERANCE_US, side="right") - 1
            reasons: list[str | None] = []
            for code, ri in zip(codes, r_idx, strict=True):
                rc = int(r_v[ri]) if ri >= 0 else 0
                if rc and int(code) in _WITH_REASON:
                    reasons.append(reason_codes.get(rc, f"code {rc}"))
                else:
                    reasons.append(None)
            st_station += [station] * len(times)
            st_ts.append(times.astype(np.int64))
            st_state.append(codes.astype(np.int8))
            st_reason += reasons
        for name, is_good in ((GOOD, True), (SCRAP, False)):
            c_ts, inc = _increments(*per.get((station, name), empty))
            ct_station += [station] * len(c_ts)
            ct_ts.append(c_ts)
            ct_good.append(inc if is_good else np.zeros_like(inc))
            ct_scrap.append(np.zeros_like(inc) if is_good else inc)
    state_names = np.array([s.value for s in STATE_ORDER], dtype=object)
    states = StateLog.from_columns(
        station=st_station,
        ts_us=np.concatenate(st_ts) if st_ts else np.zeros(0, np.int64),
        state=list(state_names[np.concatenate(st_state)]) if st_state else [],
        reason=st_reason,
        stations=list(stations),
    )
    counts = CountLog.from_columns(
        station=ct_station,
        ts_us=np.concatenate(ct_ts) if ct_ts else np.zeros(0, np.int64),
        good=np.concatenate(ct_good) if ct_good else np.zeros(0, np.int64),
        scrap=np.concatenate(ct_scrap) if ct_scrap else np.zeros(0, np.int64),
        stations=list(stations),
    )
    return states, counts


def load_series(
    store: TelemetryStore, series_id: int, start_us: int, end_us: int
) -> tuple[I64, F64]:
    """Timestamps (µs) and values of one series in ``[start_us, end_us)``, in time order."""
    _, ts, value = _columns(store.raw([series_id], start_us, end_us))
    order = np.argsort(ts, kind="stable")
    return ts[order], value[order]


__all__ = ["LOOKBACK_US", "MEASUREMENTS", "load_logs", "load_series"]
