"""Service network of the demo and benchmarks: 20 stations across Shandong, technicians, plans."""

from __future__ import annotations

from typing import Any

import numpy as np

from ironbridge.aftersales.dispatch import Job, Technician

#: (station id, city, lat, lon): the 16 prefecture cities and four county-level towns
STATIONS: tuple[tuple[str, str, float, float], ...] = (
    ("st-jinan", "Jinan", 36.651, 117.120),
    ("st-qingdao", "Qingdao", 36.067, 120.383),
    ("st-yantai", "Yantai", 37.464, 121.448),
    ("st-weifang", "Weifang", 36.707, 119.162),
    ("st-zibo", "Zibo", 36.813, 118.055),
    ("st-linyi", "Linyi", 35.104, 118.356),
    ("st-jining", "Jining", 35.415, 116.587),
    ("st-taian", "Tai'an", 36.200, 117.088),
    ("st-rizhao", "Rizhao", 35.417, 119.527),
    ("st-dezhou", "Dezhou", 37.435, 116.359),
    ("st-liaocheng", "Liaocheng", 36.457, 115.985),
    ("st-heze", "Heze", 35.234, 115.481),
    ("st-binzhou", "Binzhou", 37.382, 117.971),
    ("st-dongying", "Dongying", 37.434, 118.675),
    ("st-weihai", "Weihai", 37.513, 122.121),
    ("st-zaozhuang", "Zaozhuang", 34.810, 117.323),
    ("st-laiwu", "Laiwu", 36.213, 117.677),
    ("st-shouguang", "Shouguang", 36.880, 118.791),
    ("st-longkou", "Longkou", 37.646, 120.478),
    ("st-tengzhou", "Tengzhou", 35.114, 117.165),
)

SKILLS = ("engine", "hydraulics", "electrical", "drivetrain", "aftertreatment")

#: sample parts: (part number, name, unit cost CNY)
PARTS: tuple[tuple[str, str, float], ...] = (
    ("P-OIL-15W40-20L", "Engine oil 15W-40, 20 L", 420.0),
    ("P-OF-001", "Engine oil filter", 85.0),
    ("P-FF-002", "Fuel filter", 120.0),
    ("P-AF-003", "Air filter, outer", 260.0),
    ("P-AFI-004", "Air filter, inner", 180.0),
    ("P-HRF-005", "Hydraulic return filter", 340.0),
    ("P-HO-46-200L", "Hydraulic oil HM46, 200 L", 3600.0),
    ("P-CL-020", "Coolant, 20 L", 380.0),
    ("P-BELT-006", "Fan belt", 150.0),
    ("P-DEF-SEN", "DEF quality sensor", 1450.0),
    ("P-TURBO-01", "Turbocharger", 9800.0),
    ("P-INJ-01", "Fuel injector", 2100.0),
)


def plan_documents() -> list[dict[str, Any]]:
    """Return maintenance plans of the builtin asset types (after domain.md section 3.1)."""
    oil = [{"part_no": "P-OIL-15W40-20L", "qty": 1}, {"part_no": "P-OF-001", "qty": 1}]
    return [
        {
            "asset_type": "heavy_truck",
            "lead_hours": 25,
            "lead_km": 3000,
            "lead_days": 14,
            "intervals": [
                {
                    "name": "oil-service",
                    "hours": 500,
                    "km": 40_000,
                    "months": 6,
                    "first_km": 10_000,
                    "tasks": ["engine oil and filter", "greasing", "belts"],
                    "parts": oil,
                    "labour_h": 1.5,
                },
                {
                    "name": "major-service",
                    "hours": 2000,
                    "km": 120_000,
                    "months": 12,
                    "tasks": ["fuel filter", "air filter", "coolant check"],
                    "parts": [
                        *oil,
                        {"part_no": "P-FF-002", "qty": 2},
                        {"part_no": "P-AF-003", "qty": 1},
                    ],
                    "labour_h": 4,
                },
            ],
        },
        {
            "asset_type": "excavator",
            "lead_hours": 50,
            "lead_days": 14,
            "intervals": [
                {
                    "name": "250h",
                    "hours": 250,
                    "months": 3,
                    "tasks": ["engine oil and filter", "greasing", "belts"],
                    "parts": oil,
                    "labour_h": 1.5,
                },
                {
                    "name": "500h",
                    "hours": 500,
                    "months": 6,
                    "tasks": ["fuel filter"],
                    "parts": [{"part_no": "P-FF-002", "qty": 1}],
                    "labour_h": 1,
                },
                {
                    "name": "1000h",
                    "hours": 1000,
                    "months": 12,
                    "tasks": ["hydraulic return filter", "air filter"],
                    "parts": [
                        {"part_no": "P-HRF-005", "qty": 1},
                        {"part_no": "P-AF-003", "qty": 1},
                    ],
                    "labour_h": 3,
                },
                {
                    "name": "2000h",
                    "hours": 2000,
                    "months": 24,
                    "tasks": ["hydraulic oil", "inner air filter"],
                    "parts": [
                        {"part_no": "P-HO-46-200L", "qty": 1},
                        {"part_no": "P-AFI-004", "qty": 1},
                    ],
                    "labour_h": 5,
                },
            ],
        },
        {
            "asset_type": "genset",
            "lead_hours": 25,
            "lead_days": 14,
            "intervals": [
                {
                    "name": "250h",
                    "hours": 250,
                    "months": 6,
                    "tasks": ["engine oil and filter"],
                    "parts": oil,
                    "labour_h": 1,
                },
                {
                    "name": "1000h",
                    "hours": 1000,
                    "months": 12,
                    "tasks": ["fuel filter", "air filter", "coolant"],
                    "parts": [
                        {"part_no": "P-FF-002", "qty": 1},
                        {"part_no": "P-AF-003", "qty": 1},
                        {"part_no": "P-CL-020", "qty": 1},
                    ],
                    "labour_h": 3,
                },
            ],
        },
    ]


def technicians(per_station: int = 5, seed: int = 7) -> list[dict[str, Any]]:
    """Return technicians: ``per_station`` per station, 2-3 skills each, day shifts."""
    rng = np.random.default_rng(seed)
    out = []
    for sid, _, lat, lon in STATIONS:
        for k in range(per_station):
            skills = sorted(rng.choice(SKILLS, size=int(rng.integers(2, 4)), replace=False))
            # Every station covers every skill with its first technicians.
            skills = sorted({*skills, SKILLS[k % len(SKILLS)]})
            start_h = 8.0 if k % 4 else 7.0
            out.append(
                {
                    "id": f"{sid[3:]}-{k + 1:02d}",
                    "name": f"{sid[3:].title()} technician {k + 1}",
                    "station_id": sid,
                    "skills": [str(s) for s in skills],
                    "lat": lat,
                    "lon": lon,
                    "shift_start_h": start_h,
                    "shift_end_h": start_h + 10.0,
                }
            )
    return out


def dispatch_problem(
    n_jobs: int = 500, per_station: int = 5, seed: int = 1
) -> tuple[list[Technician], list[Job]]:
    """Return a day's dispatch problem: plan starts 06:00, jobs spread around the stations.

    Priority mix P0 10 %, P1 20 %, P2 40 %, P3 30 %; response due from now (P0 0.5-2 h,
    P1 2-4 h, P2 4-12 h, P3 not today); 30-90 minutes on site.
    """
    rng = np.random.default_rng(seed)
    techs = [
        Technician(
            id=t["id"],
            station_id=t["station_id"],
            lat=t["lat"],
            lon=t["lon"],
            skills=frozenset(t["skills"]),
            shift_start_min=(t["shift_start_h"] - 6.0) * 60,
            shift_end_min=(t["shift_end_h"] - 6.0) * 60,
        )
        for t in technicians(per_station, seed=seed + 6)
    ]
    centres = rng.integers(0, len(STATIONS), n_jobs)
    prio = rng.choice(["P0", "P1", "P2", "P3"], size=n_jobs, p=[0.1, 0.2, 0.4, 0.3])
    jobs = []
    for i in range(n_jobs):
        _, _, lat, lon = STATIONS[int(centres[i])]
        p = str(prio[i])
        due = {
            "P0": rng.uniform(90, 240),
            "P1": rng.uniform(180, 360),
            "P2": rng.uniform(300, 780),
            "P3": None,
        }[p]
        jobs.append(
            Job(
                id=i + 1,
                lat=float(lat + rng.normal(0, 0.25)),
                lon=float(lon + rng.normal(0, 0.3)),
                skill=str(rng.choice(SKILLS)),
                duration_min=float(rng.uniform(30, 90)),
                priority=p,
                due_min=None if due is None else float(due),
            )
        )
    return techs, jobs
