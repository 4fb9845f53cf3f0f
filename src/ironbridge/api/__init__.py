"""The HTTP API: app factory, one router per resource, schemas, auth and error mapping."""

from ironbridge.api.app import create_app
from ironbridge.api.context import ApiContext, DeadLetterReader

__all__ = ["ApiContext", "DeadLetterReader", "create_app"]
