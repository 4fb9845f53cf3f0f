"""Predictive maintenance: features, anomaly detection, RUL, health index, model registry."""

from ironbridge.predict._lazy import MissingExtra
from ironbridge.predict.anomaly import PcaDetector, isolation_forest_scores
from ironbridge.predict.bundle import BundleConfig, PdmBundle, RunCondition
from ironbridge.predict.features import (
    ConditionNormaliser,
    FeatureSpec,
    build_features,
    pivot_raw,
    rolling_mean,
    rolling_slope,
    rolling_std,
)
from ironbridge.predict.frames import AssetFrames, load_frames
from ironbridge.predict.health import FleetScorer, Scores, health_index
from ironbridge.predict.metrics import (
    BinaryCounts,
    binary_counts,
    nab_score,
    phm08_score,
    rmse,
    skab_summary,
)
from ironbridge.predict.pipeline import RulPipeline, last_rows
from ironbridge.predict.registry import ModelMeta, ModelRegistry
from ironbridge.predict.rul import RulModel, train_rul
from ironbridge.predict.service import (
    PREDICTION_MEASUREMENTS,
    JobState,
    PredictService,
    TrainJob,
    TrainRequest,
)

__all__ = [
    "PREDICTION_MEASUREMENTS",
    "AssetFrames",
    "BinaryCounts",
    "BundleConfig",
    "ConditionNormaliser",
    "FeatureSpec",
    "FleetScorer",
    "JobState",
    "MissingExtra",
    "ModelMeta",
    "ModelRegistry",
    "PcaDetector",
    "PdmBundle",
    "PredictService",
    "RulModel",
    "RulPipeline",
    "RunCondition",
    "Scores",
    "TrainJob",
    "TrainRequest",
    "binary_counts",
    "build_features",
    "health_index",
    "isolation_forest_scores",
    "last_rows",
    "load_frames",
    "nab_score",
    "phm08_score",
    "pivot_raw",
    "rmse",
    "rolling_mean",
    "rolling_slope",
    "rolling_std",
    "skab_summary",
    "train_rul",
]
