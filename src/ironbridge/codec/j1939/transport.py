"""J1939-21 transport protocol: BAM and RTS/CTS reassembly as a pure state machine, and BAM send."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ironbridge.codec.binary import CodecError
from ironbridge.codec.j1939.ids import GLOBAL_ADDRESS, make_can_id, parse_can_id

__all__ = [
    "TP_CM_PGN",
    "TP_DT_PGN",
    "J1939Message",
    "TransportReassembler",
    "segment_bam",
]

TP_CM_PGN = 60416  # 0xEC00
TP_DT_PGN = 60160  # 0xEB00
_RTS, _CTS, _EOM_ACK, _BAM, _ABORT = 16, 17, 19, 32, 255
_MAX_SIZE = 1785
_CM = struct.Struct("<BHBB")


@dataclass(frozen=True, slots=True, kw_only=True)
class J1939Message:
    """A complete J1939 message (single frame or reassembled), timestamp of its last frame."""

    pgn: int
    sa: int
    da: int
    priority: int
    data: bytes
    ts: float


@dataclass(slots=True, kw_only=True)
class _Session:
    pgn: int
    size: int
    packets: int
    priority: int
    broadcast: bool
    last_ts: float
    next_seq: int = 1
    chunks: list[bytes] = field(default_factory=list)


class TransportReassembler:
    """Rebuild TP messages from observed CAN frames; no I/O, no clock of its own.

    Feed every frame with its timestamp; :meth:`feed` returns the messages completed by it
    (plain single-frame messages are returned at once unless ``passthrough`` is False).
    Sessions are keyed by (sender, receiver); a new announcement replaces an unfinished
    one, an abort or a sequence gap drops it, and a session silent for longer than its
    timeout (T1 0.75 s for BAM, T2/T3 1.25 s for RTS/CTS) is dropped on the next feed.

    Attributes:
        dropped: count of sessions abandoned (timeout, gap, abort, replaced).
    """

    def __init__(
        self,
        *,
        passthrough: bool = True,
        bam_timeout_s: float = 0.75,
        cmdt_timeout_s: float = 1.25,
    ) -> None:
        self.passthrough = passthrough
        self.bam_timeout_s = bam_timeout_s
        self.cmdt_timeout_s = cmdt_timeout_s
        self.dropped = 0
        self._sessions: dict[tuple[int, int], _Session] = {}

    @property
    def open_sessions(self) -> int:
        """Sessions currently being reassembled."""
        return len(self._sessions)

    def feed(self, can_id: int, data: bytes, ts: float) -> list[J1939Message]:
        """Process one frame; return the messages it completes."""
        if self._sessions:
            self._expire(ts)
        cid = parse_can_id(can_id)
        if cid.pgn == TP_CM_PGN:
            self._control(cid.sa, cid.da, cid.priority, data, ts)
            return []
        if cid.pgn == TP_DT_PGN:
            done = self._transfer(cid.sa, cid.da, data, ts)
            return [] if done is None else [done]
        if not self.passthrough:
            return []
        return [
            J1939Message(
                pgn=cid.pgn, sa=cid.sa, da=cid.da, priority=cid.priority, data=bytes(data), ts=ts
            )
        ]

    def _expire(self, ts: float) -> None:
        stale = [
            key
            for key, s in self._sessions.items()
            if ts - s.last_ts > (self.bam_timeout_s if s.broadcast else self.cmdt_timeout_s)
        ]
        for key in stale:
            del self._sessions[key]
            self.dropped += 1

    def _control(self, sa: int, da: int, priority: int, data: bytes, ts: float) -> None:
        if len(data) < 8:
            return
        control = data[0]
        if control in (_BAM, _RTS):
            _, size, packets, _ = _CM.unpack_from(data)
            pgn = int.from_bytes(data[5:8], "little")
            broadcast = control == _BAM
            if broadcast and da != GLOBAL_ADDRESS:
                return
            if not 9 <= size <= _MAX_SIZE or packets != (size + 6) // 7:
                return
            if (sa, da) in self._sessions:
                self.dropped += 1
            self._sessions[(sa, da)] = _Session(
                pgn=pgn,
                size=size,
                packets=packets,
                priority=priority,
                broadcast=broadcast,
                last_ts=ts,
            )
        elif control == _ABORT:
            # Either side may abort a connection: drop both directions.
            for key in ((sa, da), (da, sa)):
                if self._sessions.pop(key, None) is not None:
                    self.dropped += 1
        elif control == _CTS:
            session = self._sessions.get((da, sa))
            if session is not None:
                session.last_ts = ts
        # EoMAck needs no action: the data were complete at the last TP.DT.

    def _transfer(self, sa: int, da: int, data: bytes, ts: float) -> J1939Message | None:
        session = self._sessions.get((sa, da))
        if session is None or len(data) < 2:
            return None
        seq = data[0]
        if seq < session.next_seq and not session.broadcast and seq >= 1:
            # RTS/CTS retransmission after a CTS asking again: replace from there.
            del session.chunks[seq - 1 :]
            session.next_seq = seq
        if seq != session.next_seq:
            del self._sessions[(sa, da)]
            self.dropped += 1
            return None
        session.chunks.append(bytes(data[1:8]))
        session.next_seq += 1
        session.last_ts = ts
        if seq < session.packets:
            return None
        del self._sessions[(sa, da)]
        payload = b"".join(session.chunks)
        if len(payload) < session.size:
            self.dropped += 1
            return None
        return J1939Message(
            pgn=session.pgn,
            sa=sa,
            da=da,
            priority=session.priority,
            data=payload[: session.size],
            ts=ts,
        )


def segment_bam(pgn: int, data: bytes, *, sa: int, priority: int = 7) -> list[tuple[int, bytes]]:
    """Split a 9..1785-byte payload into a TP.CM BAM and TP.DT frames (for simulators)."""
    size = len(data)
    if not 9 <= size <= _MAX_SIZE:
        raise CodecError(f"BAM payload must be 9..1785 bytes, got {size}", field="data")
    packets = (size + 6) // 7
    cm = _CM.pack(_BAM, size, packets, 0xFF) + pgn.to_bytes(3, "little")
    frames = [(make_can_id(TP_CM_PGN, sa, da=GLOBAL_ADDRESS, priority=priority), cm)]
    dt_id = make_can_id(TP_DT_PGN, sa, da=GLOBAL_ADDRESS, priority=priority)
    for i in range(packets):
        chunk = data[7 * i : 7 * i + 7].ljust(7, b"\xff")
        frames.append((dt_id, bytes((i + 1,)) + chunk))
    return frames
