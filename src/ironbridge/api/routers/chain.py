"""Industrial chains: storage, CSV/Excel import and export, metrics, what-if, network, risk."""

from __future__ import annotations

import csv
import io
import math
import tempfile
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ironbridge.analytics.oee import compute_oee
from ironbridge.analytics.plant_data import load_logs
from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.api.errors import error_body
from ironbridge.api.responses import FastJSON
from ironbridge.api.routers.query import parse_time
from ironbridge.chain import (
    Chain,
    ChainFrame,
    ChainHeader,
    ChainImportError,
    ChainRepository,
    RegionLevel,
    Removal,
    WhatIf,
    chain_rows,
    leader_localisation,
    outside_dependence,
    read_chain_tables,
    read_chain_xlsx,
    region_report,
    supplier_risk,
    weak_links,
    write_chain_xlsx,
)
from ironbridge.chain.io import COLUMNS, FILES
from ironbridge.chain.live import gather_live_inputs
from ironbridge.model import InvalidInput, PermanentError, Principal, check_id, now_us

router = APIRouter(prefix="/api/v1/chains", tags=["chains"])

Level = Annotated[RegionLevel, Query(description="region level: province, city or district")]
TenantQ = Annotated[
    str | None, Query(description="owner tenant of the chain (default: the caller's)")
]


# -- loading, with a small cache of indexed chains -----------------------------------


@dataclass
class _Loaded:
    chain: Chain
    frame: ChainFrame
    tiers: tuple[int, ...]
    whatif: WhatIf | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_CACHE: OrderedDict[tuple[int, str, str, int, str], _Loaded] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 8


def _repo(ctx: ApiContext) -> ChainRepository:
    if ctx.chains is None:
        raise PermanentError("chain storage is not configured on this platform")
    repo: ChainRepository = ctx.chains
    return repo


def _tiers(chain: Chain) -> tuple[int, ...]:
    """Tier of each firm: depth in the component tree of the shallowest part it makes.

    0 = makers of finished products (OEMs), 1 = system suppliers, 2 = their part
    suppliers, and so on; a firm making nothing listed gets the deepest tier + 1.
    """
    parent = {c.id: c.parent_id for c in chain.components}
    depth: dict[str, int] = {}
    for cid in parent:
        d, node = 0, parent[cid]
        while node is not None:
            d, node = d + 1, parent[node]
        depth[cid] = d
    deepest = max(depth.values(), default=0) + 1
    return tuple(min((depth[c] for c in f.components), default=deepest) for f in chain.enterprises)


def _load(ctx: ApiContext, who: Principal, tenant_id: str | None, name: str) -> _Loaded:
    repo = _repo(ctx)
    owner = tenant_id or who.tenant_id
    head = repo.header(owner, name, caller_path=who.tenant_path)
    key = (id(repo), owner, name, head.revision, head.updated_at.isoformat())
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    chain = repo.get(owner, name, caller_path=who.tenant_path)
    loaded = _Loaded(chain=chain, frame=ChainFrame.from_chain(chain), tiers=_tiers(chain))
    with _CACHE_LOCK:
        _CACHE[key] = loaded
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return loaded


def _owner_path(ctx: ApiContext, who: Principal, tenant_id: str | None) -> tuple[str, str]:
    """Return (tenant id, tenant path) a write goes to; NotFound outside the caller's subtree."""
    if tenant_id is None or tenant_id == who.tenant_id:
        return who.tenant_id, who.tenant_path
    return tenant_id, ctx.registry.get_tenant(who, tenant_id).path


def _num(x: float) -> float | None:
    """JSON-safe number: NaN and infinities become null."""
    return x if math.isfinite(x) else None


def _header_json(h: ChainHeader) -> dict[str, Any]:
    return {
        "tenant_id": h.tenant_id,
        "name": h.name,
        "revision": h.revision,
        "updated_at": h.updated_at.isoformat(),
        "n_components": h.n_components,
        "n_enterprises": h.n_enterprises,
        "n_links": h.n_links,
    }


def _import_failed(exc: ChainImportError, index_rows: bool = False) -> FastJSON:
    """422 listing every bad cell: file, row (spreadsheet numbering), column, message."""
    errors = []
    for e in exc.errors:
        item: dict[str, Any] = {
            "file": e.file,
            "row": e.row,
            "column": e.column,
            "message": e.message,
        }
        if index_rows and e.row >= 2:
            item["index"] = e.row - 2  # position in the JSON list
        errors.append(item)
    body = error_body(422, f"the chain has {len(errors)} error(s)")
    body["errors"] = errors
    return FastJSON(body, status_code=422)


# -- create, import, list, get, delete, export ----------------------------------------


class ChainCreate(BaseModel):
    """A chain as JSON: the three templates' rows as objects keyed by column name."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    tenant_id: str | None = None
    components: list[dict[str, Any]] = Field(default_factory=list)
    enterprises: list[dict[str, Any]] = Field(default_factory=list)
    links: list[dict[str, Any]] = Field(default_factory=list)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value)


def _rows_of(file: str, items: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    header = list(COLUMNS[file])
    for item in items:
        header.extend(k for k in item if k not in header)
    return [header, *([_cell(item.get(c)) for c in header] for item in items)]


def _store(ctx: ApiContext, who: Principal, chain: Chain) -> ChainHeader:
    repo = _repo(ctx)
    repo.put(chain, caller_path=who.tenant_path)
    return repo.header(chain.tenant_id, chain.name, caller_path=who.tenant_path)


@router.get("")
def list_chains(ctx: Ctx, who: CurrentUser) -> FastJSON:
    """List the chains visible to the caller (own tenant and below)."""
    return FastJSON([_header_json(h) for h in _repo(ctx).summaries(caller_path=who.tenant_path)])


@router.post("", status_code=201)
def create_chain(body: ChainCreate, ctx: Ctx, who: Operator) -> FastJSON:
    """Create or replace a chain from JSON rows (errors name list, index and column)."""
    check_id(body.name, "name")
    owner, path = _owner_path(ctx, who, body.tenant_id)
    tables = {
        "components.csv": _rows_of("components.csv", body.components),
        "enterprises.csv": _rows_of("enterprises.csv", body.enterprises),
        "links.csv": _rows_of("links.csv", body.links),
    }
    labels = {f: f.removesuffix(".csv") for f in FILES}
    try:
        chain = read_chain_tables(
            tables, name=body.name, tenant_id=owner, tenant_path=path, labels=labels
        )
    except ChainImportError as exc:
        return _import_failed(exc, index_rows=True)
    return FastJSON(_header_json(_store(ctx, who, chain)), status_code=201)


async def _read_upload(upload: UploadFile) -> bytes:
    data = await upload.read()
    await upload.close()
    return data


def _csv_rows(label: str, data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(label, f"is not UTF-8 text (byte {exc.start})") from exc
    return list(csv.reader(io.StringIO(text, newline="")))


@router.post("/{name}/import", status_code=201)
async def import_chain(
    name: str,
    ctx: Ctx,
    who: Operator,
    tenant_id: TenantQ = None,
    components: Annotated[UploadFile | None, File(description="components.csv")] = None,
    enterprises: Annotated[UploadFile | None, File(description="enterprises.csv")] = None,
    links: Annotated[UploadFile | None, File(description="links.csv")] = None,
    workbook: Annotated[
        UploadFile | None, File(description="one .xlsx with sheets components, enterprises, links")
    ] = None,
) -> FastJSON:
    """Create or replace chain ``name`` from the three CSV templates or one workbook.

    A 422 lists every problem found as ``{file, row, column, message}``; rows are
    numbered as a spreadsheet shows them (header = row 1).
    """
    check_id(name, "name")
    owner, path = await run_in_threadpool(_owner_path, ctx, who, tenant_id)
    try:
        if workbook is not None:
            data = await _read_upload(workbook)
            label = Path(workbook.filename or "workbook.xlsx").name
            chain = await run_in_threadpool(_read_xlsx, data, label, name, owner, path)
        else:
            uploads = {"components.csv": components, "enterprises.csv": enterprises}
            uploads["links.csv"] = links
            tables: dict[str, list[list[str]]] = {}
            labels: dict[str, str] = {}
            for f, up in uploads.items():
                if up is None:
                    continue
                labels[f] = Path(up.filename or f).name
                tables[f] = _csv_rows(labels[f], await _read_upload(up))
            if not tables:
                raise InvalidInput(
                    "components", "upload components, enterprises and links (CSV) or workbook"
                )
            chain = await run_in_threadpool(
                lambda: read_chain_tables(
                    tables, name=name, tenant_id=owner, tenant_path=path, labels=labels
                )
            )
    except ChainImportError as exc:
        return _import_failed(exc)
    head = await run_in_threadpool(_store, ctx, who, chain)
    return FastJSON(_header_json(head), status_code=201)


def _read_xlsx(data: bytes, label: str, name: str, owner: str, path: str) -> Chain:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / (label if label.endswith(".xlsx") else f"{label}.xlsx")
        file.write_bytes(data)
        return read_chain_xlsx(file, name=name, tenant_id=owner, tenant_path=path)


@router.get("/{name}")
def get_chain(name: str, ctx: Ctx, who: CurrentUser, tenant_id: TenantQ = None) -> FastJSON:
    """Return the whole chain: components, enterprises (with tier) and supply links."""
    loaded = _load(ctx, who, tenant_id, name)
    chain = loaded.chain
    firms = [
        {**_firm_json(f), "tier": tier}
        for f, tier in zip(chain.enterprises, loaded.tiers, strict=True)
    ]
    return FastJSON(
        {
            "tenant_id": chain.tenant_id,
            "name": chain.name,
            "components": chain.components,
            "enterprises": firms,
            "links": chain.links,
        }
    )


def _firm_json(f: Any) -> dict[str, Any]:
    return {
        "id": f.id,
        "name": f.name,
        "province": f.province,
        "city": f.city,
        "district": f.district,
        "lat": f.lat,
        "lon": f.lon,
        "size": f.size.value,
        "components": list(f.components),
        "is_leader": f.is_leader,
    }


@router.delete("/{name}", status_code=204)
def delete_chain(name: str, ctx: Ctx, who: Operator, tenant_id: TenantQ = None) -> None:
    """Delete a chain with its enterprises, links and asset links."""
    _repo(ctx).delete(tenant_id or who.tenant_id, name, caller_path=who.tenant_path)


@router.get("/{name}/export")
def export_chain(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    format: Annotated[str, Query(pattern="^(csv|xlsx)$")] = "csv",
) -> Response:
    """Download the chain as the import templates: a zip of three CSVs, or one .xlsx."""
    chain = _load(ctx, who, tenant_id, name).chain
    if format == "xlsx":
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "chain.xlsx"
            write_chain_xlsx(chain, path)
            data = path.read_bytes()
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f, rows in chain_rows(chain).items():
                text = io.StringIO()
                csv.writer(text).writerows(rows)
                zf.writestr(f, text.getvalue())
        data, media = buf.getvalue(), "application/zip"
    filename = f"{chain.name}.{'xlsx' if format == 'xlsx' else 'zip'}"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


# -- metrics ---------------------------------------------------------------------------


def _default_region(loaded: _Loaded, level: RegionLevel) -> str:
    """The first chain leader's region, else the region with the most firms."""
    frame = loaded.frame
    codes = frame.firm_region[level]
    leaders = [i for i, lead in enumerate(frame.firm_leader.tolist()) if lead]
    if leaders:
        return frame.region_names[level][int(codes[leaders[0]])]
    if not frame.n_firms:
        raise InvalidInput("region", "the chain has no enterprises")
    counts = [0] * len(frame.region_names[level])
    for c in codes.tolist():
        counts[c] += 1
    return frame.region_names[level][counts.index(max(counts))]


@router.get("/{name}/metrics")
def chain_metrics(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
) -> FastJSON:
    """Per-region metrics at ``level`` and chain-wide concentration per component."""
    loaded = _load(ctx, who, tenant_id, name)
    frame = loaded.frame
    report = region_report(frame, level)
    s = report.summary
    single = set(s.single_source)
    return FastJSON(
        {
            "level": level.value,
            "default_region": _default_region(loaded, level) if frame.n_firms else None,
            "regions": [
                {k: (_num(v) if isinstance(v, float) else v) for k, v in _fields(m).items()}
                for m in report.metrics
            ],
            "components": [
                {
                    "id": cid,
                    "name": frame.comp_names[i],
                    "value": float(s.value[i]),
                    "hhi": _num(float(s.hhi[i])),
                    "n_suppliers": int(s.n_suppliers[i]),
                    "n_makers": int(s.n_makers[i]),
                    "single_source": cid in single,
                }
                for i, cid in enumerate(s.components)
            ],
            "single_source_share": _num(s.single_source_share),
        }
    )


def _fields(obj: Any) -> dict[str, Any]:
    return {k: getattr(obj, k) for k in obj.__slots__}


@router.get("/{name}/components")
def region_components(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
    region: str | None = None,
) -> FastJSON:
    """Per-component figures of one region: local makers, local sourcing, HHI, cover."""
    loaded = _load(ctx, who, tenant_id, name)
    frame = loaded.frame
    region = region or _default_region(loaded, level)
    r = frame.region_index(level, region)
    t = region_report(frame, level).table
    rows = []
    for c, cid in enumerate(frame.comp_ids):
        bought = float(t.purchase_value[r, c])
        rows.append(
            {
                "id": cid,
                "name": frame.comp_names[c],
                "makers_local": int(t.makers_local[r, c]),
                "purchase_value": bought,
                "local_value": float(t.local_value[r, c]),
                "local_rate_value": _num(float(t.local_value[r, c]) / bought) if bought else None,
                "purchase_links": int(t.purchase_links[r, c]),
                "local_links": int(t.local_links[r, c]),
                "n_suppliers": int(t.n_suppliers[r, c]),
                "hhi": _num(float(t.hhi[r, c])),
                "dependence": _num(float(t.dependence[r, c])),
                "min_cover_days": _num(float(t.min_cover[r, c])),
                "max_recovery_days": _num(float(t.max_recovery[r, c])),
            }
        )
    return FastJSON({"level": level.value, "region": region, "components": rows})


@router.get("/{name}/weak-links")
def chain_weak_links(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
    region: str | None = None,
    dependence_threshold: Annotated[float, Query(ge=0, le=1)] = 0.5,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 20,
) -> FastJSON:
    """Weak links of a region, highest score first, each with the reason in words."""
    loaded = _load(ctx, who, tenant_id, name)
    region = region or _default_region(loaded, level)
    ranked = weak_links(loaded.frame, region, level, dependence_threshold=dependence_threshold)
    return FastJSON(
        {
            "level": level.value,
            "region": region,
            "weak_links": [
                {
                    **{k: (_num(v) if isinstance(v, float) else v) for k, v in _fields(w).items()},
                    "flags": [f.value for f in w.flags],
                }
                for w in ranked[:limit]
            ],
        }
    )


@router.get("/{name}/dependence")
def chain_dependence(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
    region: str | None = None,
) -> FastJSON:
    """Outside regions a region buys from, largest value share first."""
    loaded = _load(ctx, who, tenant_id, name)
    region = region or _default_region(loaded, level)
    sources = outside_dependence(loaded.frame, level, region)
    return FastJSON({"level": level.value, "region": region, "sources": sources})


@router.get("/{name}/leaders")
def chain_leaders(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
) -> FastJSON:
    """Localisation of every chain leader's (链主) purchases in its own region."""
    loaded = _load(ctx, who, tenant_id, name)
    out = [
        _localisation_json(leader_localisation(loaded.frame, f.id, level), f.name)
        for f in loaded.chain.enterprises
        if f.is_leader
    ]
    return FastJSON({"level": level.value, "leaders": out})


@router.get("/{name}/leaders/{firm_id}")
def chain_leader(
    name: str,
    firm_id: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    level: Level = RegionLevel.PROVINCE,
    region: str | None = None,
) -> FastJSON:
    """Localisation of one firm's purchases in ``region`` (default: its own)."""
    loaded = _load(ctx, who, tenant_id, name)
    loc = leader_localisation(loaded.frame, firm_id, level, region)
    firm = loaded.frame.firm_names[loaded.frame.firm_index(firm_id)]
    return FastJSON(_localisation_json(loc, firm))


def _localisation_json(loc: Any, firm: str) -> dict[str, Any]:
    out = {k: (_num(v) if isinstance(v, float) else v) for k, v in _fields(loc).items()}
    out["firm"] = firm
    return out


# -- what-if ---------------------------------------------------------------------------


class SourceRemoval(BaseModel):
    """One supplier's deliveries of one component."""

    model_config = ConfigDict(extra="forbid")
    supplier_id: str
    component_id: str


class WhatIfRequest(BaseModel):
    """What to remove: suppliers, a whole region, and/or single component sources."""

    model_config = ConfigDict(extra="forbid")
    firms: list[str] = Field(default_factory=list, max_length=10_000)
    region: str | None = None
    level: RegionLevel = RegionLevel.PROVINCE
    sources: list[SourceRemoval] = Field(default_factory=list, max_length=10_000)
    halt_share: float = Field(default=1.0, gt=0.0, le=1.0)
    home_region: str | None = None


@router.post("/{name}/what-if")
def chain_what_if(
    name: str, body: WhatIfRequest, ctx: Ctx, who: CurrentUser, tenant_id: TenantQ = None
) -> FastJSON:
    """Remove suppliers, a region or component sources; see who stops, when, for how long.

    A firm halts when the failed links carry at least ``halt_share`` of one of its
    inputs; time-to-survive (TTS) adds up inventory cover along the failed path,
    time-to-recover (TTR) the days until the lost sources return.
    """
    loaded = _load(ctx, who, tenant_id, name)
    removal = Removal(
        firms=tuple(body.firms),
        region=body.region,
        level=body.level,
        sources=tuple((s.supplier_id, s.component_id) for s in body.sources),
    )
    with loaded.lock:
        if loaded.whatif is None:
            loaded.whatif = WhatIf(loaded.frame)
        result = loaded.whatif.run(
            removal, halt_share=body.halt_share, home_region=body.home_region
        )
    frame = loaded.frame
    halted = []
    for firm_id in result.halted:
        tts, ttr = result.time_to_survive[firm_id], result.time_to_recover[firm_id]
        halted.append(
            {
                "firm_id": firm_id,
                "firm": frame.firm_names[frame.firm_index(firm_id)],
                "time_to_survive_days": _num(tts),
                "time_to_recover_days": _num(ttr),
                "outage_days": _num(max(0.0, ttr - tts)),
            }
        )
    halted.sort(key=lambda h: (h["time_to_survive_days"] or 0.0, h["firm_id"]))
    return FastJSON(
        {
            "removed": result.removed,
            "failed_links": result.failed_links,
            "halted": halted,
            "products": [
                {
                    "firm_id": p.firm_id,
                    "firm": p.firm,
                    "products": p.products,
                    "lost_inputs": p.lost_inputs,
                    "time_to_survive_days": _num(p.time_to_survive_days),
                    "time_to_recover_days": _num(p.time_to_recover_days),
                    "outage_days": _num(p.outage_days),
                }
                for p in result.products
            ],
            "partial": result.partial,
            "alternatives": {
                comp: [{**_fields(a), "size": a.size.value} for a in alts]
                for comp, alts in result.alternatives.items()
            },
        }
    )


# -- network view ----------------------------------------------------------------------


@router.get("/{name}/network")
def chain_network(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    component: str | None = None,
    region: str | None = None,
    level: Level = RegionLevel.PROVINCE,
    tier: Annotated[int | None, Query(ge=0)] = None,
    neighbours: bool = True,
    max_edges: Annotated[int, Query(ge=1, le=200_000)] = 5000,
) -> FastJSON:
    """Nodes and edges for the console's network view and map.

    Filters: ``component`` keeps the links of that component (and the firms on
    them); ``region`` and ``tier`` keep the firms that match. With ``neighbours``
    (default) the direct partners of kept firms across the filter are included too,
    marked ``context``. Edges are the heaviest ``max_edges`` by value.
    """
    loaded = _load(ctx, who, tenant_id, name)
    frame, chain = loaded.frame, loaded.chain
    n = frame.n_firms
    keep = [True] * n
    if region is not None:
        codes = frame.firm_region[level].tolist()
        r = frame.region_index(level, region)
        keep = [k and codes[i] == r for i, k in enumerate(keep)]
    if tier is not None:
        keep = [k and loaded.tiers[i] == tier for i, k in enumerate(keep)]
    sup, cus, comp = frame.sup.tolist(), frame.cus.tolist(), frame.comp.tolist()
    c_filter = frame.comp_index(component) if component is not None else None
    if c_filter is not None:
        on_links = {
            x for s, u, c in zip(sup, cus, comp, strict=True) if c == c_filter for x in (s, u)
        }
        makers = set(frame.make_firm[frame.make_comp == c_filter].tolist())
        keep = [k and (i in on_links or i in makers) for i, k in enumerate(keep)]
    edges = []
    for e, (s, u, c) in enumerate(zip(sup, cus, comp, strict=True)):
        if c_filter is not None and c != c_filter:
            continue
        inside = keep[s] and keep[u]
        if inside or (neighbours and (keep[s] or keep[u])):
            edges.append(e)
    edges.sort(key=lambda e: -float(frame.value[e]))
    edges = edges[:max_edges]
    shown = {i for i, k in enumerate(keep) if k}
    context = {x for e in edges for x in (sup[e], cus[e])} - shown
    codes = frame.firm_region[level].tolist()
    names = frame.region_names[level]
    nodes = [
        {
            **_firm_json(chain.enterprises[i]),
            "tier": loaded.tiers[i],
            "region": names[codes[i]],
            "context": i in context,
        }
        for i in sorted(shown | context)
    ]
    return FastJSON(
        {
            "nodes": nodes,
            "edges": [
                {
                    "source": frame.firm_ids[sup[e]],
                    "target": frame.firm_ids[cus[e]],
                    "component": frame.comp_ids[comp[e]],
                    "value_cny": float(frame.value[e]),
                    "volume_share": float(frame.share[e]),
                    "inventory_cover_days": float(frame.cover[e]),
                    "recovery_days": float(frame.recovery[e]),
                }
                for e in edges
            ],
            "filters": {
                "components": [
                    {"id": cid, "name": frame.comp_names[i]} for i, cid in enumerate(frame.comp_ids)
                ],
                "regions": sorted(names),
                "tiers": sorted(set(loaded.tiers)),
            },
        }
    )


# -- live data: asset links and supplier risk ------------------------------------------


class AssetLinks(BaseModel):
    """Platform assets (plants, lines, machines) of one enterprise."""

    model_config = ConfigDict(extra="forbid")
    asset_ids: list[str] = Field(default_factory=list, max_length=1000)


@router.get("/{name}/asset-links")
def get_asset_links(name: str, ctx: Ctx, who: CurrentUser, tenant_id: TenantQ = None) -> FastJSON:
    """Enterprise id -> linked platform asset ids."""
    owner = tenant_id or who.tenant_id
    return FastJSON(_repo(ctx).asset_links(owner, name, caller_path=who.tenant_path))


@router.put("/{name}/enterprises/{firm_id}/assets")
def put_asset_links(
    name: str,
    firm_id: str,
    body: AssetLinks,
    ctx: Ctx,
    who: Operator,
    tenant_id: TenantQ = None,
) -> FastJSON:
    """Link an enterprise to platform assets (replacing its links; [] unlinks).

    Every asset must exist and be visible to the caller (else 404).
    """
    for asset_id in body.asset_ids:
        ctx.registry.get_asset(who, asset_id)
    owner = tenant_id or who.tenant_id
    repo = _repo(ctx)
    repo.set_asset_links(owner, name, firm_id, body.asset_ids, caller_path=who.tenant_path)
    links = repo.asset_links(owner, name, caller_path=who.tenant_path)
    return FastJSON({"enterprise_id": firm_id, "asset_ids": links.get(firm_id, ())})


@router.get("/{name}/risk")
def chain_risk(
    name: str,
    ctx: Ctx,
    who: CurrentUser,
    tenant_id: TenantQ = None,
    window_days: Annotated[float, Query(gt=0, le=366)] = 7.0,
    end: Annotated[str | None, Query(description="window end (ISO 8601, ms, now-1d)")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 50,
) -> FastJSON:
    """Supplier risk scores, with live OEE and delivery performance where plants are linked.

    See docs/chain.md for the formula and exactly which live values feed it.
    """
    loaded = _load(ctx, who, tenant_id, name)
    owner = tenant_id or who.tenant_id
    links = _repo(ctx).asset_links(owner, name, caller_path=who.tenant_path)
    end_us = parse_time(end, now_us(), "end")
    start = end_us - int(window_days * 86_400e6)
    linked = sorted({a for assets in links.values() for a in assets})
    plant = _plant_oee(ctx, who, linked, start, end_us)
    live = gather_live_inputs(
        ctx.registry, ctx.store, who, links, window_days=window_days, end_us=end_us, plant_oee=plant
    )
    ranked = supplier_risk(loaded.frame, live)
    return FastJSON(
        {
            "window_days": window_days,
            "end_us": end_us,
            "suppliers": [
                {
                    "firm_id": r.firm_id,
                    "firm": r.firm,
                    "score": r.score,
                    "exposure": r.exposure,
                    "sole_source_inputs": r.sole_source_inputs,
                    "customers": r.customers,
                    "live": r.live,
                    "performance": r.performance,
                    "assets": r.inputs.assets,
                    "oee": r.inputs.oee,
                    "delivery_performance": r.inputs.delivery_performance,
                    "fault_events": r.inputs.fault_events,
                    "reason": r.reason,
                }
                for r in ranked[:limit]
            ],
        }
    )


def _plant_oee(
    ctx: ApiContext, who: Principal, asset_ids: Sequence[str], start_us: int, end_us: int
) -> dict[str, float]:
    """OEE over the window of the linked assets that are stations of a visible plant site.

    Computed by the plant module (``ironbridge.analytics.oee``, ISO 22400-2) from the
    stations' stored state and part counts: Σ(ideal time x quality) / Σ planned busy
    time over the window's shifts. Sites whose data cannot be read are skipped.
    """
    if ctx.plant_sites is None or not asset_ids:
        return {}
    wanted = set(asset_ids)
    out: dict[str, float] = {}
    for saved in ctx.plant_sites.list(who):
        stations = [s for ln in saved.site.lines for s in ln.stations if s.id in wanted]
        if not stations:
            continue
        ids = [s.id for s in stations]
        series = {(r.asset_id, r.measurement): r.id for r in ctx.registry.series_of(who, ids)}
        try:
            states, counts = load_logs(
                ctx.store, series, stations, saved.reason_codes, start_us, end_us
            )
            report = compute_oee(stations, saved.site.calendar, states, counts, start_us, end_us)
        except InvalidInput:
            continue
        rows = report.shifts.to_pydict()
        pbt: dict[str, float] = {}
        good_ideal: dict[str, float] = {}
        for station, busy, ideal, good, produced in zip(
            rows["station"],
            rows["pbt_s"],
            rows["ideal_s"],
            rows["good"],
            rows["produced"],
            strict=True,
        ):
            pbt[station] = pbt.get(station, 0.0) + float(busy)
            quality = good / produced if produced else 0.0
            good_ideal[station] = good_ideal.get(station, 0.0) + float(ideal) * quality
        for station, busy in pbt.items():
            if busy > 0:
                out[station] = min(1.0, good_ideal[station] / busy)
    return out
