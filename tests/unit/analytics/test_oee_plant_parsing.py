"""Plant model parsing from YAML / dicts, with errors naming the field."""

from __future__ import annotations

from datetime import time

import pytest

from ironbridge.analytics.plant import StationState, parse_site, parse_site_yaml
from ironbridge.model import InvalidInput

SITE_YAML = """
id: plant-1
name: Body shop
calendar:
  timezone: Asia/Shanghai
  shifts:
    - {name: day, start: "08:00", end: "20:00", weekdays: [mon, tue, wed, thu, fri],
       breaks: [{start: "12:00", end: "12:45", name: lunch}]}
    - {name: night, start: "20:00", end: "08:00",
       breaks: [{start: "00:00", end: "00:45"}]}
  planned_stops:
    - {start: "2024-05-01T00:00", end: "2024-05-02T00:00", reason: labour day}
lines:
  - id: press-line
    stations:
      - {id: press-1, ideal_cycle_s: 6}
      - {id: press-2, ideal_cycle_s: 7.5, micro_stop_s: 60}
"""


def test_parse_site_yaml() -> None:
    site = parse_site_yaml(SITE_YAML)
    assert site.id == "plant-1"
    cal = site.calendar
    assert cal.timezone == "Asia/Shanghai"
    day, night = cal.shifts
    assert day.weekdays == frozenset({0, 1, 2, 3, 4})
    assert day.breaks[0].start == time(12)
    assert day.breaks[0].name == "lunch"
    assert night.crosses_midnight
    assert not day.crosses_midnight
    # 2024-05-01 00:00 Shanghai = 2024-04-30T16:00Z
    assert cal.planned_stops[0].start_us == 1_714_492_800_000_000
    line = site.lines[0]
    assert [s.id for s in site.stations] == ["press-1", "press-2"]
    assert line.bottleneck_station.id == "press-2"
    assert site.stations[1].micro_stop_s == 60
    assert StationState("planned_stop").code == 3


def _site(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": "p",
        "calendar": {"shifts": [{"name": "a", "start": "06:00", "end": "14:00"}]},
        "lines": [{"id": "l", "stations": [{"id": "s", "ideal_cycle_s": 5}]}],
    }
    base.update(over)
    return base


@pytest.mark.parametrize(
    ("site", "field"),
    [
        (
            _site(lines=[{"id": "l", "stations": [{"id": "s", "ideal_cycle_s": -1}]}]),
            "lines[0].stations[0].ideal_cycle_s",
        ),
        (
            _site(lines=[{"id": "l", "stations": [{"id": "s"}]}]),
            "lines[0].stations[0].ideal_cycle_s",
        ),
        (
            _site(
                lines=[
                    {"id": "l", "stations": [{"id": "s", "ideal_cycle_s": 1}], "bottleneck": "x"}
                ]
            ),
            "lines[0].bottleneck",
        ),
        (
            _site(calendar={"shifts": [{"name": "a", "start": "25:00", "end": "14:00"}]}),
            "calendar.shifts[0].start",
        ),
        (
            _site(calendar={"shifts": [{"name": "a", "start": 360, "end": "14:00"}]}),
            "calendar.shifts[0].start",
        ),
        (
            _site(
                calendar={
                    "shifts": [
                        {
                            "name": "a",
                            "start": "06:00",
                            "end": "14:00",
                            "breaks": [{"start": "15:00", "end": "15:30"}],
                        }
                    ]
                }
            ),
            "calendar.shifts[0].breaks[0]",
        ),
        (
            _site(
                calendar={
                    "shifts": [
                        {"name": "a", "start": "06:00", "end": "14:00", "weekdays": ["funday"]}
                    ]
                }
            ),
            "calendar.shifts[0].weekdays[0]",
        ),
        (_site(calendar={"timezone": "Mars/Olympus", "shifts": []}), "calendar.timezone"),
        (_site(calendar={"shifts": []}), "calendar.shifts"),
        (
            _site(
                calendar={
                    "shifts": [{"name": "a", "start": "06:00", "end": "14:00"}],
                    "planned_stops": [{"start": "2024-05-02", "end": "2024-05-01"}],
                }
            ),
            "calendar.planned_stops[0].end",
        ),
        (_site(colour="red"), "colour"),
    ],
)
def test_invalid_site_names_the_field(site: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_site(site)
    assert err.value.field == field


def test_overlapping_shifts_are_rejected() -> None:
    site = parse_site(
        _site(
            calendar={
                "shifts": [
                    {"name": "a", "start": "06:00", "end": "14:00"},
                    {"name": "b", "start": "13:00", "end": "21:00"},
                ]
            }
        )
    )
    with pytest.raises(InvalidInput) as err:
        site.calendar.periods(1_714_492_800_000_000, 1_714_492_800_000_000 + 86_400_000_000)
    assert err.value.field == "shifts"


def test_malformed_yaml() -> None:
    with pytest.raises(InvalidInput):
        parse_site_yaml("id: [unclosed")
