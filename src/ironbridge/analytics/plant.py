"""Plant model for production KPIs: site, lines, stations, states and the shift calendar."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import numpy.typing as npt
import yaml

from ironbridge.model import InvalidInput, check_id, from_datetime

DEFAULT_TIMEZONE = "Asia/Shanghai"
#: Default micro-stop threshold: unplanned stops shorter than this are micro-stops.
DEFAULT_MICRO_STOP_S = 120.0
DEFAULT_STATE_EVENT = "station_state"
DEFAULT_PART_EVENT = "part"
Source = Literal["measurement", "event"]
#: Where a station's state or part counts come from.
SOURCES: tuple[str, ...] = ("measurement", "event")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StationState(StrEnum):
    """State of a station, mapped onto the ISO 22400-2 time elements.

    ``running`` is actual production time (APT); ``setup`` is setup / die change
    (AUST); ``idle`` is waiting, starved or blocked (delay, ADET); ``down`` is an
    unplanned failure (ADOT, with a reason); ``planned_stop`` is planned down time
    reported by the machine (PDOT, e.g. planned maintenance); ``unknown`` is time with
    no data. Micro-stops are not a state: they are ``down`` or ``idle`` runs shorter
    than the station's threshold.
    """

    RUNNING = "running"
    IDLE = "idle"
    DOWN = "down"
    PLANNED_STOP = "planned_stop"
    SETUP = "setup"
    UNKNOWN = "unknown"

    @property
    def code(self) -> int:
        """Compact integer code used in columnar state logs."""
        return STATE_ORDER.index(self)


#: State codes: a state's code is its index here.
STATE_ORDER: tuple[StationState, ...] = tuple(StationState)


def _num(data: Mapping[str, Any], key: str, prefix: str, default: float | None) -> float:
    value = data.get(key, default)
    if value is None:
        raise InvalidInput(f"{prefix}{key}", "is required")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{prefix}{key}", f"must be a finite number, got {value!r}")
    return float(value)


def _check_keys(data: object, allowed: set[str], field: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput(field, "must be a mapping")
    prefix = f"{field}." if field else ""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"{prefix}{unknown[0]}", "unknown field")
    return data


def _list(data: Mapping[str, Any], key: str, field: str) -> list[Any]:
    value = data.get(key, [])
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidInput(f"{field}.{key}" if field else key, "must be a list")
    return list(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Station:
    """A production station.

    Attributes:
        id: station id.
        ideal_cycle_s: ideal cycle time per part, seconds (ISO 22400-2 PRI, from MES/ERP).
        micro_stop_s: unplanned stops shorter than this many seconds are micro-stops.
        state_from: where the state (and stop reason) comes from: ``measurement``
            (the ``state`` and ``reason`` measurements, fed by an OPC UA node, a Modbus
            register or a device) or ``event`` (events of kind ``state_event``).
        counts_from: where good and scrap parts come from: ``measurement`` (the
            cumulative ``good_count``/``scrap_count`` counters) or ``event`` (one event
            of kind ``part_event`` per part or per lot).
        state_event: event kind carrying state changes (code = state name or number).
        part_event: event kind carrying parts (code ``good`` or ``scrap``).
        name: display name.
    """

    id: str
    ideal_cycle_s: float
    micro_stop_s: float = DEFAULT_MICRO_STOP_S
    state_from: Source = "measurement"
    counts_from: Source = "measurement"
    state_event: str = DEFAULT_STATE_EVENT
    part_event: str = DEFAULT_PART_EVENT
    name: str = ""

    def __post_init__(self) -> None:
        check_id(self.id, "id")
        if not (math.isfinite(self.ideal_cycle_s) and self.ideal_cycle_s > 0):
            raise InvalidInput("ideal_cycle_s", "must be a positive number of seconds")
        if not (math.isfinite(self.micro_stop_s) and self.micro_stop_s >= 0):
            raise InvalidInput("micro_stop_s", "must be >= 0 seconds")
        for key in ("state_from", "counts_from"):
            if getattr(self, key) not in SOURCES:
                raise InvalidInput(key, f"must be one of {', '.join(SOURCES)}")
        for key in ("state_event", "part_event"):
            kind = getattr(self, key)
            if not isinstance(kind, str) or not 0 < len(kind) <= 128:
                raise InvalidInput(key, "must be an event kind (1-128 characters)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """A serial production line of stations.

    Attributes:
        id: line id.
        stations: stations in flow order.
        bottleneck: id of the constraint station; default the slowest (largest PRI).
        name: display name.
    """

    id: str
    stations: tuple[Station, ...]
    bottleneck: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        check_id(self.id, "id")
        ids = [s.id for s in self.stations]
        if not ids:
            raise InvalidInput("stations", "a line needs at least one station")
        if len(set(ids)) != len(ids):
            raise InvalidInput("stations", "station ids must be unique")
        if self.bottleneck is not None and self.bottleneck not in ids:
            raise InvalidInput("bottleneck", f"{self.bottleneck!r} is not a station of the line")

    @property
    def bottleneck_station(self) -> Station:
        """The constraint station: the named one, else the one with the largest PRI."""
        if self.bottleneck is not None:
            return next(s for s in self.stations if s.id == self.bottleneck)
        return max(self.stations, key=lambda s: s.ideal_cycle_s)


@dataclass(frozen=True, slots=True, kw_only=True)
class Break:
    """A break inside a shift (local wall-clock times; planned down time)."""

    start: time
    end: time
    name: str = "break"


@dataclass(frozen=True, slots=True, kw_only=True)
class Shift:
    """A shift pattern; ``end <= start`` means the shift ends the next day.

    Attributes:
        name: shift name (``early``, ``night``).
        start: local start time.
        end: local end time.
        weekdays: days (0 = Monday) on which the shift *starts*.
        breaks: breaks inside the shift.
    """

    name: str
    start: time
    end: time
    weekdays: frozenset[int] = frozenset(range(7))
    breaks: tuple[Break, ...] = ()

    @property
    def crosses_midnight(self) -> bool:
        """Whether the shift ends on the day after it starts."""
        return self.end <= self.start

    def _offset(self, t: time) -> timedelta:
        """Offset of a wall-clock time from the shift's start date midnight."""
        delta = timedelta(hours=t.hour, minutes=t.minute, seconds=t.second)
        if self.crosses_midnight and t < self.start:
            delta += timedelta(days=1)
        return delta

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInput("name", "is required")
        if not self.weekdays or not set(self.weekdays) <= set(range(7)):
            raise InvalidInput("weekdays", "must be a non-empty set of 0 (Mon) .. 6 (Sun)")
        start, end = self._offset(self.start), self._offset(self.end)
        if end <= start:
            end += timedelta(days=1)
        for i, brk in enumerate(self.breaks):
            b0, b1 = self._offset(brk.start), self._offset(brk.end)
            if not start <= b0 < b1 <= end:
                raise InvalidInput(f"breaks[{i}]", "must lie inside the shift and end after start")


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedStop:
    """A planned stop of the whole site (maintenance day, holiday), UTC microseconds."""

    start_us: int
    end_us: int
    reason: str = "planned"

    def __post_init__(self) -> None:
        if self.end_us <= self.start_us:
            raise InvalidInput("end", "must be after start")


@dataclass(frozen=True, slots=True)
class CalendarPeriods:
    """Shift instances in a range and the planned windows inside them (columnar).

    Attributes:
        start_us: shift instance starts, sorted, UTC µs.
        end_us: shift instance ends; instances do not overlap.
        shift: index into ``shift_names``.
        day: production day (local date the shift starts on) as a proleptic ordinal.
        week: Monday of the production day's ISO week, as an ordinal.
        shift_names: names of the calendar's shifts.
        window_start_us: planned windows (breaks, planned stops) merged, sorted, UTC µs.
        window_end_us: window ends.
        window_period: index of the shift instance each window lies in.
    """

    start_us: npt.NDArray[np.int64]
    end_us: npt.NDArray[np.int64]
    shift: npt.NDArray[np.int32]
    day: npt.NDArray[np.int64]
    week: npt.NDArray[np.int64]
    shift_names: tuple[str, ...]
    window_start_us: npt.NDArray[np.int64]
    window_end_us: npt.NDArray[np.int64]
    window_period: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.start_us)


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftCalendar:
    """Shifts, breaks and planned stops of a site, in the site's time zone."""

    shifts: tuple[Shift, ...]
    planned_stops: tuple[PlannedStop, ...] = ()
    timezone: str = DEFAULT_TIMEZONE
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.shifts:
            raise InvalidInput("shifts", "a calendar needs at least one shift")
        names = [s.name for s in self.shifts]
        if len(set(names)) != len(names):
            raise InvalidInput("shifts", "shift names must be unique")
        try:
            object.__setattr__(self, "_zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("timezone", f"unknown time zone {self.timezone!r}") from None

    def _at(self, day: date, offset: timedelta) -> int:
        local = datetime.combine(day, time(), tzinfo=self._zone) + offset
        # Re-attach the zone so wall-clock arithmetic across a DST change stays local.
        return from_datetime(local.replace(tzinfo=self._zone))

    def periods(self, start_us: int, end_us: int) -> CalendarPeriods:
        """Shift instances overlapping ``[start_us, end_us)``, clipped to it.

        Raises:
            InvalidInput: ``end_us <= start_us`` or shift instances overlap.
        """
        if end_us <= start_us:
            raise InvalidInput("end", "must be after start")
        first = datetime.fromtimestamp(start_us / 1e6, tz=self._zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end_us / 1e6, tz=self._zone).date()
        rows: list[tuple[int, int, int, int]] = []
        windows: list[tuple[int, int, int]] = []  # (start, end, row)
        day = first
        while day <= last:
            for k, shift in enumerate(self.shifts):
                if day.weekday() not in shift.weekdays:
                    continue
                s_off = shift._offset(shift.start)
                e_off = shift._offset(shift.end)
                if e_off <= s_off:
                    e_off += timedelta(days=1)
                s, e = self._at(day, s_off), self._at(day, e_off)
                s, e = max(s, start_us), min(e, end_us)
                if e <= s:
                    continue
                rows.append((s, e, k, day.toordinal()))
                for brk in shift.breaks:
                    b0 = max(self._at(day, shift._offset(brk.start)), s)
                    b1 = min(self._at(day, shift._offset(brk.end)), e)
                    if b1 > b0:
                        windows.append((b0, b1, len(rows) - 1))
            day += timedelta(days=1)
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])
        rows = [rows[i] for i in order]
        remap = {old: new for new, old in enumerate(order)}
        for i in range(1, len(rows)):
            if rows[i][0] < rows[i - 1][1]:
                names = (self.shifts[rows[i - 1][2]].name, self.shifts[rows[i][2]].name)
                raise InvalidInput("shifts", f"shifts {names[0]!r} and {names[1]!r} overlap")
        windows = [(a, b, remap[r]) for a, b, r in windows]
        for stop in self.planned_stops:
            for i, (s, e, _, _) in enumerate(rows):
                a, b = max(s, stop.start_us), min(e, stop.end_us)
                if b > a:
                    windows.append((a, b, i))
        windows.sort(key=lambda w: (w[2], w[0]))
        merged: list[list[int]] = []
        for a, b, r in windows:
            if merged and merged[-1][2] == r and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b, r])
        days = np.array([r[3] for r in rows], dtype=np.int64)
        weekday = np.array([date.fromordinal(int(d)).weekday() for d in days], dtype=np.int64)
        return CalendarPeriods(
            start_us=np.array([r[0] for r in rows], dtype=np.int64),
            end_us=np.array([r[1] for r in rows], dtype=np.int64),
            shift=np.array([r[2] for r in rows], dtype=np.int32),
            day=days,
            week=days - weekday,
            shift_names=tuple(s.name for s in self.shifts),
            window_start_us=np.array([m[0] for m in merged], dtype=np.int64),
            window_end_us=np.array([m[1] for m in merged], dtype=np.int64),
            window_period=np.array([m[2] for m in merged], dtype=np.int64),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Site:
    """A plant: its lines and shift calendar."""

    id: str
    lines: tuple[Line, ...]
    calendar: ShiftCalendar
    name: str = ""

    def __post_init__(self) -> None:
        check_id(self.id, "id")
        ids = [s.id for line in self.lines for s in line.stations]
        if len(set(ids)) != len(ids):
            raise InvalidInput("lines", "a station id appears on more than one line")

    @property
    def stations(self) -> tuple[Station, ...]:
        """Every station of the site, line by line."""
        return tuple(s for line in self.lines for s in line.stations)


# ---------------------------------------------------------------------------- parsing


def _parse_time(value: object, field: str) -> time:
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 06:00 as a sexagesimal integer (360).
        raise InvalidInput(field, "quote times in YAML ('06:00'), got a number")
    if not isinstance(value, str):
        raise InvalidInput(field, "must be a time 'HH:MM' or 'HH:MM:SS'")
    try:
        parsed = time.fromisoformat(value)
    except ValueError:
        raise InvalidInput(field, f"must be a time 'HH:MM' or 'HH:MM:SS', got {value!r}") from None
    if parsed.tzinfo is not None or parsed.microsecond:
        raise InvalidInput(field, "must be a local wall-clock time without zone or fraction")
    return parsed


def _parse_datetime(value: object, zone: ZoneInfo, field: str) -> int:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidInput(field, f"must be an ISO date-time, got {value!r}") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if not isinstance(value, datetime):
        raise InvalidInput(field, "must be an ISO date-time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return from_datetime(value)


def parse_shift(data: object, field: str = "shift") -> Shift:
    """Build a :class:`Shift` from ``{name, start, end, weekdays?, breaks?}``.

    Raises:
        InvalidInput: naming the offending field.
    """
    d = _check_keys(data, {"name", "start", "end", "weekdays", "breaks"}, field)
    for key in ("name", "start", "end"):
        if key not in d:
            raise InvalidInput(f"{field}.{key}", "is required")
    if not isinstance(d["name"], str):
        raise InvalidInput(f"{field}.name", "must be a string")
    weekdays = frozenset(range(7))
    if "weekdays" in d:
        days = []
        for i, w in enumerate(_list(d, "weekdays", field)):
            if not isinstance(w, str) or w.lower()[:3] not in _WEEKDAYS:
                raise InvalidInput(f"{field}.weekdays[{i}]", f"must be one of {_WEEKDAYS}")
            days.append(_WEEKDAYS.index(w.lower()[:3]))
        weekdays = frozenset(days)
    breaks = []
    for i, b in enumerate(_list(d, "breaks", field)):
        bf = f"{field}.breaks[{i}]"
        bd = _check_keys(b, {"start", "end", "name"}, bf)
        for key in ("start", "end"):
            if key not in bd:
                raise InvalidInput(f"{bf}.{key}", "is required")
        breaks.append(
            Break(
                start=_parse_time(bd["start"], f"{bf}.start"),
                end=_parse_time(bd["end"], f"{bf}.end"),
                name=str(bd.get("name", "break")),
            )
        )
    try:
        return Shift(
            name=d["name"],
            start=_parse_time(d["start"], f"{field}.start"),
            end=_parse_time(d["end"], f"{field}.end"),
            weekdays=weekdays,
            breaks=tuple(breaks),
        )
    except InvalidInput as exc:
        if exc.field.startswith(field):
            raise
        raise InvalidInput(f"{field}.{exc.field}", exc.reason) from None


def parse_calendar(data: object, field: str = "calendar") -> ShiftCalendar:
    """Build a :class:`ShiftCalendar` from ``{timezone?, shifts, planned_stops?}``.

    Planned stop times without a zone are local to the calendar's time zone.

    Raises:
        InvalidInput: naming the offending field.
    """
    d = _check_keys(data, {"timezone", "shifts", "planned_stops"}, field)
    tz_name = d.get("timezone", DEFAULT_TIMEZONE)
    if not isinstance(tz_name, str):
        raise InvalidInput(f"{field}.timezone", "must be an IANA zone name")
    try:
        zone = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{field}.timezone", f"unknown time zone {tz_name!r}") from None
    shifts = tuple(
        parse_shift(s, f"{field}.shifts[{i}]") for i, s in enumerate(_list(d, "shifts", field))
    )
    stops = []
    for i, s in enumerate(_list(d, "planned_stops", field)):
        sf = f"{field}.planned_stops[{i}]"
        sd = _check_keys(s, {"start", "end", "reason"}, sf)
        for key in ("start", "end"):
            if key not in sd:
                raise InvalidInput(f"{sf}.{key}", "is required")
        start = _parse_datetime(sd["start"], zone, f"{sf}.start")
        end = _parse_datetime(sd["end"], zone, f"{sf}.end")
        if end <= start:
            raise InvalidInput(f"{sf}.end", "must be after start")
        stops.append(PlannedStop(start_us=start, end_us=end, reason=str(sd.get("reason", ""))))
    try:
        return ShiftCalendar(shifts=shifts, planned_stops=tuple(stops), timezone=tz_name)
    except InvalidInput as exc:
        raise InvalidInput(f"{field}.{exc.field}", exc.reason) from None


_SOURCE_KEYS = ("state_from", "counts_from", "state_event", "part_event")


def _parse_station(data: object, field: str) -> Station:
    keys = {"id", "name", "ideal_cycle_s", "micro_stop_s", *_SOURCE_KEYS}
    d = _check_keys(data, keys, field)
    if "id" not in d:
        raise InvalidInput(f"{field}.id", "is required")
    prefix = f"{field}."
    cycle = _num(d, "ideal_cycle_s", prefix, None)
    micro = _num(d, "micro_stop_s", prefix, DEFAULT_MICRO_STOP_S)
    try:
        return Station(
            id=d["id"],
            name=str(d.get("name", "")),
            ideal_cycle_s=cycle,
            micro_stop_s=micro,
            state_from=d.get("state_from", "measurement"),
            counts_from=d.get("counts_from", "measurement"),
            state_event=d.get("state_event", DEFAULT_STATE_EVENT),
            part_event=d.get("part_event", DEFAULT_PART_EVENT),
        )
    except InvalidInput as exc:
        raise InvalidInput(f"{prefix}{exc.field}", exc.reason) from None


def parse_site(data: object) -> Site:
    """Build a :class:`Site` from ``{id, name?, calendar, lines: [{id, stations, ...}]}``.

    Raises:
        InvalidInput: naming the offending field, e.g. ``lines[0].stations[2].ideal_cycle_s``.
    """
    d = _check_keys(data, {"id", "name", "calendar", "lines"}, "")
    for key in ("id", "calendar", "lines"):
        if key not in d:
            raise InvalidInput(key, "is required")
    calendar = parse_calendar(d["calendar"])
    lines = []
    for i, raw in enumerate(_list(d, "lines", "")):
        lf = f"lines[{i}]"
        ld = _check_keys(raw, {"id", "name", "stations", "bottleneck"}, lf)
        if "id" not in ld:
            raise InvalidInput(f"{lf}.id", "is required")
        stations = tuple(
            _parse_station(s, f"{lf}.stations[{j}]")
            for j, s in enumerate(_list(ld, "stations", lf))
        )
        try:
            lines.append(
                Line(
                    id=ld["id"],
                    name=str(ld.get("name", "")),
                    stations=stations,
                    bottleneck=ld.get("bottleneck"),
                )
            )
        except InvalidInput as exc:
            raise InvalidInput(f"{lf}.{exc.field}", exc.reason) from None
    return Site(id=d["id"], name=str(d.get("name", "")), lines=tuple(lines), calendar=calendar)


def parse_site_yaml(text: str) -> Site:
    """Parse a site definition from YAML text (see :func:`parse_site`).

    Raises:
        InvalidInput: malformed YAML or an invalid field.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInput("", f"malformed YAML: {exc}") from exc
    return parse_site(data)


__all__ = [
    "DEFAULT_MICRO_STOP_S",
    "DEFAULT_PART_EVENT",
    "DEFAULT_STATE_EVENT",
    "DEFAULT_TIMEZONE",
    "SOURCES",
    "STATE_ORDER",
    "Break",
    "CalendarPeriods",
    "Line",
    "PlannedStop",
    "Shift",
    "ShiftCalendar",
    "Site",
    "Station",
    "StationState",
    "parse_calendar",
    "parse_shift",
    "parse_site",
    "parse_site_yaml",
]
