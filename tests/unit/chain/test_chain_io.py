"""CSV / Excel templates: round trips, and errors that name file, row and column."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from chain_fixtures import small_chain

from ironbridge.chain import (
    ChainImportError,
    chain_rows,
    demo_chain,
    read_chain_csv,
    read_chain_tables,
    read_chain_xlsx,
    write_chain_csv,
    write_chain_xlsx,
)

OWNER = {"name": "small", "tenant_id": "acme", "tenant_path": "/acme/"}


def test_csv_round_trip(tmp_path: Path) -> None:
    chain = demo_chain(tenant_id="acme", tenant_path="/acme/")
    write_chain_csv(chain, tmp_path)
    back = read_chain_csv(tmp_path, name=chain.name, tenant_id="acme", tenant_path="/acme/")
    assert back == chain


def test_xlsx_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("openpyxl")
    chain = small_chain()
    write_chain_xlsx(chain, tmp_path / "chain.xlsx")
    assert read_chain_xlsx(tmp_path / "chain.xlsx", **OWNER) == chain


def _tables() -> dict[str, list[list[str]]]:
    return chain_rows(small_chain())


def _errors(tables: dict[str, list[list[str]]]) -> list[str]:
    with pytest.raises(ChainImportError) as exc:
        read_chain_tables(tables, **OWNER)
    return [str(e) for e in exc.value.errors]


def test_bad_number_names_row_and_column() -> None:
    tables = _tables()
    col = tables["links.csv"][0].index("value_cny")
    tables["links.csv"][2][col] = "abc"  # row 3 counting the header as row 1
    assert _errors(tables) == [
        "links.csv row 3, column value_cny: expected a non-negative number, got 'abc'"
    ]


def test_all_errors_are_collected_in_order() -> None:
    tables = _tables()
    links = tables["links.csv"]
    header = links[0]
    links[1][header.index("volume_share")] = "1.5"
    links[4][header.index("supplier_id")] = "ghost"
    links[3][header.index("inventory_cover_days")] = "-2"
    firms = tables["enterprises.csv"]
    firms[2][firms[0].index("size")] = "huge"
    firms[3][firms[0].index("lat")] = "95"
    comps = tables["components.csv"]
    comps[3][comps[0].index("parent_id")] = "nowhere"
    assert _errors(tables) == [
        "components.csv row 4, column parent_id: unknown component 'nowhere'",
        "enterprises.csv row 3, column size: "
        "expected one of large, medium, small, micro, got 'huge'",
        "enterprises.csv row 4, column lat: must be <= 90, got 95.0",
        "links.csv row 2, column volume_share: expected a share between 0 and 1, got '1.5'",
        "links.csv row 4, column inventory_cover_days: expected a non-negative number, got '-2'",
        "links.csv row 5, column supplier_id: unknown enterprise 'ghost'",
    ]


def test_reference_errors() -> None:
    tables = _tables()
    links = tables["links.csv"]
    links[1][links[0].index("component_id")] = "M"  # packA does not make motors
    firms = tables["enterprises.csv"]
    firms.append(list(firms[1]))  # duplicate of row 2
    firms[1][firms[0].index("components")] = "V;Q"
    errors = _errors(tables)
    assert errors == [
        "enterprises.csv row 2, column components: unknown component 'Q'",
        "enterprises.csv row 8, column id: duplicate id 'oem' (first on row 2)",
        "links.csv row 2, column component_id: supplier 'packA' does not make 'M'",
    ]


def test_header_problems_and_missing_table(tmp_path: Path) -> None:
    tables = _tables()
    tables["links.csv"][0][tables["links.csv"][0].index("value_cny")] = "value"
    assert _errors(tables) == [
        "links.csv row 1, column value: unknown column",
        "links.csv row 1, column value_cny: missing column",
    ]
    write_chain_csv(small_chain(), tmp_path)
    (tmp_path / "links.csv").unlink()
    with pytest.raises(ChainImportError) as exc:
        read_chain_csv(tmp_path, **OWNER)
    assert str(exc.value.errors[0]) == "links.csv row 1: table is missing"


def test_excel_bom_and_blank_rows(tmp_path: Path) -> None:
    write_chain_csv(small_chain(), tmp_path)
    path = tmp_path / "links.csv"
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        csv.writer(fh).writerows([*rows, ["", "", ""]])
    assert read_chain_csv(tmp_path, **OWNER) == small_chain()


def test_xlsx_errors_name_the_sheet(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    write_chain_xlsx(small_chain(), tmp_path / "book.xlsx")
    book = openpyxl.load_workbook(tmp_path / "book.xlsx")
    book["links"]["E3"] = "abc"  # column E is value_cny
    book.save(tmp_path / "book.xlsx")
    with pytest.raises(ChainImportError) as exc:
        read_chain_xlsx(tmp_path / "book.xlsx", **OWNER)
    assert [str(e) for e in exc.value.errors] == [
        "book.xlsx:links row 3, column value_cny: expected a non-negative number, got 'abc'"
    ]
