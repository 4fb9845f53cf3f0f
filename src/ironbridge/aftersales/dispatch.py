"""Dispatch: assign open work orders to technicians and order their day (OR-Tools routing).

The model is a vehicle-routing problem with time windows: one vehicle per technician,
starting and ending at the technician's home base inside their working hours; one node
per work order with its on-site duration, allowed only to technicians holding its
skill, with the SLA response due time as a soft upper bound on the arrival (penalised
per minute late, more for higher priorities); an order that no one can serve is
dropped through a disjunction with a large penalty and reported with a reason. The
search starts from the greedy nearest-available plan (so the result is never worse
than it on the model's objective), then improves it with guided local search until a
time limit. Travel times are great-circle distance times a road factor at an average
road speed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import (  # type: ignore[import-untyped]
    pywrapcp,
    routing_enums_pb2,
)

EARTH_RADIUS_KM = 6371.0088
#: Road distance / great-circle distance; about 1.3 for Chinese provincial road networks.
ROAD_FACTOR = 1.3
#: Average door-to-door speed of a service van, km/h.
SPEED_KMH = 60.0
#: Cost per minute late at a customer, per priority (travel costs 1 per minute).
LATE_PENALTY = {"P0": 200, "P1": 100, "P2": 20, "P3": 5}
#: Cost of leaving an order unassigned, per priority (far above any route's travel).
DROP_PENALTY = {"P0": 10_000_000, "P1": 5_000_000, "P2": 1_000_000, "P3": 500_000}


@dataclass(frozen=True, slots=True, kw_only=True)
class Technician:
    """A technician: home base, skills and working hours (minutes from plan start)."""

    id: str
    station_id: str
    lat: float
    lon: float
    skills: frozenset[str]
    shift_start_min: float
    shift_end_min: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """An open work order to place: where, what skill, how long, due when."""

    id: int
    lat: float
    lon: float
    skill: str | None
    duration_min: float
    priority: str = "P2"
    #: SLA response due, minutes from plan start (may be negative: already late)
    due_min: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """One visit in a technician's route."""

    job_id: int
    arrive_min: float
    depart_min: float
    travel_min: float
    late: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """A technician's day: visits in order, and the travel including the way home."""

    technician_id: str
    stops: tuple[Stop, ...]
    travel_min: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A dispatch plan with its totals."""

    routes: tuple[Route, ...]
    #: job id -> why it was left unassigned
    unassigned: dict[int, str]
    travel_min: float
    #: jobs whose SLA response due passes before a technician arrives (unassigned jobs
    #: due within the planning horizon included)
    breaches: int
    solve_s: float
    method: str

    def assignment(self) -> dict[int, str]:
        """Return job id -> technician id."""
        return {s.job_id: r.technician_id for r in self.routes for s in r.stops}


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Great-circle distance in km (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a)), dtype=np.float64)


def travel_matrix_min(
    lat: npt.ArrayLike,
    lon: npt.ArrayLike,
    *,
    road_factor: float = ROAD_FACTOR,
    speed_kmh: float = SPEED_KMH,
) -> npt.NDArray[np.float64]:
    """Return travel minutes between all pairs of points (road estimate)."""
    la = np.asarray(lat, dtype=np.float64)
    lo = np.asarray(lon, dtype=np.float64)
    km = haversine_km(la[:, None], lo[:, None], la[None, :], lo[None, :])
    return km * road_factor / speed_kmh * 60.0


class _Problem:
    """Nodes (technician homes first, then jobs), the matrix and feasibility."""

    def __init__(
        self, techs: Sequence[Technician], jobs: Sequence[Job], horizon_min: float
    ) -> None:
        self.techs = list(techs)
        self.jobs = list(jobs)
        self.horizon = horizon_min
        lat = [t.lat for t in techs] + [j.lat for j in jobs]
        lon = [t.lon for t in techs] + [j.lon for j in jobs]
        self.travel = travel_matrix_min(lat, lon)
        self.nt = len(techs)
        skills = [t.skills for t in techs]
        self.allowed = [
            [v for v in range(self.nt) if j.skill is None or j.skill in skills[v]] for j in jobs
        ]

    def node(self, job_index: int) -> int:
        return self.nt + job_index

    def reachable(self, v: int, ji: int) -> bool:
        """Can technician ``v`` do job ``ji`` alone in their shift (out and back)?"""
        t, n = self.techs[v], self.node(ji)
        need = self.travel[v, n] + self.jobs[ji].duration_min + self.travel[n, v]
        return bool(t.shift_start_min + need <= t.shift_end_min)

    def why_unassigned(self, ji: int) -> str:
        job = self.jobs[ji]
        if not self.allowed[ji]:
            return f"no technician has skill {job.skill!r}"
        if not any(self.reachable(v, ji) for v in self.allowed[ji]):
            return "no qualified technician can reach it and return within working hours"
        return "qualified technicians' working hours are full today"

    def simulate(self, routes: Sequence[Sequence[int]], method: str, solve_s: float) -> Plan:
        """Evaluate job-index routes the same way for every method (no waiting)."""
        out = []
        total = 0.0
        breaches = 0
        served: set[int] = set()
        for v, seq in enumerate(routes):
            t = self.techs[v]
            now, here, travel = t.shift_start_min, v, 0.0
            stops = []
            for ji in seq:
                job, n = self.jobs[ji], self.node(ji)
                leg = float(self.travel[here, n])
                arrive = now + leg
                late = job.due_min is not None and arrive > job.due_min
                breaches += late
                travel += leg
                now = arrive + job.duration_min
                stops.append(
                    Stop(
                        job_id=job.id,
                        arrive_min=arrive,
                        depart_min=now,
                        travel_min=leg,
                        late=late,
                        reason=self._reason(v, ji, arrive),
                    )
                )
                here = n
                served.add(ji)
            if seq:
                travel += float(self.travel[here, v])
            total += travel
            out.append(Route(technician_id=t.id, stops=tuple(stops), travel_min=travel))
        unassigned = {}
        for ji, job in enumerate(self.jobs):
            if ji not in served:
                unassigned[job.id] = self.why_unassigned(ji)
                if job.due_min is not None and job.due_min <= self.horizon:
                    breaches += 1
        return Plan(
            routes=tuple(r for r in out if r.stops),
            unassigned=unassigned,
            travel_min=total,
            breaches=breaches,
            solve_s=solve_s,
            method=method,
        )

    def _reason(self, v: int, ji: int, arrive: float) -> str:
        job, n = self.jobs[ji], self.node(ji)
        qualified = self.allowed[ji]
        home_dist = self.travel[qualified, n]
        rank = int(np.sum(home_dist < self.travel[v, n])) + 1
        skill = f"has skill {job.skill}" if job.skill else "any technician"
        where = (
            "nearest qualified base"
            if rank == 1
            else f"base #{rank} of {len(qualified)} qualified by distance"
        )
        if job.due_min is None:
            sla = "no SLA due today"
        elif arrive <= job.due_min:
            sla = f"arrives {job.due_min - arrive:.0f} min before SLA due"
        else:
            sla = f"arrives {arrive - job.due_min:.0f} min after SLA due (best available)"
        return f"{skill}; {where} ({self.travel[v, n]:.0f} min from base); {sla}"


def greedy_plan(
    techs: Sequence[Technician], jobs: Sequence[Job], *, horizon_min: float = 24 * 60
) -> Plan:
    """Nearest-available-technician baseline.

    Jobs in order of SLA due (then priority); each goes to the qualified technician
    nearest to where they are now who can still fit it and get home within working
    hours, appended to the end of their route.
    """
    t0 = time.perf_counter()
    p = _Problem(techs, jobs, horizon_min)
    routes = _greedy_routes(p)
    return p.simulate(routes, "greedy-nearest", time.perf_counter() - t0)


def _greedy_routes(p: _Problem) -> list[list[int]]:
    order = sorted(
        range(len(p.jobs)),
        key=lambda i: (
            p.jobs[i].due_min if p.jobs[i].due_min is not None else math.inf,
            p.jobs[i].priority,
        ),
    )
    now = [t.shift_start_min for t in p.techs]
    pos = list(range(p.nt))
    routes: list[list[int]] = [[] for _ in p.techs]
    for ji in order:
        n, job = p.node(ji), p.jobs[ji]
        best, best_d = -1, math.inf
        for v in p.allowed[ji]:
            d = p.travel[pos[v], n]
            if now[v] + d + job.duration_min + p.travel[n, v] > p.techs[v].shift_end_min:
                continue
            if d < best_d:
                best, best_d = v, d
        if best >= 0:
            routes[best].append(ji)
            now[best] += best_d + job.duration_min
            pos[best] = n
    return routes


def propose_plan(
    techs: Sequence[Technician],
    jobs: Sequence[Job],
    *,
    horizon_min: float = 24 * 60,
    time_limit_s: float = 5.0,
    zone_min_jobs: int = 80,
) -> Plan:
    """Return an optimised plan from the OR-Tools routing solver.

    Small problems are solved whole. Large ones (``zone_min_jobs`` jobs or more, over
    several stations) are decomposed, as dispatchers do, into station zones: each job
    goes to the zone of the nearest station with a qualified technician, each zone is
    solved by OR-Tools with its own technicians, and jobs a zone could not fit are
    then inserted where they add the least travel in any technician's day (cheapest
    feasible insertion). Each OR-Tools search starts from the greedy plan of its zone.

    Args:
        techs: technicians available in the plan's day.
        jobs: open work orders to place.
        horizon_min: the plan covers minutes [0, horizon) from its start.
        time_limit_s: overall search time limit.
        zone_min_jobs: decompose into station zones from this many jobs.
    """
    t0 = time.perf_counter()
    p = _Problem(techs, jobs, horizon_min)
    stations = sorted({t.station_id for t in techs})
    if len(jobs) < zone_min_jobs or len(stations) < 2:
        whole = _solve(p, list(range(p.nt)), list(range(len(jobs))), time_limit_s * 0.9)
        return p.simulate(whole, "or-tools", time.perf_counter() - t0)
    zones: dict[str, list[int]] = {s: [] for s in stations}
    for ji in range(len(jobs)):
        cands = [v for v in p.allowed[ji] if p.reachable(v, ji)]
        if cands:
            v = min(cands, key=lambda v: p.travel[v, p.node(ji)])
            zones[techs[v].station_id].append(ji)
    routes: list[list[int]] = [[] for _ in techs]
    busy = [s for s in stations if zones[s]]
    budget = time_limit_s * 0.85 - (time.perf_counter() - t0)
    for k, s in enumerate(busy):
        vehicles = [v for v in range(p.nt) if techs[v].station_id == s]
        share = max(0.05, (budget - (time.perf_counter() - t0)) / (len(busy) - k))
        for v, r in zip(vehicles, _solve(p, vehicles, zones[s], share), strict=True):
            routes[v] = r
    _insert_leftovers(p, routes)
    return p.simulate(routes, "or-tools-zones", time.perf_counter() - t0)


def _route_ok(p: _Problem, v: int, seq: Sequence[int]) -> tuple[bool, float, int]:
    """Feasible within the shift? Travel (with the way home) and late stops of a route."""
    t = p.techs[v]
    now, here, travel, late = t.shift_start_min, v, 0.0, 0
    for ji in seq:
        n = p.node(ji)
        now += p.travel[here, n]
        travel += p.travel[here, n]
        due = p.jobs[ji].due_min
        late += due is not None and now > due
        now += p.jobs[ji].duration_min
        here = n
    travel += p.travel[here, v]
    return now + p.travel[here, v] <= t.shift_end_min + 1e-6, travel, late


def _due(job: Job) -> float:
    return job.due_min if job.due_min is not None else math.inf


def _insert_leftovers(p: _Problem, routes: list[list[int]]) -> None:
    """Insert unplaced jobs, most urgent first, where they add the least travel.

    An insertion must keep the technician inside working hours and may not make a
    stop late that was on time.
    """
    placed = {ji for r in routes for ji in r}
    left = sorted(
        (ji for ji in range(len(p.jobs)) if ji not in placed),
        key=lambda i: _due(p.jobs[i]),
    )
    state = [_route_ok(p, v, r) for v, r in enumerate(routes)]
    for ji in left:
        best: tuple[float, int, int] | None = None
        for v in p.allowed[ji]:
            if not p.reachable(v, ji):
                continue
            _, travel0, late0 = state[v]
            for pos in range(len(routes[v]) + 1):
                cand = [*routes[v][:pos], ji, *routes[v][pos:]]
                ok, travel, late = _route_ok(p, v, cand)
                own_late = p.jobs[ji].due_min is not None and late > late0
                if (
                    ok
                    and late - late0 <= int(own_late)
                    and (best is None or travel - travel0 < best[0])
                ):
                    best = (travel - travel0, v, pos)
        if best is not None:
            _, v, pos = best
            routes[v].insert(pos, ji)
            state[v] = _route_ok(p, v, routes[v])


def _solve(
    p: _Problem, vehicles: Sequence[int], job_ids: Sequence[int], time_limit_s: float
) -> list[list[int]]:
    """Solve the sub-problem of ``vehicles`` and ``job_ids``; return routes of job indices."""
    if not job_ids or not vehicles:
        return [[] for _ in vehicles]
    nv = len(vehicles)
    nodes = [*vehicles, *(p.node(ji) for ji in job_ids)]
    travel_s = np.rint(p.travel[np.ix_(nodes, nodes)] * 60.0).astype(np.int64)
    service_s = np.zeros(len(nodes), dtype=np.int64)
    service_s[nv:] = [round(p.jobs[ji].duration_min * 60) for ji in job_ids]
    manager = pywrapcp.RoutingIndexManager(len(nodes), nv, list(range(nv)), list(range(nv)))
    routing = pywrapcp.RoutingModel(manager)
    cost_idx = routing.RegisterTransitMatrix(travel_s.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(cost_idx)
    time_idx = routing.RegisterTransitMatrix((travel_s + service_s[:, None]).tolist())
    horizon_s = int(max(p.horizon, max(p.techs[v].shift_end_min for v in vehicles)) * 60)
    routing.AddDimension(time_idx, horizon_s, horizon_s, False, "time")
    dim = routing.GetDimensionOrDie("time")
    for k, v in enumerate(vehicles):
        t = p.techs[v]
        lo, hi = int(t.shift_start_min * 60), int(t.shift_end_min * 60)
        dim.CumulVar(routing.Start(k)).SetRange(lo, hi)
        dim.CumulVar(routing.End(k)).SetRange(lo, hi)
        routing.AddVariableMinimizedByFinalizer(dim.CumulVar(routing.End(k)))
    local = {v: k for k, v in enumerate(vehicles)}
    for pos, ji in enumerate(job_ids):
        job = p.jobs[ji]
        index = manager.NodeToIndex(nv + pos)
        allowed = [local[v] for v in p.allowed[ji] if v in local and p.reachable(v, ji)]
        routing.AddDisjunction([index], DROP_PENALTY.get(job.priority, 1_000_000))
        if not allowed:
            routing.solver().Add(routing.ActiveVar(index) == 0)
            continue
        # -1: unperformed (the disjunction). SetAllowedVehiclesForIndex's Python binding
        # rejects lists in OR-Tools 9.15, so restrict the vehicle variable directly.
        routing.VehicleVar(index).SetValues([-1, *allowed])
        if job.due_min is not None:
            due_s = max(0, int(job.due_min * 60))
            dim.SetCumulVarSoftUpperBound(index, due_s, LATE_PENALTY.get(job.priority, 20))

    params = pywrapcp.DefaultRoutingSearchParameters()
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    params.time_limit.FromMilliseconds(max(50, int(time_limit_s * 1000)))
    routing.CloseModelWithParameters(params)
    sub = _Problem.__new__(_Problem)
    sub.techs = [p.techs[v] for v in vehicles]
    sub.jobs = [p.jobs[ji] for ji in job_ids]
    sub.travel = p.travel[np.ix_(nodes, nodes)]
    sub.nt = nv
    sub.horizon = p.horizon
    sub.allowed = [[local[v] for v in p.allowed[ji] if v in local] for ji in job_ids]
    start = [[nv + j for j in r] for r in _greedy_routes(sub)]
    initial = routing.ReadAssignmentFromRoutes(start, True)
    solution = (
        routing.SolveFromAssignmentWithParameters(initial, params)
        if initial is not None
        else routing.SolveWithParameters(params)
    )
    if solution is None:
        return [[job_ids[n - nv] for n in r] for r in start]
    out: list[list[int]] = []
    for k in range(nv):
        seq = []
        index = solution.Value(routing.NextVar(routing.Start(k)))
        while not routing.IsEnd(index):
            seq.append(job_ids[manager.IndexToNode(index) - nv])
            index = solution.Value(routing.NextVar(index))
        out.append(seq)
    return out
