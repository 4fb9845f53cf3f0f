"""Default rules for the built-in asset types (used by the demo)."""

from __future__ import annotations

from typing import Any

from ironbridge.rules.definitions import parse_rule
from ironbridge.rules.store import AlarmStore

#: alarms of a machine in maintenance or out of operation are suppressed by design
#: (set the asset attribute ``operating_state`` to ``maintenance``/``out_of_operation``)
IN_MAINTENANCE = {"asset_attribute": "operating_state"}

#: Shandong, where the simulated fleet runs, with a margin ([lon, lat]).
SHANDONG_FENCE = [[114.4, 34.0], [123.1, 34.0], [123.1, 38.8], [114.4, 38.8]]


def default_rules() -> list[dict[str, Any]]:
    """Rule definitions (JSON form) for heavy_truck, excavator and genset."""
    out: list[dict[str, Any]] = []
    for t in ("heavy_truck", "excavator", "genset"):
        out += [
            {
                "id": f"{t}-overheat",
                "name": "Engine overheating",
                "kind": "threshold",
                "severity": "major",
                "asset_type": t,
                "on_delay_s": 5,
                "suppress_when": IN_MAINTENANCE,
                "params": {
                    "measurement": "coolant_temp",
                    "op": ">",
                    "limit": 102.0,
                    "deadband": 3.0,
                },
            },
            {
                "id": f"{t}-low-oil",
                "name": "Low oil pressure while running",
                "kind": "expression",
                "severity": "critical",
                "asset_type": t,
                "on_delay_s": 5,
                "suppress_when": IN_MAINTENANCE,
                "params": {"expression": "engine_speed > 500 && oil_pressure < 110"},
            },
            {
                "id": f"{t}-offline",
                "name": "Device offline",
                "kind": "no_data",
                "severity": "warning",
                "asset_type": t,
                "params": {"timeout_s": 120},
            },
            {
                "id": f"{t}-dtc",
                "name": "Active J1939 fault code",
                "kind": "fault_code",
                "severity": "minor",
                "asset_type": t,
                # a fault code while the device is offline is stale news
                "suppress_when": {**IN_MAINTENANCE, "parent_rule": f"{t}-offline"},
                "params": {"event_kind": "dtc", "code": "SPN*", "clear_after_s": 30},
            },
        ]
    for t in ("heavy_truck", "excavator"):
        out.append(
            {
                "id": f"{t}-geofence",
                "name": "Left the Shandong service region",
                "kind": "geofence",
                "severity": "major",
                "asset_type": t,
                "params": {"polygon": SHANDONG_FENCE, "trigger": "outside"},
            }
        )
    return out


def install_default_rules(store: AlarmStore) -> int:
    """Create the default rules that do not exist yet (root tenant); return how many."""
    have = {r.id for r in store.list_rules(None)}
    n = 0
    for d in default_rules():
        if d["id"] not in have:
            store.put_rule(None, parse_rule(d, tenant_id="root", tenant_path="/root/"), create=True)
            n += 1
    return n
