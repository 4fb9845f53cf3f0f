"""Vehicles against a real platform: GB/T 32960 and JT/T 808 over TCP, J1939 uploads, AEMP, KPIs."""

from __future__ import annotations

import asyncio
import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import PlatformProcess, basic, free_port, wait_for
from ironbridge.codec import gbt32960 as gb
from ironbridge.codec import jt808 as jt
from ironbridge.codec.j1939 import (
    DM1_PGN,
    CanFrame,
    Dm1,
    Dtc,
    Lamps,
    encode_dm1,
    encode_pgn,
    format_candump,
    make_can_id,
)
from ironbridge.sim import load_builtin_asset_types
from ironbridge.sim.vehicles import Jt808Truck, NevBus, nev_realtime

pytestmark = pytest.mark.integration

AEMP_NS = "{http://standards.iso.org/iso/15143/-3}"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    gb_port, jt_port = free_port(), free_port()
    p = PlatformProcess(
        Path(tmp_path_factory.mktemp("vehicles")) / "data",
        extra_env={
            "IRONBRIDGE_VEHICLES__ENABLED": "true",
            "IRONBRIDGE_VEHICLES__GBT32960_PORT": str(gb_port),
            "IRONBRIDGE_VEHICLES__JT808_PORT": str(jt_port),
            "IRONBRIDGE_VEHICLES__UNKNOWN_POLICY": "pending",
        },
    ).start()
    p.gb_port = gb_port  # type: ignore[attr-defined]
    p.jt_port = jt_port  # type: ignore[attr-defined]
    yield p
    assert p.stop() == 0, p.log()


def create(api: httpx.Client, asset_id: str, type_name: str, device_id: str, **attrs: Any) -> str:
    r = api.post(
        "/api/v1/assets", json={"id": asset_id, "type_name": type_name, "attributes": attrs}
    )
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": device_id, "asset_ids": [asset_id]})
    assert r.status_code == 201, r.text
    return str(r.json()["credential"])


def latest(api: httpx.Client, asset: str) -> dict[str, float]:
    r = api.get("/api/v1/telemetry/latest", params={"asset": asset})
    assert r.status_code == 200, r.text
    return {v["measurement"]: v["value"] for v in r.json()["values"]}


def events(api: httpx.Client, asset: str) -> list[dict[str, Any]]:
    r = api.get(f"/api/v1/fleet/assets/{asset}/events", params={"start": "now-2d", "end": "now+1d"})
    assert r.status_code == 200, r.text
    return list(r.json()["events"])


async def _gb_session(port: int, frames: list[bytes]) -> list[gb.Frame]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out: list[gb.Frame] = []
    buf = b""
    try:
        for f in frames:
            writer.write(f)
            await writer.drain()
            async with asyncio.timeout(10):
                while True:
                    got, buf, _ = gb.split_stream(buf)
                    if got:
                        out.append(gb.parse_frame(got[0]))
                        buf = b"".join(got[1:]) + buf
                        break
                    chunk = await reader.read(65536)
                    assert chunk
                    buf += chunk
    finally:
        writer.close()
        await writer.wait_closed()
    return out


def test_nev_bus_over_gbt32960_lands_in_the_store_with_alarm_events(
    platform: PlatformProcess,
) -> None:
    api = platform.client()
    bus = NevBus(1, edition=gb.Edition.V2025)
    create(api, "bus-1", "nev_bus", f"nev-{bus.vin}", vin=bus.vin, province="Shandong", model="B12")
    report = nev_realtime(
        datetime.now(UTC),
        speed=32.5,
        soc=77,
        odometer=12345.6,
        lat=36.65,
        lon=117.01,
        edition=gb.Edition.V2025,
        alarm_flags=1 << 1,
        alarm_level=2,
    )
    frames = [
        bus.login_frame(1),
        gb.encode_message(gb.Command.REALTIME, report, vin=bus.vin, edition=gb.Edition.V2025),
        b"\x00junk"
        + gb.encode_message(
            gb.Command.HEARTBEAT, gb.Empty(), vin=bus.vin, edition=gb.Edition.V2025
        ),
    ]
    answers = asyncio.run(_gb_session(platform.gb_port, frames))  # type: ignore[attr-defined]
    assert [a.response for a in answers] == [gb.ResponseFlag.SUCCESS] * 3
    wait_for(lambda: "soc" in latest(api, "bus-1"), 20)
    values = latest(api, "bus-1")
    assert values["soc"] == 77
    assert values["vehicle_speed"] == pytest.approx(32.5)
    assert values["odometer"] == pytest.approx(12345.6)
    assert values["cell_voltage_1_96"] > 3
    wait_for(lambda: any(e["kind"] == "gbt32960_alarm" for e in events(api, "bus-1")), 20)
    codes = {(e["kind"], e["code"]) for e in events(api, "bus-1")}
    assert ("gbt32960_alarm", "battery_high_temperature") in codes
    assert ("vehicle_session", "login") in codes
    r = api.get("/api/v1/fleet/endpoints")
    assert r.json()["endpoints"]["gbt32960"]["malformed"] >= 1


def test_unknown_vin_registered_as_pending_and_refused(platform: PlatformProcess) -> None:
    api = platform.client()
    stranger = NevBus(777)
    answers = asyncio.run(_gb_session(platform.gb_port, [stranger.login_frame(1)]))  # type: ignore[attr-defined]
    assert answers[0].response == gb.ResponseFlag.ERROR
    r = api.get("/api/v1/assets/nev-bus-" + stranger.vin)
    assert r.status_code == 200, r.text
    assert r.json()["attributes"]["status"] == "pending"


async def _jt_session(
    port: int, truck: Jt808Truck, frames: list[bytes] | None = None
) -> list[jt.Message]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    buf = b""
    out: list[jt.Message] = []

    async def ask(frame: bytes) -> jt.Message:
        nonlocal buf
        writer.write(frame)
        await writer.drain()
        async with asyncio.timeout(10):
            while True:
                got, buf = jt.split_stream(buf)
                if got:
                    buf = b"".join(got[1:]) + buf
                    return jt.decode_message(got[0])
                chunk = await reader.read(65536)
                assert chunk
                buf += chunk

    try:
        reg = await ask(truck.registration_frame())
        out.append(reg)
        assert isinstance(reg.body, jt.RegistrationResponse)
        out.append(await ask(truck.auth_frame(reg.body.auth_code or "")))
        for frame in [truck.location_frame(10)] if frames is None else frames:
            out.append(await ask(frame))
    finally:
        writer.close()
        await writer.wait_closed()
    return out


def test_truck_over_jt808_registers_authenticates_and_reports(platform: PlatformProcess) -> None:
    api = platform.client()
    truck = Jt808Truck(5, version=jt.Version.V2019)
    create(
        api,
        "jt-truck-5",
        "jt808_truck",
        f"jt808-{truck.phone}",
        phone=truck.phone,
        province="Hebei",
    )
    reg, auth, loc = asyncio.run(_jt_session(platform.jt_port, truck))  # type: ignore[attr-defined]
    assert isinstance(reg.body, jt.RegistrationResponse)
    assert reg.body.result == 0
    assert isinstance(auth.body, jt.GeneralResponse)
    assert auth.body.result == 0
    assert isinstance(loc.body, jt.GeneralResponse)
    assert loc.body.result == 0
    wait_for(lambda: "mileage" in latest(api, "jt-truck-5"), 20)
    v = latest(api, "jt-truck-5")
    assert v["mileage"] > 50_000
    assert v["gnss_positioned"] == 1
    assert v["latitude"] > 35


def test_subpackaged_jt808_batch_is_reassembled_and_every_report_stored(
    platform: PlatformProcess,
) -> None:
    api = platform.client()
    truck = Jt808Truck(6)
    create(api, "jt-truck-6", "jt808_truck", f"jt808-{truck.phone}", phone=truck.phone)
    now = datetime.now(UTC).replace(microsecond=0)
    reports = []
    for i in range(30):
        one = jt.decode_message(truck.location_frame(i)).body
        assert isinstance(one, jt.LocationReport)
        reports.append(dataclasses.replace(one, time=now - timedelta(seconds=60 - i)))
    header = jt.Header(msg_id=jt.MsgId.BATCH_LOCATION, phone=truck.phone, serial=400)
    packets = jt.split_message(
        header, jt.encode_body(jt.BatchLocation(kind=1, reports=tuple(reports))), packet_size=400
    )
    assert len(packets) == 4
    answers = asyncio.run(
        _jt_session(platform.jt_port, truck, [packets[i] for i in (1, 3, 0, 2)])  # type: ignore[attr-defined]
    )
    acks = [(a.body.reply_serial, a.body.result) for a in answers[2:]]  # type: ignore[union-attr]
    assert acks == [(401, 0), (403, 0), (400, 0), (402, 0)]

    def stored() -> int:
        r = api.get(
            "/api/v1/telemetry/raw",
            params={"asset": "jt-truck-6", "measurement": "speed", "start": "now-1h"},
        )
        assert r.status_code == 200, r.text
        series = r.json()["series"]
        return len(series[0]["ts"]) if series else 0

    wait_for(lambda: stored() == 30, 20)
    r = api.get("/api/v1/fleet/endpoints")
    assert r.json()["endpoints"]["jt808"]["reassembled"] >= 1


def test_j1939_frames_upload_measurements_and_dm1_lifecycle(platform: PlatformProcess) -> None:
    api = platform.client()
    truck_type = next(t for t in load_builtin_asset_types() if t.name == "heavy_truck")
    r = api.post("/api/v1/asset-types", json=truck_type.to_dict())
    assert r.status_code in (201, 409), r.text
    cred = create(
        api,
        "can-truck-1",
        "heavy_truck",
        "can-logger-1",
        vin="LCAN0000000000001",
        province="Shandong",
        model="H7",
    )
    now = datetime.now(UTC).timestamp()
    lamps = Lamps(mil=False, red_stop=False, amber_warning=True, protect=False)

    def line(ts: float, pgn: int, data: bytes) -> str:
        return format_candump(
            CanFrame(ts=ts, channel="can0", can_id=make_can_id(pgn, 0), extended=True, data=data)
        )

    first = "\n".join(
        [
            line(now - 10, 61444, encode_pgn(61444, {"engine_speed": 1400.0})),
            line(now - 10, 65253, encode_pgn(65253, {"engine_hours": 1234.5})),
            line(now - 9, DM1_PGN, encode_dm1(Dm1(lamps=lamps, dtcs=(Dtc(spn=110, fmi=0, oc=1),)))),
            "(garbage",
        ]
    )
    r = httpx.post(
        f"{platform.url}/api/v1/j1939/frames",
        content=first,
        headers={**basic("can-logger-1", cred), "Content-Type": "text/plain"},
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted_points"] == 2
    assert body["errors"][0]["line"] == 4
    assert body["events"][0]["code"] == "SPN110-FMI0"
    assert body["events"][0]["state"] == "opened"
    cleared = line(now - 5, DM1_PGN, encode_dm1(Dm1(lamps=lamps, dtcs=())))
    r = httpx.post(
        f"{platform.url}/api/v1/j1939/frames", content=cleared, headers=basic("can-logger-1", cred)
    )
    assert r.json()["events"][0]["state"] == "cleared"
    wait_for(
        lambda: len([e for e in events(api, "can-truck-1") if e["kind"] == "j1939_dtc"]) == 2, 20
    )
    wait_for(lambda: latest(api, "can-truck-1").get("engine_hours") == 1234.5, 20)
    # AEMP time series of faults: the opened code only
    r = api.get(
        "/api/v1/aemp/Fleet/Equipment/ID/LCAN0000000000001/Faults/now-1d/now%2B1h/1",
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200, r.text
    faults = r.json()["Faults"]
    assert [f["CodeIdentifier"] for f in faults] == ["110-0"]
    r = httpx.post(
        f"{platform.url}/api/v1/j1939/frames", content="x", headers=basic("can-logger-1", "wrong")
    )
    assert r.status_code == 401


def test_aemp_fleet_snapshot_has_the_documented_shape(platform: PlatformProcess) -> None:
    api = platform.client()
    if not _has(api, "bus-1"):
        pytest.skip(
            "needs the bus of test_nev_bus_over_gbt32960_lands_in_the_store_with_alarm_events"
        )
    wait_for(lambda: "soc" in latest(api, "bus-1"), 20)
    r = api.get("/api/v1/aemp/Fleet/1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == f"{AEMP_NS}Fleet"
    assert root.get("version") == "2"
    assert root.get("snapshotTime", "").endswith("Z")
    rels = {link.findtext(f"{AEMP_NS}rel") for link in root.findall(f"{AEMP_NS}Links")}
    assert {"self", "last"} <= rels
    equipment = root.findall(f"{AEMP_NS}Equipment")
    assert equipment
    for eq in equipment:
        header = eq.find(f"{AEMP_NS}EquipmentHeader")
        assert header is not None
        for child in ("OEMName", "Model", "EquipmentID", "SerialNumber", "PIN"):
            assert header.findtext(f"{AEMP_NS}{child}"), child
    r = api.get("/api/v1/aemp/Fleet/1", headers={"Accept": "application/json"})
    doc = r.json()
    assert set(doc) == {"version", "snapshotTime", "Links", "Equipment"}
    bus = next(e for e in doc["Equipment"] if e["EquipmentHeader"]["EquipmentID"] == "bus-1")
    assert bus["Location"]["Latitude"] == pytest.approx(36.65)
    assert bus["Distance"]["OdometerUnits"] == "kilometre"
    assert "datetime" in bus["Distance"]
    r = api.get(f"/api/v1/aemp/Fleet/Equipment/ID/{NevBus(1, edition=gb.Edition.V2025).vin}")
    assert r.status_code == 200, r.text
    assert (
        ET.fromstring(r.content).find(f"{AEMP_NS}Equipment/{AEMP_NS}EquipmentHeader/{AEMP_NS}PIN")
        is not None
    )
    r = api.get(
        "/api/v1/aemp/Fleet/Equipment/ID/bus-1/Locations/now-1d/now%2B1h/1",
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200
    assert r.json()["Locations"][0]["Latitude"] == pytest.approx(36.65)
    assert api.get("/api/v1/aemp/Fleet/99").status_code == 404


def _has(api: httpx.Client, asset: str) -> bool:
    return api.get(f"/api/v1/assets/{asset}").status_code == 200


def test_fleet_kpis_roll_up_by_province(platform: PlatformProcess) -> None:
    api = platform.client()
    r = api.get(
        "/api/v1/fleet/kpis", params={"start": "now-1d", "end": "now+1h", "group_by": "province"}
    )
    assert r.status_code == 200, r.text
    rows = {row["province"]: row for row in r.json()["rows"]}
    assert "Shandong" in rows
    assert rows["Shandong"]["machines"] >= 1
    r = api.get("/api/v1/fleet/activity-index", params={"start": "now-40d", "end": "now+1h"})
    assert r.status_code == 200, r.text
    assert {"region", "month", "operating_rate", "avg_hours"} <= set(r.json()["rows"][0])
    assert api.get("/api/v1/fleet/kpis", params={"bucket": "nope"}).status_code == 422
