import re

import pytest
import yaml

from ironbridge.model import DType, InvalidInput
from ironbridge.sim import (
    MachineKind,
    builtin_asset_type_texts,
    is_valid_vin,
    load_builtin_asset_types,
    plan_fleet,
    vin_check_digit,
)


def test_builtin_types_parse_and_match_the_brief():
    types = {t.name: t for t in load_builtin_asset_types()}
    assert set(types) == {"heavy_truck", "excavator", "genset"}
    truck = types["heavy_truck"]
    expected_units = {
        "engine_speed": ("rpm", "SPN 190"),
        "engine_load": ("%", "SPN 92"),
        "coolant_temp": ("°C", "SPN 110"),
        "oil_pressure": ("kPa", "SPN 100"),
        "fuel_rate": ("L/h", "SPN 183"),
        "vehicle_speed": ("km/h", "SPN 84"),
        "engine_hours": ("h", "SPN 247"),
        "odometer": ("km", "SPN 245"),
        "fuel_level": ("%", "SPN 96"),
        "battery_voltage": ("V", "SPN 168"),
    }
    for name, (unit, spn) in expected_units.items():
        m = truck.measurement(name)
        assert m is not None, name
        assert m.unit == unit
        assert spn in m.description
    assert truck.measurement("heading") is not None
    assert [a.name for a in truck.attributes if a.required] == ["vin"]
    exc = types["excavator"]
    assert exc.measurement("working").dtype is DType.BOOL
    assert exc.measurement("hydraulic_pressure").unit == "bar"
    gen = types["genset"]
    assert gen.measurement("running").dtype is DType.BOOL
    assert gen.measurement("frequency").unit == "Hz"
    # ranges catch garbage
    assert truck.measurement("coolant_temp").check(400.0) is not None
    assert truck.measurement("engine_speed").check(-1.0) is not None
    assert gen.measurement("power_factor").check(1.5) is not None


def test_raw_yaml_texts_are_shipped():
    texts = builtin_asset_type_texts()
    assert set(texts) == {"heavy_truck.yaml", "excavator.yaml", "genset.yaml"}
    for text in texts.values():
        assert isinstance(yaml.safe_load(text), dict)


def test_vin_check_digit_known_example():
    # The textbook example VIN with check digit X.
    assert vin_check_digit("1M8GDM9AXKP042788") == "X"
    assert is_valid_vin("1M8GDM9AXKP042788")
    assert not is_valid_vin("1M8GDM9A1KP042788")
    assert not is_valid_vin("1M8GDM9AXKP04278")  # 16 characters
    assert not is_valid_vin("IM8GDM9AXKP042788")  # I is not allowed
    with pytest.raises(InvalidInput):
        vin_check_digit("short")


def test_generated_vins_are_valid_and_distinct():
    plan = plan_fleet(200, 0, 0, seed=3)
    vins = [d.attributes["vin"] for d in plan.devices]
    assert len(set(vins)) == 200
    for vin in vins:
        assert re.fullmatch(r"[0-9A-HJ-NPR-Z]{17}", vin)
        assert is_valid_vin(vin)


def test_plan_ids_attributes_and_type_schema():
    types = {t.name: t for t in load_builtin_asset_types()}
    plan = plan_fleet(12, 5, 3, seed=1)
    assert plan.count(MachineKind.TRUCK) == 12
    assert plan.of_kind(MachineKind.EXCAVATOR)[0].device_id == "excavator-0001"
    assert plan.of_kind(MachineKind.GENSET)[-1].device_id == "genset-0003"
    ids = [d.device_id for d in plan.devices]
    assert len(set(ids)) == len(ids)
    for d in plan.devices:
        assert d.asset_id == d.device_id
        types[d.type_name].check_attributes(dict(d.attributes))
        assert d.attributes["province"] == "Shandong"
    assert plan_fleet(12, 5, 3, seed=1) == plan
    prefixed = plan_fleet(1, 0, 0, prefix="acme-")
    assert prefixed.devices[0].device_id == "acme-truck-0001"
    with pytest.raises(InvalidInput):
        plan_fleet(1, 0, 0, prefix="bad.prefix")
    with pytest.raises(InvalidInput):
        plan_fleet(-1)
