"""The chain API through a real platform: import, metrics, what-if, errors, tenancy, risk."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness import PlatformProcess, basic, wait_for
from ironbridge.chain import (
    DEMO_REGION,
    DEMO_WEAK_LINKS,
    ChainFrame,
    Removal,
    chain_rows,
    demo_chain,
    leader_localisation,
    what_if,
    write_chain_csv,
    write_chain_xlsx,
)
from ironbridge.sim.plant import ASSET_TYPE_YAML

CHAIN = "/api/v1/chains"
FILES = ("components", "enterprises", "links")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformProcess]:
    p = PlatformProcess(Path(tmp_path_factory.mktemp("chain_api")) / "data").start()
    yield p
    assert p.stop() == 0, p.log()


@pytest.fixture(scope="module")
def api(platform: PlatformProcess) -> httpx.Client:
    return platform.client()


def _csv_files(directory: Path) -> dict[str, tuple[str, bytes, str]]:
    return {f: (f"{f}.csv", (directory / f"{f}.csv").read_bytes(), "text/csv") for f in FILES}


@pytest.fixture(scope="module")
def nev(api: httpx.Client, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The demo chain imported as CSV templates into the root tenant."""
    directory = tmp_path_factory.mktemp("nev_csv")
    write_chain_csv(demo_chain(), directory)
    r = api.post(f"{CHAIN}/nev/import", files=_csv_files(directory))
    assert r.status_code == 201, r.text
    return "nev"


def _local_frame() -> ChainFrame:
    return ChainFrame.from_chain(demo_chain())


def test_import_list_get_and_export_round_trip(api: httpx.Client, nev: str) -> None:
    chain = demo_chain()
    listed = {c["name"]: c for c in api.get(CHAIN).json()}
    assert listed[nev]["n_enterprises"] == len(chain.enterprises)
    assert listed[nev]["n_links"] == len(chain.links)
    body = api.get(f"{CHAIN}/{nev}").json()
    assert [f["id"] for f in body["enterprises"]] == [f.id for f in chain.enterprises]
    assert {f["tier"] for f in body["enterprises"] if f["is_leader"]} == {0}
    r = api.get(f"{CHAIN}/{nev}/export", params={"format": "csv"})
    assert r.status_code == 200
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        exported = {n: list(csv.reader(io.StringIO(zf.read(n).decode()))) for n in zf.namelist()}
    assert exported == chain_rows(chain)
    r = api.get(f"{CHAIN}/{nev}/export", params={"format": "xlsx"})
    assert r.status_code == 200
    assert r.content[:2] == b"PK"


def test_xlsx_import_gives_the_same_chain(api: httpx.Client, nev: str, tmp_path: Path) -> None:
    path = tmp_path / "nev.xlsx"
    write_chain_xlsx(demo_chain(), path)
    files = {"workbook": ("nev.xlsx", path.read_bytes(), "application/octet-stream")}
    r = api.post(f"{CHAIN}/nev-xlsx/import", files=files)
    assert r.status_code == 201, r.text
    a = api.get(f"{CHAIN}/nev-xlsx").json()
    b = api.get(f"{CHAIN}/{nev}").json()
    assert a["links"] == b["links"]
    assert a["enterprises"] == b["enterprises"]
    assert api.delete(f"{CHAIN}/nev-xlsx").status_code == 204
    assert api.get(f"{CHAIN}/nev-xlsx").status_code == 404


def test_metrics_and_the_deliberate_weak_links(api: httpx.Client, nev: str) -> None:
    m = api.get(f"{CHAIN}/{nev}/metrics", params={"level": "province"}).json()
    regions = {r["region"]: r for r in m["regions"]}
    sd = regions[DEMO_REGION]
    assert m["default_region"] == DEMO_REGION
    assert 0 < sd["completeness"] < 1  # power chips have no maker in Shandong
    assert 0 < sd["local_rate_value"] < 1
    assert sd["external_dependence"] == pytest.approx(1 - sd["local_rate_value"])
    comps = {c["id"]: c for c in m["components"]}
    assert comps["power_chip"]["single_source"]
    assert comps["power_chip"]["hhi"] == 1.0
    w = api.get(f"{CHAIN}/{nev}/weak-links", params={"region": DEMO_REGION}).json()
    top = w["weak_links"][:3]
    assert {x["component_id"] for x in top} == set(DEMO_WEAK_LINKS)
    assert all(x["reason"] and x["flags"] for x in top)
    chips = next(x for x in top if x["component_id"] == "power_chip")
    assert set(chips["flags"]) >= {"gap", "choke"}
    per = api.get(f"{CHAIN}/{nev}/components", params={"region": DEMO_REGION}).json()
    cathode = next(c for c in per["components"] if c["id"] == "cathode")
    assert cathode["hhi"] == pytest.approx(0.95**2 + 0.05**2)
    dep = api.get(f"{CHAIN}/{nev}/dependence", params={"region": DEMO_REGION}).json()
    assert dep["sources"]
    assert all(s["region"] != DEMO_REGION for s in dep["sources"])


def test_leader_localisation_matches_the_library(api: httpx.Client, nev: str) -> None:
    frame = _local_frame()
    leaders = api.get(f"{CHAIN}/{nev}/leaders").json()["leaders"]
    assert {x["leader_id"] for x in leaders} == {"L-JN-TRUCK", "L-LC-BUS", "L-QD-CAR"}
    for x in leaders:
        want = leader_localisation(frame, x["leader_id"])
        assert x["rate_value"] == pytest.approx(want.rate_value)
        assert x["n_local_suppliers"] == want.n_local_suppliers
    one = api.get(f"{CHAIN}/{nev}/leaders/L-JN-TRUCK", params={"level": "city"}).json()
    assert one["region"] == "Shandong/Jinan"


def test_what_if_removing_the_only_power_chip_maker(api: httpx.Client, nev: str) -> None:
    r = api.post(f"{CHAIN}/{nev}/what-if", json={"firms": ["POWER-CHIP-01"]})
    assert r.status_code == 200, r.text
    got = r.json()
    want = what_if(_local_frame(), Removal.supplier("POWER-CHIP-01"))
    assert set(got["removed"]) == {"POWER-CHIP-01"}
    assert {h["firm_id"] for h in got["halted"]} == set(want.halted)
    products = {p["firm_id"]: p for p in got["products"]}
    assert set(products) == {"L-JN-TRUCK", "L-LC-BUS", "L-QD-CAR"}
    for firm_id, p in products.items():
        assert p["time_to_survive_days"] == pytest.approx(want.time_to_survive[firm_id])
        assert p["time_to_recover_days"] == pytest.approx(want.time_to_recover[firm_id])
        assert p["outage_days"] > 0
    # no other maker of power chips exists: no alternatives to offer
    assert got["alternatives"].get("power_chip", []) == []
    # a second cathode source exists: removing the big one offers it
    r = api.post(
        f"{CHAIN}/{nev}/what-if",
        json={"sources": [{"supplier_id": "CATHODE-01", "component_id": "cathode"}]},
    )
    alts = r.json()["alternatives"]["cathode"]
    assert [a["firm_id"] for a in alts] == ["CATHODE-02"]
    bad = api.post(f"{CHAIN}/{nev}/what-if", json={"firms": ["NO-SUCH-FIRM"]})
    assert bad.status_code == 422
    assert bad.json()["field"] == "enterprise_id"


def test_import_errors_name_file_row_and_column(api: httpx.Client, tmp_path: Path) -> None:
    write_chain_csv(demo_chain(), tmp_path)
    links = (tmp_path / "links.csv").read_text().splitlines()
    header = links[0].split(",")
    row3 = links[2].split(",")
    row3[header.index("value_cny")] = "lots"
    links[2] = ",".join(row3)
    row5 = links[4].split(",")
    row5[header.index("supplier_id")] = "GHOST-01"
    links[4] = ",".join(row5)
    (tmp_path / "links.csv").write_text("\n".join(links) + "\n")
    r = api.post(f"{CHAIN}/broken/import", files=_csv_files(tmp_path))
    assert r.status_code == 422, r.text
    errors = r.json()["errors"]
    where = {(e["file"], e["row"], e["column"]) for e in errors}
    assert where == {("links.csv", 3, "value_cny"), ("links.csv", 5, "supplier_id")}
    assert any("GHOST-01" in e["message"] for e in errors)
    assert api.get(f"{CHAIN}/broken").status_code == 404  # nothing half-stored
    # the JSON form names the list, the item index and the column
    r = api.post(
        CHAIN,
        json={
            "name": "tiny",
            "components": [{"id": "V", "name": "vehicle"}, {"id": "P", "name": "pack"}],
            "enterprises": [{"id": "oem", "name": "OEM", "province": "", "components": ["V"]}],
        },
    )
    assert r.status_code == 422
    (err,) = r.json()["errors"]
    assert (err["file"], err["index"], err["column"]) == ("enterprises", 0, "province")


def test_tenant_isolation(api: httpx.Client, platform: PlatformProcess, nev: str) -> None:
    r = api.post("/api/v1/tenants", json={"id": "chain-sub", "name": "Sub", "parent_id": "root"})
    assert r.status_code == 201, r.text
    r = api.post(
        "/api/v1/users",
        json={
            "username": "chain-sub-op",
            "password": "sub-password-1",
            "role": "operator",
            "tenant_id": "chain-sub",
        },
    )
    assert r.status_code == 201, r.text
    sub = platform.client(platform.login("chain-sub-op", "sub-password-1"))
    assert sub.get(CHAIN).json() == []
    for params in ({}, {"tenant_id": "root"}):
        assert sub.get(f"{CHAIN}/{nev}", params=params).status_code == 404
        assert sub.get(f"{CHAIN}/{nev}/weak-links", params=params).status_code == 404
        assert (
            sub.post(f"{CHAIN}/{nev}/what-if", params=params, json={"firms": ["BMS-01"]})
        ).status_code == 404
        assert sub.delete(f"{CHAIN}/{nev}", params=params).status_code == 404
    # the child cannot write into its parent either
    r = sub.post(CHAIN, json={"name": "x", "tenant_id": "root"})
    assert r.status_code == 404
    # the parent can create a chain for the child; both see it, the child by default
    r = api.post(
        CHAIN,
        json={
            "name": "sub-chain",
            "tenant_id": "chain-sub",
            "components": [{"id": "V", "name": "vehicle"}],
            "enterprises": [
                {"id": "oem", "name": "OEM", "province": "Shandong", "components": "V"}
            ],
        },
    )
    assert r.status_code == 201, r.text
    assert [c["name"] for c in sub.get(CHAIN).json()] == ["sub-chain"]
    assert sub.get(f"{CHAIN}/sub-chain").status_code == 200
    assert api.get(f"{CHAIN}/sub-chain", params={"tenant_id": "chain-sub"}).status_code == 200
    names = [(c["tenant_id"], c["name"]) for c in api.get(CHAIN).json()]
    assert ("chain-sub", "sub-chain") in names
    assert ("root", nev) in names


PLANT_TYPE = """
name: supplier_plant
version: 1
measurements:
  - {name: oee, min: 0, max: 1}
attributes:
  - {name: oee, type: number}
  - {name: delivery_performance, type: number}
"""


def test_network_filters(api: httpx.Client, nev: str) -> None:
    net = api.get(f"{CHAIN}/{nev}/network", params={"component": "power_chip"}).json()
    assert net["edges"]
    assert {e["component"] for e in net["edges"]} == {"power_chip"}
    assert {e["source"] for e in net["edges"]} == {"POWER-CHIP-01"}
    ids = {n["id"] for n in net["nodes"]}
    assert ids == {"POWER-CHIP-01"} | {e["target"] for e in net["edges"]}
    top = api.get(f"{CHAIN}/{nev}/network", params={"tier": 0, "neighbours": False}).json()
    assert {n["id"] for n in top["nodes"]} == {"L-JN-TRUCK", "L-LC-BUS", "L-QD-CAR"}
    assert top["edges"] == []  # OEMs do not supply each other
    local = api.get(
        f"{CHAIN}/{nev}/network", params={"region": "Shandong/Jinan", "level": "city"}
    ).json()
    inside = [n for n in local["nodes"] if not n["context"]]
    assert inside
    assert all(n["city"] == "Jinan" for n in inside)
    assert any(n["context"] for n in local["nodes"])  # partners outside Jinan, as context
    for e in local["edges"]:
        assert e["source"] in {n["id"] for n in inside} or e["target"] in {n["id"] for n in inside}


def test_live_plant_data_feeds_the_risk_score(api: httpx.Client, nev: str) -> None:
    r = api.post("/api/v1/asset-types", content=PLANT_TYPE, headers={"Content-Type": "text/yaml"})
    assert r.status_code == 201, r.text
    r = api.post(
        "/api/v1/assets",
        json={
            "id": "bms-plant-1",
            "type_name": "supplier_plant",
            "attributes": {"oee": 0.4, "delivery_performance": 0.7},
        },
    )
    assert r.status_code == 201, r.text
    before = {s["firm_id"]: s for s in api.get(f"{CHAIN}/{nev}/risk").json()["suppliers"]}
    assert before["BMS-01"]["live"] is False
    assert before["BMS-01"]["score"] == pytest.approx(75.0)  # exposure 1, unknown = 0.5
    r = api.put(f"{CHAIN}/{nev}/enterprises/BMS-01/assets", json={"asset_ids": ["bms-plant-1"]})
    assert r.status_code == 200, r.text
    assert api.get(f"{CHAIN}/{nev}/asset-links").json() == {"BMS-01": ["bms-plant-1"]}
    after = {s["firm_id"]: s for s in api.get(f"{CHAIN}/{nev}/risk").json()["suppliers"]}
    bms = after["BMS-01"]
    assert bms["live"] is True
    assert bms["assets"] == ["bms-plant-1"]
    assert bms["oee"] == pytest.approx(0.4)
    assert bms["delivery_performance"] == pytest.approx(0.7)
    # 100 x exposure 1 x (0.5 + 0.5 x (1 - mean(0.4, 0.7)))
    assert bms["score"] == pytest.approx(100 * (0.5 + 0.5 * (1 - 0.55)))
    assert "live OEE 40%" in bms["reason"]
    # a second plant reports OEE as telemetry: the latest value beats its attribute
    r = api.post(
        "/api/v1/assets",
        json={"id": "bms-plant-2", "type_name": "supplier_plant", "attributes": {"oee": 0.1}},
    )
    assert r.status_code == 201, r.text
    r = api.post("/api/v1/devices", json={"id": "bms-plant-2-gw", "asset_ids": ["bms-plant-2"]})
    assert r.status_code == 201, r.text
    auth = basic("bms-plant-2-gw", r.json()["credential"])
    r = api.post("/api/v1/telemetry", json={"values": {"oee": 0.9}}, headers=auth)
    assert r.status_code == 202, r.text
    r = api.put(
        f"{CHAIN}/{nev}/enterprises/BMS-01/assets",
        json={"asset_ids": ["bms-plant-1", "bms-plant-2"]},
    )
    assert r.status_code == 200, r.text

    def risk_of_bms() -> dict[str, Any] | None:
        rows = api.get(f"{CHAIN}/{nev}/risk").json()["suppliers"]
        bms = next(s for s in rows if s["firm_id"] == "BMS-01")
        return bms if bms["oee"] == pytest.approx(0.65) else None

    bms = wait_for(risk_of_bms, what="the OEE reading to be stored and read")
    # OEE = mean(0.4 attribute, 0.9 telemetry); delivery 0.7 -> P = 0.675
    assert bms["score"] == pytest.approx(100 * (0.5 + 0.5 * (1 - 0.675)))
    missing = api.put(
        f"{CHAIN}/{nev}/enterprises/BMS-01/assets", json={"asset_ids": ["no-such-asset"]}
    )
    assert missing.status_code == 404
    gone = api.put(f"{CHAIN}/{nev}/enterprises/NOPE/assets", json={"asset_ids": []})
    assert gone.status_code == 404


def test_plant_oee_from_the_plant_module_feeds_the_risk_score(
    api: httpx.Client, platform: PlatformProcess, nev: str
) -> None:
    """The hand-computed case of the plant tests: OEE 0.625 over the 00:00-08:00 shift."""
    r = api.post(
        "/api/v1/asset-types", content=ASSET_TYPE_YAML, headers={"Content-Type": "text/yaml"}
    )
    assert r.status_code in (201, 409), r.text
    assert (
        api.post(
            "/api/v1/assets", json={"id": "cathode-line-1", "type_name": "plant_station"}
        ).status_code
        == 201
    )
    r = api.post("/api/v1/devices", json={"id": "cathode-line-1", "asset_ids": ["cathode-line-1"]})
    assert r.status_code == 201, r.text
    auth = basic("cathode-line-1", r.json()["credential"])
    site = {
        "id": "cathode-plant",
        "reason_codes": {"1": "jam"},
        "calendar": {
            "timezone": "UTC",
            "shifts": [{"name": "early", "start": "00:00", "end": "08:00"}],
        },
        "lines": [{"id": "l1", "stations": [{"id": "cathode-line-1", "ideal_cycle_s": 6}]}],
    }
    r = api.post("/api/v1/plant/sites", json=site)
    assert r.status_code == 201, r.text
    t0, h = 1_767_571_200_000, 3_600_000  # 2026-01-05T00:00:00Z
    doc = {
        "ts": [t0, t0 + 2 * h, t0 + 3 * h, t0 + 7 * h],
        "values": {
            "state": [0, 2, 0, None],
            "reason": [0, 1, 0, None],
            "good_count": [0, None, None, 3000],
            "scrap_count": [0, None, None, 100],
        },
    }
    assert api.post("/api/v1/telemetry", json=doc, headers=auth).status_code == 202
    r = api.put(
        f"{CHAIN}/{nev}/enterprises/CATHODE-02/assets", json={"asset_ids": ["cathode-line-1"]}
    )
    assert r.status_code == 200, r.text
    window = {"window_days": 1 / 3, "end": "2026-01-05T08:00:00Z", "limit": 1000}

    def cathode() -> dict[str, Any] | None:
        rows = api.get(f"{CHAIN}/{nev}/risk", params=window).json()["suppliers"]
        row = next(s for s in rows if s["firm_id"] == "CATHODE-02")
        return row if row["oee"] is not None and row["oee"] > 0.5 else None

    row = wait_for(cathode, what="the station's OEE to reach the chain")
    assert row["oee"] == pytest.approx(0.625)
    assert row["live"] is True
    # scores are rounded to 2 decimals
    assert row["score"] == pytest.approx(100 * row["exposure"] * (0.5 + 0.5 * 0.375), abs=0.006)
