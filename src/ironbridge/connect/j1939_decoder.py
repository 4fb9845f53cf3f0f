"""Raw J1939 CAN frames (candump logs) to measurements and DM1 fault events with a lifecycle.

:class:`Dm1Tracker` compares successive DM1 messages of each source address: a DTC that
appears is *opened*, one whose occurrence count rises is *recurred*, one that is gone
from the next DM1 of the same source is *cleared*. Events carry kind ``j1939_dtc``, code
``SPN<spn>-FMI<fmi>`` and ``payload.state``; rules and work orders key on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ironbridge.codec.j1939 import (
    DM1_PGN,
    DTC_EVENT_KIND,
    CodecError,
    Dm1,
    Dtc,
    TransportReassembler,
    decode_dm1,
    decode_pgn,
    parse_candump_line,
    spns_for_pgn,
)
from ironbridge.model import Event

__all__ = ["DecodedUpload", "Dm1Tracker", "J1939Decoder"]

_LAMPS = ("mil", "red_stop", "amber_warning", "protect")


class Dm1Tracker:
    """Opened / recurred / cleared lifecycle of DM1 codes, per asset and source address."""

    def __init__(self) -> None:
        self._active: dict[tuple[str, int], dict[tuple[int, int], Dtc]] = {}

    def active(self, asset_id: str, sa: int) -> list[Dtc]:
        """The codes currently active for a source."""
        return list(self._active.get((asset_id, sa), {}).values())

    def update(self, asset_id: str, sa: int, ts_us: int, dm1: Dm1) -> list[Event]:
        """Apply one DM1 of ``sa``; return the transitions as events."""
        key = (asset_id, sa)
        before = self._active.get(key, {})
        now = {(d.spn, d.fmi): d for d in dm1.dtcs}
        lamps = {name: getattr(dm1.lamps, name) for name in _LAMPS}
        out: list[Event] = []
        for k, dtc in now.items():
            old = before.get(k)
            if old is None:
                state = "opened"
            elif dtc.oc is not None and old.oc is not None and dtc.oc > old.oc:
                state = "recurred"
            else:
                continue
            out.append(self._event(asset_id, ts_us, sa, dtc, state, lamps))
        for k, dtc in before.items():
            if k not in now:
                out.append(self._event(asset_id, ts_us, sa, dtc, "cleared", lamps))
        self._active[key] = now
        return out

    @staticmethod
    def _event(
        asset_id: str, ts_us: int, sa: int, dtc: Dtc, state: str, lamps: dict[str, bool | None]
    ) -> Event:
        return Event(
            asset_id=asset_id,
            ts_us=ts_us,
            kind=DTC_EVENT_KIND,
            code=dtc.code,
            payload={
                "state": state,
                "spn": dtc.spn,
                "fmi": dtc.fmi,
                "oc": dtc.oc,
                "sa": sa,
                "lamps": lamps,
            },
        )


@dataclass(slots=True, kw_only=True)
class DecodedUpload:
    """What one upload of frames decoded to.

    Attributes:
        samples: ``ts_ms -> {measurement: value}`` (not-available values omitted).
        events: DM1 transitions.
        frames: frames read; ``errors`` lists ``(line number, reason)`` of bad lines.
    """

    samples: dict[int, dict[str, float]] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    frames: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


class J1939Decoder:
    """Decodes the frames of one vehicle, keeping its TP sessions and DM1 state across uploads."""

    def __init__(self, asset_id: str, tracker: Dm1Tracker | None = None) -> None:
        self.asset_id = asset_id
        self.tracker = tracker or Dm1Tracker()
        self._tp = TransportReassembler()

    def feed_lines(self, lines: Iterable[str]) -> DecodedUpload:
        """Decode ``candump -l`` lines; bad lines are listed, not fatal."""
        out = DecodedUpload()
        for n, line in enumerate(lines, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                frame = parse_candump_line(line)
            except CodecError as exc:
                out.errors.append((n, str(exc)))
                continue
            if not frame.extended or frame.rtr:
                continue
            out.frames += 1
            try:
                messages = self._tp.feed(frame.can_id, frame.data, frame.ts)
            except CodecError as exc:
                out.errors.append((n, str(exc)))
                continue
            for msg in messages:
                ts_us = round(msg.ts * 1_000_000)
                if msg.pgn == DM1_PGN:
                    try:
                        dm1 = decode_dm1(msg.data)
                    except CodecError as exc:
                        out.errors.append((n, str(exc)))
                        continue
                    out.events.extend(self.tracker.update(self.asset_id, msg.sa, ts_us, dm1))
                elif spns_for_pgn(msg.pgn):
                    values = {
                        k: v for k, v in decode_pgn(msg.pgn, msg.data).items() if v is not None
                    }
                    if values:
                        out.samples.setdefault(ts_us // 1000, {}).update(values)
        return out
