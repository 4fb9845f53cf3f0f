"""The one place where ironbridge errors become HTTP status codes and JSON bodies."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ironbridge.api.responses import FastJSON
from ironbridge.model import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    IronbridgeError,
    NotFound,
    PermanentError,
    PermissionDenied,
    TransientError,
)

_LOGGER = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[IronbridgeError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (AuthenticationFailed, 401),
    (PermissionDenied, 403),
    (TransientError, 503),
    (PermanentError, 502),
)


def status_of(exc: IronbridgeError) -> int:
    """Return the HTTP status for an ironbridge error."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def error_body(status: int, message: str, field: str | None = None) -> dict[str, object]:
    """Build the JSON error body every endpoint uses."""
    body: dict[str, object] = {"error": message, "status": status}
    if field is not None:
        body["field"] = field
    return body


async def _ironbridge_error(request: Request, exc: Exception) -> FastJSON:
    assert isinstance(exc, IronbridgeError)
    status = status_of(exc)
    field = exc.field if isinstance(exc, InvalidInput) else None
    message = exc.reason if isinstance(exc, InvalidInput) else str(exc)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        _LOGGER.warning("%s %s failed: %s", request.method, request.url.path, exc)
    return FastJSON(error_body(status, message, field), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> FastJSON:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field = ".".join(loc)
    body = error_body(422, str(first.get("msg", "invalid")), field)
    body["errors"] = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query")),
            "reason": e.get("msg"),
        }
        for e in errors
    ]
    return FastJSON(body, status_code=422)


async def _http_error(request: Request, exc: Exception) -> FastJSON:
    assert isinstance(exc, StarletteHTTPException)
    return FastJSON(
        error_body(exc.status_code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn errors into JSON responses."""
    app.add_exception_handler(IronbridgeError, _ironbridge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
