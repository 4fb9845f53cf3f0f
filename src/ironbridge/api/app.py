"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from ironbridge import __version__
from ironbridge.api.context import ApiContext
from ironbridge.api.errors import install_error_handlers
from ironbridge.api.routers import assets, auth, devices, ingest, query, telemetry, tenants


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
    for module in (auth, tenants, assets, devices, telemetry, query, ingest):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
