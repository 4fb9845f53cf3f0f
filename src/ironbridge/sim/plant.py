"""Simulated stamping line and body shop served over real OPC UA and Modbus TCP servers.

The stamping line (three presses) is an asyncua server; the body shop (two welding
robots and an inspection station) is a pymodbus server; the final line (a rework
station) reports like an MES does, by events -- state changes (``station_state``) and
parts (``part``, good or scrap) -- which :class:`PlantSimulator` hands to a callback.
Every station runs a small state machine -- running cycles, jams, die changes
(presses), tip dressing (robots), fixture recalibration (inspection), idle starvation
-- with cumulative good/scrap counters, and a quality measure: press
force, weld current, and the inspection station's panel gap, which drifts slowly so
SPC has something to find.

Station measurements (asset type ``plant_station``): ``state`` (the code of
:class:`~ironbridge.analytics.plant.StationState`: 0 running, 1 idle, 2 down,
3 planned_stop, 4 setup), ``reason`` (a code of :data:`REASONS`, 0 none),
``good_count`` and ``scrap_count`` (cumulative counters, as a PLC holds them), plus
``press_force`` / ``weld_current`` / ``panel_gap``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ironbridge.codec.modbus import RegisterSpec, encode, parse_register_map

_LOGGER = logging.getLogger(__name__)

RUNNING, IDLE, DOWN, PLANNED, SETUP = 0, 1, 2, 3, 4
#: Stop reason codes the stations report (0 = none).
REASONS: dict[int, str] = {
    1: "jam",
    2: "die_change",
    3: "tip_dress",
    4: "starved",
    5: "sensor_fault",
    6: "material_shortage",
    7: "fixture_recalibration",
}
#: the inspection fixture is recalibrated (its drift reset) after this many parts
RECALIBRATE_AFTER = 600
NAMESPACE = "urn:ironbridge:sim:plant"

ASSET_TYPE_YAML = """\
name: plant_station
version: 1
description: A production station (press, robot, inspection) reporting state and counts.
measurements:
  - {name: state, unit: "", dtype: int, min: 0, max: 5, description: StationState code}
  - {name: reason, unit: "", dtype: int, min: 0, max: 1000, description: stop reason code}
  - {name: good_count, unit: parts, dtype: int, min: 0, description: cumulative good parts}
  - {name: scrap_count, unit: parts, dtype: int, min: 0, description: cumulative scrap}
  - {name: press_force, unit: kN, dtype: float, min: 0, max: 30000, description: peak force}
  - {name: weld_current, unit: kA, dtype: float, min: 0, max: 50, description: weld current}
  - {name: panel_gap, unit: mm, dtype: float, min: -10, max: 10, description: gap at the door}
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class StationSpec:
    """A simulated station.

    Attributes:
        id: station (and asset/device) id.
        line: line id.
        kind: ``press``, ``robot`` or ``inspection``.
        ideal_cycle_s: ideal cycle time.
        quality: name of the quality measurement.
        nominal: nominal quality value.
        noise: standard deviation of the quality value.
    """

    id: str
    line: str
    kind: str
    ideal_cycle_s: float
    quality: str
    nominal: float
    noise: float


STATIONS: tuple[StationSpec, ...] = (
    StationSpec(id="press-01", line="stamping", kind="press", ideal_cycle_s=4.0,
                quality="press_force", nominal=8000.0, noise=60.0),
    StationSpec(id="press-02", line="stamping", kind="press", ideal_cycle_s=4.0,
                quality="press_force", nominal=6000.0, noise=50.0),
    StationSpec(id="press-03", line="stamping", kind="press", ideal_cycle_s=5.0,
                quality="press_force", nominal=4000.0, noise=40.0),
    StationSpec(id="robot-01", line="bodyshop", kind="robot", ideal_cycle_s=6.0,
                quality="weld_current", nominal=9.0, noise=0.15),
    StationSpec(id="robot-02", line="bodyshop", kind="robot", ideal_cycle_s=6.0,
                quality="weld_current", nominal=9.5, noise=0.15),
    StationSpec(id="inspect-01", line="bodyshop", kind="inspection", ideal_cycle_s=7.0,
                quality="panel_gap", nominal=4.0, noise=0.05),
    StationSpec(id="rework-01", line="final", kind="rework", ideal_cycle_s=20.0,
                quality="panel_gap", nominal=4.0, noise=0.05),
)  # fmt: skip

OPCUA_LINES = ("stamping",)
MODBUS_LINES = ("bodyshop",)
#: lines whose stations report by events (as an MES would), not by node or register
EVENT_LINES = ("final",)
_STATE_NAMES = ("running", "idle", "down", "planned_stop", "setup")
Event = tuple[str, dict[str, Any]]  # (device, {"ts", "kind", "code", "payload"})
_MEASUREMENTS = ("state", "reason", "good_count", "scrap_count")


@dataclass(slots=True)
class StationSim:
    """State machine of one station, advanced by :meth:`step` (seconds of sim time)."""

    spec: StationSpec
    rng: random.Random
    state: int = RUNNING
    reason: int = 0
    good: int = 0
    scrap: int = 0
    quality: float = 0.0
    remaining_s: float = 0.0
    cycle_s: float = 0.0
    drift: float = 0.0
    parts_since_change: int = 0
    values: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.quality = self.spec.nominal
        self.cycle_s = self._cycle()

    def _cycle(self) -> float:
        return self.spec.ideal_cycle_s * self.rng.uniform(1.02, 1.25)

    def _stop(self, state: int, reason: int, seconds: float) -> None:
        self.state, self.reason, self.remaining_s = state, reason, seconds

    def step(self, dt: float) -> None:
        """Advance ``dt`` seconds: finish stops, count parts, maybe jam or change dies."""
        spec, rng = self.spec, self.rng
        if self.state != RUNNING:
            self.remaining_s -= dt
            if self.remaining_s <= 0:
                self.state, self.reason = RUNNING, 0
            self._publish()
            return
        self.cycle_s -= dt
        while self.cycle_s <= 0 and self.state == RUNNING:
            self.cycle_s += self._cycle()
            self.parts_since_change += 1
            if spec.kind == "inspection":
                self.drift += 0.00015  # fixture wear: the gap creeps open
            self.quality = spec.nominal + self.drift + rng.gauss(0, spec.noise)
            if rng.random() < (0.03 if spec.kind == "press" else 0.015):
                self.scrap += 1
            else:
                self.good += 1
            if spec.kind == "press" and self.parts_since_change >= 150:
                self.parts_since_change = 0
                self._stop(SETUP, 2, rng.uniform(120, 300))
            elif spec.kind == "robot" and self.parts_since_change >= 80:
                self.parts_since_change = 0
                self._stop(SETUP, 3, rng.uniform(30, 60))
            elif spec.kind == "inspection" and self.parts_since_change >= RECALIBRATE_AFTER:
                self.parts_since_change, self.drift = 0, 0.0
                self._stop(SETUP, 7, rng.uniform(180, 360))
        if self.state == RUNNING:
            p = dt / 400.0
            roll = rng.random()
            if roll < p:
                self._stop(DOWN, 1, rng.expovariate(1 / 40.0) + 5)  # jams: many are micro-stops
            elif roll < p * 1.15:
                self._stop(DOWN, 5, rng.uniform(200, 600))
            elif roll < p * 1.6:
                self._stop(IDLE, 4, rng.uniform(10, 90))
        self._publish()

    def _publish(self) -> None:
        self.values = {
            "state": float(self.state),
            "reason": float(self.reason),
            "good_count": float(self.good),
            "scrap_count": float(self.scrap),
            self.spec.quality: round(self.quality, 4),
        }


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def station_events(st: StationSim, seen: dict[str, float], ts_ms: int) -> list[Event]:
    """Events an MES would send for the station's changes since ``seen`` (updated)."""
    out: list[Event] = []
    v = st.values
    if seen.get("state") != v["state"] or seen.get("reason") != v["reason"]:
        payload: dict[str, Any] = {"reason": int(v["reason"])} if v["reason"] else {}
        code = _STATE_NAMES[int(v["state"])]
        out.append((st.spec.id, {"ts": ts_ms, "kind": "station_state", "code": code,
                                 "payload": payload}))  # fmt: skip
    for name, code in (("good_count", "good"), ("scrap_count", "scrap")):
        made = int(v[name] - seen.get(name, v[name]))
        if made > 0:
            out.append((st.spec.id, {"ts": ts_ms, "kind": "part", "code": code,
                                     "payload": {"count": made}}))  # fmt: skip
    seen.update(v)
    return out


def node_id(station: str, measurement: str, ns: int = 2) -> str:
    """The OPC UA node id string of a station's variable."""
    return f"ns={ns};s={station}.{measurement}"


def modbus_registers(index: int, quality: str) -> list[dict[str, Any]]:
    """Register map entries of the ``index``-th body-shop station (base 100*index)."""
    base = 100 * index
    return [
        {"measurement": "state", "address": base, "dtype": "uint16"},
        {"measurement": "reason", "address": base + 1, "dtype": "uint16"},
        {"measurement": "good_count", "address": base + 2, "dtype": "uint32"},
        {"measurement": "scrap_count", "address": base + 4, "dtype": "uint32",
         "word_order": "little"},
        {"measurement": quality, "address": base + 6, "dtype": "float32"},
    ]  # fmt: skip


def opcua_connector_config(
    url: str, stations: tuple[StationSpec, ...] = STATIONS
) -> dict[str, Any]:
    """The connector configuration that maps the simulated presses (device = station id)."""
    nodes = []
    for s in stations:
        if s.line not in OPCUA_LINES:
            continue
        for m in (*_MEASUREMENTS, s.quality):
            nodes.append({"node": node_id(s.id, m), "device": s.id, "measurement": m})
    return {"kind": "opcua", "url": url, "publishing_interval_ms": 500, "nodes": nodes}


def modbus_connector_config(
    host: str, port: int, stations: tuple[StationSpec, ...] = STATIONS
) -> dict[str, Any]:
    """The connector configuration that polls the simulated body shop."""
    body = [s for s in stations if s.line in MODBUS_LINES]
    return {
        "kind": "modbus",
        "host": host,
        "port": port,
        "scan_interval_s": 1.0,
        "devices": [
            {"device": s.id, "registers": modbus_registers(i + 1, s.quality)}
            for i, s in enumerate(body)
        ],
    }


def site_definition(timezone: str = "UTC") -> dict[str, Any]:
    """A plant model of the simulated site: two lines, three 8-hour shifts with breaks."""
    shifts = [
        {"name": "early", "start": "06:00", "end": "14:00",
         "breaks": [{"start": "10:00", "end": "10:30", "name": "lunch"}]},
        {"name": "late", "start": "14:00", "end": "22:00",
         "breaks": [{"start": "18:00", "end": "18:30", "name": "dinner"}]},
        {"name": "night", "start": "22:00", "end": "06:00",
         "breaks": [{"start": "02:00", "end": "02:30", "name": "meal"}]},
    ]  # fmt: skip
    lines = []
    events = {"state_from": "event", "counts_from": "event"}
    for line in (*OPCUA_LINES, *MODBUS_LINES, *EVENT_LINES):
        lines.append(
            {
                "id": line,
                "stations": [
                    {"id": s.id, "ideal_cycle_s": s.ideal_cycle_s}
                    | (events if line in EVENT_LINES else {})
                    for s in STATIONS
                    if s.line == line
                ],
            }
        )
    return {
        "id": "plant-sim",
        "name": "Simulated body plant",
        "calendar": {"timezone": timezone, "shifts": shifts},
        "lines": lines,
    }


class PlantSimulator:
    """The stations and the servers that expose them.

    Args:
        seed: random seed.
        speed: simulated seconds per real second (1 = real time).
        tick_s: real seconds between two updates.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        speed: float = 1.0,
        tick_s: float = 0.5,
        on_events: Callable[[list[Event]], Awaitable[None]] | None = None,
    ) -> None:
        rng = random.Random(seed)  # noqa: S311 - simulation
        seeds = [rng.random() for _ in STATIONS]
        self.stations = [
            StationSim(s, random.Random(x))  # noqa: S311 - simulation
            for s, x in zip(STATIONS, seeds, strict=True)
        ]
        self.speed = speed
        self.tick_s = tick_s
        self.ticks = 0
        self._opcua_vars: dict[tuple[str, str], Any] = {}
        self._modbus: Any = None
        self._modbus_specs: list[tuple[StationSim, list[RegisterSpec]]] = []
        self.on_events = on_events
        #: events of the event-reporting stations produced by :meth:`history`
        self.history_events: list[Event] = []
        self._reported: dict[str, dict[str, float]] = {}
        for st in self.stations:
            st._publish()

    def _events(self, ts_ms: int) -> list[Event]:
        out: list[Event] = []
        for st in self.stations:
            if st.spec.line in EVENT_LINES:
                out += station_events(st, self._reported.setdefault(st.spec.id, {}), ts_ms)
        return out

    # -- OPC UA ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def opcua_server(self, port: int, host: str = "127.0.0.1") -> AsyncIterator[str]:
        """Serve the stamping line over OPC UA; yield the endpoint URL."""
        from asyncua import ua
        from asyncua.server.server import Server

        server = Server()
        await server.init()
        url = f"opc.tcp://{host}:{port}/ironbridge/plant/"
        server.set_endpoint(url)
        server.set_server_name("ironbridge plant simulator")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(NAMESPACE)
        plant = await server.nodes.objects.add_folder(f"ns={ns};s=Plant", f"{ns}:Plant")
        for line in OPCUA_LINES:
            folder = await plant.add_folder(f"ns={ns};s={line}", f"{ns}:{line}")
            for st in self.stations:
                if st.spec.line != line:
                    continue
                obj = await folder.add_object(f"ns={ns};s={st.spec.id}", f"{ns}:{st.spec.id}")
                for m, v in st.values.items():
                    var = await obj.add_variable(
                        f"ns={ns};s={st.spec.id}.{m}",
                        f"{ns}:{m}",
                        ua.Variant(v, ua.VariantType.Double),
                    )
                    self._opcua_vars[(st.spec.id, m)] = var
        async with server:
            _LOGGER.info("plant OPC UA server on %s", url)
            try:
                yield url
            finally:
                self._opcua_vars = {}

    async def _write_opcua(self) -> None:
        from asyncua import ua

        for st in self.stations:
            for m, v in st.values.items():
                var = self._opcua_vars.get((st.spec.id, m))
                if var is not None:
                    await var.write_value(ua.Variant(v, ua.VariantType.Double))

    # -- Modbus ------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def modbus_server(self, port: int, host: str = "127.0.0.1") -> AsyncIterator[int]:
        """Serve the body shop over Modbus TCP (unit 1, holding registers); yield the port."""
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        body = [st for st in self.stations if st.spec.line in MODBUS_LINES]
        self._modbus_specs = [
            (st, parse_register_map(modbus_registers(i + 1, st.spec.quality)))
            for i, st in enumerate(body)
        ]
        top = 100 * (len(body) + 1)
        device = SimDevice(
            id=1,
            simdata=(
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=16, values=False, datatype=DataType.BITS)],
                [SimData(0, count=top, values=0, datatype=DataType.REGISTERS)],
                [SimData(0, count=top, values=0, datatype=DataType.REGISTERS)],
            ),
        )
        server = ModbusTcpServer(device, address=(host, port))
        await server.serve_forever(background=True)
        self._modbus = server
        await self._write_modbus()
        _LOGGER.info("plant Modbus TCP server on %s:%d", host, port)
        try:
            yield port
        finally:
            self._modbus = None
            await server.shutdown()  # type: ignore[no-untyped-call]

    async def _write_modbus(self) -> None:
        server = self._modbus
        if server is None:
            return
        for st, specs in self._modbus_specs:
            for spec in specs:
                regs = encode(st.values.get(spec.measurement, 0.0), spec)
                await server.context.async_setValues(1, 16, spec.address, regs)

    # -- history -------------------------------------------------------------------------
    def history(
        self, end_ms: int, seconds: float, dt: float = 1.0
    ) -> Iterator[tuple[str, str, int, float]]:
        """Run the stations through the ``seconds`` before ``end_ms`` (no servers).

        Yields ``(station, measurement, ts_ms, value)`` whenever a value changes -- what
        a subscription would report -- so a demo can start with a shift of history. The
        stations that report by events are not yielded: their events are collected in
        :attr:`history_events`. The stations are left where the history ends, and go on
        from there.
        """
        steps = int(seconds / dt)
        start = end_ms - int(steps * dt * 1000)
        last: dict[str, dict[str, float]] = {st.spec.id: {} for st in self.stations}
        self.history_events = []
        for k in range(steps + 1):
            ts = start + int(k * dt * 1000)
            for st in self.stations:
                if k:
                    st.step(dt)
            self.history_events += self._events(ts)
            for st in self.stations:
                if st.spec.line in EVENT_LINES:
                    continue
                seen = last[st.spec.id]
                for m, v in st.values.items():
                    if seen.get(m) != v:
                        seen[m] = v
                        yield st.spec.id, m, ts, v

    # -- running -------------------------------------------------------------------------
    async def step(self, dt: float) -> None:
        """Advance every station ``dt`` simulated seconds and update the servers."""
        for st in self.stations:
            st.step(dt)
        self.ticks += 1
        await self._write_opcua()
        await self._write_modbus()
        if self.on_events is not None:
            events = self._events(now_ms())
            if events:
                await self.on_events(events)

    async def run(self, stop: asyncio.Event) -> None:
        """Step in real time (times ``speed``) until ``stop`` is set."""
        while not stop.is_set():
            await self.step(self.tick_s * self.speed)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.tick_s)


__all__ = [
    "ASSET_TYPE_YAML",
    "EVENT_LINES",
    "REASONS",
    "RECALIBRATE_AFTER",
    "STATIONS",
    "PlantSimulator",
    "StationSim",
    "StationSpec",
    "modbus_connector_config",
    "modbus_registers",
    "node_id",
    "opcua_connector_config",
    "site_definition",
    "station_events",
]
