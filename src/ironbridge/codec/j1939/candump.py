"""Parse and format candump log lines: ``(1700000000.123456) can0 18FEEE00#0102...``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ironbridge.codec.binary import CodecError

__all__ = ["CanFrame", "format_candump", "parse_candump_line"]

_LINE = re.compile(
    r"^\s*\((?P<ts>\d+(?:\.\d+)?)\)\s+(?P<ch>\S+)\s+(?P<id>[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})"
    r"(?P<sep>##?)(?P<rest>\S*)\s*$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CanFrame:
    """One CAN frame from a log.

    Attributes:
        extended: True for a 29-bit identifier (8 hex digits in the log).
        rtr: remote-transmission request (``#R``), data empty.
        fd_flags: CAN FD flags nibble for ``##`` frames, None for classic CAN.
    """

    ts: float
    channel: str
    can_id: int
    extended: bool
    data: bytes
    rtr: bool = False
    fd_flags: int | None = None


def parse_candump_line(line: str) -> CanFrame:
    """Parse one ``candump -l`` line.

    Raises:
        CodecError: the line does not follow the log format.
    """
    m = _LINE.match(line)
    if m is None:
        raise CodecError(f"not a candump log line: {line.strip()[:80]!r}", field="candump")
    ident = m["id"]
    rest = m["rest"]
    fd_flags = None
    rtr = False
    if m["sep"] == "##":
        if not rest or rest[0] not in "0123456789abcdefABCDEF":
            raise CodecError("CAN FD frame without a hex flags digit", field="candump")
        fd_flags = int(rest[0], 16)
        rest = rest[1:]
        limit = 64
    else:
        limit = 8
        if rest[:1] in ("R", "r"):
            rtr = True
            rest = ""
    if len(rest) % 2:
        raise CodecError("odd number of hex digits in the data", field="candump")
    try:
        data = bytes.fromhex(rest)
    except ValueError as exc:
        raise CodecError("data is not hex", field="candump") from exc
    if len(data) > limit:
        raise CodecError(f"{len(data)} data bytes, at most {limit}", field="candump")
    can_id = int(ident, 16)
    extended = len(ident) == 8
    if extended and can_id >= 1 << 29:
        raise CodecError(f"identifier 0x{can_id:X} above 29 bits", field="candump")
    if not extended and can_id >= 1 << 11:
        raise CodecError(f"identifier 0x{can_id:X} above 11 bits", field="candump")
    return CanFrame(
        ts=float(m["ts"]),
        channel=m["ch"],
        can_id=can_id,
        extended=extended,
        data=data,
        rtr=rtr,
        fd_flags=fd_flags,
    )


def format_candump(frame: CanFrame) -> str:
    """Format a frame as a ``candump -l`` line (inverse of :func:`parse_candump_line`)."""
    ident = f"{frame.can_id:08X}" if frame.extended else f"{frame.can_id:03X}"
    if frame.fd_flags is not None:
        payload = f"##{frame.fd_flags:X}{frame.data.hex().upper()}"
    elif frame.rtr:
        payload = "#R"
    else:
        payload = "#" + frame.data.hex().upper()
    return f"({frame.ts:.6f}) {frame.channel} {ident}{payload}"
