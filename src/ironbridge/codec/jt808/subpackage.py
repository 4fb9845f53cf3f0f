"""JT/T 808 subpackaged messages: split, reassemble, and the 0x8003/0x0005 re-transmission request.

A body longer than one frame is sent as ``total`` frames whose header carries
``(total, index)`` (body-properties bit 13; 4 more header bytes in 2013 and 2019). The
frames carry consecutive serial numbers, so ``serial - index + 1`` is the serial of the
first packet, which is what the re-transmission request names (§8.4 0x8003: "original
serial = the serial of the first packet of the original message").

:class:`Reassembler` is pure: the caller passes the clock. It keys partial messages by
(message id, first serial, total) — one instance per terminal session, so the phone is
implied — and after ``timeout_s`` without progress reports the missing packet indexes so
the caller can send a 0x8003. Re-sent packets are matched to their message even when the
terminal gives them new serial numbers (the standard does not say which serial a re-sent
packet carries; devices differ).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from ironbridge.codec.binary import CodecError
from ironbridge.codec.jt808.frame import MAX_BODY_LENGTH, Frame, Header, Version, build_frame

__all__ = [
    "MAX_PACKETS",
    "Overdue",
    "Reassembler",
    "RetransmissionRequest",
    "decode_retransmission",
    "encode_retransmission",
    "split_message",
]

#: packets per message the reassembler accepts (1023-byte packets: ~1 MiB)
MAX_PACKETS = 1024
_WORD = struct.Struct(">H")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetransmissionRequest:
    """0x8003 (platform asks) / 0x0005 (terminal asks, 2019) body.

    Attributes:
        original_serial: serial of the first packet of the original message.
        packet_ids: 1-based indexes of the packets to send again.
    """

    original_serial: int
    packet_ids: tuple[int, ...]


def encode_retransmission(body: RetransmissionRequest, version: Version) -> bytes:
    """Encode: serial WORD, count (BYTE in 2013, WORD in 2019), ids WORD[]."""
    n = len(body.packet_ids)
    limit = 0xFF if version == Version.V2013 else 0xFFFF
    if n > limit:
        raise CodecError(f"{n} packet ids, at most {limit}", field="packet_ids")
    if not 0 <= body.original_serial <= 0xFFFF or any(
        not 0 <= i <= 0xFFFF for i in body.packet_ids
    ):
        raise CodecError("serial or packet id out of range", field="retransmission")
    count = bytes((n,)) if version == Version.V2013 else _WORD.pack(n)
    ids = struct.pack(f">{n}H", *body.packet_ids)
    return _WORD.pack(body.original_serial) + count + ids


def decode_retransmission(
    body: bytes, version: Version, *, base_offset: int = 0
) -> RetransmissionRequest:
    """Decode a 0x8003 / 0x0005 body.

    Raises:
        CodecError: the length does not match the declared count.
    """
    head = 3 if version == Version.V2013 else 4
    if len(body) < head:
        raise CodecError(
            f"re-transmission request of {len(body)} bytes, needs at least {head}",
            field="retransmission",
            offset=base_offset + len(body),
        )
    (serial,) = _WORD.unpack_from(body)
    n = body[2] if version == Version.V2013 else _WORD.unpack_from(body, 2)[0]
    if len(body) != head + 2 * n:
        raise CodecError(
            f"re-transmission request declares {n} ids in {len(body) - head} bytes",
            field="retransmission",
            offset=base_offset + 2,
        )
    return RetransmissionRequest(
        original_serial=serial, packet_ids=struct.unpack_from(f">{n}H", body, head)
    )


def split_message(
    header: Header, body: bytes, *, packet_size: int = MAX_BODY_LENGTH
) -> list[bytes]:
    """Encode ``body`` as subpackaged frames with consecutive serials from ``header.serial``.

    For terminals' simulators and tests; a body that fits one packet still gets the
    subpackage bit (``(1, 1)``), as a device that always subpackages would send it.
    """
    if not 1 <= packet_size <= MAX_BODY_LENGTH:
        raise CodecError(f"packet size {packet_size} not in 1..1023", field="packet_size")
    chunks = [body[i : i + packet_size] for i in range(0, len(body), packet_size)] or [b""]
    total = len(chunks)
    if total > 0xFFFF:
        raise CodecError(f"{total} packets do not fit a WORD", field="packet")
    return [
        build_frame(
            dataclasses.replace(header, serial=(header.serial + i) & 0xFFFF, packet=(total, i + 1)),
            chunk,
        )
        for i, chunk in enumerate(chunks)
    ]


@dataclass(slots=True)
class _Partial:
    header: Header  # of the first packet seen, with ``packet`` cleared
    first_serial: int
    total: int
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    deadline: float = 0.0
    requests: int = 0

    def missing(self) -> tuple[int, ...]:
        return tuple(i for i in range(1, self.total + 1) if i not in self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Overdue:
    """A partial message that made no progress within the timeout.

    Attributes:
        header: header of the message (serial = the first packet's serial).
        missing: 1-based indexes still missing.
        abandoned: True once the re-transmission requests are used up; the partial
            message has been dropped and nothing more is expected.
    """

    header: Header
    missing: tuple[int, ...]
    abandoned: bool


class Reassembler:
    """Joins the packets of subpackaged messages of one terminal (pure; clock passed in)."""

    def __init__(
        self,
        *,
        timeout_s: float = 30.0,
        max_requests: int = 2,
        max_pending: int = 8,
        max_bytes: int = 1 << 20,
        max_packets: int = MAX_PACKETS,
    ) -> None:
        self.timeout_s = timeout_s
        self.max_requests = max_requests
        self.max_pending = max_pending
        self.max_bytes = max_bytes
        self.max_packets = max_packets
        self._partials: dict[tuple[int, int, int], _Partial] = {}

    def __len__(self) -> int:
        return len(self._partials)

    @property
    def next_deadline(self) -> float | None:
        """When :meth:`overdue` will next have something to say; None if nothing is pending."""
        return min((p.deadline for p in self._partials.values()), default=None)

    def add(self, frame: Frame, now: float) -> Frame | None:
        """Take one packet; return the whole message once its last packet is in.

        The returned frame's header is the first packet's (serial = first serial) with
        ``packet`` None; its body is the packets' bodies joined in index order.

        Raises:
            CodecError: index outside 1..total, too many packets, or over the byte limit;
                the packet is not kept.
        """
        h = frame.header
        if h.packet is None:
            return frame
        total, index = h.packet
        if not 1 <= total <= self.max_packets:
            raise CodecError(
                f"{total} packets, accepted 1..{self.max_packets}", field="header.packet"
            )
        if not 1 <= index <= total:
            raise CodecError(f"packet index {index} outside 1..{total}", field="header.packet")
        first = (h.serial - index + 1) & 0xFFFF
        key = (h.msg_id, first, total)
        partial = self._partials.get(key) or self._resent(h.msg_id, total, index)
        if partial is None:
            if len(self._partials) >= self.max_pending:
                raise CodecError(
                    f"{self.max_pending} subpackaged messages already in progress",
                    field="header.packet",
                )
            partial = _Partial(
                header=dataclasses.replace(h, serial=first, packet=None),
                first_serial=first,
                total=total,
                deadline=now + self.timeout_s,
            )
            self._partials[key] = partial
        if index not in partial.parts:
            if self._bytes() + len(frame.body) > self.max_bytes:
                raise CodecError(
                    f"subpackaged messages above {self.max_bytes} bytes in total",
                    field="header.packet",
                )
            partial.parts[index] = frame.body
            partial.size += len(frame.body)
            partial.deadline = now + self.timeout_s
        if len(partial.parts) < partial.total:
            return None
        self._drop(partial)
        body = b"".join(partial.parts[i] for i in range(1, partial.total + 1))
        return Frame(header=partial.header, body=body)

    def overdue(self, now: float) -> list[Overdue]:
        """Partial messages past their deadline; each is reported once per timeout.

        A message is re-requested up to ``max_requests`` times, then abandoned (dropped).
        """
        out: list[Overdue] = []
        for partial in [p for p in self._partials.values() if p.deadline <= now]:
            abandoned = partial.requests >= self.max_requests
            if abandoned:
                self._drop(partial)
            else:
                partial.requests += 1
                partial.deadline = now + self.timeout_s
            out.append(
                Overdue(header=partial.header, missing=partial.missing(), abandoned=abandoned)
            )
        return out

    def _resent(self, msg_id: int, total: int, index: int) -> _Partial | None:
        """A message we asked packets of, still missing ``index`` (re-sent with a new serial)."""
        for p in self._partials.values():
            if (
                p.requests
                and p.header.msg_id == msg_id
                and p.total == total
                and index not in p.parts
            ):
                return p
        return None

    def _bytes(self) -> int:
        return sum(p.size for p in self._partials.values())

    def _drop(self, partial: _Partial) -> None:
        self._partials.pop((partial.header.msg_id, partial.first_serial, partial.total), None)

    def pending(self) -> Iterable[tuple[Header, tuple[int, ...]]]:
        """(header, missing indexes) of every partial message, for diagnostics."""
        return [(p.header, p.missing()) for p in self._partials.values()]
