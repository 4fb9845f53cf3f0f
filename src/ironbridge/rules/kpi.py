"""Alarm-system KPIs (ISA-18.2 / EEMUA 191): rate, floods, chattering, stale alarms."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from ironbridge.rules.alarms import Alarm

US = 1_000_000
HOUR_US = 3600 * US
FLOOD_WINDOW_US = 600 * US
FLOOD_COUNT = 10
CHATTER_WINDOW_US = 60 * US
CHATTER_COUNT = 3
STALE_US = 24 * HOUR_US


def alarm_kpis(
    history: Sequence[Mapping[str, Any]],
    open_alarms: Sequence[Alarm],
    *,
    since_us: int,
    until_us: int,
    operators: int = 1,
) -> dict[str, Any]:
    """Compute the KPIs over ``[since_us, until_us)`` from the audit trail.

    Floods are 10-minute windows (aligned) with more than 10 new activations; chattering
    alarms changed condition 3 or more times within one minute; stale alarms have been
    active for more than 24 hours.
    """
    acts = sorted(int(h["ts_us"]) for h in history if h["action"] == "activate")
    hours = max((until_us - since_us) / HOUR_US, 1e-9)
    windows: dict[int, int] = defaultdict(int)
    for ts in acts:
        windows[ts // FLOOD_WINDOW_US] += 1
    floods = sorted(w * FLOOD_WINDOW_US for w, n in windows.items() if n > FLOOD_COUNT)
    changes: dict[int, list[int]] = defaultdict(list)
    for h in history:
        if h["action"] in ("activate", "clear"):
            changes[int(h["alarm_id"])].append(int(h["ts_us"]))
    chattering = []
    for alarm_id, ts_list in changes.items():
        ts_list.sort()
        for i in range(len(ts_list) - CHATTER_COUNT + 1):
            if ts_list[i + CHATTER_COUNT - 1] - ts_list[i] <= CHATTER_WINDOW_US:
                chattering.append(alarm_id)
                break
    stale = [a.id for a in open_alarms if a.active and until_us - a.activated_us > STALE_US]
    return {
        "since_us": since_us,
        "until_us": until_us,
        "activations": len(acts),
        "alarms_per_hour": round(len(acts) / hours, 3),
        "alarms_per_hour_per_operator": round(len(acts) / hours / max(operators, 1), 3),
        "floods": len(floods),
        "flood_windows_us": floods,
        "chattering": sorted(chattering),
        "stale": sorted(stale),
    }
