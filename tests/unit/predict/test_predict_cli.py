"""``ironbridge predict``: running conditions parsed into the API body; the versions table."""

from __future__ import annotations

import pytest
import typer
from rich.console import Console

from ironbridge.predict_cli import _versions_table, parse_running


def test_running_conditions_parse_into_the_api_body() -> None:
    assert parse_running("") == []
    assert parse_running("engine_speed:700, coolant_temp:82.5") == [
        {"measurement": "engine_speed", "above": 700.0},
        {"measurement": "coolant_temp", "above": 82.5},
    ]
    # The threshold follows the last colon, and may be negative.
    assert parse_running("ambient:-5") == [{"measurement": "ambient", "above": -5.0}]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("engine_speed", "expected measurement:threshold"),
        (":700", "expected measurement:threshold"),
        ("engine_speed:fast", "not a number"),
        ("engine_speed:inf", "must be finite"),
        ("engine_speed:nan", "must be finite"),
    ],
)
def test_bad_running_conditions_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(typer.BadParameter, match=reason):
        parse_running(text)


def test_the_versions_table_names_the_assets_left_out() -> None:
    version = {
        "version": 2,
        "created_at": "2026-11-23T23:55:00+00:00",
        "metrics": {"assets": 50.0, "rows": 1550.0, "failures": 0.0},
        "has_rul": False,
        "anomaly_trim": {"excluded": [{"asset": "truck-0050"}, {"asset": "truck-0032"}]},
    }
    console = Console(record=True, width=300)
    console.print(_versions_table("heavy_truck", 2, [version, {**version, "anomaly_trim": None}]))
    text = console.export_text()
    assert "50 (2 left out: truck-0050, truck-0032)" in text
    assert text.count("left out") == 1
