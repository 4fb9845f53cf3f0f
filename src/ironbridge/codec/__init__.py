"""Pure wire formats: bytes in, domain values out, and back. No I/O here."""

from ironbridge.codec.telemetry import Samples, decode_telemetry, encode_columnar, encode_telemetry

__all__ = ["Samples", "decode_telemetry", "encode_columnar", "encode_telemetry"]
