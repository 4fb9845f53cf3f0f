"""Model registry: versioned model artefacts with metadata under the data directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ironbridge.model import Conflict, InvalidInput, NotFound

__all__ = ["ModelMeta", "ModelRegistry"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^v(\d+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelMeta:
    """What is stored in ``meta.json`` next to a model version."""

    asset_type: str
    kind: str
    version: int
    features: tuple[str, ...]
    training_range: Mapping[str, Any]
    metrics: Mapping[str, float]
    created_at: str
    extra: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Plain JSON-serialisable form."""
        return {
            "asset_type": self.asset_type,
            "kind": self.kind,
            "version": self.version,
            "features": list(self.features),
            "training_range": dict(self.training_range),
            "metrics": dict(self.metrics),
            "created_at": self.created_at,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ModelMeta:
        """Parse the form written by :meth:`to_json`."""
        return cls(
            asset_type=str(d["asset_type"]),
            kind=str(d["kind"]),
            version=int(d["version"]),
            features=tuple(d.get("features", ())),
            training_range=dict(d.get("training_range", {})),
            metrics={k: float(v) for k, v in d.get("metrics", {}).items()},
            created_at=str(d["created_at"]),
            extra=dict(d.get("extra", {})),
        )


def _check(field: str, value: str) -> str:
    if not _NAME.match(value):
        raise InvalidInput(field, "use letters, digits, '_', '-', '.' (no path separators)")
    return value


def _write_json_atomic(path: Path, data: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


class ModelRegistry:
    """Versions in ``<root>/<asset_type>/<kind>/v<N>/`` holding ``model.*`` and ``meta.json``.

    ``root`` is normally ``<data_dir>/models``. Artefacts are written by the model's own
    ``save`` (LightGBM text, ``.npz`` with ``allow_pickle=False``, JSON), never pickle.
    The deployed version and the deployment history (for :meth:`rollback`) live in
    ``active.json`` of each ``<asset_type>/<kind>`` directory, replaced atomically.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _dir(self, asset_type: str, kind: str) -> Path:
        return self.root / _check("asset_type", asset_type) / _check("kind", kind)

    def list_versions(self, asset_type: str, kind: str) -> list[ModelMeta]:
        """Every stored version, oldest first."""
        d = self._dir(asset_type, kind)
        if not d.is_dir():
            return []
        out = []
        for child in d.iterdir():
            m = _VERSION.match(child.name)
            if m and (child / "meta.json").is_file():
                out.append(ModelMeta.from_json(json.loads((child / "meta.json").read_text())))
        return sorted(out, key=lambda meta: meta.version)

    def register(
        self,
        asset_type: str,
        kind: str,
        write: Callable[[Path], object],
        *,
        features: tuple[str, ...] | list[str],
        training_range: Mapping[str, Any],
        metrics: Mapping[str, float],
        extra: Mapping[str, Any] | None = None,
    ) -> ModelMeta:
        """Store a new version: ``write(directory)`` writes the ``model.*`` files.

        The version directory is built under a temporary name and renamed into place,
        so a crash never leaves a half-written version visible.
        """
        d = self._dir(asset_type, kind)
        d.mkdir(parents=True, exist_ok=True)
        versions = self.list_versions(asset_type, kind)
        version = (versions[-1].version if versions else 0) + 1
        meta = ModelMeta(
            asset_type=asset_type,
            kind=kind,
            version=version,
            features=tuple(features),
            training_range=dict(training_range),
            metrics=dict(metrics),
            created_at=datetime.now(UTC).isoformat(),
            extra=dict(extra or {}),
        )
        tmp = Path(tempfile.mkdtemp(dir=d, prefix=".tmp-v"))
        try:
            write(tmp)
            (tmp / "meta.json").write_text(json.dumps(meta.to_json(), indent=2))
            target = d / f"v{version}"
            if target.exists():
                raise Conflict(f"{asset_type}/{kind} v{version} already exists")
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return meta

    def path(self, asset_type: str, kind: str, version: int) -> Path:
        """Directory of a stored version (:class:`NotFound` if absent)."""
        p = self._dir(asset_type, kind) / f"v{int(version)}"
        if not (p / "meta.json").is_file():
            raise NotFound("model version", f"{asset_type}/{kind}/v{version}")
        return p

    def _state(self, asset_type: str, kind: str) -> list[int]:
        f = self._dir(asset_type, kind) / "active.json"
        if not f.is_file():
            return []
        return [int(v) for v in json.loads(f.read_text()).get("history", [])]

    def deploy(self, asset_type: str, kind: str, version: int) -> ModelMeta:
        """Make ``version`` the active one (remembering the previous for rollback)."""
        p = self.path(asset_type, kind, version)
        history = self._state(asset_type, kind)
        if not history or history[-1] != version:
            history.append(int(version))
        _write_json_atomic(
            self._dir(asset_type, kind) / "active.json",
            {"active": int(version), "history": history},
        )
        return ModelMeta.from_json(json.loads((p / "meta.json").read_text()))

    def rollback(self, asset_type: str, kind: str) -> ModelMeta:
        """Re-activate the previously deployed version (:class:`Conflict` if there is none)."""
        history = self._state(asset_type, kind)
        if len(history) < 2:
            raise Conflict(f"{asset_type}/{kind}: no earlier deployment to roll back to")
        history.pop()
        version = history[-1]
        p = self.path(asset_type, kind, version)
        _write_json_atomic(
            self._dir(asset_type, kind) / "active.json",
            {"active": version, "history": history},
        )
        return ModelMeta.from_json(json.loads((p / "meta.json").read_text()))

    def active(self, asset_type: str, kind: str) -> ModelMeta | None:
        """The deployed version's metadata, or None if nothing is deployed."""
        history = self._state(asset_type, kind)
        if not history:
            return None
        p = self.path(asset_type, kind, history[-1])
        return ModelMeta.from_json(json.loads((p / "meta.json").read_text()))
