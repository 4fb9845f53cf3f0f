"""Predictive maintenance on the platform: train from stored history, deploy, score the fleet.

Training reads bucket means of an asset type's assets from the telemetry store, fits a
:class:`~ironbridge.predict.bundle.PdmBundle` and registers it as a version under
``<data_dir>/models/<asset_type>/pdm/v<N>``. The scorer loads the deployed version of
each asset type and, on a schedule, scores the assets that sent new data since the last
pass. Predictions are published as ordinary telemetry of the asset on the platform's own
source of that asset, ``ib.v1._asset-<asset>.telemetry`` (bound device or not), with the
header ``Ib-Origin: predict``: the ingest worker validates and stores them like any reading
(it stays the single writer of the store) and republishes them on ``ib.norm.points``,
where rules see them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import orjson

from ironbridge.ingest import asset_source
from ironbridge.model import (
    AssetType,
    DType,
    InvalidInput,
    IronbridgeError,
    NotFound,
    PermissionDenied,
    Principal,
    SeriesRef,
    now_us,
)
from ironbridge.predict.bundle import BundleConfig, PdmBundle, RunCondition
from ironbridge.predict.frames import load_frames
from ironbridge.predict.registry import ModelMeta, ModelRegistry
from ironbridge.store import Registry, TelemetryStore

__all__ = [
    "KIND",
    "PREDICTION_MEASUREMENTS",
    "JobState",
    "PredictService",
    "PredictionPublisher",
    "TrainJob",
    "TrainRequest",
]

_LOGGER = logging.getLogger(__name__)

#: Registry kind of platform model versions (anomaly + optional RUL, one bundle).
KIND = "pdm"
#: Measurements the scorer writes; an asset type declares those it wants stored.
PREDICTION_MEASUREMENTS = ("health_index", "anomaly_score", "rul", "rul_lo", "rul_hi")
_US_PER_DAY = 86_400_000_000
_PAGE = 10_000
#: Buckets of recent history (the span before the newest reading) that a version scores for
#: an asset it has not scored yet, so its chart has a past right after a deploy (and
#: after a restart).
BACKFILL_ROWS = 240
#: Publishes in flight at once (each waits for its JetStream ack).
_PUBLISH_CONCURRENCY = 64
#: Conditions of a running gate, at most (a machine runs, warm, loaded...: a few suffice).
_MAX_RUN_CONDITIONS = 8
#: The system caller of the registry (``who=None``: sees every tenant).
_SYSTEM = cast(Principal, None)


class PredictionPublisher(Protocol):
    """Publishes to the raw telemetry stream (JetStream) and waits for the ack."""

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Publish and return the stream sequence."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainRequest:
    """What to train on.

    Attributes:
        asset_type: the asset type; every visible asset of it contributes history.
        measurements: sensor measurements (default: every numeric measurement of the
            type except the prediction outputs and the ``settings``).
        settings: operating-condition measurements (load, speed...); sensors are
            normalised per condition found in them.
        start_us: history start (default: 30 days before ``end_us``).
        end_us: history end (default: now).
        bucket_s: rows are bucket means of this width.
        rul_cap_h: RUL target cap (hours): "at least this long" is all a model can know.
        failures: asset id -> failure times (µs), the RUL labels; events of kind
            ``failure_event_kind`` in the store are added to them.
        failure_event_kind: event kind that marks a failure.
        rounds: boosting rounds per RUL booster.
        deploy: deploy the new version as soon as it is registered.
        running: ``(measurement, threshold)`` conditions, all of which must hold; when
            set, only buckets where each measurement is above its threshold (the machine
            runs, warm) are learned from and scored, and a machine outside the gate keeps
            its last prediction (:attr:`BundleConfig.running`).
    """

    asset_type: str
    measurements: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    start_us: int | None = None
    end_us: int | None = None
    bucket_s: int = 60
    rul_cap_h: float = 24.0
    failures: Mapping[str, Sequence[int]] = field(default_factory=dict)
    failure_event_kind: str = "failure"
    rounds: int = 300
    deploy: bool = False
    running: Sequence[tuple[str, float]] = ()


class JobState(StrEnum):
    """Where a training job is."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(slots=True, kw_only=True)
class TrainJob:
    """A training job and its progress (kept in memory by the service)."""

    id: str
    asset_type: str
    tenant_path: str
    state: JobState = JobState.QUEUED
    stage: str = "queued"
    progress: float = 0.0
    error: str | None = None
    error_field: str | None = None
    result: ModelMeta | None = None
    created_us: int = field(default_factory=now_us)
    finished_us: int | None = None


def _numeric(t: AssetType) -> list[str]:
    return [m.name for m in t.measurements if m.dtype in (DType.FLOAT, DType.INT)]


def _running(
    conditions: Sequence[tuple[str, float]], columns: Sequence[str]
) -> tuple[RunCondition, ...]:
    """Check the running gate of a request against the model's measurements.

    Errors name the condition as the API body does (``running.<i>.measurement``).
    """
    if len(conditions) > _MAX_RUN_CONDITIONS:
        raise InvalidInput("running", f"at most {_MAX_RUN_CONDITIONS} conditions")
    out: list[RunCondition] = []
    for i, (name, above) in enumerate(conditions):
        if name not in columns:
            raise InvalidInput(
                f"running.{i}.measurement", f"{name!r} is not one of the model's measurements"
            )
        if any(c.measurement == name for c in out):
            raise InvalidInput(f"running.{i}.measurement", f"{name!r} is already a condition")
        if not np.isfinite(above):
            raise InvalidInput(f"running.{i}.above", "the threshold must be a finite number")
        out.append(RunCondition(name, float(above)))
    return tuple(out)


def _clip(value: float, lo: float | None, hi: float | None) -> float:
    if lo is not None:
        value = max(value, lo)
    if hi is not None:
        value = min(value, hi)
    return value


def latest_predictions(payloads: Mapping[str, bytes]) -> dict[str, dict[str, float]]:
    """Each asset's newest predicted value per output, from the scorer's messages.

    A message is ``{"asset", "ts": [...], "values": {output: [value or null, ...]}}``
    (one per asset, bucket after bucket); outputs without a value are left out.
    """
    out: dict[str, dict[str, float]] = {}
    for body in payloads.values():
        doc = orjson.loads(body)
        latest: dict[str, float] = {}
        for name, column in doc["values"].items():
            column = column if isinstance(column, list) else [column]
            found = next((v for v in reversed(column) if v is not None), None)
            if found is not None:
                latest[name] = float(found)
        out.setdefault(doc["asset"], {}).update(latest)
    return out


class PredictService:
    """Trains, versions, deploys and scores predictive-maintenance models of asset types."""

    def __init__(
        self,
        *,
        registry: Registry,
        store: TelemetryStore,
        publisher: PredictionPublisher,
        models_dir: str | Path,
        interval_s: float = 60.0,
        backfill_rows: int = BACKFILL_ROWS,
    ) -> None:
        self._registry = registry
        self._store = store
        self._publisher = publisher
        self.models = ModelRegistry(models_dir)
        self.interval_s = interval_s
        self.backfill_rows = backfill_rows
        self._jobs: dict[str, TrainJob] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._bundles: dict[tuple[str, int], PdmBundle] = {}
        #: (asset type, version) -> asset -> newest sensor timestamp already scored
        self._scored: dict[tuple[str, int], dict[str, int]] = {}
        self._wake = asyncio.Event()
        self._score_lock = asyncio.Lock()
        #: called after each scoring pass of a type with (asset type, model version,
        #: asset -> predicted values): the composition root opens work orders from it
        self.score_hooks: list[
            Callable[[str, int, Mapping[str, Mapping[str, float]]], Awaitable[None]]
        ] = []

    # -- access -----------------------------------------------------------------------
    def _manageable(self, who: Principal, name: str) -> AssetType:
        """The type, if ``who`` may train and deploy its models (it owns or is above it)."""
        owners = {t.name: tenant for tenant, t in self._registry.list_asset_types(who)}
        if name not in owners:
            raise NotFound("asset type", name)
        try:
            owner = self._registry.get_tenant(who, owners[name])
        except NotFound:
            raise PermissionDenied(
                f"asset type {name!r} belongs to a tenant above yours; its models are managed there"
            ) from None
        if not who.can_see(owner.path):
            raise PermissionDenied(f"asset type {name!r} is managed by another tenant")
        return self._registry.get_asset_type(who, name)

    # -- training ---------------------------------------------------------------------
    def check_training(self, who: Principal, request: TrainRequest) -> BundleConfig:
        """Validate a request (access, measurements, limits); blocking registry reads."""
        return self._config(self._manageable(who, request.asset_type), request)

    def launch(self, config: BundleConfig, who: Principal, request: TrainRequest) -> TrainJob:
        """Start training a checked request in a worker thread; poll :meth:`job`.

        Must be called on the event loop that runs the service.
        """
        job = TrainJob(
            id=secrets.token_hex(8), asset_type=config.asset_type, tenant_path=who.tenant_path
        )
        self._jobs[job.id] = job
        task = asyncio.create_task(self._run_job(who, request, config, job), name=f"train-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def start_training(self, who: Principal, request: TrainRequest) -> TrainJob:
        """:meth:`check_training` then :meth:`launch`."""
        config = await asyncio.to_thread(self.check_training, who, request)
        return self.launch(config, who, request)

    def _config(self, t: AssetType, request: TrainRequest) -> BundleConfig:
        numeric = _numeric(t)
        declared = {m.name for m in t.measurements}
        if not declared & set(PREDICTION_MEASUREMENTS):
            raise InvalidInput(
                "asset_type",
                f"{t.name!r} declares none of {', '.join(PREDICTION_MEASUREMENTS)}; add them "
                "to the asset type so predictions can be stored (see docs/predict.md)",
            )
        for name in (*request.measurements, *request.settings):
            if name not in numeric:
                raise InvalidInput("measurements", f"{name!r} is not a numeric measurement")
            if name in PREDICTION_MEASUREMENTS:
                raise InvalidInput("measurements", f"{name!r} is a prediction output")
        sensors = request.measurements or tuple(
            n for n in numeric if n not in PREDICTION_MEASUREMENTS and n not in request.settings
        )
        if not sensors:
            raise InvalidInput("measurements", "no sensor measurement to learn from")
        if not 1 <= request.bucket_s <= 86_400:
            raise InvalidInput("bucket_s", "must be within 1..86400 seconds")
        if not request.rul_cap_h > 0:
            raise InvalidInput("rul_cap_h", "must be positive")
        if not 1 <= request.rounds <= 5000:
            raise InvalidInput("rounds", "must be within 1..5000")
        running = _running(request.running, (*request.settings, *sensors))
        return BundleConfig(
            asset_type=t.name,
            sensors=tuple(sensors),
            settings=tuple(request.settings),
            bucket_s=int(request.bucket_s),
            rul_cap_h=float(request.rul_cap_h),
            running=running,
        )

    async def _run_job(
        self, who: Principal, request: TrainRequest, config: BundleConfig, job: TrainJob
    ) -> None:
        job.state, job.stage, job.progress = JobState.RUNNING, "reading", 0.05
        try:
            meta = await asyncio.to_thread(self._train, who, request, config, job)
            if request.deploy:
                self.models.deploy(config.asset_type, KIND, meta.version)
                self._wake.set()
            job.result, job.state, job.stage, job.progress = meta, JobState.SUCCEEDED, "done", 1.0
            _LOGGER.info(
                "trained %s v%d%s: %s",
                meta.asset_type,
                meta.version,
                " (deployed)" if request.deploy else "",
                {k: round(v, 3) for k, v in meta.metrics.items()},
            )
        except IronbridgeError as exc:
            _LOGGER.warning("training job %s failed: %s", job.id, exc)
            job.state, job.stage, job.error = JobState.FAILED, "failed", str(exc)
            job.error_field = getattr(exc, "field", None)
        except Exception as exc:  # a job reports any failure instead of dying silently
            _LOGGER.exception("training job %s failed", job.id)
            job.state, job.stage, job.error = JobState.FAILED, "failed", repr(exc)
        finally:
            job.finished_us = now_us()

    def _assets(self, who: Principal, type_name: str) -> list[str]:
        return [a.id for a in self._list_visible(who, type_name)]

    def _train(
        self, who: Principal, request: TrainRequest, config: BundleConfig, job: TrainJob
    ) -> ModelMeta:
        end = request.end_us if request.end_us is not None else now_us()
        start = request.start_us if request.start_us is not None else end - 30 * _US_PER_DAY
        if start >= end:
            raise InvalidInput("start", "must be before end")
        assets = self._assets(who, config.asset_type)
        if not assets:
            raise InvalidInput("asset_type", f"no visible asset of type {config.asset_type!r}")
        series = self._registry.series_of(who, assets)
        frames = load_frames(
            self._store, series, config.columns, start, end, config.bucket_s * 1_000_000
        )
        failures = {a: [int(t) for t in ts] for a, ts in request.failures.items()}
        unknown = sorted(set(failures) - set(assets))
        if unknown:
            raise InvalidInput("failures", f"{unknown[0]!r} is not a visible {config.asset_type}")
        events = self._store.events(
            assets, start, end, kinds=[request.failure_event_kind], limit=100_000
        )
        if events.num_rows:
            ts_col = events.column("ts").cast("int64").to_pylist()
            for asset, ts in zip(events.column("asset_id").to_pylist(), ts_col, strict=True):
                failures.setdefault(str(asset), []).append(int(ts))

        def progress(stage: str, frac: float) -> None:
            job.stage, job.progress = stage, frac

        bundle, metrics, names = PdmBundle.fit(
            config, frames, failures, rounds=request.rounds, progress=progress
        )
        progress("registering", 0.95)
        return self.models.register(
            config.asset_type,
            KIND,
            bundle.save,
            features=names,
            training_range={
                "start_us": int(start),
                "end_us": int(end),
                "bucket_s": config.bucket_s,
                "assets": len(frames.asset_ids),
            },
            metrics=metrics,
            extra={
                "config": config.to_json(),
                "has_rul": bundle.rul is not None,
                "anomaly_trim": bundle.trim.to_json(),
            },
        )

    def job(self, who: Principal, job_id: str) -> TrainJob:
        """A training job started by ``who``'s tenant or below (:class:`NotFound` otherwise)."""
        job = self._jobs.get(job_id)
        if job is None or not job.tenant_path.startswith(who.tenant_path):
            raise NotFound("training job", job_id)
        return job

    # -- versions ---------------------------------------------------------------------
    def versions(self, who: Principal, asset_type: str) -> tuple[list[ModelMeta], int | None]:
        """Every version of the type's model, oldest first, and the deployed version."""
        self._registry.get_asset_type(who, asset_type)
        active = self.models.active(asset_type, KIND)
        return self.models.list_versions(asset_type, KIND), active.version if active else None

    def deploy(self, who: Principal, asset_type: str, version: int) -> ModelMeta:
        """Deploy a version; the next scoring pass uses it."""
        self._manageable(who, asset_type)
        meta = self.models.deploy(asset_type, KIND, version)
        self._wake.set()
        return meta

    def rollback(self, who: Principal, asset_type: str) -> ModelMeta:
        """Re-deploy the previously deployed version."""
        self._manageable(who, asset_type)
        meta = self.models.rollback(asset_type, KIND)
        self._wake.set()
        return meta

    # -- scoring ----------------------------------------------------------------------
    def wake(self) -> None:
        """Run a scoring pass now instead of at the next tick."""
        self._wake.set()

    def trained_types(self) -> list[str]:
        """Asset types with at least one stored version."""
        root = self.models.root
        if not root.is_dir():
            return []
        return sorted(d.name for d in root.iterdir() if (d / KIND).is_dir())

    def deployed_types(self) -> list[str]:
        """Asset types with a deployed model."""
        root = self.models.root
        if not root.is_dir():
            return []
        return sorted(d.name for d in root.iterdir() if (d / KIND / "active.json").is_file())

    def _bundle(self, asset_type: str, version: int) -> PdmBundle:
        key = (asset_type, version)
        if key not in self._bundles:
            path = self.models.path(asset_type, KIND, version)
            self._bundles[key] = PdmBundle.load(path)
        return self._bundles[key]

    async def score_once(self, asset_type: str | None = None) -> dict[str, int]:
        """Score every asset with new data (of one type or of every deployed type).

        Each asset gets a prediction for every bucket since its last scored reading (for an
        asset the deployed version has not scored yet: up to ``backfill_rows`` buckets).

        Returns counts: ``assets`` scored, ``published`` messages (one per asset) and
        ``points`` (predicted values).
        """
        totals = {"assets": 0, "published": 0, "points": 0}
        async with self._score_lock:
            types = [asset_type] if asset_type else self.deployed_types()
            for name in types:
                active = self.models.active(name, KIND)
                if active is None:
                    continue
                payloads, scored, points = await asyncio.to_thread(
                    self._score_type, name, active.version
                )
                headers = {"Ib-Origin": "predict", "Ib-Model": f"{name}/v{active.version}"}
                await self._publish_all(payloads, headers)
                self._scored.setdefault((name, active.version), {}).update(scored)
                if self.score_hooks and payloads:
                    values = latest_predictions(payloads)
                    for hook in self.score_hooks:
                        try:
                            await hook(name, active.version, values)
                        except Exception:  # a consumer's bug must not stop scoring
                            _LOGGER.exception("a prediction hook failed")
                totals["assets"] += len(scored)
                totals["published"] += len(payloads)
                totals["points"] += points
        return totals

    async def _publish_all(self, payloads: Mapping[str, bytes], headers: Mapping[str, str]) -> None:
        """Publish one message per asset, up to ``_PUBLISH_CONCURRENCY`` awaiting acks at once."""
        gate = asyncio.Semaphore(_PUBLISH_CONCURRENCY)

        async def send(asset: str, payload: bytes) -> None:
            async with gate:
                await self._publisher.publish(
                    f"ib.v1.{asset_source(asset)}.telemetry", payload, headers=headers
                )

        await asyncio.gather(*(send(a, p) for a, p in payloads.items()))

    def _score_type(
        self, asset_type: str, version: int
    ) -> tuple[dict[str, bytes], dict[str, int], int]:
        bundle = self._bundle(asset_type, version)
        config = bundle.config
        t = self._registry.get_asset_type(None, asset_type)
        outputs = [m for m in t.measurements if m.name in PREDICTION_MEASUREMENTS]
        assets = self._assets(_SYSTEM, asset_type)
        if not assets or not outputs:
            return {}, {}, 0
        series = self._registry.series_of(None, assets)
        sensor_series = [s for s in series if s.measurement in config.sensors]
        latest = self._store.latest([s.id for s in sensor_series])
        asset_of = {s.id: s.asset_id for s in sensor_series}
        newest: dict[str, int] = {}
        ts_col = latest.column("ts").cast("int64").to_pylist()
        for sid, ts in zip(latest.column("series").to_pylist(), ts_col, strict=True):
            a = asset_of[int(sid)]
            newest[a] = max(newest.get(a, 0), int(ts))
        done = self._scored.get((asset_type, version), {})
        todo = {a: ts for a, ts in newest.items() if ts > done.get(a, -1)}
        if not todo:
            return {}, {}, 0
        bucket_us = config.bucket_s * 1_000_000
        # Rows stamped after ``since`` are published: new buckets of a scored asset, the
        # recent history of an asset this version has not scored yet.
        since = {a: done.get(a, ts - self.backfill_rows * bucket_us) for a, ts in todo.items()}
        end = max(todo.values()) + 1
        start = max(min(since.values()), end - 7 * _US_PER_DAY) - config.lookback * bucket_us
        frames = load_frames(
            self._store,
            [s for s in series if s.asset_id in todo],
            config.columns,
            start,
            end,
            bucket_us,
            last_rows=config.lookback + self.backfill_rows,
        )
        if not frames.asset_ids:
            return {}, {}, 0
        # A row is stamped at the end of its bucket, the newest row at the newest reading.
        newest_ms = np.array([todo[a] // 1000 for a in frames.asset_ids], dtype=np.int64)
        stamp_ms = np.minimum((frames.ts_us + bucket_us) // 1000 - 1, newest_ms[frames.unit])
        since_ms = np.array([since[a] // 1000 for a in frames.asset_ids], dtype=np.int64)
        rows = np.flatnonzero(stamp_ms > since_ms[frames.unit])
        scores = bundle.score_rows(frames, rows)
        columns = {
            "health_index": scores.health,
            "anomaly_score": scores.anomaly,
            "rul": scores.rul,
            "rul_lo": scores.rul_lo,
            "rul_hi": scores.rul_hi,
        }
        unit = frames.unit[rows]
        bounds = np.searchsorted(unit, np.arange(len(frames.asset_ids) + 1))
        payloads: dict[str, bytes] = {}
        scored: dict[str, int] = {}
        points = 0
        for i, asset in enumerate(frames.asset_ids):
            lo, hi = int(bounds[i]), int(bounds[i + 1])
            scored[asset] = todo[asset]
            if lo == hi:
                continue
            values: dict[str, list[float | None]] = {}
            for m in outputs:
                col = columns[m.name][lo:hi]
                ok = np.isfinite(col)
                if not ok.any():
                    continue
                values[m.name] = [
                    _clip(round(float(v), 4), m.min, m.max) if good else None
                    for v, good in zip(col.tolist(), ok.tolist(), strict=True)
                ]
                points += int(ok.sum())
            if values:
                body = {"asset": asset, "ts": stamp_ms[rows[lo:hi]].tolist(), "values": values}
                payloads[asset] = orjson.dumps(body)
        return payloads, scored, points

    async def run(self, stop: asyncio.Event) -> None:
        """Score every ``interval_s`` (and when woken) until ``stop`` is set."""
        failing = False
        while not stop.is_set():
            try:
                await self.score_once()
                if failing:
                    _LOGGER.info("predict scoring recovered")
                failing = False
            except IronbridgeError as exc:
                if not failing:
                    _LOGGER.warning("predict scoring failed: %s", exc)
                failing = True
            except Exception:  # a scorer bug must not end scoring for good, nor the platform
                if not failing:
                    _LOGGER.exception("predict scoring failed")
                failing = True
            self._wake.clear()
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait(
                    waits, timeout=self.interval_s, return_when=asyncio.FIRST_COMPLETED
                )
            for w in waits:
                w.cancel()
        for task in list(self._tasks):
            task.cancel()

    # -- reading scores ---------------------------------------------------------------
    def scores(
        self, who: Principal, asset_type: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Latest stored predictions of visible assets, worst health first.

        Assets never scored are left out. Values come from the stored series, so they
        survive restarts and match what rules see.
        """
        types = [asset_type] if asset_type else self.deployed_types()
        out: list[dict[str, Any]] = []
        for name in types:
            self._registry.get_asset_type(who, name)
            assets = {a.id: a for a in self._list_visible(who, name)}
            if not assets:
                continue
            refs: list[SeriesRef] = [
                s
                for s in self._registry.series_of(who, list(assets))
                if s.measurement in PREDICTION_MEASUREMENTS
            ]
            latest = self._store.latest([s.id for s in refs])
            by_id = {s.id: s for s in refs}
            rows: dict[str, dict[str, Any]] = {}
            ts_col = latest.column("ts").cast("int64").to_pylist()
            for sid, ts, v in zip(
                latest.column("series").to_pylist(),
                ts_col,
                latest.column("value").to_pylist(),
                strict=True,
            ):
                ref = by_id[int(sid)]
                row = rows.setdefault(
                    ref.asset_id,
                    {
                        "asset_id": ref.asset_id,
                        "name": assets[ref.asset_id].name,
                        "asset_type": name,
                        "ts_us": 0,
                        **dict.fromkeys(PREDICTION_MEASUREMENTS),
                    },
                )
                row[ref.measurement] = float(v)
                row["ts_us"] = max(row["ts_us"], int(ts))
            out.extend(rows.values())

        def key(r: Mapping[str, Any]) -> tuple[float, float]:
            h = r["health_index"]
            return (h if h is not None else np.inf, -(r["anomaly_score"] or 0.0))

        return sorted(out, key=key)[:limit]

    def _list_visible(self, who: Principal, type_name: str) -> list[Any]:
        out: list[Any] = []
        while True:
            page = self._registry.list_assets(
                who, type_name=type_name, limit=_PAGE, offset=len(out)
            )
            out.extend(page)
            if len(page) < _PAGE:
                return out
