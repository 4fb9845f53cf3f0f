"""Events: states and codes (fault codes, machine state, shift) of an asset in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Something that happened to an asset at an instant.

    Attributes:
        asset_id: the asset it happened to.
        ts_us: microseconds since the Unix epoch, UTC.
        kind: what sort of event (``fault``, ``state``, ``alarm_flag``, ...).
        code: the code within the kind (``SPN110-FMI0``, ``running``, ...).
        payload: any further detail, JSON-serialisable.
    """

    asset_id: str
    ts_us: int
    kind: str
    code: str
    payload: dict[str, Any] = field(default_factory=dict)
