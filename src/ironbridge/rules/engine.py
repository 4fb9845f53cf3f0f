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
    #: what the alarm should say, when it depends on the occurrence (default: the rule's)
    message: str | None = None


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
        self._have: set[tuple[int, int, int]] = set()
        self._known: frozenset[int] = frozenset()
        self._known_mask: B = np.zeros(0, np.bool_)  # by series id (ids are small, dense)
        self._polys: dict[tuple[tuple[float, float], ...], int] = {}
        self._poly_arrays: list[F64] = []
        self._restored: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._dirty = True
        self._csr_keys: I64 = np.empty(0, np.int64)
        self._csr_off: I64 = np.zeros(1, np.int64)
        self._csr_b: I64 = np.empty(0, np.int64)
        self._csr_slot: I64 = np.empty(0, np.int64)
        self._rank: npt.NDArray[np.integer[Any]] = np.empty(0, np.uint16)
        self._lut_start: I64 | None = None
        self._lut_count: I64 | None = None
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
        self.no_data = np.zeros(n, np.bool_)
        self.b_poly = np.zeros(n, np.int64)

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
            "no_data",
            "b_poly",
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
        # SPC rules are evaluated on charts (ironbridge.rules.spc), not point by point.
        self._rules = [r for r in rules if r.kind is not RuleKind.SPC]
        self._rule_index = {r.id: i for i, r in enumerate(self._rules)}
        self._keys, self._binding, self._entries = [], {}, []
        self._have, self._polys, self._poly_arrays = set(), {}, []
        self._alloc(0)
        for asset_id in list(self._assets):
            self._bind_asset(asset_id, now_us)
        self._dirty = True

    def add_series(self, infos: Iterable[SeriesInfo], now_us: int) -> None:
        """Make series known (their asset and measurement) and bind the rules to them."""
        touched: set[str] = set()
        new: set[int] = set()
        for s in infos:
            _, _, by_name = self._assets.setdefault(s.asset_id, (s.asset_type, s.tenant_path, {}))
            if s.measurement:
                by_name[s.measurement] = s.series_id
                new.add(s.series_id)
            touched.add(s.asset_id)
        self._known = self._known | new
        ids = np.array([i for i in new if i >= 0], np.int64)
        if len(ids):
            top = int(ids.max()) + 1
            if top > len(self._known_mask):
                mask = np.zeros(max(top, 2 * len(self._known_mask)), np.bool_)
                mask[: len(self._known_mask)] = self._known_mask
                self._known_mask = mask
            self._known_mask[ids] = True
        for asset_id in touched:
            self._bind_asset(asset_id, now_us)
        self._dirty = True

    def unknown_series(self, series: I64) -> list[int]:
        """The distinct ids in ``series`` the engine has not been told about."""
        mask = self._known_mask
        inside = (series >= 0) & (series < len(mask))
        known = np.zeros(len(series), np.bool_)
        known[inside] = mask[series[inside]]
        if known.all():
            return []
        return [int(x) for x in np.unique(series[~known]).tolist()]

    def known_series(self) -> frozenset[int]:
        """Series ids the engine has been told about (kept, not rebuilt per batch)."""
        return self._known

    def knows_asset(self, asset_id: str) -> bool:
        """True if the asset was made known through :meth:`add_series`."""
        return asset_id in self._assets

    def _bind_asset(self, asset_id: str, now_us: int) -> None:
        type_name, path, series = self._assets[asset_id]
        have = self._have
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
        self.no_data[b] = rule.kind is RuleKind.NO_DATA
        if rule.kind is RuleKind.GEOFENCE:
            poly = tuple((float(x), float(y)) for x, y in p["polygon"])
            gid = self._polys.get(poly)
            if gid is None:
                gid = self._polys[poly] = len(self._poly_arrays)
                self._poly_arrays.append(np.asarray(poly, np.float64))
            self.b_poly[b] = gid
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
        # series ids are small dense integers: a direct table beats a binary search
        self._lut_start = self._lut_count = None
        if len(keys) and keys[0] >= 0 and keys[-1] < 1 << 24:
            self._lut_start = np.zeros(int(keys[-1]) + 1, np.int64)
            self._lut_count = np.zeros(int(keys[-1]) + 1, np.int64)
            self._lut_start[keys] = starts
            self._lut_count[keys] = np.diff(self._csr_off)
        # rank of each binding in (rule, binding) order: one stable integer sort of the
        # rows by rank groups them by rule and binding and keeps time order (radix sort
        # while the ranks fit 16 bits)
        nb = len(self._keys)
        order_b = np.lexsort((np.arange(nb), self.b_rule[:nb]))
        rank = np.empty(nb, np.int64)
        rank[order_b] = np.arange(nb)
        self._rank = rank.astype(np.uint16) if nb <= 0xFFFF else rank
        self._dirty = False

    # -- evaluation --------------------------------------------------------------------
    def process(self, batch: PointBatch, now_us: int) -> list[Transition]:
        """Evaluate a batch of points (any order); return the condition changes."""
        self._index()
        n = len(batch)
        if n == 0 or len(self._csr_keys) == 0:
            return []
        start, counts = self._lookup(batch.series)
        total = int(counts.sum())
        if total == 0:
            return []
        # row r of point i is entry start[i] + (r - first row of i)
        rep = np.repeat(np.arange(n), counts)
        e = np.repeat(start - (np.cumsum(counts) - counts), counts) + np.arange(total)
        b = self._csr_b[e]
        self.last_seen[b] = now_us
        self.points_evaluated += n
        # a no-data binding only needs its last-seen time, unless it is in the no-data
        # condition and this reading ends it
        keep = ~self.no_data[b] | self.raw[b]
        if not keep.all():
            e, b, rep = e[keep], b[keep], rep[keep]
        slot, ts, v = self._csr_slot[e], batch.ts[rep], batch.value[rep]
        key = self._rank[b]
        if len(ts) < 2 or bool((ts[1:] >= ts[:-1]).all()):
            order = np.argsort(key, kind="stable")
        else:
            order = np.lexsort((ts, key))
        b, slot, ts, v = b[order], slot[order], ts[order], v[order]
        rule = self.b_rule[b]
        out: list[Transition] = []
        if len(rule) == 0:
            return out
        cuts = np.flatnonzero(np.diff(rule)) + 1
        for lo, hi in zip(_cat([0], cuts), _cat(cuts, [len(rule)]), strict=True):
            ri = int(rule[lo])
            self._evaluate(self._rules[ri], b[lo:hi], slot[lo:hi], ts[lo:hi], v[lo:hi], out)
        return out

    def _lookup(self, series: I64) -> tuple[I64, I64]:
        """Each point's first CSR entry and how many bindings read its series."""
        lut_start, lut_count = self._lut_start, self._lut_count
        if lut_start is not None and lut_count is not None:
            m = len(lut_start)
            if int(series.min()) >= 0 and int(series.max()) < m:
                return lut_start[series], lut_count[series]
            ok = (series >= 0) & (series < m)
            sc = np.where(ok, series, 0)
            return lut_start[sc], np.where(ok, lut_count[sc], 0)
        pos = np.searchsorted(self._csr_keys, series)
        pos_c = np.minimum(pos, len(self._csr_keys) - 1)
        hit = self._csr_keys[pos_c] == series
        start = self._csr_off[pos_c]
        return start, np.where(hit, self._csr_off[pos_c + 1] - start, 0)

    def _evaluate(
        self, rule: Rule, b: I64, slot: I64, ts: I64, v: F64, out: list[Transition]
    ) -> None:
        first = _starts(b)
        last = _ends(b)
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
            first = _starts(b)
            last = _ends(b)
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
        pv = _shift(v, np.nan)
        pts = _shift(ts, 0)
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
        last = _ends(b)
        cols: list[F64] = []
        for j in range(len(rule.inputs)):
            at = np.maximum.accumulate(np.where(slot == j, idx, -1))
            ok = at >= gstart
            col = np.where(ok, v[np.maximum(at, 0)], self.last_vals[b, j])
            self.last_vals[b[last], j] = col[last]
            cols.append(col)
        keep = _ends(b) | _ends(ts)
        b, ts = b[keep], ts[keep]
        cols = [c[keep] for c in cols]
        if rule.kind is RuleKind.EXPRESSION:
            expr = expression_of(rule)
            cond = expr.evaluate(dict(zip(rule.inputs, cols, strict=True)))
            return b, ts, cond, cols[0]
        lat, lon = cols
        cond = np.zeros(len(b), np.bool_)
        known = ~(np.isnan(lat) | np.isnan(lon))
        outside = rule.params["trigger"] == "outside"
        gid = self.b_poly[b]
        groups = np.unique(gid)
        for g in groups.tolist():
            sel = slice(None) if len(groups) == 1 else gid == g
            inside = point_in_polygon(lon[sel], lat[sel], self._poly_arrays[g])
            cond[sel] = (~inside if outside else inside) & known[sel]
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
        prev = _shift(cond, False)
        prev[first] = self.raw[b[first]]
        ch = np.flatnonzero(cond != prev)
        chb = b[ch]
        ch_first = _starts(chb)
        li = np.flatnonzero(last)
        lb = b[li]
        rid = rule.id
        keys = self._keys
        if rule.on_delay_s == 0 and rule.off_delay_s == 0:
            # without delays the alarm condition follows the raw condition at each change
            c = cond[ch]
            before = _shift(c, False)
            before[ch_first] = self.active[chb[ch_first]]
            for i in np.flatnonzero(c != before).tolist():
                j = int(ch[i])
                bb = int(b[j])
                out.append(Transition(keys[bb][0], rid, int(ts[j]), bool(c[i]), _num(value[j])))
            ch_last = _ends(chb)
            self.raw_since[chb[ch_last]] = ts[ch][ch_last]
            self.active[chb[ch_last]] = c[ch_last]
            self.raw[lb] = cond[li]
            self.last_ts[lb] = ts[li]
            return
        # with delays: every change closes the run before it, and the open run at each
        # binding's last row is checked too; a run that held long enough sets (raw) or
        # resets (normal) the alarm condition, forward-filled per binding
        on_us, off_us = int(rule.on_delay_s * US), int(rule.off_delay_s * US)
        ch_ts = ts[ch]
        ch_since = _shift(ch_ts, 0)
        ch_since[ch_first] = self.raw_since[chb[ch_first]]
        k = np.searchsorted(ch, li, side="right") - 1
        kc = np.maximum(k, 0)
        has = (k >= 0) & (chb[kc] == lb) if len(ch) else np.zeros(len(li), np.bool_)
        l_since = np.where(has, ch_ts[kc] if len(ch) else 0, self.raw_since[lb])
        pos = _cat(ch * 2, li * 2 + 1)
        order = np.argsort(pos, kind="stable")
        eb = _cat(chb, lb)[order]
        eraw = _cat(prev[ch], cond[li])[order]
        esince = _cat(ch_since, l_since)[order]
        held = _cat(ch_ts, ts[li])[order] - esince
        ev = np.where(eraw & (held >= on_us), 1, np.where(~eraw & (held >= off_us), 0, -1))
        efirst = _starts(eb)
        act = _ffill_state(ev, efirst, self.active[eb])
        act_prev = _shift(act, False)
        act_prev[efirst] = self.active[eb[efirst]]
        for i in np.flatnonzero(act != act_prev).tolist():
            a = bool(act[i])
            at = int(esince[i]) + (on_us if a else off_us)
            out.append(Transition(keys[int(eb[i])][0], rid, at, a, None))
        elast = _ends(eb)
        self.active[eb[elast]] = act[elast]
        self.raw[lb] = cond[li]
        self.raw_since[lb] = l_since
        self.last_ts[lb] = ts[li]

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
                active = _event_active(ev)
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
        br = self.b_rule[:n]
        kinds = np.array([r.kind is RuleKind.NO_DATA for r in rules], np.bool_)[br]
        faults = np.array([r.kind is RuleKind.FAULT_CODE for r in rules], np.bool_)[br]
        on = np.array([r.on_delay_s for r in rules], np.float64)[br] * US
        off = np.array([r.off_delay_s for r in rules], np.float64)[br] * US
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
        slots = max((len(r.inputs) for r in self._rules), default=0)
        floats = self.last_vals[:n, : max(slots, 1)]
        vals = floats.astype(object)
        vals[np.isnan(floats)] = None
        return {
            "keys": [list(k) for k in self._keys],
            "raw": self.raw[:n].tolist(),
            "active": self.active[:n].tolist(),
            "raw_since": self.raw_since[:n].tolist(),
            "last_ts": self.last_ts[:n].tolist(),
            "last_seen": self.last_seen[:n].tolist(),
            # only the slots some rule reads (restore pads the rest with NaN)
            "last_vals": vals.tolist(),
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


def _shift(a: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
    """``a`` moved one place right, ``fill`` first (the previous row's value)."""
    out = np.empty_like(a)
    if len(a):
        out[0] = fill
        out[1:] = a[:-1]
    return out


def _cat(a: Any, b: Any) -> npt.NDArray[Any]:
    return np.concatenate((np.asarray(a), np.asarray(b)))


def _starts(g: npt.NDArray[Any]) -> B:
    """True where a run of equal values begins (empty for an empty array)."""
    out = np.ones(len(g), np.bool_)
    out[1:] = g[1:] != g[:-1]
    return out


def _ends(g: npt.NDArray[Any]) -> B:
    """True where a run of equal values ends (empty for an empty array)."""
    out = np.ones(len(g), np.bool_)
    out[:-1] = g[1:] != g[:-1]
    return out


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


#: an ``event_kind`` that stands for several: ``dtc`` (the JSON fleet's) also matches the
#: DM1 decoder's ``j1939_dtc`` events, so one fault-code rule covers both kinds of device
_KIND_FAMILIES: dict[str, frozenset[str]] = {"dtc": frozenset({"dtc", "j1939_dtc"})}


def _event_active(ev: Event) -> bool:
    """Whether a fault event says the fault is present.

    ``active: false`` (JSON devices) and a DM1 ``state: cleared`` say it went away.
    """
    return ev.payload.get("active", True) is not False and ev.payload.get("state") != "cleared"


def _matches(p: Mapping[str, Any], ev: Event) -> bool:
    kind = str(p.get("event_kind", "dtc"))
    if kind != "*" and ev.kind not in _KIND_FAMILIES.get(kind, frozenset((kind,))):
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
