"""Simulated NEV buses speaking GB/T 32960 and trucks speaking JT/T 808 over real TCP.

Each vehicle is one asyncio task with one TCP connection: it logs in (GB/T 32960 vehicle
login; JT/T 808 registration then authentication), then reports every ``period_s``
(real-time data / location reports) and waits for the platform's answer to each frame,
recording the round-trip latency. ``burst_every_s`` switches a vehicle to 1 s reports
for ``burst_len_s`` now and then, like a terminal around a level-3 alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ironbridge.codec import gbt32960 as gb
from ironbridge.codec import jt808 as jt

__all__ = [
    "Jt808Truck",
    "NevBus",
    "TcpFleetStats",
    "nev_realtime",
    "nev_vin",
    "run_tcp_fleet",
    "truck_phone",
]


def nev_vin(i: int) -> str:
    """A 17-character VIN of simulated bus ``i``."""
    return f"LSIMBUS{i:010d}"


def truck_phone(i: int) -> str:
    """A 12-digit terminal phone of simulated truck ``i``."""
    return f"0139{i:08d}"


@dataclass(slots=True)
class TcpFleetStats:
    """What a simulated TCP fleet sent and got back."""

    connected: int = 0
    logged_in: int = 0
    frames: int = 0
    answered: int = 0
    errors: int = 0
    refused: int = 0
    latencies_us: list[int] = field(default_factory=list)


@functools.lru_cache(maxsize=1024)
def _pack(soc: int, cells: int, cell_skew: float) -> tuple[tuple[float, ...], float, int, int]:
    """Cell voltages of the simulated pack at ``soc``, their sum, highest and lowest cell."""
    base_v = 3.20 + soc / 100 * 0.15
    cell_v = tuple(
        round(base_v + ((i * 7) % 11 - 5) * 0.002 - (cell_skew if i == 7 else 0), 3)
        for i in range(cells)
    )
    imax = max(range(cells), key=lambda i: cell_v[i])
    imin = min(range(cells), key=lambda i: cell_v[i])
    return cell_v, round(sum(cell_v), 1), imax, imin


def nev_realtime(
    t: datetime,
    *,
    speed: float,
    soc: int,
    odometer: float,
    lat: float,
    lon: float,
    cells: int = 96,
    probes: int = 16,
    charging: bool = False,
    cell_skew: float = 0.0,
    temp_c: int = 28,
    edition: gb.Edition = gb.Edition.V2016,
    alarm_flags: int = 0,
    alarm_level: int = 0,
) -> gb.RealtimeReport:
    """A plausible real-time report of a 96-cell LFP bus pack."""
    current = -60.0 if charging else (40.0 + speed * 2)
    cell_v, pack_v, imax, imin = _pack(soc, cells, cell_skew)
    blocks: list[gb.Block] = [
        gb.VehicleData(
            vehicle_status=1,
            charging_status=1 if charging else 3,
            running_mode=1,
            speed_kmh=round(speed, 1),
            odometer_km=round(odometer, 1),
            total_voltage_v=pack_v,
            total_current_a=current,
            soc_pct=soc,
            dcdc_status=1,
            gear=0x0E if speed > 0 else 0x00,
            insulation_kohm=5000,
            accelerator_pedal_pct=20 if speed > 0 else 0,
            brake_pedal_pct=0,
        ),
        gb.DriveMotors(
            motors=(
                gb.DriveMotor(
                    number=1,
                    status=1 if speed > 0 else 3,
                    controller_temp_c=45,
                    speed_rpm=int(speed * 40),
                    torque_nm=120.0 if speed > 0 else 0.0,
                    temp_c=55,
                    controller_voltage_v=pack_v,
                    controller_current_a=current,
                ),
            )
        ),
        gb.Position(
            status=0,
            longitude=round(lon, 6),
            latitude=round(lat, 6),
            crs=1 if edition == gb.Edition.V2025 else None,
        ),
        gb.Alarm(
            max_level=alarm_level,
            flags=alarm_flags,
            levels=tuple((b, alarm_level) for b in range(32) if alarm_flags >> b & 1)
            if edition == gb.Edition.V2025
            else (),
        ),
        gb.Voltages(
            subsystems=(
                gb.SubsystemVoltages(
                    number=1,
                    voltage_v=pack_v,
                    current_a=current,
                    cell_count=cells,
                    start_index=1,
                    cell_voltages_v=cell_v,
                ),
            )
        ),
        gb.Temperatures(
            subsystems=(
                gb.SubsystemTemperatures(
                    number=1, temps_c=tuple(temp_c + (i % 3) for i in range(probes))
                ),
            )
        ),
    ]
    if edition == gb.Edition.V2016:
        blocks.append(
            gb.Extremes(
                max_voltage_subsystem=1,
                max_voltage_cell=imax + 1,
                max_cell_voltage_v=cell_v[imax],
                min_voltage_subsystem=1,
                min_voltage_cell=imin + 1,
                min_cell_voltage_v=cell_v[imin],
                max_temp_subsystem=1,
                max_temp_probe=3,
                max_temp_c=temp_c + 2,
                min_temp_subsystem=1,
                min_temp_probe=1,
                min_temp_c=temp_c,
            )
        )
    return gb.RealtimeReport(time=t.replace(microsecond=0), blocks=tuple(blocks))


class _Conn:
    """One TCP connection that sends a frame and waits for the next answer frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = b""

    async def request(self, frame: bytes, split: str, timeout: float) -> bytes:
        self.writer.write(frame)
        await self.writer.drain()
        async with asyncio.timeout(timeout):
            while True:
                if split == "gb":
                    frames, self.buf, _ = gb.split_stream(self.buf)
                else:
                    frames, self.buf = jt.split_stream(self.buf)
                if frames:
                    # answers come in order; keep any extra complete frames for later
                    first, rest = frames[0], frames[1:]
                    self.buf = b"".join(rest) + self.buf
                    return first
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise ConnectionError("platform closed the connection")
                self.buf += chunk


@dataclass(slots=True, kw_only=True)
class _Schedule:
    period_s: float
    ramp_s: float = 0.0
    burst_every_s: float
    burst_len_s: float
    rng: random.Random
    burst_until: float = 0.0
    next_burst: float = 0.0

    def interval(self, now: float) -> float:
        if self.burst_every_s > 0:
            if self.next_burst == 0.0:
                self.next_burst = now + self.rng.uniform(0, self.burst_every_s)
            if now >= self.next_burst:
                self.burst_until = now + self.burst_len_s
                self.next_burst = now + self.burst_every_s
        return 1.0 if now < self.burst_until else self.period_s


class NevBus:
    """One simulated bus with a GB/T 32960 terminal."""

    def __init__(self, i: int, *, edition: gb.Edition = gb.Edition.V2016, seed: int = 1) -> None:
        self.vin = nev_vin(i)
        self.edition = edition
        self.rng = random.Random(seed * 100_003 + i)  # noqa: S311 - simulation
        self.odometer = 10_000.0 + i * 13
        self.soc = 40 + i % 50
        self.phase = self.rng.uniform(0, math.tau)
        self.lat = 36.65 + self.rng.uniform(-0.1, 0.1)
        self.lon = 117.0 + self.rng.uniform(-0.1, 0.1)

    def login_frame(self, serial: int) -> bytes:
        """The vehicle login (0x01) frame."""
        now = datetime.now(UTC)
        unit: gb.Unit
        if self.edition == gb.Edition.V2025:
            unit = gb.VehicleLogin2025(
                time=now,
                serial=serial,
                iccid="89860000000000000001",
                packs_per_bms=(1,),
                pack_codes=("PACK" + self.vin[-12:],),
            )
        else:
            unit = gb.VehicleLogin(
                time=now,
                serial=serial,
                iccid="89860000000000000001",
                ress_count=1,
                ress_code_length=0,
            )
        return gb.encode_message(gb.Command.VEHICLE_LOGIN, unit, vin=self.vin, edition=self.edition)

    def report_frame(self, elapsed_s: float) -> bytes:
        """A real-time (0x02) frame for the bus's state after ``elapsed_s`` seconds."""
        speed = max(0.0, 30 + 25 * math.sin(elapsed_s / 90 + self.phase))
        self.odometer += speed / 3600 * 10
        report = nev_realtime(
            datetime.now(UTC),
            speed=speed,
            soc=self.soc,
            odometer=self.odometer,
            lat=self.lat,
            lon=self.lon,
            edition=self.edition,
        )
        return gb.encode_message(gb.Command.REALTIME, report, vin=self.vin, edition=self.edition)

    async def run(
        self,
        host: str,
        port: int,
        stats: TcpFleetStats,
        stop: asyncio.Event,
        schedule: _Schedule,
        timeout: float = 10.0,
    ) -> None:
        """Connect, log in, report until ``stop``; reconnect after errors."""

        async def login(conn: _Conn) -> bool:
            answer = gb.parse_frame(await conn.request(self.login_frame(1), "gb", timeout))
            return answer.response == gb.ResponseFlag.SUCCESS

        await _drive(
            host, port, stats, stop, schedule, self.rng, "gb", login, self.report_frame, timeout
        )


class Jt808Truck:
    """One simulated truck with a JT/T 808 terminal."""

    def __init__(self, i: int, *, version: jt.Version = jt.Version.V2013, seed: int = 1) -> None:
        self.phone = (
            truck_phone(i) if version == jt.Version.V2013 else truck_phone(i).rjust(20, "0")
        )
        self.version = version
        self.rng = random.Random(seed * 7919 + i)  # noqa: S311 - simulation
        self.serial = 0
        self.mileage = 50_000.0 + i
        self.fuel = 300.0
        self.phase = self.rng.uniform(0, math.tau)
        self.lat = 36.0 + self.rng.uniform(-0.5, 0.5)
        self.lon = 118.0 + self.rng.uniform(-0.5, 0.5)

    def _header(self, msg_id: int) -> jt.Header:
        self.serial = (self.serial + 1) & 0xFFFF
        return jt.Header(
            msg_id=msg_id,
            phone=self.phone,
            serial=self.serial,
            version=self.version,
            protocol_version=1 if self.version == jt.Version.V2019 else None,
        )

    def registration_frame(self) -> bytes:
        """The terminal registration (0x0100)."""
        body = jt.Registration(
            province=37,
            city=100,
            manufacturer="IRONB",
            model="SIM808",
            terminal_id="T" + self.phone[-6:],
            plate_color=1,
            plate="鲁A" + self.phone[-5:],
        )
        return jt.encode_message(self._header(jt.MsgId.REGISTRATION), body)

    def auth_frame(self, code: str) -> bytes:
        """The authentication (0x0102) with the code the platform handed out."""
        body = jt.Authentication(
            auth_code=code,
            imei="86000000000000" + self.phone[-1] if self.version == jt.Version.V2019 else None,
            software_version="1.0" if self.version == jt.Version.V2019 else None,
        )
        return jt.encode_message(self._header(jt.MsgId.AUTHENTICATION), body)

    def location_frame(self, elapsed_s: float) -> bytes:
        """A location report (0x0200) with mileage and fuel items."""
        speed = max(0.0, 50 + 35 * math.sin(elapsed_s / 120 + self.phase))
        self.mileage += speed / 3600 * 10
        self.fuel = max(10.0, self.fuel - speed / 3600 * 10 * 0.32)
        self.lat += speed / 3600 * 10 / 111 * 0.6
        report = jt.LocationReport(
            alarm=0,
            status=0x1 | 0x2 | (0x40000 if speed > 1 else 0),
            latitude=round(self.lat, 6),
            longitude=round(self.lon, 6),
            altitude_m=50,
            speed_kmh=round(speed, 1),
            direction=10,
            time=datetime.now(UTC).replace(microsecond=0),
            items=(
                (0x01, round(self.mileage * 10).to_bytes(4, "big")),
                (0x02, round(self.fuel * 10).to_bytes(2, "big")),
                (0x30, bytes((25,))),
                (0x31, bytes((12,))),
            ),
        )
        return jt.encode_message(self._header(jt.MsgId.LOCATION), report)

    async def run(
        self,
        host: str,
        port: int,
        stats: TcpFleetStats,
        stop: asyncio.Event,
        schedule: _Schedule,
        timeout: float = 10.0,
    ) -> None:
        """Connect, register, authenticate, report until ``stop``; reconnect after errors."""

        async def login(conn: _Conn) -> bool:
            reg = jt.decode_message(await conn.request(self.registration_frame(), "jt", timeout))
            if not isinstance(reg.body, jt.RegistrationResponse) or reg.body.result != 0:
                return False
            ok = jt.decode_message(
                await conn.request(self.auth_frame(reg.body.auth_code or ""), "jt", timeout)
            )
            return isinstance(ok.body, jt.GeneralResponse) and ok.body.result == 0

        await _drive(
            host, port, stats, stop, schedule, self.rng, "jt", login, self.location_frame, timeout
        )


async def _drive(
    host: str,
    port: int,
    stats: TcpFleetStats,
    stop: asyncio.Event,
    schedule: _Schedule,
    rng: random.Random,
    split: str,
    login: Callable[[_Conn], Awaitable[bool]],
    report: Callable[[float], bytes],
    timeout: float,
) -> None:
    """One terminal's life: connect, log in, report on schedule, reconnect after errors.

    Retries follow the terminals' standards rather than hammering a slow platform: a
    login that is not answered is sent again after about a minute (GB/T 32960 Annex B.1
    "within 1 min"); a refused or dropped connection is retried after 2 s, doubling up
    to a minute, jittered.
    """
    start = time.monotonic()
    # terminals come online spread over the ramp (at least one period), not all at once
    await _sleep(stop, rng.uniform(0, max(schedule.period_s, schedule.ramp_s)))
    failures = 0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats.errors += 1
            failures += 1
            await _sleep(stop, _backoff(rng, failures))
            continue
        stats.connected += 1
        conn = _Conn(reader, writer)
        logged_in = False
        try:
            if not await login(conn):
                stats.refused += 1
                await _sleep(stop, 30.0)
                continue
            logged_in = True
            stats.logged_in += 1
            failures = 0
            while not stop.is_set():
                now = time.monotonic()
                frame = report(now - start)
                t0 = time.perf_counter_ns()
                stats.frames += 1
                await conn.request(frame, split, timeout)
                stats.answered += 1
                stats.latencies_us.append((time.perf_counter_ns() - t0) // 1000)
                await _sleep(stop, schedule.interval(now))
        except (OSError, TimeoutError, ConnectionError, gb.CodecError):
            stats.errors += 1
            failures += 1
            writer.close()
            # an unanswered login waits about a minute; a lost session reconnects sooner
            await _sleep(
                stop, rng.uniform(50.0, 70.0) if not logged_in else _backoff(rng, failures)
            )
        finally:
            stats.connected -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


def _backoff(rng: random.Random, failures: int) -> float:
    """2 s after the first failure, doubling up to 60 s, jittered down by up to half."""
    return min(60.0, 2.0**failures) * rng.uniform(0.5, 1.0)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_tcp_fleet(
    *,
    host: str,
    gbt32960_port: int | None,
    jt808_port: int | None,
    buses: Sequence[NevBus],
    trucks: Sequence[Jt808Truck],
    stop: asyncio.Event,
    period_s: float = 10.0,
    ramp_s: float = 0.0,
    burst_every_s: float = 0.0,
    burst_len_s: float = 30.0,
    seed: int = 1,
    stats: TcpFleetStats | None = None,
) -> TcpFleetStats:
    """Run buses and trucks until ``stop`` is set; return their shared counters."""
    st = stats or TcpFleetStats()
    rng = random.Random(seed)  # noqa: S311 - simulation

    def schedule() -> _Schedule:
        return _Schedule(
            period_s=period_s,
            ramp_s=ramp_s,
            burst_every_s=burst_every_s,
            burst_len_s=burst_len_s,
            rng=random.Random(rng.random()),  # noqa: S311 - simulation
        )

    async with asyncio.TaskGroup() as tg:
        if gbt32960_port is not None:
            for bus in buses:
                tg.create_task(
                    bus.run(host, gbt32960_port, st, stop, schedule()), name=f"sim-{bus.vin}"
                )
        if jt808_port is not None:
            for truck in trucks:
                tg.create_task(
                    truck.run(host, jt808_port, st, stop, schedule()), name=f"sim-{truck.phone}"
                )
    return st
