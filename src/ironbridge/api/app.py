"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from ironbridge import __version__
from ironbridge.api.context import ApiContext
from ironbridge.api.errors import install_error_handlers
from ironbridge.api.routers import aemp as aemp_router
from ironbridge.api.routers import aftersales as aftersales_router
from ironbridge.api.routers import alarms as alarms_router
from ironbridge.api.routers import assets, auth, devices, ingest, query, telemetry, tenants
from ironbridge.api.routers import chain as chain_router
from ironbridge.api.routers import connectors as connectors_router
from ironbridge.api.routers import edge as edge_router
from ironbridge.api.routers import fleet as fleet_router
from ironbridge.api.routers import j1939 as j1939_router
from ironbridge.api.routers import plant as plant_router
from ironbridge.api.routers import predict as predict_router
from ironbridge.api.routers import rules as rules_router
from ironbridge.web import live_router, mount_console


def create_app(ctx: ApiContext) -> FastAPI:
    """Build the HTTP API around the platform's services.

    Args:
        ctx: registry, store, publisher and hooks from the composition root.
    """
    app = FastAPI(
        title="ironbridge",
        version=__version__,
        summary="Industrial internet platform: connect, store, query, watch, predict, act.",
        docs_url="/docs",
        openapi_url="/api/v1/openapi.json",
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    for module in (
        auth,
        tenants,
        assets,
        devices,
        telemetry,
        query,
        ingest,
        predict_router,
        chain_router,
        fleet_router,
        aemp_router,
        j1939_router,
        rules_router,
        alarms_router,
        connectors_router,
        plant_router,
        aftersales_router,
        edge_router,
    ):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    app.include_router(live_router)
    mount_console(app)  # last: the console's pages sit under "/"
    return app
