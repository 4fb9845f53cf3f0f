"""OEE per ISO 22400-2 from state-change events, exact over intervals and vectorised.

Time model (ISO 22400-2 §5, see docs in ``StationState``): for a shift instance P with
planned windows W (breaks and calendar planned stops, clipped to P):

- POT = |P|; PDOT = |W| + time in ``planned_stop`` outside W; PBT = POT − PDOT;
- within PBT: APT (``running``), AUST (``setup``), ADET (``idle``), ADOT (``down``)
  and time with no data (``unknown``); they sum to PBT;
- availability = APT/PBT, effectiveness = PQ·PRI/APT, quality = GQ/PQ and
  OEE = availability·effectiveness·quality, computed as GQ·PRI/PBT (the same value,
  defined even when APT or PQ is zero).

The calendar wins over the machine: time inside a break is planned down time even if
the station ran (parts made then still count for the shift they fall in, which can
push effectiveness above 1; ``effectiveness_over_1`` flags it, a PRI error otherwise).
Micro-stops (``down``/``idle`` runs shorter than the station threshold) stay in ADOT /
ADET as the ISO time model has it, and are reported separately.

Every duration is the difference of a per-state cumulative time function evaluated at
interval boundaries with ``searchsorted``; all arithmetic is in integer microseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ironbridge.analytics.plant import (
    STATE_ORDER,
    CalendarPeriods,
    Line,
    ShiftCalendar,
    Station,
    StationState,
)
from ironbridge.model import InvalidInput

I64 = npt.NDArray[np.int64]
_RUNNING = StationState.RUNNING.code
_IDLE = StationState.IDLE.code
_DOWN = StationState.DOWN.code
_PLANNED = StationState.PLANNED_STOP.code
_SETUP = StationState.SETUP.code
_UNKNOWN = StationState.UNKNOWN.code
_N_STATES = len(STATE_ORDER)
_MICRO = _N_STATES  # extra cumulative column: time in micro-stops
_TIME_FIELDS = ("pot", "pdot", "pbt", "apt", "setup", "delay", "down", "unknown", "micro_stop")


def _encode(
    values: Sequence[str] | npt.NDArray[np.object_], known: Sequence[str] | None, field: str
) -> tuple[tuple[str, ...], npt.NDArray[np.int32]]:
    arr = np.asarray(values, dtype=object)
    uniq, inverse = np.unique(arr, return_inverse=True)
    if known is None:
        return tuple(str(u) for u in uniq), inverse.astype(np.int32)
    index = {name: i for i, name in enumerate(known)}
    missing = [str(u) for u in uniq if u not in index]
    if missing:
        raise InvalidInput(field, f"unknown value {missing[0]!r}")
    lut = np.array([index[u] for u in uniq], dtype=np.int32)
    return tuple(known), lut[inverse]


def _offsets(station: npt.NDArray[np.int32], n: int) -> I64:
    """Row offsets of each station in a station-sorted column (computed once: O(rows))."""
    counts = np.bincount(station, minlength=n) if len(station) else np.zeros(n, np.int64)
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


@dataclass(frozen=True, slots=True)
class StateLog:
    """State-change events of many stations, columnar, sorted by (station, ts).

    Each event sets the station's state (and reason) until the station's next event.

    Attributes:
        stations: station ids; ``station`` holds indices into it.
        reasons: reason names; ``reason`` holds indices into it, -1 for none.
        station: station index per event.
        ts_us: event time, UTC µs.
        state: state code per event (:attr:`StationState.code`).
        reason: reason index per event, -1 for none.
    """

    stations: tuple[str, ...]
    reasons: tuple[str, ...]
    station: npt.NDArray[np.int32]
    ts_us: I64
    state: npt.NDArray[np.int8]
    reason: npt.NDArray[np.int32]
    offsets: I64 = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ts_us)
        for name in ("station", "state", "reason"):
            if len(getattr(self, name)) != n:
                raise InvalidInput(name, f"length differs from ts_us ({n})")
        if n and (self.state.min() < 0 or self.state.max() >= _N_STATES):
            raise InvalidInput("state", f"codes must be 0-{_N_STATES - 1}")
        if n and (self.reason.min() < -1 or self.reason.max() >= len(self.reasons)):
            raise InvalidInput("reason", "index out of range of reasons")
        if n and (self.station.min() < 0 or self.station.max() >= len(self.stations)):
            raise InvalidInput("station", "index out of range of stations")
        key_ok = np.all(
            (np.diff(self.station) > 0)
            | ((np.diff(self.station) == 0) & (np.diff(self.ts_us) >= 0))
        )
        if not key_ok:
            order = np.lexsort((self.ts_us, self.station))
            for name in ("station", "ts_us", "state", "reason"):
                object.__setattr__(self, name, getattr(self, name)[order])
        object.__setattr__(self, "offsets", _offsets(self.station, len(self.stations)))

    @classmethod
    def from_columns(
        cls,
        *,
        station: Sequence[str],
        ts_us: Sequence[int] | I64,
        state: Sequence[str],
        reason: Sequence[str | None] | None = None,
        stations: Sequence[str] | None = None,
    ) -> StateLog:
        """Build a log from plain columns of names (state values as in :class:`StationState`).

        Raises:
            InvalidInput: an unknown state or station, or columns of different lengths.
        """
        names, st_idx = _encode(station, stations, "station")
        _, codes = _encode(state, [s.value for s in STATE_ORDER], "state")
        if reason is None:
            reasons: tuple[str, ...] = ()
            r_idx = np.full(len(codes), -1, dtype=np.int32)
        else:
            filled = ["" if r is None else r for r in reason]
            all_reasons, r_idx = _encode(filled, None, "reason")
            reasons = tuple(r for r in all_reasons if r)
            shift = np.array([reasons.index(r) if r else -1 for r in all_reasons], dtype=np.int32)
            r_idx = shift[r_idx] if len(all_reasons) else r_idx
        return cls(
            stations=names,
            reasons=reasons,
            station=st_idx,
            ts_us=np.asarray(ts_us, dtype=np.int64),
            state=codes.astype(np.int8),
            reason=r_idx.astype(np.int32),
        )

    def slice_of(self, index: int) -> tuple[I64, npt.NDArray[np.int8], npt.NDArray[np.int32]]:
        """Events of the station at ``index``: (ts_us, state, reason)."""
        lo, hi = self.offsets[index], self.offsets[index + 1]
        return self.ts_us[lo:hi], self.state[lo:hi], self.reason[lo:hi]


@dataclass(frozen=True, slots=True)
class CountLog:
    """Part counts (increments) of many stations, columnar.

    Attributes:
        stations: station ids; ``station`` holds indices into it.
        station: station index per row.
        ts_us: time the parts were counted, UTC µs.
        good: good parts in the row.
        scrap: scrap parts in the row.
    """

    stations: tuple[str, ...]
    station: npt.NDArray[np.int32]
    ts_us: I64
    good: I64
    scrap: I64
    offsets: I64 = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.ts_us)
        for name in ("station", "good", "scrap"):
            if len(getattr(self, name)) != n:
                raise InvalidInput(name, f"length differs from ts_us ({n})")
        if n and (self.station.min() < 0 or self.station.max() >= len(self.stations)):
            raise InvalidInput("station", "index out of range of stations")
        if not np.all(np.diff(self.station) >= 0):
            order = np.argsort(self.station, kind="stable")
            for name in ("station", "ts_us", "good", "scrap"):
                object.__setattr__(self, name, getattr(self, name)[order])
        object.__setattr__(self, "offsets", _offsets(self.station, len(self.stations)))

    @classmethod
    def from_columns(
        cls,
        *,
        station: Sequence[str],
        ts_us: Sequence[int] | I64,
        good: Sequence[int] | I64,
        scrap: Sequence[int] | I64,
        stations: Sequence[str] | None = None,
    ) -> CountLog:
        """Build a count log from plain columns.

        Raises:
            InvalidInput: an unknown station or a negative count.
        """
        names, st_idx = _encode(station, stations, "station")
        g = np.asarray(good, dtype=np.int64)
        s = np.asarray(scrap, dtype=np.int64)
        if (g < 0).any() or (s < 0).any():
            raise InvalidInput("good" if (g < 0).any() else "scrap", "must be >= 0")
        return cls(
            stations=names, station=st_idx, ts_us=np.asarray(ts_us, dtype=np.int64), good=g, scrap=s
        )


# ------------------------------------------------------------------ interval kernels


def _runs(
    ts: I64, st: npt.NDArray[np.int8], rs: npt.NDArray[np.int32]
) -> tuple[I64, npt.NDArray[np.int8], npt.NDArray[np.int32]]:
    """Merge consecutive events with the same state and reason into runs."""
    if len(ts) == 0:
        return ts, st, rs
    keep = np.ones(len(ts), dtype=bool)
    keep[1:] = (st[1:] != st[:-1]) | (rs[1:] != rs[:-1])
    return ts[keep], st[keep], rs[keep]


def _window(
    ts: I64, st: npt.NDArray[np.int8], rs: npt.NDArray[np.int32], start: int, end: int
) -> tuple[I64, npt.NDArray[np.int8], npt.NDArray[np.int32]]:
    """Events that define the state over ``[start, end)``, with ``unknown`` before data."""
    lo = max(int(np.searchsorted(ts, start, side="right")) - 1, 0)
    hi = int(np.searchsorted(ts, end, side="left"))
    ts, st, rs = ts[lo:hi], st[lo:hi], rs[lo:hi]
    if len(ts) == 0 or ts[0] > start:
        ts = np.concatenate(([start], ts)).astype(np.int64)
        st = np.concatenate(([_UNKNOWN], st)).astype(np.int8)
        rs = np.concatenate(([-1], rs)).astype(np.int32)
    return ts, st, rs


def _cum_measure(starts: I64, ends: I64, q: I64) -> I64:
    """Measure of the union of sorted disjoint intervals that lies before each ``q``."""
    if len(starts) == 0:
        return np.zeros(len(q), dtype=np.int64)
    lengths = ends - starts
    before = np.concatenate(([0], np.cumsum(lengths)))
    j = np.searchsorted(starts, q, side="right") - 1
    jc = np.maximum(j, 0)
    part = np.clip(q - starts[jc], 0, lengths[jc])
    return np.where(j >= 0, before[jc] + part, 0)


@dataclass(frozen=True, slots=True)
class _StationTimes:
    times: I64  # (n_periods, 9) in µs, columns as _TIME_FIELDS
    micro_count: I64  # (n_periods,)


def _station_times(
    ts: I64,
    st: npt.NDArray[np.int8],
    rs: npt.NDArray[np.int32],
    cal: CalendarPeriods,
    start: int,
    end: int,
    micro_us: int,
) -> _StationTimes:
    n_p = len(cal)
    if n_p == 0:
        return _StationTimes(
            times=np.zeros((0, len(_TIME_FIELDS)), np.int64), micro_count=np.zeros(0, np.int64)
        )
    ts, st, rs = _runs(*_window(ts, st, rs, start, end))
    n = len(ts)
    dur = np.diff(ts, append=np.int64(end))
    is_micro = ((st == _DOWN) | (st == _IDLE)) & (dur < micro_us)
    # Cumulative time per state (+ micro-stop column) before each run start.
    # State-major layout keeps each cumulative sum contiguous in memory.
    w = np.zeros((_N_STATES + 1, n), dtype=np.int64)
    w[st, np.arange(n)] = dur
    w[_MICRO] = np.where(is_micro, dur, 0)
    cum = np.zeros((_N_STATES + 1, n + 1), dtype=np.int64)
    np.cumsum(w, axis=1, out=cum[:, 1:])

    def at(q: I64) -> I64:
        k = np.searchsorted(ts, q, side="right") - 1
        out = cum[:, k].T.copy()
        into = q - ts[k]
        out[np.arange(len(q)), st[k]] += into
        out[:, _MICRO] += np.where(is_micro[k], into, 0)
        return out

    per = at(cal.end_us) - at(cal.start_us)
    win = at(cal.window_end_us) - at(cal.window_start_us)
    in_win = np.zeros_like(per)
    np.add.at(in_win, cal.window_period, win)
    open_ = per - in_win  # state times inside P \ W
    w_len = np.zeros(n_p, dtype=np.int64)
    np.add.at(w_len, cal.window_period, cal.window_end_us - cal.window_start_us)
    pot = cal.end_us - cal.start_us
    pdot = w_len + open_[:, _PLANNED]
    times = np.stack(
        [
            pot,
            pdot,
            pot - pdot,
            open_[:, _RUNNING],
            open_[:, _SETUP],
            open_[:, _IDLE],
            open_[:, _DOWN],
            open_[:, _UNKNOWN],
            open_[:, _MICRO],
        ],
        axis=1,
    )
    # Micro-stops are counted where they start, if that instant is inside PBT.
    m_start = ts[is_micro]
    p = np.searchsorted(cal.start_us, m_start, side="right") - 1
    ok = (p >= 0) & (m_start < cal.end_us[np.maximum(p, 0)])
    if len(cal.window_start_us):
        wi = np.searchsorted(cal.window_start_us, m_start, side="right") - 1
        in_w = (wi >= 0) & (m_start < cal.window_end_us[np.maximum(wi, 0)])
    else:
        in_w = np.zeros(len(m_start), dtype=bool)
    micro_count = np.bincount(p[ok & ~in_w], minlength=n_p).astype(np.int64)
    return _StationTimes(times=times, micro_count=micro_count)


def _part_counts(log: CountLog | None, index: int, cal: CalendarPeriods) -> tuple[I64, I64]:
    n_p = len(cal)
    if log is None or n_p == 0:
        return np.zeros(n_p, np.int64), np.zeros(n_p, np.int64)
    lo, hi = log.offsets[index], log.offsets[index + 1]
    ts, good, scrap = log.ts_us[lo:hi], log.good[lo:hi], log.scrap[lo:hi]
    p = np.searchsorted(cal.start_us, ts, side="right") - 1
    ok = (p >= 0) & (ts < cal.end_us[np.maximum(p, 0)])
    # float64 weights are exact for counts below 2**53.
    g = np.bincount(p[ok], weights=good[ok], minlength=n_p).astype(np.int64)
    s = np.bincount(p[ok], weights=scrap[ok], minlength=n_p).astype(np.int64)
    return g, s


# ------------------------------------------------------------------------ reports


def _ratios(cols: dict[str, npt.NDArray[np.float64]]) -> dict[str, npt.NDArray[np.float64]]:
    with np.errstate(divide="ignore", invalid="ignore"):
        pbt, apt = cols["pbt_s"], cols["apt_s"]
        produced = cols["good"] + cols["scrap"]
        availability = np.where(pbt > 0, apt / pbt, np.nan)
        effectiveness = np.where(apt > 0, cols["ideal_s"] / apt, np.nan)
        quality = np.where(produced > 0, cols["good"] / produced, np.nan)
        good_ideal = cols["ideal_s"] * np.where(produced > 0, cols["good"] / produced, 0.0)
        oee = np.where(pbt > 0, good_ideal / pbt, np.nan)
    return {
        "availability": availability,
        "effectiveness": effectiveness,
        "quality": quality,
        "oee": oee,
    }


def _table(keys: dict[str, pa.Array], sums: dict[str, npt.NDArray[np.float64]]) -> pa.Table:
    cols: dict[str, pa.Array] = dict(keys)
    for name, values in sums.items():
        if name in ("good", "scrap", "micro_stop_count"):
            cols[name] = pa.array(values.astype(np.int64))
        else:
            cols[name] = pa.array(values)
    cols["produced"] = pa.array((sums["good"] + sums["scrap"]).astype(np.int64))
    for name, values in _ratios(sums).items():
        cols[name] = pa.array(values)
    with np.errstate(invalid="ignore"):
        cols["effectiveness_over_1"] = pa.array(
            np.nan_to_num(_ratios(sums)["effectiveness"], nan=0.0) > 1.0
        )
    return pa.table(cols)


@dataclass(frozen=True, slots=True)
class OeeReport:
    """OEE per station and period.

    Attributes:
        shifts: one row per station and shift instance.
        days: one row per station and production day (the local date a shift starts).
        weeks: one row per station and ISO week (keyed by its Monday).
    """

    shifts: pa.Table
    days: pa.Table
    weeks: pa.Table


_SUM_FIELDS = (*(f"{f}_s" for f in _TIME_FIELDS), "micro_stop_count", "good", "scrap", "ideal_s")


def _group(table: pa.Table, keys: list[str]) -> pa.Table:
    grouped = table.group_by(keys, use_threads=False).aggregate([(f, "sum") for f in _SUM_FIELDS])
    grouped = grouped.sort_by([(k, "ascending") for k in keys])
    sums = {f: grouped.column(f"{f}_sum").to_numpy().astype(np.float64) for f in _SUM_FIELDS}
    return _table({k: grouped.column(k) for k in keys}, sums)


def compute_oee(
    stations: Sequence[Station],
    calendar: ShiftCalendar,
    states: StateLog,
    counts: CountLog | None,
    start_us: int,
    end_us: int,
) -> OeeReport:
    """Compute ISO 22400-2 times and OEE per station per shift, day and week.

    Args:
        stations: the stations to report (their PRI and micro-stop thresholds).
        calendar: shifts, breaks and planned stops.
        states: state-change events; a station's state before its first event in range
            is ``unknown``.
        counts: part counts; rows outside every shift instance are not attributed.
        start_us: range start, UTC µs (shift instances are clipped to the range).
        end_us: range end.

    Raises:
        InvalidInput: an empty range or overlapping shifts.
    """
    cal = calendar.periods(start_us, end_us)
    n_p = len(cal)
    st_index = {name: i for i, name in enumerate(states.stations)}
    ct_index = {name: i for i, name in enumerate(counts.stations)} if counts else {}
    blocks: list[I64] = []
    micro: list[I64] = []
    good: list[I64] = []
    scrap: list[I64] = []
    for station in stations:
        if station.id in st_index:
            ts, st, rs = states.slice_of(st_index[station.id])
        else:
            ts, st, rs = (np.zeros(0, np.int64), np.zeros(0, np.int8), np.zeros(0, np.int32))
        res = _station_times(ts, st, rs, cal, start_us, end_us, round(station.micro_stop_s * 1e6))
        blocks.append(res.times)
        micro.append(res.micro_count)
        g, s = (
            _part_counts(counts, ct_index[station.id], cal)
            if station.id in ct_index
            else (np.zeros(n_p, np.int64), np.zeros(n_p, np.int64))
        )
        good.append(g)
        scrap.append(s)
    times = np.concatenate(blocks) if blocks else np.zeros((0, len(_TIME_FIELDS)), np.int64)
    sums: dict[str, npt.NDArray[np.float64]] = {
        f"{f}_s": times[:, i] / 1e6 for i, f in enumerate(_TIME_FIELDS)
    }
    sums["micro_stop_count"] = np.concatenate(micro).astype(np.float64) if micro else np.zeros(0)
    sums["good"] = np.concatenate(good).astype(np.float64) if good else np.zeros(0)
    sums["scrap"] = np.concatenate(scrap).astype(np.float64) if scrap else np.zeros(0)
    pri = np.repeat([s.ideal_cycle_s for s in stations], n_p).astype(np.float64)
    sums["ideal_s"] = (sums["good"] + sums["scrap"]) * pri
    n_st = len(stations)
    day = (cal.day - 719_163).astype(np.int32)  # proleptic ordinal -> days since 1970-01-01
    week = (cal.week - 719_163).astype(np.int32)
    keys = {
        "station": pa.array(
            np.repeat(np.array([s.id for s in stations], dtype=object), n_p), pa.string()
        ),
        "shift": pa.array(
            np.tile(np.array(cal.shift_names, dtype=object)[cal.shift], n_st)
            if n_p
            else np.zeros(0, object),
            pa.string(),
        ),
        "start_us": pa.array(np.tile(cal.start_us, n_st), pa.int64()),
        "end_us": pa.array(np.tile(cal.end_us, n_st), pa.int64()),
        "day": pa.array(np.tile(day, n_st), pa.date32()),
        "week": pa.array(np.tile(week, n_st), pa.date32()),
    }
    shifts = _table(keys, sums)
    # Rows are station-major and time-ordered, so days and weeks are contiguous runs.
    st_idx = np.repeat(np.arange(n_st), n_p)
    return OeeReport(
        shifts=shifts,
        days=_reduce_runs(keys, sums, st_idx, np.tile(day, n_st), "day"),
        weeks=_reduce_runs(keys, sums, st_idx, np.tile(week, n_st), "week"),
    )


def _reduce_runs(
    keys: dict[str, pa.Array],
    sums: dict[str, npt.NDArray[np.float64]],
    station: npt.NDArray[np.int64],
    period: npt.NDArray[np.int32],
    name: str,
) -> pa.Table:
    """Sum rows over contiguous runs of equal (station, period)."""
    n = len(station)
    change = np.ones(n, dtype=bool)
    change[1:] = (station[1:] != station[:-1]) | (period[1:] != period[:-1])
    first = np.flatnonzero(change)
    if n == 0:
        reduced = {f: v[:0] for f, v in sums.items()}
    else:
        reduced = {f: np.add.reduceat(v, first) for f, v in sums.items()}
    return _table({"station": keys["station"].take(first), name: keys[name].take(first)}, reduced)


def rollup_lines(
    table: pa.Table,
    lines: Sequence[Line],
    rule: Literal["bottleneck", "time_weighted"] = "bottleneck",
) -> pa.Table:
    """Roll station rows of an :class:`OeeReport` table up to lines.

    ``bottleneck`` (default) reports a serial line by its constraint station: the line
    can never make more than its bottleneck, and multiplying or averaging station OEEs
    double-counts losses that the buffers absorb. ``time_weighted`` sums the ISO time
    elements and quantities over the line's stations and recomputes the ratios (so
    stations weigh by their planned busy time); it suits cells of parallel stations.

    Args:
        table: ``report.shifts``, ``report.days`` or ``report.weeks``.
        lines: the lines to report.
        rule: roll-up rule.

    Raises:
        InvalidInput: an unknown rule.
    """
    if rule not in ("bottleneck", "time_weighted"):
        raise InvalidInput("rule", "must be 'bottleneck' or 'time_weighted'")
    keys = [k for k in ("shift", "start_us", "end_us", "day", "week") if k in table.column_names]
    if "start_us" in keys:
        keys = ["shift", "start_us", "end_us", "day", "week"]
    parts = []
    station_col = table.column("station").to_numpy(zero_copy_only=False)
    for line in lines:
        if rule == "bottleneck":
            member = station_col == line.bottleneck_station.id
        else:
            member = np.isin(station_col, [s.id for s in line.stations])
        sub = table.filter(pa.array(member))
        sub = sub.append_column("line", pa.array([line.id] * sub.num_rows, pa.string()))
        parts.append(_group(sub, ["line", *keys]))
    if not parts:
        return _group(
            table.slice(0, 0).append_column("line", pa.array([], pa.string())), ["line", *keys]
        )
    out = pa.concat_tables(parts)
    return out.append_column("rule", pa.array([rule] * out.num_rows, pa.string()))


# ------------------------------------------------------------ pareto, micro-stops, timeline


def _open_measure(cal: CalendarPeriods, q: I64) -> I64:
    """PBT-calendar time (shift time minus planned windows) before each ``q``."""
    return _cum_measure(cal.start_us, cal.end_us, q) - _cum_measure(
        cal.window_start_us, cal.window_end_us, q
    )


def downtime_pareto(
    states: StateLog,
    calendar: ShiftCalendar,
    start_us: int,
    end_us: int,
    *,
    stations: Sequence[str] | None = None,
    state: StationState | str = StationState.DOWN,
) -> pa.Table:
    """Downtime by reason, largest first: duration inside planned busy time and count.

    A stop counts once if any part of it lies in planned busy time (shift time minus
    breaks and planned stops); its duration is only that part.

    Args:
        states: state-change events.
        calendar: shift calendar.
        start_us: range start, UTC µs.
        end_us: range end.
        stations: station ids to include; all when ``None``.
        state: the state to break down (``down`` by default; ``idle`` or ``setup`` work).

    Returns:
        Columns reason, duration_s, count, share, cumulative_share.
    """
    try:
        code = StationState(state).code
    except ValueError:
        raise InvalidInput("state", f"unknown state {state!r}") from None
    cal = calendar.periods(start_us, end_us)
    n_r = len(states.reasons) + 1  # last bucket: no reason given
    dur = np.zeros(n_r, np.int64)
    cnt = np.zeros(n_r, np.int64)
    wanted = set(states.stations if stations is None else stations)
    for i, name in enumerate(states.stations):
        if name not in wanted:
            continue
        ts, st, rs = _runs(*_window(*states.slice_of(i), start_us, end_us))
        ends = np.append(ts[1:], np.int64(end_us))
        sel = st == code
        inside = _open_measure(cal, ends[sel]) - _open_measure(cal, np.maximum(ts[sel], start_us))
        bucket = np.where(rs[sel] >= 0, rs[sel], n_r - 1)
        np.add.at(dur, bucket, inside)
        np.add.at(cnt, bucket, (inside > 0).astype(np.int64))
    names = np.array([*states.reasons, "(none)"], dtype=object)
    keep = cnt > 0
    order = np.lexsort((names[keep].astype(str), -dur[keep]))
    d = dur[keep][order] / 1e6
    total = d.sum()
    share = d / total if total > 0 else np.zeros_like(d)
    return pa.table(
        {
            "reason": pa.array(names[keep][order], pa.string()),
            "duration_s": pa.array(d),
            "count": pa.array(cnt[keep][order]),
            "share": pa.array(share),
            "cumulative_share": pa.array(np.cumsum(share)),
        }
    )


def state_timeline(states: StateLog, station: str, start_us: int, end_us: int) -> pa.Table:
    """Merged state intervals of one station clipped to ``[start_us, end_us)``.

    Returns:
        Columns start_us, end_us, state, reason (null when none); time before the
        station's first event is ``unknown``.

    Raises:
        NotFound-like InvalidInput: the station has no events in the log.
    """
    if end_us <= start_us:
        raise InvalidInput("end", "must be after start")
    if station not in states.stations:
        raise InvalidInput("station", f"no events for station {station!r}")
    ts, st, rs = _runs(*_window(*states.slice_of(states.stations.index(station)), start_us, end_us))
    starts = np.maximum(ts, start_us)
    ends = np.append(ts[1:], np.int64(end_us))
    state_names = np.array([s.value for s in STATE_ORDER], dtype=object)
    reasons = np.array([*states.reasons, None], dtype=object)
    return pa.table(
        {
            "start_us": pa.array(starts, pa.int64()),
            "end_us": pa.array(ends, pa.int64()),
            "state": pa.array(state_names[st], pa.string()),
            "reason": pa.array(reasons[rs], pa.string()),
        }
    )


__all__ = [
    "CountLog",
    "OeeReport",
    "StateLog",
    "compute_oee",
    "downtime_pareto",
    "rollup_lines",
    "state_timeline",
]
