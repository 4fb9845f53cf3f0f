"""The error tree shared by every ironbridge package."""

from __future__ import annotations


class IronbridgeError(Exception):
    """Root of every error ironbridge raises on purpose."""


class InvalidInput(IronbridgeError):
    """Input that breaks a rule; names the offending field and the reason.

    Attributes:
        field: dotted path of the offending field (``values.engine_speed``), or ``""``.
        reason: a short, human-readable reason.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


class NotFound(IronbridgeError):
    """The entity does not exist, or is not visible to the caller's tenant."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class Conflict(IronbridgeError):
    """The operation clashes with existing state (duplicate id, entity in use)."""


class AuthenticationFailed(IronbridgeError):
    """Credentials are missing, wrong, expired or revoked."""


class PermissionDenied(IronbridgeError):
    """The caller is authenticated but may not do this."""


class TransientError(IronbridgeError):
    """A peer is unavailable for now; retrying later may succeed."""


class PermanentError(IronbridgeError):
    """A peer refused the operation for good; retrying will not help."""
