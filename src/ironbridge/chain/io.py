"""CSV and Excel templates for chains, with every import error named by file, row and column."""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ironbridge.chain.model import Chain, Component, Enterprise, SizeClass, SupplyLink
from ironbridge.model import InvalidInput, check_id

#: Rows are numbered as a spreadsheet shows them: the header is row 1, data start at row 2.
FILES = ("components.csv", "enterprises.csv", "links.csv")


class _Bad(Exception):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class RowError:
    """One problem in one cell (or row) of an imported table."""

    file: str
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        """``links.csv row 17, column value_cny: expected …``."""
        where = f"{self.file} row {self.row}"
        return (
            f"{where}, column {self.column}: {self.message}"
            if self.column
            else f"{where}: {self.message}"
        )


class ChainImportError(InvalidInput):
    """The import failed; ``errors`` lists every problem found, in file and row order."""

    def __init__(self, errors: Sequence[RowError]) -> None:
        self.errors = tuple(errors)
        shown = "; ".join(str(e) for e in self.errors[:20])
        more = f"; … and {len(self.errors) - 20} more" if len(self.errors) > 20 else ""
        super().__init__("", f"{len(self.errors)} error(s): {shown}{more}")


def _text(raw: str) -> str:
    if not raw.strip():
        raise _Bad("must not be empty")
    return raw.strip()


def _opt_text(raw: str) -> str:
    return raw.strip()


def _ident(raw: str) -> str:
    try:
        return check_id(raw.strip())
    except InvalidInput as exc:
        raise _Bad(f"{exc.reason}, got {raw!r}") from None


def _opt_ident(raw: str) -> str | None:
    return _ident(raw) if raw.strip() else None


def _number(
    lo: float | None, hi: float | None, what: str, default: float | None = None
) -> Callable[[str], Any]:
    def parse(raw: str) -> float | None:
        if not raw.strip():
            if default is not None or lo is None:
                return default
            raise _Bad(f"expected {what}, got an empty cell")
        try:
            value = float(raw.replace(",", "").strip())
        except ValueError:
            raise _Bad(f"expected {what}, got {raw!r}") from None
        if (
            not math.isfinite(value)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise _Bad(f"expected {what}, got {raw!r}")
        return value

    return parse


def _level(raw: str) -> int:
    value = _number(0.0, None, "a non-negative integer", 0.0)(raw)
    if value != int(value):
        raise _Bad(f"expected a non-negative integer, got {raw!r}")
    return int(value)


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("", "0", "false", "no", "n"):
        return False
    if value in ("1", "true", "yes", "y"):
        return True
    raise _Bad(f"expected true/false, got {raw!r}")


def _size(raw: str) -> SizeClass:
    value = raw.strip().lower() or SizeClass.MEDIUM.value
    try:
        return SizeClass(value)
    except ValueError:
        raise _Bad(
            f"expected one of {', '.join(s.value for s in SizeClass)}, got {raw!r}"
        ) from None


def _ids(raw: str) -> tuple[str, ...]:
    return tuple(_ident(p) for p in raw.split(";") if p.strip())


# column -> (parser, required column)
_Spec = dict[str, tuple[Callable[[str], Any], bool]]
_SPECS: dict[str, _Spec] = {
    "components.csv": {
        "id": (_ident, True),
        "name": (_text, True),
        "parent_id": (_opt_ident, False),
        "level": (_level, False),
        "importance": (_number(0.0, None, "a non-negative number", 1.0), False),
        "critical": (_bool, False),
    },
    "enterprises.csv": {
        "id": (_ident, True),
        "name": (_text, True),
        "province": (_text, True),
        "city": (_opt_text, False),
        "district": (_opt_text, False),
        "lat": (_number(None, None, "a latitude in degrees"), False),
        "lon": (_number(None, None, "a longitude in degrees"), False),
        "size": (_size, False),
        "components": (_ids, True),
        "is_leader": (_bool, False),
    },
    "links.csv": {
        "supplier_id": (_ident, True),
        "customer_id": (_ident, True),
        "component_id": (_ident, True),
        "volume_share": (_number(0.0, 1.0, "a share between 0 and 1", 1.0), False),
        "value_cny": (_number(0.0, None, "a non-negative number"), True),
        "lead_time_days": (_number(0.0, None, "a non-negative number", 0.0), False),
        "inventory_cover_days": (_number(0.0, None, "a non-negative number", 0.0), False),
        "recovery_days": (_number(0.0, None, "a non-negative number", 0.0), False),
    },
}
_TYPES: dict[str, Callable[..., Any]] = {
    "components.csv": Component,
    "enterprises.csv": Enterprise,
    "links.csv": SupplyLink,
}
COLUMNS: dict[str, tuple[str, ...]] = {f: tuple(spec) for f, spec in _SPECS.items()}


def _parse(
    file: str,
    label: str,
    rows: Iterable[Sequence[Any]],
    errors: list[RowError],
    broken: set[str] | None = None,
) -> list[tuple[int, Any]]:
    """Parse one table into (row number, value) pairs, appending every problem to ``errors``.

    Ids of rows that fail are added to ``broken`` so that references to them are not
    reported a second time as unknown.
    """
    spec = _SPECS[file]
    it = iter(rows)
    header = [str(h or "").strip().lower() for h in next(it, [])]
    for col in header:
        if col and col not in spec:
            errors.append(RowError(file=label, row=1, column=col, message="unknown column"))
    missing = [c for c, (_, required) in spec.items() if required and c not in header]
    for col in missing:
        errors.append(RowError(file=label, row=1, column=col, message="missing column"))
    if missing:
        return []
    out: list[tuple[int, Any]] = []
    for row_no, row in enumerate(it, start=2):
        cells = ["" if v is None else str(v) for v in row]
        if not any(c.strip() for c in cells):
            continue
        kwargs: dict[str, Any] = {}
        ok = True
        for i, col in enumerate(header):
            if col not in spec:
                continue
            try:
                value = spec[col][0](cells[i] if i < len(cells) else "")
            except _Bad as exc:
                errors.append(RowError(file=label, row=row_no, column=col, message=str(exc)))
                ok = False
                continue
            if value is not None:
                kwargs[col] = value
        if ok:
            try:
                out.append((row_no, _TYPES[file](**kwargs)))
                continue
            except InvalidInput as exc:
                column = exc.field.rsplit(".", 1)[-1].split("[")[0]
                errors.append(RowError(file=label, row=row_no, column=column, message=exc.reason))
        if broken is not None and "id" in kwargs:
            broken.add(kwargs["id"])
    return out


def read_chain_tables(
    tables: Mapping[str, Iterable[Sequence[Any]]],
    *,
    name: str,
    tenant_id: str,
    tenant_path: str,
    labels: Mapping[str, str] | None = None,
) -> Chain:
    """Build a chain from the three tables (header row first), checking everything.

    Args:
        tables: rows of ``components.csv``, ``enterprises.csv`` and ``links.csv``.
        name: the chain's name.
        tenant_id: owner tenant.
        tenant_path: owner's tenant path.
        labels: how to name each table in errors (defaults to the file names).

    Raises:
        ChainImportError: listing every bad cell and every broken reference.
    """
    labels = labels or {}
    errors: list[RowError] = []
    lab = {f: labels.get(f, f) for f in FILES}
    for f in FILES:
        if f not in tables:
            errors.append(RowError(file=lab[f], row=1, column="", message="table is missing"))
    if errors:
        raise ChainImportError(errors)
    broken: set[str] = set()
    comps = _parse(
        "components.csv", lab["components.csv"], tables["components.csv"], errors, broken
    )
    firms = _parse(
        "enterprises.csv", lab["enterprises.csv"], tables["enterprises.csv"], errors, broken
    )
    links = _parse("links.csv", lab["links.csv"], tables["links.csv"], errors)
    _cross_check(comps, firms, links, lab, errors, broken)
    if errors:
        errors.sort(key=lambda e: (FILES.index(next(f for f in FILES if lab[f] == e.file)), e.row))
        raise ChainImportError(errors)
    try:
        return Chain(
            name=name,
            tenant_id=tenant_id,
            tenant_path=tenant_path,
            components=tuple(c for _, c in comps),
            enterprises=tuple(f for _, f in firms),
            links=tuple(lk for _, lk in links),
        )
    except InvalidInput as exc:
        raise ChainImportError(
            [RowError(file="chain", row=0, column=exc.field, message=exc.reason)]
        ) from exc


def _cross_check(
    comps: list[tuple[int, Component]],
    firms: list[tuple[int, Enterprise]],
    links: list[tuple[int, SupplyLink]],
    lab: Mapping[str, str],
    errors: list[RowError],
    broken: set[str],
) -> None:
    comp_ids: dict[str, int] = {}
    for row, comp in comps:
        if comp.id in comp_ids:
            msg = f"duplicate id {comp.id!r} (first on row {comp_ids[comp.id]})"
            errors.append(RowError(file=lab["components.csv"], row=row, column="id", message=msg))
        comp_ids.setdefault(comp.id, row)
    parents = {c.id: c.parent_id for _, c in comps}
    for row, comp in comps:
        if comp.parent_id is None:
            continue
        if comp.parent_id in broken:
            continue
        if comp.parent_id not in comp_ids:
            msg = f"unknown component {comp.parent_id!r}"
            errors.append(
                RowError(file=lab["components.csv"], row=row, column="parent_id", message=msg)
            )
            continue
        seen: set[str] = {comp.id}
        node: str | None = comp.parent_id
        while node is not None and node not in seen:
            seen.add(node)
            node = parents.get(node)
        if node is not None:
            msg = "the component tree has a cycle"
            errors.append(
                RowError(file=lab["components.csv"], row=row, column="parent_id", message=msg)
            )
    made: dict[str, tuple[str, ...]] = {}
    firm_rows: dict[str, int] = {}
    for row, firm in firms:
        if firm.id in firm_rows:
            msg = f"duplicate id {firm.id!r} (first on row {firm_rows[firm.id]})"
            errors.append(RowError(file=lab["enterprises.csv"], row=row, column="id", message=msg))
        firm_rows.setdefault(firm.id, row)
        made.setdefault(firm.id, firm.components)
        for cid in firm.components:
            if cid not in comp_ids and cid not in broken:
                msg = f"unknown component {cid!r}"
                errors.append(
                    RowError(file=lab["enterprises.csv"], row=row, column="components", message=msg)
                )
    for row, link in links:
        for col in ("supplier_id", "customer_id"):
            if getattr(link, col) not in made and getattr(link, col) not in broken:
                msg = f"unknown enterprise {getattr(link, col)!r}"
                errors.append(RowError(file=lab["links.csv"], row=row, column=col, message=msg))
        if link.component_id in broken:
            continue
        if link.component_id not in comp_ids:
            msg = f"unknown component {link.component_id!r}"
            errors.append(
                RowError(file=lab["links.csv"], row=row, column="component_id", message=msg)
            )
        elif link.supplier_id in made and link.component_id not in made[link.supplier_id]:
            msg = f"supplier {link.supplier_id!r} does not make {link.component_id!r}"
            errors.append(
                RowError(file=lab["links.csv"], row=row, column="component_id", message=msg)
            )


def read_chain_csv(directory: Path, *, name: str, tenant_id: str, tenant_path: str) -> Chain:
    """Read ``components.csv``, ``enterprises.csv`` and ``links.csv`` from ``directory``.

    Files are UTF-8 (a BOM, as Excel writes it, is accepted).
    """
    tables: dict[str, list[list[str]]] = {}
    for f in FILES:
        path = directory / f
        if path.exists():
            with path.open(encoding="utf-8-sig", newline="") as fh:
                tables[f] = list(csv.reader(fh))
    return read_chain_tables(tables, name=name, tenant_id=tenant_id, tenant_path=tenant_path)


def chain_rows(chain: Chain) -> dict[str, list[list[str]]]:
    """Return the three tables of ``chain`` as rows of strings, header first."""

    def fmt(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, tuple):
            return ";".join(value)
        if isinstance(value, float):
            return repr(value) if value != int(value) else str(int(value))
        return str(value)

    items: dict[str, Sequence[Any]] = {
        "components.csv": chain.components,
        "enterprises.csv": chain.enterprises,
        "links.csv": chain.links,
    }
    return {
        f: [list(COLUMNS[f]), *([fmt(getattr(it, c)) for c in COLUMNS[f]] for it in items[f])]
        for f in FILES
    }


def write_chain_csv(chain: Chain, directory: Path) -> None:
    """Write the chain as the three CSV templates into ``directory`` (created if absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    for f, rows in chain_rows(chain).items():
        with (directory / f).open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)


def read_chain_xlsx(path: Path, *, name: str, tenant_id: str, tenant_path: str) -> Chain:
    """Read a workbook with sheets ``components``, ``enterprises`` and ``links``.

    Needs openpyxl (imported only here). Errors name the sheet as ``book.xlsx:links``.
    """
    try:
        import openpyxl  # type: ignore[import-untyped]
    except ImportError as exc:
        raise InvalidInput("file", "Excel import needs openpyxl: pip install openpyxl") from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise InvalidInput("file", f"{path.name} is not a readable .xlsx workbook") from exc
    tables: dict[str, list[list[Any]]] = {}
    labels: dict[str, str] = {}
    try:
        for f in FILES:
            sheet = f.removesuffix(".csv")
            labels[f] = f"{path.name}:{sheet}"
            if sheet in book.sheetnames:
                tables[f] = [list(r) for r in book[sheet].iter_rows(values_only=True)]
    finally:
        book.close()
    return read_chain_tables(
        tables, name=name, tenant_id=tenant_id, tenant_path=tenant_path, labels=labels
    )


def write_chain_xlsx(chain: Chain, path: Path) -> None:
    """Write the chain as one workbook with a sheet per template (needs openpyxl)."""
    try:
        import openpyxl
    except ImportError as exc:
        raise InvalidInput("file", "Excel export needs openpyxl: pip install openpyxl") from exc
    book = openpyxl.Workbook()
    book.remove(book.active)
    for f, rows in chain_rows(chain).items():
        sheet = book.create_sheet(f.removesuffix(".csv"))
        for row in rows:
            sheet.append(row)
    book.save(path)
