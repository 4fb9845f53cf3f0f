"""J1939 29-bit CAN identifiers: priority, PGN, source and destination address (PDU1/PDU2)."""

from __future__ import annotations

from dataclasses import dataclass

from ironbridge.codec.binary import CodecError

__all__ = ["GLOBAL_ADDRESS", "CanId", "make_can_id", "parse_can_id"]

#: Destination address meaning "all nodes" (PDU2 messages are always global).
GLOBAL_ADDRESS = 0xFF


@dataclass(frozen=True, slots=True, kw_only=True)
class CanId:
    """A decoded 29-bit identifier.

    Attributes:
        pgn: parameter group number (PS zeroed for PDU1).
        da: destination address (PS for PDU1, 0xFF for broadcast PDU2).
    """

    priority: int
    pgn: int
    sa: int
    da: int

    @property
    def pdu1(self) -> bool:
        """True for peer-to-peer PDU1 format (PF < 240)."""
        return (self.pgn >> 8) & 0xFF < 240


def parse_can_id(can_id: int) -> CanId:
    """Split a 29-bit identifier: ``priority(3) | EDP(1) | DP(1) | PF(8) | PS(8) | SA(8)``."""
    if not 0 <= can_id < 1 << 29:
        raise CodecError(f"CAN id 0x{can_id:X} is not a 29-bit identifier", field="can_id")
    pf = (can_id >> 16) & 0xFF
    ps = (can_id >> 8) & 0xFF
    edp_dp = (can_id >> 24) & 0x3
    if pf < 240:
        pgn = (edp_dp << 16) | (pf << 8)
        da = ps
    else:
        pgn = (edp_dp << 16) | (pf << 8) | ps
        da = GLOBAL_ADDRESS
    return CanId(priority=(can_id >> 26) & 0x7, pgn=pgn, sa=can_id & 0xFF, da=da)


def make_can_id(pgn: int, sa: int, *, da: int = GLOBAL_ADDRESS, priority: int = 6) -> int:
    """Build a 29-bit identifier (``da`` goes into PS for PDU1 PGNs, ignored for PDU2)."""
    if not (0 <= pgn < 1 << 18 and 0 <= sa <= 0xFF and 0 <= da <= 0xFF and 0 <= priority <= 7):
        raise CodecError("pgn, address or priority out of range", field="can_id")
    pf = (pgn >> 8) & 0xFF
    if pf < 240:
        if pgn & 0xFF:
            raise CodecError(f"PDU1 PGN {pgn} must have PS = 0", field="pgn")
        pgn |= da
    return (priority << 26) | (pgn << 8) | sa
