"""Build OEE inputs (state and count logs) from stored station measurements.

See :mod:`ironbridge.analytics.sites` for where a station's data lives. States are
taken where they change (repeated samples, as a Modbus poll produces, collapse); a
stop reason sampled up to :data:`REASON_TOLERANCE_US` after a state change still
belongs to it (OPC UA publishes state and reason as separate notifications).

A station may instead report by **events** (``state_from`` / ``counts_from`` =
``event``, see :class:`~ironbridge.analytics.plant.Station`), as an MES or a line
controller does over MQTT/HTTP (``ib/v1/<device>/events``):

* state: kind ``station_state``, ``code`` the state name (``down``) or its number
  (``"2"``), ``payload.reason`` a reason name or code (named by the site's codes);
* parts: kind ``part``, ``code`` ``good`` or ``scrap``, ``payload.count`` the number
  of parts (default 1).

An event that does not follow this (unknown state, non-positive count) is skipped:
events are stored as sent, so the rule is applied where they are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ironbridge.analytics.oee import CountLog, StateLog
from ironbridge.analytics.plant import STATE_ORDER, Station, StationState
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
#: most events read for one OEE query
MAX_EVENTS = 10_000_000
_STATE_NAMES = {s.value: s.code for s in STATE_ORDER}


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


def _reason_name(raw: object, reason_codes: Mapping[int, str]) -> str | None:
    if raw is None or raw == "" or raw == 0 or isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        code = int(raw)
        return reason_codes.get(code, f"code {code}") if code else None
    text = str(raw)
    if text.isdigit():
        return _reason_name(int(text), reason_codes)
    return text


def _state_code(code: str) -> int | None:
    code = code.strip().lower()
    if code in _STATE_NAMES:
        return _STATE_NAMES[code]
    if code.isdigit() and int(code) < len(STATE_ORDER):
        return int(code)
    return None


def _payload(text: object) -> dict[str, object]:
    try:
        doc = json.loads(str(text)) if text else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def state_events(
    events: pa.Table, reason_codes: Mapping[int, str]
) -> tuple[I64, npt.NDArray[np.int8], list[str | None]]:
    """State changes from ``station_state`` events of one station (time order).

    Returns:
        times (µs), state codes and reason names (``None`` for running or no reason).
    """
    ts = events.column("ts").cast(pa.int64()).to_numpy().astype(np.int64)
    codes = events.column("code").to_pylist()
    payloads = events.column("payload").to_pylist()
    out_ts: list[int] = []
    out_state: list[int] = []
    out_reason: list[str | None] = []
    for t, code, payload in zip(ts.tolist(), codes, payloads, strict=True):
        state = _state_code(str(code))
        if state is None:
            continue
        reason = _reason_name(_payload(payload).get("reason"), reason_codes)
        if out_state and out_state[-1] == state and out_reason[-1] == reason:
            continue
        out_ts.append(t)
        out_state.append(state)
        out_reason.append(reason if state in _WITH_REASON else None)
    return np.array(out_ts, np.int64), np.array(out_state, np.int8), out_reason


def part_events(events: pa.Table) -> tuple[I64, I64, I64]:
    """Good and scrap parts from ``part`` events of one station: times, good, scrap."""
    ts = events.column("ts").cast(pa.int64()).to_numpy().astype(np.int64)
    codes = events.column("code").to_pylist()
    payloads = events.column("payload").to_pylist()
    out_ts: list[int] = []
    good: list[int] = []
    scrap: list[int] = []
    for t, code, payload in zip(ts.tolist(), codes, payloads, strict=True):
        kind = str(code).strip().lower()
        raw = _payload(payload).get("count", 1)
        if kind not in ("good", "scrap") or isinstance(raw, bool):
            continue
        if not isinstance(raw, int | float) or raw <= 0 or raw != int(raw):
            continue
        out_ts.append(t)
        good.append(int(raw) if kind == "good" else 0)
        scrap.append(int(raw) if kind == "scrap" else 0)
    return np.array(out_ts, np.int64), np.array(good, np.int64), np.array(scrap, np.int64)


def _events_of(
    store: TelemetryStore, stations: Sequence[Station], start_us: int, end_us: int
) -> dict[tuple[str, str], pa.Table]:
    """Events of the event-sourced stations, per (station, kind)."""
    kinds = {s.state_event for s in stations if s.state_from == "event"} | {
        s.part_event for s in stations if s.counts_from == "event"
    }
    ids = [s.id for s in stations if s.state_from == "event" or s.counts_from == "event"]
    if not ids:
        return {}
    table = store.events(ids, start_us - LOOKBACK_US, end_us, sorted(kinds), MAX_EVENTS)
    asset = table.column("asset_id").to_pylist()
    kind = table.column("kind").to_pylist()
    rows: dict[tuple[str, str], list[int]] = {}
    for i, key in enumerate(zip(asset, kind, strict=True)):
        rows.setdefault(key, []).append(i)
    return {key: table.take(pa.array(idx, pa.int64())) for key, idx in rows.items()}


def load_logs(
    store: TelemetryStore,
    series: Mapping[tuple[str, str], int],
    stations: Sequence[str | Station],
    reason_codes: Mapping[int, str],
    start_us: int,
    end_us: int,
) -> tuple[StateLog, CountLog]:
    """Read the stations' state, reason and counters and build the OEE logs.

    Args:
        store: the telemetry store.
        series: (asset id, measurement) -> series id, for the visible stations.
        stations: stations, or station (asset) ids for stations reporting by
            measurements.
        reason_codes: reason code -> name (unknown codes become ``code <n>``).
        start_us: range start, UTC µs.
        end_us: range end.
    """
    specs = [s if isinstance(s, Station) else Station(id=s, ideal_cycle_s=1.0) for s in stations]
    by_id = {s.id: s for s in specs}
    ids = [s.id for s in specs]
    events = _events_of(store, specs, start_us, end_us)
    wanted = {
        series_id: (station, m)
        for station in ids
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
    for station in ids:
        spec = by_id[station]
        if spec.state_from == "event":
            ev = events.get((station, spec.state_event))
            if ev is not None:
                e_ts, e_state, e_reason = state_events(ev, reason_codes)
                st_station += [station] * len(e_ts)
                st_ts.append(e_ts)
                st_state.append(e_state)
                st_reason += e_reason
            per.pop((station, STATE), None)
        if spec.counts_from == "event":
            ev = events.get((station, spec.part_event))
            if ev is not None:
                p_ts, p_good, p_scrap = part_events(ev)
                ct_station += [station] * len(p_ts)
                ct_ts.append(p_ts)
                ct_good.append(p_good)
                ct_scrap.append(p_scrap)
            per.pop((station, GOOD), None)
            per.pop((station, SCRAP), None)
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
        stations=ids,
    )
    counts = CountLog.from_columns(
        station=ct_station,
        ts_us=np.concatenate(ct_ts) if ct_ts else np.zeros(0, np.int64),
        good=np.concatenate(ct_good) if ct_good else np.zeros(0, np.int64),
        scrap=np.concatenate(ct_scrap) if ct_scrap else np.zeros(0, np.int64),
        stations=ids,
    )
    return states, counts


def load_series(
    store: TelemetryStore, series_id: int, start_us: int, end_us: int
) -> tuple[I64, F64]:
    """Timestamps (µs) and values of one series in ``[start_us, end_us)``, in time order."""
    _, ts, value = _columns(store.raw([series_id], start_us, end_us))
    order = np.argsort(ts, kind="stable")
    return ts[order], value[order]


__all__ = [
    "LOOKBACK_US",
    "MAX_EVENTS",
    "MEASUREMENTS",
    "load_logs",
    "load_series",
    "part_events",
    "state_events",
]
