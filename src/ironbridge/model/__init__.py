"""Pure domain model: ids, asset types, entities, events, time and the error tree."""

from ironbridge.model.assettype import (
    AssetType,
    AttributeSpec,
    AttrType,
    DType,
    Measurement,
    parse_asset_type,
)
from ironbridge.model.entities import (
    ApiKey,
    Asset,
    Device,
    Principal,
    Role,
    SeriesRef,
    Tenant,
    User,
)
from ironbridge.model.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    IronbridgeError,
    NotFound,
    PermanentError,
    PermissionDenied,
    TransientError,
)
from ironbridge.model.events import Event
from ironbridge.model.ids import check_id, check_name
from ironbridge.model.timeutil import (
    MAX_FUTURE_SKEW_US,
    MIN_DEVICE_TS_US,
    US_PER_MS,
    US_PER_S,
    from_datetime,
    now_us,
    to_datetime,
)

__all__ = [
    "MAX_FUTURE_SKEW_US",
    "MIN_DEVICE_TS_US",
    "US_PER_MS",
    "US_PER_S",
    "ApiKey",
    "Asset",
    "AssetType",
    "AttrType",
    "AttributeSpec",
    "AuthenticationFailed",
    "Conflict",
    "DType",
    "Device",
    "Event",
    "InvalidInput",
    "IronbridgeError",
    "Measurement",
    "NotFound",
    "PermanentError",
    "PermissionDenied",
    "Principal",
    "Role",
    "SeriesRef",
    "Tenant",
    "TransientError",
    "User",
    "check_id",
    "check_name",
    "from_datetime",
    "now_us",
    "parse_asset_type",
    "to_datetime",
]
