"""Sparkplug B session rules, pure: seq/bdSeq numbering, aliases, births, gap detection.

:class:`EdgeNodeSession` is the edge node's side (what to put in NBIRTH/NDATA/NDEATH);
:class:`HostTracker` is the host application's side (resolve aliases, detect sequence
gaps and unknown nodes, decide when to ask for a rebirth, honour NDEATH only when its
bdSeq matches the current NBIRTH). Neither does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ironbridge.codec.binary import CodecError
from ironbridge.codec.sparkplug.payload import DataType, Metric, MetricValue, Payload
from ironbridge.codec.sparkplug.topic import MessageType, Topic

__all__ = [
    "BDSEQ",
    "REBIRTH",
    "EdgeNodeSession",
    "HostResult",
    "HostTracker",
    "ResolvedMetric",
    "next_seq",
    "numeric",
    "rebirth_command",
]

BDSEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"


def next_seq(seq: int) -> int:
    """The sequence number after ``seq``: 0..255, wrapping 255 -> 0."""
    return (seq + 1) % 256


def rebirth_command(timestamp_ms: int) -> Payload:
    """The NCMD payload asking an edge node to rebirth."""
    return Payload(
        timestamp=timestamp_ms,
        metrics=(Metric(name=REBIRTH, datatype=DataType.BOOLEAN, value=True),),
    )


@dataclass
class EdgeNodeSession:
    """Numbering state of one edge node (seq, bdSeq, alias table).

    Call :meth:`connect` before every MQTT CONNECT (its return value is the Will
    payload), then :meth:`nbirth`, then data messages.
    """

    group: str
    node: str
    bd_seq: int = -1
    seq: int = 255
    aliases: dict[tuple[str | None, str], tuple[int, int]] = field(default_factory=dict)

    def connect(self) -> Payload:
        """Start a new MQTT session: bump bdSeq (0..255, wrapping) and return the NDEATH."""
        self.bd_seq = next_seq(self.bd_seq)
        return self.ndeath()

    def ndeath(self) -> Payload:
        """The NDEATH payload (no seq, the current bdSeq)."""
        return Payload(metrics=(Metric(name=BDSEQ, datatype=DataType.INT64, value=self.bd_seq),))

    def _next(self) -> int:
        self.seq = next_seq(self.seq)
        return self.seq

    def advance(self) -> int:
        """Take the next sequence number (for a payload encoded elsewhere, e.g. columnar)."""
        return self._next()

    def _alias(self, device: str | None, name: str, datatype: int) -> int:
        key = (device, name)
        if key not in self.aliases:
            self.aliases[key] = (len(self.aliases) + 1, datatype)
        return self.aliases[key][0]

    def _birth_metrics(
        self, device: str | None, metrics: Iterable[tuple[str, int, MetricValue]], ts: int
    ) -> list[Metric]:
        return [
            Metric(
                name=name,
                alias=self._alias(device, name, dt),
                timestamp=ts,
                datatype=dt,
                value=value,
                is_null=value is None,
            )
            for name, dt, value in metrics
        ]

    def nbirth(self, metrics: Iterable[tuple[str, int, MetricValue]], ts: int) -> Payload:
        """NBIRTH: seq restarts at 0, carries bdSeq, Node Control/Rebirth and every metric."""
        if self.bd_seq < 0:
            raise CodecError("connect() before nbirth()", field="bdSeq")
        self.seq = 0
        body = [
            Metric(name=BDSEQ, datatype=DataType.INT64, value=self.bd_seq, timestamp=ts),
            Metric(name=REBIRTH, datatype=DataType.BOOLEAN, value=False, timestamp=ts),
            *self._birth_metrics(None, metrics, ts),
        ]
        return Payload(timestamp=ts, seq=0, metrics=tuple(body))

    def dbirth(
        self, device: str, metrics: Iterable[tuple[str, int, MetricValue]], ts: int
    ) -> Payload:
        """DBIRTH for ``device`` with every metric it will report."""
        body = self._birth_metrics(device, metrics, ts)
        return Payload(timestamp=ts, seq=self._next(), metrics=tuple(body))

    def data(
        self,
        device: str | None,
        values: Iterable[tuple[str, int, MetricValue]],
        *,
        historical: bool = False,
    ) -> Payload:
        """NDATA (device None) or DDATA: alias only, each value (name, ts ms, value).

        Raises:
            CodecError: a metric that was not in the birth.
        """
        out = []
        ts_max = 0
        for name, ts, value in values:
            try:
                alias, dt = self.aliases[(device, name)]
            except KeyError as exc:
                raise CodecError(f"metric {name!r} not in the birth", field="metric") from exc
            out.append(
                Metric(
                    alias=alias,
                    timestamp=ts,
                    datatype=dt,
                    value=value,
                    is_null=value is None,
                    is_historical=historical,
                )
            )
            ts_max = max(ts_max, ts)
        return Payload(timestamp=ts_max, seq=self._next(), metrics=tuple(out))

    def ddeath(self, ts: int) -> Payload:
        """DDEATH payload (has a seq)."""
        return Payload(timestamp=ts, seq=self._next())


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedMetric:
    """A metric value with its alias resolved to a name and datatype."""

    device: str | None
    name: str
    timestamp: int
    datatype: int
    value: MetricValue
    historical: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class HostResult:
    """What the host application should do after one message.

    Attributes:
        metrics: resolved values to store.
        rebirth: a reason to send NCMD Node Control/Rebirth, or None.
        stale: (device or None) keys whose metrics became STALE; None means the node.
        born: (device or None) keys that (re)birthed with this message.
    """

    metrics: tuple[ResolvedMetric, ...] = ()
    rebirth: str | None = None
    stale: tuple[str | None, ...] = ()
    born: tuple[str | None, ...] = ()


@dataclass
class _Node:
    bd_seq: int | None
    seq: int
    online: bool = True
    aliases: dict[int, tuple[str | None, str, int]] = field(default_factory=dict)
    names: dict[tuple[str | None, str], int] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)


def _bdseq(payload: Payload) -> int | None:
    for m in payload.metrics:
        if m.name == BDSEQ and isinstance(m.value, int):
            return m.value
    return None


class HostTracker:
    """Host application state for every edge node seen (keyed by group and node id)."""

    def __init__(self) -> None:
        """Start knowing no node."""
        self._nodes: dict[tuple[str, str], _Node] = {}

    def online(self, group: str, node: str) -> bool:
        """True if the node has a live birth (no matching NDEATH since)."""
        state = self._nodes.get((group, node))
        return state is not None and state.online

    def devices(self, group: str, node: str) -> frozenset[str]:
        """The devices born under a node."""
        state = self._nodes.get((group, node))
        return frozenset(state.devices) if state else frozenset()

    def handle(self, topic: Topic, payload: Payload, now_ms: int) -> HostResult:
        """Apply one message; return the values to store and the actions to take."""
        key = (topic.group, topic.node)
        mtype = topic.type
        if mtype is MessageType.NBIRTH:
            return self._nbirth(key, payload, now_ms)
        state = self._nodes.get(key)
        if mtype is MessageType.NDEATH:
            if state is None or not state.online or _bdseq(payload) != state.bd_seq:
                return HostResult()  # stale NDEATH of an older session: ignore
            state.online = False
            return HostResult(stale=(None, *sorted(state.devices)))
        if mtype in (MessageType.NCMD, MessageType.DCMD, MessageType.STATE):
            return HostResult()
        if state is None or not state.online:
            return HostResult(rebirth=f"{mtype} from a node without a birth")
        gap = None
        if payload.seq is None or payload.seq != next_seq(state.seq):
            gap = f"sequence gap: expected {next_seq(state.seq)}, got {payload.seq}"
        if payload.seq is not None:
            state.seq = payload.seq
        device = topic.device
        if mtype is MessageType.DBIRTH:
            assert device is not None
            self._register(state, device, payload.metrics)
            state.devices.add(device)
            resolved, unknown = self._resolve(state, device, payload, now_ms)
            return HostResult(metrics=resolved, rebirth=gap or unknown, born=(device,))
        if mtype is MessageType.DDEATH:
            assert device is not None
            state.devices.discard(device)
            return HostResult(rebirth=gap, stale=(device,))
        if device is not None and device not in state.devices:
            return HostResult(rebirth=f"DDATA from device {device!r} without a DBIRTH")
        resolved, unknown = self._resolve(state, device, payload, now_ms)
        return HostResult(metrics=resolved, rebirth=gap or unknown)

    def _nbirth(self, key: tuple[str, str], payload: Payload, now_ms: int) -> HostResult:
        state = _Node(bd_seq=_bdseq(payload), seq=payload.seq if payload.seq is not None else 0)
        self._nodes[key] = state
        self._register(state, None, payload.metrics)
        resolved, unknown = self._resolve(state, None, payload, now_ms)
        return HostResult(metrics=resolved, rebirth=unknown, born=(None,))

    @staticmethod
    def _register(state: _Node, device: str | None, metrics: Iterable[Metric]) -> None:
        for m in metrics:
            if m.name is None or m.datatype is None:
                continue
            if m.alias is not None:
                state.aliases[m.alias] = (device, m.name, m.datatype)
            state.names[(device, m.name)] = m.datatype

    @staticmethod
    def _resolve(
        state: _Node, device: str | None, payload: Payload, now_ms: int
    ) -> tuple[tuple[ResolvedMetric, ...], str | None]:
        out: list[ResolvedMetric] = []
        unknown = None
        default_ts = payload.timestamp if payload.timestamp is not None else now_ms
        for m in payload.metrics:
            if m.name is not None:
                name = m.name
                dt = m.datatype or state.names.get((device, name))
            elif m.alias is not None and m.alias in state.aliases:
                owner, name, dt = state.aliases[m.alias]
                if owner != device:
                    unknown = f"alias {m.alias} belongs to another device"
                    continue
            else:
                unknown = f"unknown alias {m.alias}"
                continue
            if dt is None:
                unknown = f"metric {name!r} without a datatype"
                continue
            if name in (BDSEQ, REBIRTH) and device is None:
                continue
            out.append(
                ResolvedMetric(
                    device=device,
                    name=name,
                    timestamp=m.timestamp if m.timestamp is not None else default_ts,
                    datatype=dt,
                    value=m.value,
                    historical=m.is_historical,
                )
            )
        return tuple(out), unknown


def numeric(value: MetricValue) -> float | None:
    """A metric value as a float for the telemetry store (bool -> 0/1), else None."""
    if isinstance(value, bool | int | float):
        return float(value)
    return None
