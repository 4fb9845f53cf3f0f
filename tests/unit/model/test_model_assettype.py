"""Asset types parse from plain data and check values and attributes."""

import math

import pytest

from ironbridge.model import AttrType, DType, InvalidInput, check_id, check_name, parse_asset_type

GOOD = {
    "name": "genset",
    "version": 2,
    "description": "diesel generator set",
    "measurements": [
        {"name": "kw_load", "unit": "kW", "min": 0, "max": 2000},
        {"name": "running", "dtype": "bool"},
        {"name": "starts", "dtype": "int", "min": 0},
    ],
    "attributes": [
        {"name": "serial", "required": True},
        {"name": "rated_kw", "type": "number"},
    ],
}


def test_parse_and_round_trip() -> None:
    t = parse_asset_type(GOOD)
    assert t.name == "genset"
    assert t.version == 2
    kw = t.measurement("kw_load")
    assert kw is not None
    assert (kw.unit, kw.min, kw.max, kw.dtype) == ("kW", 0.0, 2000.0, DType.FLOAT)
    assert t.attributes[1].type is AttrType.NUMBER
    assert parse_asset_type(t.to_dict()) == t
    assert t.measurement("nope") is None


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"name": "bad name"}, "name", "letters, digits"),
        ({"version": 0}, "version", "positive integer"),
        ({"measurements": "x"}, "measurements", "must be a list"),
        ({"measurements": [{"name": "Rpm"}]}, "measurements[0].name", "lower snake case"),
        ({"measurements": [{"name": "a"}, {"name": "a"}]}, "measurements[1].name", "duplicate"),
        ({"measurements": [{"name": "a", "min": "low"}]}, "measurements[0].min", "number"),
        ({"measurements": [{"name": "a", "min": 5, "max": 1}]}, "measurements[0].min", "greater"),
        ({"measurements": [{"name": "a", "dtype": "text"}]}, "measurements[0].dtype", "one of"),
        ({"attributes": [{"name": "a", "type": "date"}]}, "attributes[0].type", "one of"),
        ({"attributes": [3]}, "attributes[0]", "mapping"),
    ],
)
def test_bad_definitions_name_the_field(change: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_asset_type({**GOOD, **change})
    assert info.value.field == field
    assert reason in info.value.reason


def test_measurement_check() -> None:
    t = parse_asset_type(GOOD)
    kw, running, starts = (t.measurement(n) for n in ("kw_load", "running", "starts"))
    assert kw is not None
    assert running is not None
    assert starts is not None
    assert kw.check(10.5) is None
    assert "above" in (kw.check(2001) or "")
    assert "below" in (kw.check(-1) or "")
    assert "finite" in (kw.check(math.nan) or "")
    assert "boolean" in (kw.check(True) or "")
    assert "expected float" in (kw.check("1") or "")
    assert running.check(True) is None
    assert running.check(1) is None
    assert "boolean" in (running.check(2) or "")
    assert starts.check(3) is None
    assert "integer" in (starts.check(2.5) or "")
    assert "integer" in (starts.check(False) or "")


def test_attribute_schema() -> None:
    t = parse_asset_type(GOOD)
    t.check_attributes({"serial": "S1", "rated_kw": 500})
    with pytest.raises(InvalidInput, match="required") as info:
        t.check_attributes({"rated_kw": 1})
    assert info.value.field == "attributes.serial"
    with pytest.raises(InvalidInput) as info:
        t.check_attributes({"serial": "S1", "rated_kw": "big"})
    assert info.value.field == "attributes.rated_kw"


@pytest.mark.parametrize("bad", ["", "a.b", "a b", "a/b", "a*", "a>", "a+b", "#", "-a", "x" * 129])
def test_ids_that_would_break_mqtt_topics_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_id(bad)


def test_valid_ids_and_names() -> None:
    assert check_id("truck-0001_A") == "truck-0001_A"
    assert check_name("coolant_temp") == "coolant_temp"
    with pytest.raises(InvalidInput):
        check_name("Coolant")
