"""Assembles the rules service for the composition root (store, notifier, worker)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from ironbridge.ingest import MessageSource
from ironbridge.rules.notify import Notifier, SmtpConfig
from ironbridge.rules.spc import SpcWatcher
from ironbridge.rules.store import AlarmStore
from ironbridge.rules.worker import RulesWorker
from ironbridge.store import Registry, TelemetryStore


class AlarmContext(Protocol):
    """Where the API finds the rules service (``ApiContext`` has these fields)."""

    alarm_store: AlarmStore | None
    rules_stats: Callable[[], Awaitable[Mapping[str, Any]]] | None


async def rules_service(
    ctx: AlarmContext,
    registry: Registry,
    points: MessageSource,
    events: MessageSource | None = None,
    *,
    smtp: SmtpConfig | None = None,
    telemetry: TelemetryStore | None = None,
) -> RulesWorker:
    """Build the rules worker over the registry's database and expose it to the API.

    With ``telemetry`` the worker also evaluates SPC rules on stored charts.
    """
    store = AlarmStore(registry.engine)  # type: ignore[attr-defined]
    worker = RulesWorker(
        source=points,
        events=events,
        store=store,
        registry=registry,
        notifier=Notifier(smtp),
        spc=SpcWatcher(telemetry, registry) if telemetry is not None else None,
    )

    async def stats() -> Mapping[str, Any]:
        st = worker.stats
        return {
            "points": st.points,
            "batches": st.batches,
            "transitions": st.transitions,
            "events": st.events,
            "bindings": worker.engine.bindings,
            "last_batch_ms": round(st.last_batch_ms, 2),
            "skipped_redelivered": st.skipped_redelivered,
        }

    ctx.alarm_store = store
    ctx.rules_stats = stats
    return worker
