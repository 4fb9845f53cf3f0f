"""Predictive maintenance: train models of an asset type, deploy and roll back, read scores."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from ironbridge.api.auth import Ctx, CurrentUser, Operator
from ironbridge.api.context import ApiContext
from ironbridge.api.routers.query import parse_time
from ironbridge.model import NotFound, now_us
from ironbridge.predict import ModelMeta
from ironbridge.predict.service import PredictService, TrainJob, TrainRequest

router = APIRouter(prefix="/api/v1/predict", tags=["predict"])


class RunConditionIn(BaseModel):
    """One condition of the running gate: the bucket mean of a measurement is above a value."""

    model_config = ConfigDict(extra="forbid")
    measurement: str = Field(min_length=1)
    above: float = Field(allow_inf_nan=False)


class TrainCreate(BaseModel):
    """A training request (see :class:`ironbridge.predict.service.TrainRequest`)."""

    model_config = ConfigDict(extra="forbid")
    asset_type: str
    measurements: list[str] = Field(default_factory=list, max_length=200)
    settings: list[str] = Field(default_factory=list, max_length=20)
    start: str | int | None = Field(None, description="ISO 8601, epoch ms or now-30d")
    end: str | int | None = Field(None, description="ISO 8601, epoch ms or now")
    bucket_s: int = Field(60, ge=1, le=86_400)
    rul_cap_h: float = Field(24.0, gt=0)
    failures: dict[str, list[str | int]] = Field(
        default_factory=dict, description="asset id -> failure times (ISO 8601 or epoch ms)"
    )
    failure_event_kind: str = "failure"
    rounds: int = Field(300, ge=1, le=5000)
    deploy: bool = False
    running: list[RunConditionIn] = Field(
        default_factory=list,
        max_length=8,
        description="learn from and score only buckets where every condition holds "
        "(e.g. engine_speed above 700 and coolant_temp above 80); empty: every bucket",
    )


class VersionPublic(BaseModel):
    """A stored model version with its metadata and validation metrics."""

    asset_type: str
    kind: str
    version: int
    created_at: str
    features: int
    training_range: dict[str, Any]
    metrics: dict[str, float]
    has_rul: bool
    config: dict[str, Any]
    anomaly_trim: dict[str, Any] | None = Field(
        None,
        description="assets left out of the anomaly model's training as far off the fleet "
        "(excluded: asset, screened_on, screen_z, median_score), the ones the screen "
        "suspected that came back (readmitted), or why none was judged (skipped); "
        "null for versions trained before trimming",
    )

    @classmethod
    def of(cls, m: ModelMeta) -> VersionPublic:
        """Convert from the registry's metadata."""
        return cls(
            asset_type=m.asset_type,
            kind=m.kind,
            version=m.version,
            created_at=m.created_at,
            features=len(m.features),
            training_range=dict(m.training_range),
            metrics=dict(m.metrics),
            has_rul=bool(m.extra.get("has_rul", False)),
            config=dict(m.extra.get("config", {})),
            anomaly_trim=m.extra.get("anomaly_trim"),
        )


class JobPublic(BaseModel):
    """A training job and its progress."""

    id: str
    asset_type: str
    state: str
    stage: str
    progress: float
    error: str | None
    error_field: str | None
    version: VersionPublic | None
    created_us: int
    finished_us: int | None

    @classmethod
    def of(cls, j: TrainJob) -> JobPublic:
        """Convert from the service's job."""
        return cls(
            id=j.id,
            asset_type=j.asset_type,
            state=j.state.value,
            stage=j.stage,
            progress=j.progress,
            error=j.error,
            error_field=j.error_field,
            version=VersionPublic.of(j.result) if j.result else None,
            created_us=j.created_us,
            finished_us=j.finished_us,
        )


class ModelsPublic(BaseModel):
    """Every version of an asset type's model and which one is deployed."""

    asset_type: str
    active: int | None
    versions: list[VersionPublic]


class DeployRequest(BaseModel):
    """Which version to deploy."""

    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)


class ScorePublic(BaseModel):
    """The latest stored predictions of one asset."""

    asset_id: str
    name: str
    asset_type: str
    ts_us: int
    health_index: float | None
    anomaly_score: float | None
    rul: float | None
    rul_lo: float | None
    rul_hi: float | None


def _service(ctx: ApiContext) -> PredictService:
    if ctx.predict is None:
        raise NotFound("service", "predict")
    return ctx.predict


@router.post("/train", status_code=202)
async def train(body: TrainCreate, ctx: Ctx, who: Operator) -> JobPublic:
    """Start training a new version from the stored history; poll ``/jobs/{id}``."""
    svc = _service(ctx)
    end = parse_time(None if body.end is None else str(body.end), now_us(), "end")
    start_text = None if body.start is None else str(body.start)
    start = parse_time(start_text, end - 30 * 86_400_000_000, "start")
    failures = {
        asset: [parse_time(str(t), 0, f"failures.{asset}[{i}]") for i, t in enumerate(times)]
        for asset, times in body.failures.items()
    }
    request = TrainRequest(
        asset_type=body.asset_type,
        measurements=tuple(body.measurements),
        settings=tuple(body.settings),
        start_us=start,
        end_us=end,
        bucket_s=body.bucket_s,
        rul_cap_h=body.rul_cap_h,
        failures=failures,
        failure_event_kind=body.failure_event_kind,
        rounds=body.rounds,
        deploy=body.deploy,
        running=tuple((c.measurement, c.above) for c in body.running),
    )
    return JobPublic.of(await svc.start_training(who, request))


@router.get("/jobs/{job_id}")
def get_job(job_id: str, ctx: Ctx, who: CurrentUser) -> JobPublic:
    """A training job's state, stage, progress and, when done, the new version."""
    return JobPublic.of(_service(ctx).job(who, job_id))


@router.get("/models")
def list_models(ctx: Ctx, who: CurrentUser) -> list[ModelsPublic]:
    """Every asset type with stored model versions."""
    svc = _service(ctx)
    out = []
    for name in svc.trained_types():
        try:
            versions, active = svc.versions(who, name)
        except NotFound:
            continue
        out.append(
            ModelsPublic(
                asset_type=name, active=active, versions=[VersionPublic.of(v) for v in versions]
            )
        )
    return out


@router.get("/models/{asset_type}")
def get_models(asset_type: str, ctx: Ctx, who: CurrentUser) -> ModelsPublic:
    """Versions of one asset type's model, oldest first, with metrics."""
    versions, active = _service(ctx).versions(who, asset_type)
    return ModelsPublic(
        asset_type=asset_type, active=active, versions=[VersionPublic.of(v) for v in versions]
    )


@router.post("/models/{asset_type}/deploy")
def deploy(asset_type: str, body: DeployRequest, ctx: Ctx, who: Operator) -> VersionPublic:
    """Deploy a version: the scorer uses it from its next pass."""
    return VersionPublic.of(_service(ctx).deploy(who, asset_type, body.version))


@router.post("/models/{asset_type}/rollback")
def rollback(asset_type: str, ctx: Ctx, who: Operator) -> VersionPublic:
    """Re-deploy the version deployed before the current one."""
    return VersionPublic.of(_service(ctx).rollback(who, asset_type))


@router.post("/score")
async def score_now(
    ctx: Ctx, who: Operator, asset_type: Annotated[str | None, Query()] = None
) -> dict[str, int]:
    """Score now the assets with new data (otherwise they are scored on the schedule)."""
    svc = _service(ctx)
    if asset_type is not None:
        await run_in_threadpool(ctx.registry.get_asset_type, who, asset_type)
    return await svc.score_once(asset_type)


@router.get("/scores")
def scores(
    ctx: Ctx,
    who: CurrentUser,
    asset_type: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 100,
) -> list[ScorePublic]:
    """Latest health, anomaly score and RUL (hours) of visible assets, worst health first."""
    rows = _service(ctx).scores(who, asset_type, limit)
    return [ScorePublic(**r) for r in rows]
