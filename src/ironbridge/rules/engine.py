"""The rule engine: evaluates every (asset, rule) binding over columnar point batches.

Points are expanded to the bindings that read their series (a CSR index from series id
to (binding, input slot)), sorted once by (rule, binding, time), and each rule then
evaluates its slice with numpy: threshold with hysteresis as a forward-filled state
scan, rate of change as a shifted difference, expressions and geofences over
forward-filled inputs. Only changes of the condition are visited in Python, so the
cost per point is a few vector operations whatever the number of rules.

The engine is pure (no I/O): the clock is passed in, the state is exported with
:meth:`RuleEngine.snapshot` and imported with :meth:`RuleEngine.restore`.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from ironbridge.model import Event
from ironbridge.rules.definitions import Rule, RuleKind, expression_of
from ironbridge.store.points import PointBatch

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
US = 1_000_000
MAX_SLOTS = 8
_OPCODE = {">": 0, ">=": 1, "<": 2, "<=": 3}
_DTC = re.compile(r"SPN\s*(\d+)\D+FMI\s*(\d+)", re.IGNORECASE)


class Transition(NamedTuple):
    """The debounced condition of one (asset, rule) became active or normal at ``ts_us``."""

    asset_id: str
    rule_id: str
    ts_us: int
    active: bool
    value: float | None


@dataclass(frozen=True, slots=True)
class SeriesInfo:
    """What the engine needs to know about a series."""

    series_id: int
    asset_id: str
    asset_type: str
    measurement: str
    tenant_path: str = ""


class RuleEngine:
    """Per-(asset, rule) state and vectorised evaluation; see the module docstring."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._rule_index: dict[str, int] = {}
        self._assets: dict[str, tuple[str, str, dict[str, int]]] = {}
        self._keys: list[tuple[str, str]] = []
        self._binding: dict[tuple[str, str], int] = {}
        self._entries: list[tuple[int, int, int]] = []  # (series, binding, slot)
        self._restored: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._dirty = True
        self._csr_keys: I64 = np.empty(0, np.int64)
        self._csr_off: I64 = np.zeros(1, np.int64)
        self._csr_b: I64 = np.empty(0, np.int64)
        self._csr_slot: I64 = np.empty(0, np.int64)
        self._alloc(0)
        self.points_evaluated = 0

    # -- bindings ----------------------------------------------------------------------
    def _alloc(self, n: int) -> None:
        self.b_rule = np.zeros(n, np.int64)
        self.raw = np.zeros(n, np.bool_)
        self.active = np.zeros(n, np.bool_)
        self.raw_since = np.zeros(n, np.int64)
        self.last_ts = np.zeros(n, np.int64)
        self.last_seen = np.zeros(n, np.int64)
        self.last_vals = np.full((n, MAX_SLOTS), np.nan)
        self.p_limit = np.zeros(n, np.float64)
        self.p_band = np.zeros(n, np.float64)
        self.p_op = np.zeros(n, np.int64)

    def _grow(self, n: int) -> None:
        old = len(self.raw)
        if n <= old:
            return
        cap = max(n, old * 2, 64)
        for name in (
            "b_rule",
            "raw",
            "active",
            "raw_since",
            "last_ts",
            "last_seen",
            "p_limit",
            "p_band",
            "p_op",
            "last_vals",
        ):
            arr = getattr(self, name)
            shape = (cap, MAX_SLOTS) if arr.ndim == 2 else (cap,)
            new = np.full(shape, np.nan) if name == "last_vals" else np.zeros(shape, arr.dtype)
            new[:old] = arr
            setattr(self, name, new)

    def set_rules(self, rules: Sequence[Rule], now_us: int) -> None:
        """Replace the rule set; bindings of unchanged (asset, rule) keep their state."""
        old = self.snapshot()
        self._restored = {**self._restored, **dict(_items(old))}
        self._rules = list(rules)
        self._rule_index = {r.id: i for i, r in enumerate(self._rules)}
        self._keys, self._binding, self._entries = [], {}, []
        self._alloc(0)
        for asset_id in list(self._assets):
            self._bind_asset(asset_id, now_us)
        self._dirty = True

    def add_series(self, infos: Iterable[SeriesInfo], now_us: int) -> None:
        """Make series known (their asset and measurement) and bind the rules to them."""
        touched: set[str] = set()
        for s in infos:
            _, _, by_name = self._assets.setdefault(s.asset_id, (s.asset_type, s.tenant_path, {}))
            if s.measurement:
                by_name[s.measurement] = s.series_id
            touched.add(s.asset_id)
        for asset_id in touched:
            self._bind_asset(asset_id, now_us)
        self._dirty = True

    def known_series(self) -> set[int]:
        """Series ids the engine has been told about."""
        return {sid for _, _, m in self._assets.values() for sid in m.values()}

    def knows_asset(self, asset_id: str) -> bool:
        """True if the asset was made known through :meth:`add_series`."""
        return asset_id in self._assets

    def _bind_asset(self, asset_id: str, now_us: int) -> None:
        type_name, path, series = self._assets[asset_id]
        have = {(s, b, sl) for s, b, sl in self._entries}
        for ri, rule in enumerate(self._rules):
            if not path.startswith(rule.tenant_path) or not rule.applies_to(asset_id, type_name):
                continue
            key = (asset_id, rule.id)
            b = self._binding.get(key)
            if b is None:
                b = len(self._keys)
                self._keys.append(key)
                self._binding[key] = b
                self._grow(b + 1)
                self._init_binding(b, ri, rule, asset_id, now_us)
            inputs = rule.inputs
            if rule.kind is RuleKind.NO_DATA and not inputs:
                wanted = [(sid, 0) for sid in series.values()]
            else:
                wanted = [(series[m], j) for j, m in enumerate(inputs) if m in series]
            for sid, slot in wanted:
                if (sid, b, slot) not in have:
                    self._entries.append((sid, b, slot))
                    have.add((sid, b, slot))

    def _init_binding(self, b: int, ri: int, rule: Rule, asset_id: str, now_us: int) -> None:
        p = rule.params_for(asset_id)
        self.b_rule[b] = ri
        self.p_limit[b] = float(p.get("limit", p.get("limit_per_s", p.get("timeout_s", 0.0))))
        if rule.kind is RuleKind.FAULT_CODE:
            self.p_limit[b] = float(p["clear_after_s"])
        self.p_band[b] = float(p.get("deadband", 0.0))
        self.p_op[b] = _OPCODE.get(str(p.get("op", ">")), 0)
        self.last_seen[b] = now_us
        st = self._restored.pop((asset_id, rule.id), None)
        if st is not None:
            self.raw[b], self.active[b] = bool(st["raw"]), bool(st["active"])
            self.raw_since[b], self.last_ts[b] = int(st["raw_since"]), int(st["last_ts"])
            self.last_seen[b] = int(st["last_seen"])
            vals = [math.nan if v is None else float(v) for v in st["last_vals"]][:MAX_SLOTS]
            self.last_vals[b, : len(vals)] = vals

    def _index(self) -> None:
        if not self._dirty:
            return
        ent = np.array(self._entries, dtype=np.int64).reshape(-1, 3)
        order = np.lexsort((ent[:, 2], ent[:, 1], ent[:, 0]))
        ent = ent[order]
        keys, starts = np.unique(ent[:, 0], return_index=True)
        self._csr_keys = keys.astype(np.int64)
        self._csr_off = np.append(starts, len(ent)).astype(np.int64)
        self._csr_b, self._csr_slot = ent[:, 1].copy(), ent[:, 2].copy()
        self._dirty = False

    # -- evaluation --------------------------------------------------------------------
    def process(self, batch: PointBatch, now_us: int) -> list[Transition]:
        """Evaluate a batch of points (any order); return the condition changes."""
        self._index()
        n = len(batch)
        if n == 0 or len(self._csr_keys) == 0:
            return []
        pos = np.searchsorted(self._csr_keys, batch.series)
        pos_c = np.minimum(pos, len(self._csr_keys) - 1)
        hit = self._csr_keys[pos_c] == batch.series
        counts = np.where(hit, self._csr_off[pos_c + 1] - self._csr_off[pos_c], 0)
        total = int(counts.sum())
        if total == 0:
            return []
        rep = np.repeat(np.arange(n), counts)
        within = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        e = self._csr_off[pos_c][rep] + within
        b, slot = self._csr_b[e], self._csr_slot[e]
        ts, v = batch.ts[rep], batch.value[rep]
        rule = self.b_rule[b]
        order = np.lexsort((ts, b, rule))
        b, slot, ts, v, rule = b[order], slot[order], ts[order], v[order], rule[order]
        self.last_seen[b] = now_us
        self.points_evaluated += n
        out: list[Transition] = []
        cuts = np.flatnonzero(np.diff(rule)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(rule)], strict=True):
            ri = int(rule[lo])
            self._evaluate(self._rules[ri], b[lo:hi], slot[lo:hi], ts[lo:hi], v[lo:hi], out)
        return out

    def _evaluate(
        self, rule: Rule, b: I64, slot: I64, ts: I64, v: F64, out: list[Transition]
    ) -> None:
        first = np.r_[True, b[1:] != b[:-1]]
        last = np.r_[b[1:] != b[:-1], True]
        kind = rule.kind
        value: F64 = v
        if kind is RuleKind.THRESHOLD:
            cond = self._threshold(b, v, first)
        elif kind is RuleKind.RATE_OF_CHANGE:
            cond = self._rate(rule, b, ts, v, first, last)
        elif kind is RuleKind.NO_DATA:
            cond = np.zeros(len(b), np.bool_)
        elif kind in (RuleKind.EXPRESSION, RuleKind.GEOFENCE):
            b, ts, cond, value = self._joined(rule, b, slot, ts, v, first)
            first = np.r_[True, b[1:] != b[:-1]]
            last = np.r_[b[1:] != b[:-1], True]
        else:
            return
        self._settle(rule, b, ts, cond, value, first, last, out)

    def _threshold(self, b: I64, v: F64, first: B) -> B:
        lim, band, op = self.p_limit[b], self.p_band[b], self.p_op[b]
        above = op < 2
        strict = (op == 0) | (op == 2)
        with np.errstate(invalid="ignore"):
            set_hi = np.where(strict, v > lim, v >= lim)
            set_lo = np.where(strict, v < lim, v <= lim)
            on = np.where(above, set_hi, set_lo)
            off = np.where(above, v <= lim - band, v >= lim + band) & ~on
            if not band.any():
                off = ~on & ~np.isnan(v)
        ev = np.where(on, 1, np.where(off, 0, -1))
        return _ffill_state(ev, first, self.raw[b])

    def _rate(self, rule: Rule, b: I64, ts: I64, v: F64, first: B, last: B) -> B:
        pv = np.r_[np.nan, v[:-1]]
        pts = np.r_[0, ts[:-1]]
        pv[first] = self.last_vals[b[first], 0]
        pts[first] = self.last_ts[b[first]]
        dt = (ts - pts) / US
        with np.errstate(all="ignore"):
            rate = np.where(dt > 0, (v - pv) / dt, np.nan)
            lim = self.p_limit[b]
            direction = str(rule.params["direction"])
            if direction == "rise":
                cond = rate > lim
            elif direction == "fall":
                cond = rate < -lim
            else:
                cond = np.abs(rate) > lim
        self.last_vals[b[last], 0] = v[last]
        self.last_ts[b[last]] = ts[last]
        return np.asarray(cond, np.bool_)

    def _joined(
        self, rule: Rule, b: I64, slot: I64, ts: I64, v: F64, first: B
    ) -> tuple[I64, I64, B, F64]:
        idx = np.arange(len(b))
        gstart = np.maximum.accumulate(np.where(first, idx, 0))
        last = np.r_[b[1:] != b[:-1], True]
        cols: list[F64] = []
        for j in range(len(rule.inputs)):
            at = np.maximum.accumulate(np.where(slot == j, idx, -1))
            ok = at >= gstart
            col = np.where(ok, v[np.maximum(at, 0)], self.last_vals[b, j])
            self.last_vals[b[last], j] = col[last]
            cols.append(col)
        keep = np.r_[(b[1:] != b[:-1]) | (ts[1:] != ts[:-1]), True]
        b, ts = b[keep], ts[keep]
        cols = [c[keep] for c in cols]
        if rule.kind is RuleKind.EXPRESSION:
            expr = expression_of(rule)
            cond = expr.evaluate(dict(zip(rule.inputs, cols, strict=True)))
            return b, ts, cond, cols[0]
        lat, lon = cols
        cond = np.zeros(len(b), np.bool_)
        polys: dict[tuple[tuple[float, float], ...], list[int]] = {}
        for i, bb in enumerate(np.unique(b)):
            asset_id = self._keys[int(bb)][0]
            poly = tuple(tuple(p) for p in rule.params_for(asset_id)["polygon"])
            polys.setdefault(poly, []).append(int(bb))
            del i
        known = ~(np.isnan(lat) | np.isnan(lon))
        for poly, members in polys.items():
            sel = np.isin(b, members)
            inside = point_in_polygon(lon[sel], lat[sel], np.asarray(poly, np.float64))
            hit = ~inside if rule.params["trigger"] == "outside" else inside
            cond[sel] = hit & known[sel]
        return b, ts, cond, np.full(len(b), np.nan)

    def _settle(
        self,
        rule: Rule,
        b: I64,
        ts: I64,
        cond: B,
        value: F64,
        first: B,
        last: B,
        out: list[Transition],
    ) -> None:
        prev = np.r_[False, cond[:-1]]
        prev[first] = self.raw[b[first]]
        changes = np.flatnonzero(cond != prev)
        rid = rule.id
        keys = self._keys
        if rule.on_delay_s == 0 and rule.off_delay_s == 0:
            for i in changes.tolist():
                bb = int(b[i])
                c = bool(cond[i])
                self.raw_since[bb] = ts[i]
                if c != self.active[bb]:
                    self.active[bb] = c
                    out.append(Transition(keys[bb][0], rid, int(ts[i]), c, _num(value[i])))
            self.raw[b[last]] = cond[last]
            self.last_ts[b[last]] = ts[last]
            return
        on_us, off_us = int(rule.on_delay_s * US), int(rule.off_delay_s * US)
        for i in changes.tolist():
            bb = int(b[i])
            self._close_run(bb, rid, int(ts[i]), on_us, off_us, out)
            self.raw[bb] = bool(cond[i])
            self.raw_since[bb] = ts[i]
        for i in np.flatnonzero(last).tolist():
            bb = int(b[i])
            self.last_ts[bb] = ts[i]
            self._close_run(bb, rid, int(ts[i]), on_us, off_us, out, open_run=True)

    def _close_run(
        self,
        bb: int,
        rid: str,
        until_us: int,
        on_us: int,
        off_us: int,
        out: list[Transition],
        *,
        open_run: bool = False,
    ) -> None:
        """Apply the delays to the run that started at ``raw_since`` and lasted to ``until_us``."""
        since = int(self.raw_since[bb])
        held = until_us - since
        raw, active = bool(self.raw[bb]), bool(self.active[bb])
        del open_run
        if raw and not active and held >= on_us:
            self.active[bb] = True
            out.append(Transition(self._keys[bb][0], rid, since + on_us, True, None))
        elif not raw and active and held >= off_us:
            self.active[bb] = False
            out.append(Transition(self._keys[bb][0], rid, since + off_us, False, None))

    # -- events and timers -------------------------------------------------------------
    def on_events(self, events: Sequence[Event], now_us: int) -> list[Transition]:
        """Evaluate fault-code rules on events (J1939 DTCs, GB/T 32960 alarm flags)."""
        out: list[Transition] = []
        for ev in events:
            for ri, rule in enumerate(self._rules):
                if rule.kind is not RuleKind.FAULT_CODE:
                    continue
                bb = self._binding.get((ev.asset_id, rule.id))
                if bb is None:
                    continue
                if not _matches(rule.params_for(ev.asset_id), ev):
                    continue
                del ri
                active = ev.payload.get("active", True) is not False
                self.last_seen[bb] = now_us
                self.last_ts[bb] = ev.ts_us
                if active != bool(self.active[bb]):
                    self.raw[bb] = self.active[bb] = active
                    self.raw_since[bb] = ev.ts_us
                    out.append(Transition(ev.asset_id, rule.id, ev.ts_us, active, None))
        return out

    def tick(self, now_us: int) -> list[Transition]:
        """Fire what time alone decides: on/off delays, no-data timeouts, fault clearing."""
        out: list[Transition] = []
        n = len(self._keys)
        if n == 0:
            return out
        rules = self._rules
        kinds = np.array([rules[int(r)].kind is RuleKind.NO_DATA for r in self.b_rule[:n]])
        faults = np.array([rules[int(r)].kind is RuleKind.FAULT_CODE for r in self.b_rule[:n]])
        on = np.array([rules[int(r)].on_delay_s for r in self.b_rule[:n]]) * US
        off = np.array([rules[int(r)].off_delay_s for r in self.b_rule[:n]]) * US
        raw, active = self.raw[:n], self.active[:n]
        since, seen, lim = self.raw_since[:n], self.last_seen[:n], self.p_limit[:n] * US
        stale = kinds & ~raw & (now_us - seen > lim)
        for bb in np.flatnonzero(stale).tolist():
            self.raw[bb] = True
            self.raw_since[bb] = int(seen[bb] + lim[bb])
        cleared = faults & active & (now_us - seen > lim)
        for bb in np.flatnonzero(cleared).tolist():
            self.raw[bb] = self.active[bb] = False
            self.raw_since[bb] = now_us
            out.append(Transition(self._keys[bb][0], self._keys[bb][1], now_us, False, None))
        raw = self.raw[:n]
        due_on = ~faults & raw & ~active & (now_us >= since + on)
        due_off = ~faults & ~raw & active & (now_us >= since + off) & ~kinds
        for bb in np.flatnonzero(due_on).tolist():
            self.active[bb] = True
            at = int(self.raw_since[bb] + on[bb])
            out.append(Transition(self._keys[bb][0], self._keys[bb][1], at, True, None))
        for bb in np.flatnonzero(due_off).tolist():
            self.active[bb] = False
            at = int(self.raw_since[bb] + off[bb])
            out.append(Transition(self._keys[bb][0], self._keys[bb][1], at, False, None))
        return out

    # -- state -------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The per-binding state, JSON-serialisable (see :meth:`restore`)."""
        n = len(self._keys)
        return {
            "keys": [list(k) for k in self._keys],
            "raw": self.raw[:n].tolist(),
            "active": self.active[:n].tolist(),
            "raw_since": self.raw_since[:n].tolist(),
            "last_ts": self.last_ts[:n].tolist(),
            "last_seen": self.last_seen[:n].tolist(),
            "last_vals": [
                [None if math.isnan(x) else x for x in row] for row in self.last_vals[:n].tolist()
            ],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Load a snapshot; its state is applied as bindings are (re)created."""
        self._restored.update(dict(_items(snap)))
        for key, st in list(self._restored.items()):
            b = self._binding.get(key)
            if b is not None:
                ri = int(self.b_rule[b])
                self._init_binding(b, ri, self._rules[ri], key[0], int(st["last_seen"]))

    def active_keys(self) -> set[tuple[str, str]]:
        """(asset, rule) pairs whose debounced condition is active."""
        return {self._keys[i] for i in np.flatnonzero(self.active[: len(self._keys)]).tolist()}

    @property
    def bindings(self) -> int:
        """How many (asset, rule) pairs are watched."""
        return len(self._keys)


def _items(snap: Mapping[str, Any]) -> Iterable[tuple[tuple[str, str], dict[str, Any]]]:
    cols = ("raw", "active", "raw_since", "last_ts", "last_seen", "last_vals")
    for i, key in enumerate(snap.get("keys", [])):
        yield (str(key[0]), str(key[1])), {c: snap[c][i] for c in cols}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


def _ffill_state(ev: npt.NDArray[np.int64], first: B, init: B) -> B:
    """Forward-fill set(1)/reset(0)/hold(-1) events per group, starting from ``init``."""
    idx = np.arange(len(ev))
    gstart = np.maximum.accumulate(np.where(first, idx, 0))
    at = np.maximum.accumulate(np.where(ev >= 0, idx, -1))
    return np.where(at >= gstart, ev[np.maximum(at, 0)] == 1, init)


def point_in_polygon(x: F64, y: F64, poly: F64) -> B:
    """Even-odd ray casting of many points against one polygon (``poly`` is (n, 2) x, y)."""
    inside = np.zeros(len(x), np.bool_)
    n = len(poly)
    for i in range(n):
        x1, y1 = poly[i]
        x2, y2 = poly[(i + 1) % n]
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xcross = (x2 - x1) * (y - y1) / (y2 - y1) + x1
        inside ^= crosses & (x < xcross)
    return inside


def _matches(p: Mapping[str, Any], ev: Event) -> bool:
    kind = str(p.get("event_kind", "dtc"))
    if kind != "*" and ev.kind != kind:
        return False
    if "code" in p and not fnmatch.fnmatchcase(ev.code, str(p["code"])):
        return False
    if "spn" in p:
        spn, fmi = ev.payload.get("spn"), ev.payload.get("fmi")
        if spn is None:
            m = _DTC.search(ev.code)
            if m is None:
                return False
            spn, fmi = int(m.group(1)), int(m.group(2))
        if int(spn) != int(p["spn"]):
            return False
        if "fmi" in p and (fmi is None or int(fmi) not in p["fmi"]):
            return False
    return True
