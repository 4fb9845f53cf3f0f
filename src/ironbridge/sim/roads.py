"""An embedded road network of Shandong: expressway corridors, cities and rest areas."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088
#: Shandong's bounding box (lat_min, lat_max, lon_min, lon_max), with a small margin.
SHANDONG_BBOX: tuple[float, float, float, float] = (34.4, 38.4, 114.8, 122.7)

#: City centres (lat, lon), WGS-84, rounded to about 1 km.
CITIES: dict[str, tuple[float, float]] = {
    "Jinan": (36.651, 117.120),
    "Qingdao": (36.067, 120.383),
    "Yantai": (37.464, 121.448),
    "Weifang": (36.707, 119.162),
    "Zibo": (36.813, 118.055),
    "Linyi": (35.104, 118.356),
    "Jining": (35.415, 116.587),
    "Tai'an": (36.200, 117.088),
    "Rizhao": (35.417, 119.527),
    "Dezhou": (37.435, 116.359),
    "Liaocheng": (36.457, 115.985),
    "Heze": (35.234, 115.481),
    "Binzhou": (37.382, 117.971),
    "Dongying": (37.434, 118.675),
    "Weihai": (37.513, 122.121),
    "Zaozhuang": (34.810, 117.323),
}

# Hand-written key waypoints (lat, lon) of the main freight corridors, approximately
# following the expressways named; densified to about 3 km spacing by ``_densify``.
# fmt: off
_CORRIDORS: dict[str, tuple[str, str, tuple[tuple[float, float], ...]]] = {
    "G20 Jinan-Qingdao": ("Jinan", "Qingdao", (
        (36.668, 117.060), (36.700, 117.300), (36.712, 117.540), (36.760, 117.800),
        (36.795, 118.020), (36.760, 118.250), (36.700, 118.480), (36.690, 118.800),
        (36.705, 119.120), (36.560, 119.450), (36.390, 119.750), (36.290, 120.020),
        (36.200, 120.250), (36.095, 120.370),
    )),
    "G3 Dezhou-Jinan-Zaozhuang": ("Dezhou", "Zaozhuang", (
        (37.420, 116.370), (37.230, 116.500), (36.960, 116.640), (36.800, 116.790),
        (36.640, 116.930), (36.450, 117.020), (36.220, 117.100), (35.980, 117.000),
        (35.760, 116.860), (35.590, 116.990), (35.400, 117.000), (35.200, 117.080),
        (35.060, 117.170), (34.900, 117.260), (34.830, 117.310),
    )),
    "G35 Jinan-Heze": ("Jinan", "Heze", (
        (36.640, 116.960), (36.500, 116.700), (36.300, 116.460), (36.100, 116.430),
        (35.930, 116.450), (35.790, 116.130), (35.600, 115.950), (35.420, 115.720),
        (35.250, 115.500),
    )),
    "G18 Weihai-Yantai-Dongying-Dezhou": ("Weihai", "Dezhou", (
        (37.500, 122.080), (37.440, 121.800), (37.420, 121.560), (37.470, 121.380),
        (37.560, 121.050), (37.610, 120.700), (37.570, 120.450), (37.360, 120.380),
        (37.180, 119.960), (37.000, 119.600), (36.930, 119.250), (36.900, 118.800),
        (37.050, 118.450), (37.300, 118.550), (37.420, 118.640), (37.400, 118.300),
        (37.380, 117.980), (37.470, 117.520), (37.330, 117.150), (37.260, 116.850),
        (37.440, 116.370),
    )),
    "G15 Yantai-Qingdao-Rizhao": ("Yantai", "Rizhao", (
        (37.440, 121.400), (37.250, 121.050), (36.980, 120.710), (36.700, 120.550),
        (36.400, 120.450), (36.200, 120.400), (36.080, 120.300), (35.960, 120.100),
        (35.860, 119.980), (35.700, 119.800), (35.550, 119.620), (35.430, 119.520),
    )),
    "G2 Jinan-Linyi": ("Jinan", "Linyi", (
        (36.620, 117.150), (36.450, 117.400), (36.220, 117.650), (35.920, 117.760),
        (35.710, 117.950), (35.500, 117.980), (35.280, 117.990), (35.120, 118.320),
    )),
    "G1511 Rizhao-Linyi-Jining-Heze": ("Rizhao", "Heze", (
        (35.410, 119.450), (35.300, 119.150), (35.170, 118.830), (35.110, 118.380),
        (35.300, 118.000), (35.500, 117.640), (35.660, 117.250), (35.590, 116.990),
        (35.420, 116.600), (35.400, 116.340), (35.390, 116.090), (35.300, 115.800),
        (35.240, 115.490),
    )),
    "G25 Binzhou-Zibo-Linyi": ("Binzhou", "Linyi", (
        (37.370, 117.980), (37.150, 118.130), (36.950, 118.100), (36.810, 118.050),
        (36.490, 117.860), (36.180, 118.170), (35.790, 118.630), (35.550, 118.460),
        (35.300, 118.400), (35.120, 118.360),
    )),
    "G0321 Jinan-Liaocheng": ("Jinan", "Liaocheng", (
        (36.650, 116.980), (36.620, 116.650), (36.580, 116.300), (36.470, 116.000),
    )),
    "S16 Weifang-Rizhao": ("Weifang", "Rizhao", (
        (36.690, 119.170), (36.480, 119.220), (36.250, 119.350), (36.000, 119.410),
        (35.750, 119.210), (35.560, 119.400), (35.420, 119.510),
    )),
}
# fmt: on

_REST_SPACING_KM = 45.0
_STEP_KM = 3.0


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in km between points given in degrees (broadcasts)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a)), dtype=np.float64)


def bearing_deg(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Initial great-circle bearing in degrees [0, 360) from point 1 to point 2."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2) - np.radians(lon1)
    y = np.sin(dl) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dl)
    return np.asarray(np.degrees(np.arctan2(y, x)) % 360.0, dtype=np.float64)


def _densify(points: tuple[tuple[float, float], ...]) -> npt.NDArray[np.float64]:
    out: list[tuple[float, float]] = [points[0]]
    for (la1, lo1), (la2, lo2) in itertools.pairwise(points):
        seg = float(haversine_km(la1, lo1, la2, lo2))
        n = max(1, math.ceil(seg / _STEP_KM))
        out.extend((la1 + (la2 - la1) * k / n, lo1 + (lo2 - lo1) * k / n) for k in range(1, n + 1))
    return np.array(out, dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class Road:
    """One corridor: a polyline with cumulative distances and rest areas."""

    name: str
    start_city: str
    end_city: str
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    #: Cumulative distance (km) of each waypoint from the start.
    cum_km: npt.NDArray[np.float64]
    #: Positions (km from the start) of rest areas, excluding both ends.
    rest_km: npt.NDArray[np.float64]

    @property
    def length_km(self) -> float:
        """Total length of the corridor in km."""
        return float(self.cum_km[-1])


def _build_road(name: str, start: str, end: str, pts: tuple[tuple[float, float], ...]) -> Road:
    dense = _densify(pts)
    lat, lon = dense[:, 0], dense[:, 1]
    seg = haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:])
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    n_rest = int(cum[-1] // _REST_SPACING_KM)
    rest = np.linspace(0.0, cum[-1], n_rest + 2)[1:-1] if n_rest > 0 else np.empty(0)
    return Road(
        name=name, start_city=start, end_city=end, lat=lat, lon=lon, cum_km=cum, rest_km=rest
    )


#: The embedded road network, in a fixed order (road index = position in this tuple).
ROADS: tuple[Road, ...] = tuple(_build_road(n, s, e, p) for n, (s, e, p) in _CORRIDORS.items())


class RoadNetwork:
    """All roads laid end to end, so many vehicles are interpolated in one numpy call."""

    def __init__(self, roads: tuple[Road, ...] = ROADS) -> None:
        self.roads = roads
        self.lengths = np.array([r.length_km for r in roads])
        gap = 1.0  # km between roads on the global axis, so no segment spans two roads
        self.offsets = np.concatenate(([0.0], np.cumsum(self.lengths + gap)[:-1]))
        self._cum = np.concatenate([r.cum_km + o for r, o in zip(roads, self.offsets, strict=True)])
        self._lat = np.concatenate([r.lat for r in roads])
        self._lon = np.concatenate([r.lon for r in roads])
        self._last = np.cumsum([len(r.cum_km) for r in roads]) - 1

    def locate(
        self, road: npt.NDArray[np.int64], s_km: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Return (lat, lon, bearing of the road's forward direction) at ``s_km`` along ``road``.

        Positions are linear interpolations between waypoints by distance travelled.
        """
        s = np.clip(s_km, 0.0, self.lengths[road])
        g = self.offsets[road] + s
        i = np.searchsorted(self._cum, g, side="right") - 1
        i = np.minimum(i, self._last[road] - 1)
        c0, c1 = self._cum[i], self._cum[i + 1]
        f = np.clip((g - c0) / np.maximum(c1 - c0, 1e-9), 0.0, 1.0)
        lat = self._lat[i] + f * (self._lat[i + 1] - self._lat[i])
        lon = self._lon[i] + f * (self._lon[i + 1] - self._lon[i])
        brg = bearing_deg(self._lat[i], self._lon[i], self._lat[i + 1], self._lon[i + 1])
        return lat, lon, brg

    def distance_to_road_km(self, road: int, lat: float, lon: float) -> float:
        """Approximate distance (km) from a point to the polyline of ``road``."""
        r = self.roads[road]
        kx = math.cos(math.radians(lat)) * 111.32  # km per degree of longitude here
        ky = 110.57
        ax, ay = (r.lon[:-1] - lon) * kx, (r.lat[:-1] - lat) * ky
        bx, by = (r.lon[1:] - lon) * kx, (r.lat[1:] - lat) * ky
        dx, dy = bx - ax, by - ay
        t = np.clip(-(ax * dx + ay * dy) / np.maximum(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
        px, py = ax + t * dx, ay + t * dy
        return float(np.min(np.hypot(px, py)))


def nearest_city(lat: float, lon: float) -> str:
    """Return the name of the city in :data:`CITIES` closest to (lat, lon)."""
    names = list(CITIES)
    la = np.array([CITIES[n][0] for n in names])
    lo = np.array([CITIES[n][1] for n in names])
    return names[int(np.argmin(haversine_km(lat, lon, la, lo)))]


def in_shandong(lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return whether each point lies inside :data:`SHANDONG_BBOX`."""
    la0, la1, lo0, lo1 = SHANDONG_BBOX
    la, lo = np.asarray(lat), np.asarray(lon)
    return np.asarray((la >= la0) & (la <= la1) & (lo >= lo0) & (lo <= lo1))


__all__ = [
    "CITIES",
    "ROADS",
    "SHANDONG_BBOX",
    "Road",
    "RoadNetwork",
    "bearing_deg",
    "haversine_km",
    "in_shandong",
    "nearest_city",
]
