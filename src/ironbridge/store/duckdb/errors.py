"""Mapping of DuckDB exceptions onto the ironbridge error tree, done once at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from ironbridge.model import IronbridgeError, PermanentError, TransientError

#: Failures that may pass if the caller retries: write-write conflicts, memory
#: pressure, I/O hiccups (a full disk, a file lock held by another process).
_TRANSIENT: tuple[type[BaseException], ...] = (
    duckdb.TransactionException,
    duckdb.OutOfMemoryException,
    duckdb.IOException,
    duckdb.InterruptException,
)


@contextmanager
def mapped_errors(operation: str) -> Iterator[None]:
    """Re-raise DuckDB errors of ``operation`` as Transient/PermanentError.

    Ironbridge errors raised inside the block pass through unchanged.
    """
    try:
        yield
    except IronbridgeError:
        raise
    except _TRANSIENT as exc:
        raise TransientError(f"duckdb {operation} failed: {exc}") from exc
    except duckdb.Error as exc:
        raise PermanentError(f"duckdb {operation} failed: {exc}") from exc
