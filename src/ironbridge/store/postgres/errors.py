"""Mapping of psycopg exceptions onto the ironbridge error tree, done once at the boundary."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import psycopg_pool

from ironbridge.model import IronbridgeError, PermanentError, TransientError

#: Failures that may pass if the caller retries: a lost or refused connection (a
#: restarting server), serialisation failures and deadlocks, an exhausted pool.
_TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.errors.SerializationFailure,
    psycopg.errors.DeadlockDetected,
    # two writers briefly on one partition (a lease taken over from a paused worker):
    # the retry sees the points as stored and upserts them
    psycopg.errors.UniqueViolation,
    psycopg_pool.PoolTimeout,
)


@contextmanager
def mapped_errors(operation: str) -> Iterator[None]:
    """Re-raise psycopg errors of ``operation`` as Transient/PermanentError.

    Ironbridge errors raised inside the block pass through unchanged.
    """
    try:
        yield
    except IronbridgeError:
        raise
    except psycopg_pool.PoolClosed as exc:  # an OperationalError, but final
        raise PermanentError(f"postgresql {operation} failed: store is closed") from exc
    except _TRANSIENT as exc:
        raise TransientError(f"postgresql {operation} failed: {exc}") from exc
    except psycopg.Error as exc:
        raise PermanentError(f"postgresql {operation} failed: {exc}") from exc
