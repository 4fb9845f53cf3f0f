"""SAE J1939: identifiers, scaled SPNs, DM1, transport-protocol reassembly, candump logs."""

from ironbridge.codec.binary import CodecError
from ironbridge.codec.j1939.candump import CanFrame, format_candump, parse_candump_line
from ironbridge.codec.j1939.dm1 import (
    DM1_PGN,
    DM2_PGN,
    DTC_EVENT_KIND,
    Dm1,
    Dtc,
    Lamps,
    decode_dm1,
    dm1_events,
    encode_dm1,
)
from ironbridge.codec.j1939.ids import GLOBAL_ADDRESS, CanId, make_can_id, parse_can_id
from ironbridge.codec.j1939.signals import Spn, decode_pgn, encode_pgn, spn_table, spns_for_pgn
from ironbridge.codec.j1939.transport import (
    TP_CM_PGN,
    TP_DT_PGN,
    J1939Message,
    TransportReassembler,
    segment_bam,
)

__all__ = [
    "DM1_PGN",
    "DM2_PGN",
    "DTC_EVENT_KIND",
    "GLOBAL_ADDRESS",
    "TP_CM_PGN",
    "TP_DT_PGN",
    "CanFrame",
    "CanId",
    "CodecError",
    "Dm1",
    "Dtc",
    "J1939Message",
    "Lamps",
    "Spn",
    "TransportReassembler",
    "decode_dm1",
    "decode_pgn",
    "dm1_events",
    "encode_dm1",
    "encode_pgn",
    "format_candump",
    "make_can_id",
    "parse_can_id",
    "parse_candump_line",
    "segment_bam",
    "spn_table",
    "spns_for_pgn",
]
