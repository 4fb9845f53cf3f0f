"""The fleet plan: which simulated machines exist, their ids, types and attributes."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from ironbridge.model import InvalidInput, check_id
from ironbridge.sim.roads import CITIES, ROADS

_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_ALPHABET = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q


class MachineKind(StrEnum):
    """Kind of simulated machine; the value is the asset type name."""

    TRUCK = "heavy_truck"
    EXCAVATOR = "excavator"
    GENSET = "genset"


_PREFIX = {
    MachineKind.TRUCK: "truck",
    MachineKind.EXCAVATOR: "excavator",
    MachineKind.GENSET: "genset",
}


def vin_check_digit(vin: str) -> str:
    """Return the ISO 3779 / GB 16735 check digit (position 9) for a 17-character VIN.

    Raises:
        InvalidInput: if ``vin`` is not 17 characters of the VIN alphabet.
    """
    if len(vin) != 17 or any(c not in _VIN_VALUES for c in vin.upper()):
        raise InvalidInput("vin", "must be 17 characters of 0-9 and A-Z without I, O, Q")
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin.upper(), _VIN_WEIGHTS, strict=True))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def is_valid_vin(vin: str) -> bool:
    """Return True if ``vin`` is well formed and its check digit matches."""
    try:
        return vin_check_digit(vin) == vin[8].upper()
    except InvalidInput:
        return False


def make_vin(rng: random.Random, *, wmi: str = "LZZ", model_year: str = "R") -> str:
    """Return a random, valid VIN with world manufacturer id ``wmi`` and year code."""
    vds = "".join(rng.choice(_VIN_ALPHABET[10:]) for _ in range(5))
    plant = rng.choice("ABCDEFGH")
    serial = f"{rng.randrange(1_000_000):06d}"
    draft = f"{wmi}{vds}0{model_year}{plant}{serial}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


@dataclass(frozen=True, slots=True, kw_only=True)
class SimDevice:
    """One simulated machine: its device identity, asset and registry attributes."""

    device_id: str
    asset_id: str
    kind: MachineKind
    attributes: Mapping[str, str] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        """Asset type name of this machine."""
        return self.kind.value


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetPlan:
    """The whole simulated fleet, as the registry must know it before devices connect.

    ``routes[i]`` is the road index of truck ``i``; ``sites[i]`` the (lat, lon) of
    excavator or genset ``i`` of that kind.
    """

    devices: tuple[SimDevice, ...]
    seed: int = 0
    truck_roads: tuple[int, ...] = ()
    excavator_sites: tuple[tuple[float, float], ...] = ()
    genset_sites: tuple[tuple[float, float], ...] = ()

    def of_kind(self, kind: MachineKind) -> tuple[SimDevice, ...]:
        """Return the devices of one kind, in index order."""
        return tuple(d for d in self.devices if d.kind is kind)

    def count(self, kind: MachineKind) -> int:
        """Return how many machines of ``kind`` the plan holds."""
        return sum(1 for d in self.devices if d.kind is kind)


_TRUCK_MODELS = ("IB-H460 6x4 tractor", "IB-H540 6x4 tractor", "IB-H400 8x4 dump", "IB-H350 6x2")
_EXC_MODELS = ("IB-E215 21 t", "IB-E245 24 t", "IB-E360 36 t", "IB-E135 13 t")
_GEN_MODELS = ("IB-G250 250 kW", "IB-G400 400 kW", "IB-G500 500 kW", "IB-G800 800 kW")
_TRUCK_CUSTOMERS = (
    "Qilu Freight Co.",
    "Jiaodong Logistics",
    "Yellow River Haulage",
    "Huanghai Port Transport",
    "Taishan Cold Chain",
)
_SITE_CUSTOMERS = (
    "Shandong Road & Bridge Group",
    "Jinan Metro Builders",
    "Qingdao Harbour Works",
    "Lunan Mining Co.",
    "Bohai Rim Construction",
)
_GEN_RATED_KW = (250.0, 400.0, 500.0, 800.0)


def genset_rated_kw(device: SimDevice) -> float:
    """Return the rated power (kW) of a simulated genset from its model attribute."""
    model = device.attributes.get("model", "")
    return _GEN_RATED_KW[_GEN_MODELS.index(model)] if model in _GEN_MODELS else 400.0


def plan_fleet(
    trucks: int = 200,
    excavators: int = 50,
    gensets: int = 20,
    *,
    seed: int = 0,
    prefix: str = "",
) -> FleetPlan:
    """Build a deterministic fleet plan: ids ``truck-0001``..., attributes, routes, sites.

    Device ids equal asset ids (``prefix`` + ``truck-0001``). Trucks get valid VINs;
    every machine gets a serial, model, customer, province and city.

    Raises:
        InvalidInput: if a count is negative or ``prefix`` makes an invalid id.
    """
    if prefix:
        check_id(f"{prefix}truck-0001", "prefix")
    for name, n in (("trucks", trucks), ("excavators", excavators), ("gensets", gensets)):
        if n < 0:
            raise InvalidInput(name, "must be zero or more")
    rng = random.Random(seed)  # noqa: S311 (simulation, not security)
    city_names = list(CITIES)
    devices: list[SimDevice] = []
    roads: list[int] = []
    for i in range(trucks):
        road = i % len(ROADS)
        roads.append(road)
        home = ROADS[road].start_city if rng.random() < 0.5 else ROADS[road].end_city
        model_i = rng.randrange(len(_TRUCK_MODELS))
        devices.append(
            _device(
                prefix,
                MachineKind.TRUCK,
                i,
                {
                    "vin": make_vin(rng, model_year=rng.choice("MNPRS")),
                    "serial": f"D13-{rng.randrange(10**8):08d}",
                    "model": _TRUCK_MODELS[model_i],
                    "customer": rng.choice(_TRUCK_CUSTOMERS),
                    "province": "Shandong",
                    "city": home,
                },
            )
        )
    exc_sites: list[tuple[float, float]] = []
    for i in range(excavators):
        city = city_names[i % len(city_names)]
        exc_sites.append(_near(rng, CITIES[city], 4.0, 15.0))
        devices.append(
            _device(
                prefix,
                MachineKind.EXCAVATOR,
                i,
                {
                    "serial": f"EX{rng.randrange(10**9):09d}",
                    "model": rng.choice(_EXC_MODELS),
                    "customer": rng.choice(_SITE_CUSTOMERS),
                    "province": "Shandong",
                    "city": city,
                },
            )
        )
    gen_sites: list[tuple[float, float]] = []
    for i in range(gensets):
        city = city_names[(i * 5) % len(city_names)]
        gen_sites.append(_near(rng, CITIES[city], 2.0, 20.0))
        devices.append(
            _device(
                prefix,
                MachineKind.GENSET,
                i,
                {
                    "serial": f"GS{rng.randrange(10**9):09d}",
                    "model": _GEN_MODELS[i % len(_GEN_MODELS)],
                    "customer": rng.choice(_SITE_CUSTOMERS),
                    "province": "Shandong",
                    "city": city,
                },
            )
        )
    return FleetPlan(
        devices=tuple(devices),
        seed=seed,
        truck_roads=tuple(roads),
        excavator_sites=tuple(exc_sites),
        genset_sites=tuple(gen_sites),
    )


def _device(prefix: str, kind: MachineKind, index: int, attributes: dict[str, str]) -> SimDevice:
    dev_id = f"{prefix}{_PREFIX[kind]}-{index + 1:04d}"
    return SimDevice(device_id=dev_id, asset_id=dev_id, kind=kind, attributes=attributes)


def _near(
    rng: random.Random, centre: tuple[float, float], min_km: float, max_km: float
) -> tuple[float, float]:
    d = rng.uniform(min_km, max_km)
    a = rng.uniform(0, 2 * math.pi)
    lat = centre[0] + d * math.cos(a) / 110.57
    lon = centre[1] + d * math.sin(a) / (111.32 * math.cos(math.radians(centre[0])))
    return (round(lat, 6), round(lon, 6))


__all__ = [
    "FleetPlan",
    "MachineKind",
    "SimDevice",
    "genset_rated_kw",
    "is_valid_vin",
    "make_vin",
    "plan_fleet",
    "vin_check_digit",
]
