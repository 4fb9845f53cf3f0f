"""Asset types: the measurements and attributes every asset of a type shares."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from ironbridge.model.errors import InvalidInput
from ironbridge.model.ids import check_id, check_name


class DType(StrEnum):
    """Value type of a measurement; all are stored as float64 points."""

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"


class AttrType(StrEnum):
    """Type of an asset attribute."""

    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    """One measured quantity of an asset type."""

    name: str
    unit: str = ""
    dtype: DType = DType.FLOAT
    min: float | None = None
    max: float | None = None
    description: str = ""

    def check(self, value: object) -> str | None:
        """Return why ``value`` is not acceptable for this measurement, or ``None``."""
        if isinstance(value, bool):
            if self.dtype is DType.BOOL:
                return None
            if self.dtype is DType.INT:
                return "expected an integer, got a boolean"
            return "expected a number, got a boolean"
        if not isinstance(value, (int, float)):
            return f"expected {self.dtype.value}, got {type(value).__name__}"
        if self.dtype is DType.BOOL:
            if value not in (0, 1):
                return "expected a boolean (true/false or 0/1)"
            return None
        if not math.isfinite(value):
            return "must be a finite number"
        if self.dtype is DType.INT and value != int(value):
            return "expected an integer"
        if self.min is not None and value < self.min:
            return f"{value} is below the valid range [{self.min}, {self.max}]"
        if self.max is not None and value > self.max:
            return f"{value} is above the valid range [{self.min}, {self.max}]"
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttributeSpec:
    """One attribute (VIN, model, customer, ...) of an asset type."""

    name: str
    type: AttrType = AttrType.STRING
    required: bool = False
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class AssetType:
    """A versioned asset type definition (usually written in YAML)."""

    name: str
    version: int = 1
    description: str = ""
    measurements: tuple[Measurement, ...] = ()
    attributes: tuple[AttributeSpec, ...] = ()
    _by_name: Mapping[str, Measurement] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {m.name: m for m in self.measurements})

    def measurement(self, name: str) -> Measurement | None:
        """Return the measurement called ``name``, or ``None``."""
        return self._by_name.get(name)

    def check_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidInput` if ``attributes`` break this type's schema."""
        specs = {a.name: a for a in self.attributes}
        for spec in self.attributes:
            if spec.required and attributes.get(spec.name) in (None, ""):
                raise InvalidInput(f"attributes.{spec.name}", "is required by the asset type")
        for key, value in attributes.items():
            found = specs.get(key)
            if found is None or value is None:
                continue
            ok = {
                AttrType.STRING: isinstance(value, str),
                AttrType.NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
                AttrType.INTEGER: isinstance(value, int) and not isinstance(value, bool),
                AttrType.BOOLEAN: isinstance(value, bool),
            }[found.type]
            if not ok:
                raise InvalidInput(f"attributes.{key}", f"expected {found.type.value}")

    def to_dict(self) -> dict[str, Any]:
        """Return the plain-data (YAML/JSON) form of this type."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "measurements": [
                {
                    k: v
                    for k, v in {
                        "name": m.name,
                        "unit": m.unit,
                        "dtype": m.dtype.value,
                        "min": m.min,
                        "max": m.max,
                        "description": m.description,
                    }.items()
                    if v not in (None, "")
                }
                for m in self.measurements
            ],
            "attributes": [
                {
                    k: v
                    for k, v in {
                        "name": a.name,
                        "type": a.type.value,
                        "required": a.required,
                        "description": a.description,
                    }.items()
                    if v not in (None, "")
                }
                for a in self.attributes
            ],
        }


def _number(raw: Mapping[str, Any], key: str, where: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where}.{key}", "must be a number")
    return float(value)


_E = TypeVar("_E", bound=StrEnum)


def _enum(kind: type[_E], raw: object, where: str, default: _E) -> _E:
    if raw is None:
        return default
    try:
        return kind(str(raw))
    except ValueError:
        allowed = ", ".join(e.value for e in kind)
        raise InvalidInput(where, f"{raw!r} is not one of: {allowed}") from None


def parse_asset_type(raw: Mapping[str, Any]) -> AssetType:
    """Build an :class:`AssetType` from its plain-data form, naming any bad field.

    Args:
        raw: mapping as loaded from YAML or JSON.

    Raises:
        InvalidInput: with the dotted path of the first offending field.
    """
    if not isinstance(raw, Mapping):
        raise InvalidInput("", "an asset type must be a mapping")
    name = check_id(str(raw.get("name", "")), "name")
    version = raw.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput("version", "must be a positive integer")
    measurements: list[Measurement] = []
    seen: set[str] = set()
    raw_ms = raw.get("measurements", [])
    if not isinstance(raw_ms, Sequence) or isinstance(raw_ms, str):
        raise InvalidInput("measurements", "must be a list")
    for i, m in enumerate(raw_ms):
        where = f"measurements[{i}]"
        if not isinstance(m, Mapping):
            raise InvalidInput(where, "must be a mapping")
        mname = check_name(str(m.get("name", "")), f"{where}.name")
        if mname in seen:
            raise InvalidInput(f"{where}.name", f"duplicate measurement {mname!r}")
        seen.add(mname)
        lo, hi = _number(m, "min", where), _number(m, "max", where)
        if lo is not None and hi is not None and lo > hi:
            raise InvalidInput(f"{where}.min", f"min {lo} is greater than max {hi}")
        measurements.append(
            Measurement(
                name=mname,
                unit=str(m.get("unit", "")),
                dtype=_enum(DType, m.get("dtype"), f"{where}.dtype", DType.FLOAT),
                min=lo,
                max=hi,
                description=str(m.get("description", "")),
            )
        )
    attributes: list[AttributeSpec] = []
    raw_as = raw.get("attributes", [])
    if not isinstance(raw_as, Sequence) or isinstance(raw_as, str):
        raise InvalidInput("attributes", "must be a list")
    for i, a in enumerate(raw_as):
        where = f"attributes[{i}]"
        if not isinstance(a, Mapping):
            raise InvalidInput(where, "must be a mapping")
        attributes.append(
            AttributeSpec(
                name=check_name(str(a.get("name", "")), f"{where}.name"),
                type=_enum(AttrType, a.get("type"), f"{where}.type", AttrType.STRING),
                required=bool(a.get("required", False)),
                description=str(a.get("description", "")),
            )
        )
    return AssetType(
        name=name,
        version=version,
        description=str(raw.get("description", "")),
        measurements=tuple(measurements),
        attributes=tuple(attributes),
    )
