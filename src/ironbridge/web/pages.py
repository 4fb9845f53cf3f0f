"""Server-rendered console pages; every figure on them is fetched from ``/api/v1``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ironbridge import __version__
from ironbridge.api.auth import SESSION_COOKIE, get_context, verify_token
from ironbridge.model import AuthenticationFailed
from ironbridge.web.i18n import LANG_COOKIE, LANGUAGES, catalogue, choose_language

_ROOT = Path(str(resources.files("ironbridge.web")))
_ENV = Environment(
    loader=FileSystemLoader(_ROOT / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)

#: page name -> (path, template, catalogue key of its title)
PAGES: dict[str, tuple[str, str]] = {
    "overview": ("/", "nav.overview"),
    "map": ("/map", "nav.map"),
    "assets": ("/assets", "nav.assets"),
    "asset_types": ("/asset-types", "nav.asset_types"),
    "devices": ("/devices", "nav.devices"),
    "alarms": ("/alarms", "nav.alarms"),
    "ingest": ("/ingest", "nav.ingest"),
    "chains": ("/chains", "nav.chains"),
    "plant": ("/plant", "plant.nav_line"),
    "plant_oee": ("/plant/oee", "plant.nav_oee"),
    "plant_spc": ("/plant/spc", "plant.nav_spc"),
    "service": ("/service", "aftersales.nav"),
    "predict": ("/predict", "predict.nav"),
    "edge": ("/edge", "nav.edge"),
}
#: the side navigation's sections: catalogue key of the heading -> page names, in order;
#: a page of PAGES in no section is listed under the last one
NAV_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nav.section_fleet", ("overview", "map", "alarms", "predict")),
    ("nav.section_plant", ("plant", "plant_oee", "plant_spc")),
    ("nav.section_service", ("service", "chains")),
    ("nav.section_setup", ("assets", "asset_types", "devices", "edge", "ingest")),
)


def nav_sections() -> list[tuple[str, list[str]]]:
    """The navigation's sections with their pages; every page of PAGES appears once."""
    placed = {name for _, names in NAV_SECTIONS for name in names}
    sections = [(title, [n for n in names if n in PAGES]) for title, names in NAV_SECTIONS]
    sections[-1][1].extend(n for n in PAGES if n not in placed)
    return [(title, names) for title, names in sections if names]


#: the after-sales pages after the board (/service): sub-tabs of the one "service" entry
SERVICE_TABS = ("technicians", "parts", "due", "kpis")


def _lang(request: Request) -> str:
    return choose_language(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def _signed_in(request: Request) -> bool:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return False
    try:
        verify_token(get_context(request).secret_key, token)
    except AuthenticationFailed:
        return False
    return True


def render(request: Request, template: str, page: str, **extra: Any) -> HTMLResponse:
    """Render ``template`` in the caller's language."""
    lang = _lang(request)
    messages = catalogue(lang)
    html = _ENV.get_template(template).render(
        t=lambda key: messages.get(key, key),
        messages=messages,
        lang=lang,
        languages=LANGUAGES,
        page=page,
        pages=PAGES,
        nav=nav_sections(),
        version=__version__,
        path=request.url.path,
        **extra,
    )
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _page(name: str, template: str) -> Any:
    async def show(request: Request) -> Response:
        if not _signed_in(request):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return render(request, template, name, **request.path_params)

    show.__name__ = f"page_{name}"
    return show


for _name, (_path, _title) in PAGES.items():
    router.add_api_route(_path, _page(_name, f"{_name}.html"), methods=["GET"])
router.add_api_route("/assets/{asset_id}", _page("asset", "asset.html"), methods=["GET"])
router.add_api_route("/chains/{chain_name}", _page("chain", "chain.html"), methods=["GET"])
for _tab in SERVICE_TABS:
    router.add_api_route(
        f"/service/{_tab}", _page("service", f"service_{_tab}.html"), methods=["GET"]
    )


@router.get("/login")
async def login_page(request: Request) -> Response:
    """The sign-in form (it posts to ``/api/v1/auth/login``)."""
    return render(request, "login.html", "login")


@router.get("/lang/{code}")
async def switch_language(code: str, request: Request, next: str = "/") -> Response:
    """Remember the chosen language in a cookie and go back."""
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax")
    return response


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/`` and its static files at ``/static``."""
    app.mount("/static", StaticFiles(directory=_ROOT / "static"), name="static")
    app.include_router(router)


__all__ = ["NAV_SECTIONS", "PAGES", "mount_console", "nav_sections", "render", "router"]
