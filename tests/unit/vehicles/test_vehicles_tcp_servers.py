"""GB/T 32960 and JT/T 808 endpoints over real loopback TCP, with an in-memory bus seam."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import orjson
import pytest

from ironbridge.codec import gbt32960 as gb
from ironbridge.codec import jt808 as jt
from ironbridge.connect.gbt32960_server import Gbt32960Server, SessionState
from ironbridge.connect.jt808_server import Jt808Server, auth_code_for
from ironbridge.connect.vehicles import VehicleIdentity, vehicle_asset_types
from ironbridge.model import TransientError
from ironbridge.sim.vehicles import Jt808Truck, NevBus, nev_realtime

SECRET = b"test-secret"


class Directory:
    """Knows the VINs / phones it is given; records what it was asked."""

    def __init__(self, known: set[str]) -> None:
        nev = next(t for t in vehicle_asset_types() if t.name == "nev_bus")
        truck = next(t for t in vehicle_asset_types() if t.name == "jt808_truck")
        self.measurements = {
            "gbt32960": frozenset(m.name for m in nev.measurements),
            "jt808": frozenset(m.name for m in truck.measurements),
        }
        self.known = known
        self.asked: list[tuple[str, str, dict[str, str]]] = []

    async def resolve(
        self, protocol: str, key: str, info: Mapping[str, str]
    ) -> VehicleIdentity | None:
        self.asked.append((protocol, key, dict(info)))
        if key not in self.known:
            return None
        return VehicleIdentity(
            device_id=f"dev-{key}",
            asset_id=f"asset-{key}",
            measurements=self.measurements[protocol],
        )


class Bus:
    """Captures publishes (the seam to JetStream, tested with a real one elsewhere)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, object], str | None]] = []

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        self.messages.append((subject, orjson.loads(payload), msg_id))
        return len(self.messages)


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kind: str):
        self.reader, self.writer, self.kind, self.buf = reader, writer, kind, b""

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def answer(self) -> bytes:
        async with asyncio.timeout(5):
            while True:
                if self.kind == "gb":
                    frames, self.buf, _ = gb.split_stream(self.buf)
                else:
                    frames, self.buf = jt.split_stream(self.buf)
                if frames:
                    self.buf = b"".join(frames[1:]) + self.buf
                    return frames[0]
                chunk = await self.reader.read(65536)
                assert chunk, "server closed the connection"
                self.buf += chunk

    async def request(self, data: bytes) -> bytes:
        await self.send(data)
        return await self.answer()

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()


@pytest.fixture
async def gb_server() -> AsyncIterator[tuple[Gbt32960Server, Directory, Bus]]:
    bus = NevBus(1)
    d = Directory({bus.vin, NevBus(2, edition=gb.Edition.V2025).vin})
    b = Bus()
    server = Gbt32960Server(d, b, port=0, idle_timeout_s=0.5)
    await server.start()
    yield server, d, b
    await server.close()


async def connect(port: int, kind: str) -> Client:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    return Client(r, w, kind)


async def test_gbt32960_login_realtime_heartbeat_timesync_logout(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, directory, bus = gb_server
    bus_sim = NevBus(1)
    c = await connect(server.port, "gb")
    login = gb.parse_frame(await c.request(bus_sim.login_frame(7)))
    assert (login.command, login.response) == (gb.Command.VEHICLE_LOGIN, gb.ResponseFlag.SUCCESS)
    assert directory.asked[0][:2] == ("gbt32960", bus_sim.vin)
    assert directory.asked[0][2]["iccid"] == "89860000000000000001"
    rt = gb.parse_frame(await c.request(bus_sim.report_frame(5)))
    assert (rt.command, rt.response) == (gb.Command.REALTIME, gb.ResponseFlag.SUCCESS)
    hb = gb.parse_frame(
        await c.request(gb.encode_message(gb.Command.HEARTBEAT, gb.Empty(), vin=bus_sim.vin))
    )
    assert hb.response == gb.ResponseFlag.SUCCESS
    assert hb.data == b""
    ts = gb.decode_frame(
        await c.request(gb.encode_message(gb.Command.TIME_SYNC, gb.Empty(), vin=bus_sim.vin))
    )
    assert isinstance(ts.unit, gb.ResponseTime)
    assert abs((ts.unit.time - datetime.now(UTC)).total_seconds()) < 5
    logout = gb.encode_message(
        gb.Command.VEHICLE_LOGOUT,
        gb.VehicleLogout(time=datetime.now(UTC), serial=7),
        vin=bus_sim.vin,
    )
    assert gb.parse_frame(await c.request(logout)).response == gb.ResponseFlag.SUCCESS
    await c.close()
    subjects = [m[0] for m in bus.messages]
    assert subjects == [
        f"ib.v1.dev-{bus_sim.vin}.events",  # login
        f"ib.v1.dev-{bus_sim.vin}.telemetry",
        f"ib.v1.dev-{bus_sim.vin}.events",  # logout
    ]
    tel = bus.messages[1][1]
    assert isinstance(tel, dict)
    values = tel["values"]
    assert isinstance(values, dict)
    assert values["soc"] == [41.0]
    assert len([k for k in values if k.startswith("cell_voltage_1_")]) == 96
    assert "max_cell_voltage" in values
    assert "latitude" in values
    ev = bus.messages[0][1]
    assert isinstance(ev, dict)
    assert ev["events"][0]["code"] == "login"  # type: ignore[index]


async def test_gbt32960_invalid_values_are_missing_not_numbers(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, _, bus = gb_server
    sim = NevBus(1)
    c = await connect(server.port, "gb")
    await c.request(sim.login_frame(1))
    report = nev_realtime(datetime.now(UTC), speed=10, soc=50, odometer=1, lat=36, lon=117)
    vd = report.blocks[0]
    assert isinstance(vd, gb.VehicleData)
    import dataclasses

    bad = dataclasses.replace(vd, speed_kmh=None, odometer_km=None)  # 0xFFFF on the wire
    report = dataclasses.replace(report, blocks=(bad, *report.blocks[1:]))
    await c.request(gb.encode_message(gb.Command.REALTIME, report, vin=sim.vin))
    await c.close()
    values = bus.messages[-1][1]["values"]  # type: ignore[index]
    assert "vehicle_speed" not in values
    assert "odometer" not in values
    assert values["soc"] == [50.0]


async def test_gbt32960_alarm_flags_become_events_and_reissue_is_stored(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, _, bus = gb_server
    sim = NevBus(2, edition=gb.Edition.V2025)
    c = await connect(server.port, "gb")
    assert gb.parse_frame(await c.request(sim.login_frame(1))).response == gb.ResponseFlag.SUCCESS
    report = nev_realtime(
        datetime.now(UTC),
        speed=0,
        soc=60,
        odometer=5,
        lat=36,
        lon=117,
        edition=gb.Edition.V2025,
        alarm_flags=(1 << 1) | (1 << 23),
        alarm_level=4,
    )
    ans = gb.parse_frame(
        await c.request(
            gb.encode_message(gb.Command.REISSUE, report, vin=sim.vin, edition=gb.Edition.V2025)
        )
    )
    assert (ans.command, ans.response, ans.edition) == (
        gb.Command.REISSUE,
        gb.ResponseFlag.SUCCESS,
        gb.Edition.V2025,
    )
    await c.close()
    events = bus.messages[-1][1]["events"]  # type: ignore[index]
    codes = {(e["kind"], e["code"]) for e in events}
    assert ("gbt32960_alarm", "battery_high_temperature") in codes
    assert ("gbt32960_alarm", "ress_thermal_event") in codes
    assert bus.messages[-2][1]["values"]["alarm_level"] == [4.0]  # type: ignore[index]


async def test_gbt32960_unknown_vin_refused_and_data_before_login_rejected(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, _, bus = gb_server
    stranger = NevBus(99)
    c = await connect(server.port, "gb")
    ans = gb.parse_frame(await c.request(stranger.login_frame(1)))
    assert ans.response == gb.ResponseFlag.ERROR  # 2016 has no "VIN unknown" code
    ans = gb.parse_frame(await c.request(stranger.report_frame(1)))
    assert ans.response == gb.ResponseFlag.ERROR
    stranger25 = NevBus(98, edition=gb.Edition.V2025)
    ans = gb.parse_frame(await c.request(stranger25.login_frame(1)))
    assert ans.response == gb.ResponseFlag.VIN_UNKNOWN
    await c.close()
    assert bus.messages == []
    assert server.stats.rejected == 3


async def test_gbt32960_malformed_frames_answered_with_error_and_session_survives(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, _, bus = gb_server
    sim = NevBus(1)
    c = await connect(server.port, "gb")
    await c.request(sim.login_frame(1))
    good = sim.report_frame(1)
    bad_bcc = good[:-1] + bytes((good[-1] ^ 0xFF,))
    ans = gb.parse_frame(await c.request(b"garbage" + bad_bcc))
    assert (ans.command, ans.response) == (gb.Command.REALTIME, gb.ResponseFlag.ERROR)
    # a structurally broken data unit (declared length fine, content truncated)
    broken = gb.build_frame(
        gb.Frame(
            edition=gb.Edition.V2016,
            command=gb.Command.REALTIME,
            response=0xFE,
            vin=sim.vin,
            data=good[24:40],
        )
    )
    ans = gb.parse_frame(await c.request(broken))
    assert ans.response == gb.ResponseFlag.ERROR
    # the same session still works
    ans = gb.parse_frame(await c.request(sim.report_frame(2)))
    assert ans.response == gb.ResponseFlag.SUCCESS
    session = next(iter(server.sessions.values()))
    assert session.state is SessionState.LOGGED_IN
    assert session.malformed == 3  # garbage bytes, bad BCC, truncated data unit
    assert "truncated" in session.last_error
    await c.close()
    assert len([m for m in bus.messages if m[0].endswith(".telemetry")]) == 1


async def test_gbt32960_second_login_closes_older_session_and_idle_sessions_close(
    gb_server: tuple[Gbt32960Server, Directory, Bus],
) -> None:
    server, _, _ = gb_server
    sim = NevBus(1)
    first = await connect(server.port, "gb")
    await first.request(sim.login_frame(1))
    second = await connect(server.port, "gb")
    await second.request(sim.login_frame(2))
    async with asyncio.timeout(5):
        assert await first.reader.read() == b""  # closed by the platform
    async with asyncio.timeout(5):
        assert await second.reader.read() == b""  # idle timeout 0.5 s
    assert server.stats.idle_closed >= 1
    await first.close()
    await second.close()


@pytest.fixture
async def jt_server() -> AsyncIterator[tuple[Jt808Server, Directory, Bus]]:
    d = Directory({Jt808Truck(1).phone, Jt808Truck(2, version=jt.Version.V2019).phone})
    b = Bus()
    server = Jt808Server(d, b, secret=SECRET, port=0, idle_timeout_s=5)
    await server.start()
    yield server, d, b
    await server.close()


@pytest.mark.parametrize("version", [jt.Version.V2013, jt.Version.V2019])
async def test_jt808_register_authenticate_heartbeat_locate(
    jt_server: tuple[Jt808Server, Directory, Bus], version: jt.Version
) -> None:
    server, directory, bus = jt_server
    truck = Jt808Truck(1 if version == jt.Version.V2013 else 2, version=version)
    c = await connect(server.port, "jt")
    reg = jt.decode_message(await c.request(truck.registration_frame()))
    assert isinstance(reg.body, jt.RegistrationResponse)
    assert reg.body.result == 0
    assert reg.body.auth_code == auth_code_for(SECRET, truck.phone)
    assert reg.header.version == version
    assert directory.asked[-1][2]["plate"].startswith("鲁A")
    early = jt.decode_message(await c.request(truck.location_frame(1)))
    assert isinstance(early.body, jt.GeneralResponse)
    assert early.body.result == 1
    bad = jt.decode_message(await c.request(truck.auth_frame("WRONG")))
    assert isinstance(bad.body, jt.GeneralResponse)
    assert bad.body.result == 1
    ok = jt.decode_message(await c.request(truck.auth_frame(reg.body.auth_code or "")))
    assert isinstance(ok.body, jt.GeneralResponse)
    assert (ok.body.result, ok.body.reply_id) == (0, jt.MsgId.AUTHENTICATION)
    hb_frame = jt.encode_message(
        jt.Header(
            msg_id=jt.MsgId.HEARTBEAT,
            phone=truck.phone,
            serial=77,
            version=version,
            protocol_version=1 if version == jt.Version.V2019 else None,
        ),
        jt.Heartbeat(),
    )
    hb = jt.decode_message(await c.request(hb_frame))
    assert isinstance(hb.body, jt.GeneralResponse)
    assert hb.body.reply_serial == 77
    loc = jt.decode_message(await c.request(truck.location_frame(2)))
    assert isinstance(loc.body, jt.GeneralResponse)
    assert loc.body.result == 0
    assert loc.body.reply_id == jt.MsgId.LOCATION
    await c.close()
    tel = [m for m in bus.messages if m[0].endswith(".telemetry")]
    assert len(tel) == 1
    values = tel[0][1]["values"]
    assert isinstance(values, dict)
    assert values["mileage"][0] > 50_000
    assert values["gnss_positioned"] == [1.0]
    assert "fuel" in values
    assert "rssi" in values


async def test_jt808_alarm_bits_become_events(
    jt_server: tuple[Jt808Server, Directory, Bus],
) -> None:
    server, _, bus = jt_server
    truck = Jt808Truck(1)
    c = await connect(server.port, "jt")
    reg = jt.decode_message(await c.request(truck.registration_frame()))
    assert isinstance(reg.body, jt.RegistrationResponse)
    await c.request(truck.auth_frame(reg.body.auth_code or ""))
    report = jt.LocationReport(
        alarm=0b11,
        status=0x3,
        latitude=36.1,
        longitude=117.1,
        altitude_m=1,
        speed_kmh=0,
        direction=0,
        time=datetime.now(UTC).replace(microsecond=0),
    )
    header = jt.Header(msg_id=jt.MsgId.LOCATION, phone=truck.phone, serial=5)
    ans = jt.decode_message(await c.request(jt.encode_message(header, report)))
    assert isinstance(ans.body, jt.GeneralResponse)
    assert ans.body.result == 0
    await c.close()
    events = bus.messages[-1][1]["events"]  # type: ignore[index]
    assert {e["kind"] for e in events} == {"jt808_alarm"}
    assert len(events) == 2


async def test_jt808_unknown_terminal_refused_and_malformed_frame_answered(
    jt_server: tuple[Jt808Server, Directory, Bus],
) -> None:
    server, _, bus = jt_server
    stranger = Jt808Truck(50)
    c = await connect(server.port, "jt")
    reg = jt.decode_message(await c.request(stranger.registration_frame()))
    assert isinstance(reg.body, jt.RegistrationResponse)
    assert reg.body.result == 4
    good = stranger.location_frame(1)
    inner = jt.unescape(good[1:-1])
    corrupted = b"\x7e" + jt.escape(inner[:-1] + bytes((inner[-1] ^ 0x55,))) + b"\x7e"
    ans = jt.decode_message(await c.request(corrupted))
    assert isinstance(ans.body, jt.GeneralResponse)
    assert ans.body.result == 2
    assert ans.body.reply_id == jt.MsgId.LOCATION
    # still alive: unsupported message id gets result 3
    other = jt.encode_message(jt.Header(msg_id=0x0900, phone=stranger.phone, serial=9), b"\x01")
    ans = jt.decode_message(await c.request(other))
    assert isinstance(ans.body, jt.GeneralResponse)
    assert ans.body.result == 3
    await c.close()
    assert bus.messages == []
    assert server.stats.malformed == 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _authenticated(server: Jt808Server, truck: Jt808Truck) -> Client:
    c = await connect(server.port, "jt")
    reg = jt.decode_message(await c.request(truck.registration_frame()))
    assert isinstance(reg.body, jt.RegistrationResponse)
    ok = jt.decode_message(await c.request(truck.auth_frame(reg.body.auth_code or "")))
    assert isinstance(ok.body, jt.GeneralResponse)
    assert ok.body.result == 0
    return c


def _batch_packets(truck: Jt808Truck, serial: int, n: int, size: int) -> list[bytes]:
    reports = tuple(
        dataclasses.replace(
            jt.decode_message(truck.location_frame(i)).body,  # type: ignore[type-var]
            time=datetime(2026, 11, 23, 8, 0, i, tzinfo=UTC).replace(microsecond=0),
        )
        for i in range(n)
    )
    header = jt.Header(
        msg_id=jt.MsgId.BATCH_LOCATION,
        phone=truck.phone,
        serial=serial,
        version=truck.version,
        protocol_version=1 if truck.version == jt.Version.V2019 else None,
    )
    return jt.split_message(
        header,
        jt.encode_body(jt.BatchLocation(kind=1, reports=reports), truck.version),
        packet_size=size,
    )


@pytest.mark.parametrize("version", [jt.Version.V2013, jt.Version.V2019])
async def test_jt808_subpackaged_batch_is_reassembled_out_of_order(
    jt_server: tuple[Jt808Server, Directory, Bus], version: jt.Version
) -> None:
    server, _, bus = jt_server
    truck = Jt808Truck(1 if version == jt.Version.V2013 else 2, version=version)
    c = await _authenticated(server, truck)
    packets = _batch_packets(truck, 500, 40, 500)
    assert len(packets) == 4
    answers = []
    for i in (2, 0, 3, 1):
        ans = jt.decode_message(await c.request(packets[i]))
        assert isinstance(ans.body, jt.GeneralResponse)
        answers.append((ans.body.reply_serial, ans.body.reply_id, ans.body.result))
    # every packet answered, echoing its own serial; the last one once the batch is queued
    assert answers == [(502, 0x0704, 0), (500, 0x0704, 0), (503, 0x0704, 0), (501, 0x0704, 0)]
    await c.close()
    tel = [m for m in bus.messages if m[0].endswith(".telemetry")]
    assert len(tel) == 1
    assert len(tel[0][1]["ts"]) == 40  # type: ignore[arg-type]
    assert server.stats.reassembled == 1
    assert server.stats.malformed == 0


async def test_jt808_missing_packet_is_requested_with_0x8003_then_completed() -> None:
    truck = Jt808Truck(1)
    d = Directory({truck.phone})
    b = Bus()
    clock = Clock()
    server = Jt808Server(d, b, secret=SECRET, port=0, reassembly_timeout_s=20, clock=clock)
    await server.start()
    try:
        c = await _authenticated(server, truck)
        packets = _batch_packets(truck, 70, 30, 400)
        assert len(packets) == 4
        for i in (0, 2):
            ans = jt.decode_message(await c.request(packets[i]))
            assert isinstance(ans.body, jt.GeneralResponse)
            assert ans.body.result == 0
        clock.now += 21
        server.sweep_reassembly()
        ask = jt.decode_message(await c.answer())
        assert ask.header.msg_id == jt.MsgId.RETRANSMISSION_REQUEST
        assert ask.body == jt.RetransmissionRequest(original_serial=70, packet_ids=(2, 4))
        assert not [m for m in b.messages if m[0].endswith(".telemetry")]
        for i in (1, 3):
            ans = jt.decode_message(await c.request(packets[i]))
            assert isinstance(ans.body, jt.GeneralResponse)
            assert ans.body.result == 0
        tel = [m for m in b.messages if m[0].endswith(".telemetry")]
        assert len(tel[0][1]["ts"]) == 30  # type: ignore[arg-type]
        # a second message that never completes is asked for twice, then dropped
        lost = _batch_packets(truck, 900, 30, 400)
        await c.request(lost[0])
        for _ in range(2):
            clock.now += 21
            server.sweep_reassembly()
            again = jt.decode_message(await c.answer())
            assert again.body == jt.RetransmissionRequest(original_serial=900, packet_ids=(2, 3, 4))
        clock.now += 21
        server.sweep_reassembly()
        assert server.stats.malformed == 1
        assert server.stats.retransmission_requests == 3
        # the session is still fine
        hb = jt.encode_message(
            jt.Header(msg_id=jt.MsgId.HEARTBEAT, phone=truck.phone, serial=3), jt.Heartbeat()
        )
        ok = jt.decode_message(await c.request(hb))
        assert isinstance(ok.body, jt.GeneralResponse)
        assert ok.body.result == 0
        await c.close()
    finally:
        await server.close()


async def test_jt808_bad_packet_index_is_a_message_error(
    jt_server: tuple[Jt808Server, Directory, Bus],
) -> None:
    server, _, _bus = jt_server
    truck = Jt808Truck(1)
    c = await _authenticated(server, truck)
    header = jt.Header(msg_id=jt.MsgId.LOCATION, phone=truck.phone, serial=8, packet=(2, 5))
    ans = jt.decode_message(await c.request(jt.encode_message(header, b"\x00" * 10)))
    assert isinstance(ans.body, jt.GeneralResponse)
    assert (ans.body.result, ans.body.reply_serial) == (2, 8)
    assert server.stats.malformed == 1
    await c.close()


async def test_endpoint_refuses_connections_beyond_max_sessions(
    jt_server: tuple[Jt808Server, Directory, Bus],
) -> None:
    server, _, _ = jt_server
    server.max_sessions = 1
    first = await _authenticated(server, Jt808Truck(1))
    r, w = await asyncio.open_connection("127.0.0.1", server.port)
    async with asyncio.timeout(5):
        assert await r.read(100) == b""  # closed at once
    w.close()
    await w.wait_closed()
    assert server.stats.refused_full == 1
    # the open session is unaffected
    hb_header = jt.Header(msg_id=jt.MsgId.HEARTBEAT, phone=Jt808Truck(1).phone, serial=4)
    ok = jt.decode_message(await first.request(jt.encode_message(hb_header, jt.Heartbeat())))
    assert isinstance(ok.body, jt.GeneralResponse)
    assert ok.body.result == 0
    await first.close()


class FlakyBus(Bus):
    """Refuses the next ``fail`` publishes like a bus that did not acknowledge."""

    def __init__(self) -> None:
        super().__init__()
        self.fail = 0

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        if self.fail:
            self.fail -= 1
            raise TransientError("no ack from the bus")
        return await super().publish(subject, payload, headers, msg_id)


async def test_session_events_not_queued_are_not_acknowledged_to_the_terminal() -> None:
    truck, nev = Jt808Truck(1), NevBus(1)
    directory = Directory({truck.phone, nev.vin})
    bus = FlakyBus()
    jts = Jt808Server(directory, bus, secret=SECRET, port=0, idle_timeout_s=5)
    gbs = Gbt32960Server(directory, bus, port=0, idle_timeout_s=5)
    await jts.start()
    await gbs.start()
    try:
        c = await connect(jts.port, "jt")
        bus.fail = 1  # the "registered" event: no answer, the terminal registers again
        await c.send(truck.registration_frame())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await c.answer()
        reg = jt.decode_message(await c.request(truck.registration_frame()))
        assert isinstance(reg.body, jt.RegistrationResponse)
        assert reg.body.result == 0
        bus.fail = 1  # the "authenticated" event: a failure answer, then a retry succeeds
        code = reg.body.auth_code or ""
        failed = jt.decode_message(await c.request(truck.auth_frame(code)))
        assert isinstance(failed.body, jt.GeneralResponse)
        assert failed.body.result == 1
        early = jt.decode_message(await c.request(truck.location_frame(1)))
        assert isinstance(early.body, jt.GeneralResponse)
        assert early.body.result == 1  # not authenticated
        ok = jt.decode_message(await c.request(truck.auth_frame(code)))
        assert isinstance(ok.body, jt.GeneralResponse)
        assert ok.body.result == 0
        await c.close()

        g = await connect(gbs.port, "gb")
        assert gb.parse_frame(await g.request(nev.login_frame(1))).response == (
            gb.ResponseFlag.SUCCESS
        )
        logout = gb.encode_message(
            gb.Command.VEHICLE_LOGOUT,
            gb.VehicleLogout(time=datetime.now(UTC), serial=7),
            vin=nev.vin,
        )
        bus.fail = 1
        assert gb.parse_frame(await g.request(logout)).response == gb.ResponseFlag.ERROR
        assert gb.parse_frame(await g.request(logout)).response == gb.ResponseFlag.SUCCESS
        await g.close()
    finally:
        await jts.close()
        await gbs.close()
    codes = [
        e["code"]
        for subject, body, _ in bus.messages
        if subject.endswith(".events")
        for e in body["events"]  # type: ignore[attr-defined]
    ]
    assert codes == ["registered", "authenticated", "login", "logout"]
    assert jts.stats.publish_errors == 2
    assert gbs.stats.publish_errors == 1
