"""Timestamps: microseconds since the Unix epoch, UTC, everywhere inside ironbridge."""

from __future__ import annotations

import time
from datetime import UTC, datetime

US_PER_MS = 1_000
US_PER_S = 1_000_000
#: Earliest timestamp accepted from a device (2000-01-01T00:00:00Z).
MIN_DEVICE_TS_US = 946_684_800 * US_PER_S
#: How far into the future a device clock may run before its data is rejected.
MAX_FUTURE_SKEW_US = 24 * 3600 * US_PER_S


def now_us() -> int:
    """Return the current time in microseconds since the epoch."""
    return time.time_ns() // 1_000


def to_datetime(ts_us: int) -> datetime:
    """Convert microseconds since the epoch to an aware UTC datetime."""
    return datetime.fromtimestamp(ts_us / US_PER_S, tz=UTC)


def from_datetime(value: datetime) -> int:
    """Convert a datetime (naive means UTC) to microseconds since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US_PER_S + delta.microseconds
