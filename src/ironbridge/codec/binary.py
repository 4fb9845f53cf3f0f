"""Shared helpers of the binary vehicle codecs: the codec error, XOR checksums, data tables."""

from __future__ import annotations

import csv
import io
from importlib import resources

from ironbridge.model import InvalidInput

__all__ = ["CodecError", "load_table", "xor_checksum"]


class CodecError(InvalidInput):
    """A frame or payload that a codec cannot accept, with where and why.

    Attributes:
        offset: byte offset in the input where the problem was found (``-1`` if none).
        field: the protocol field concerned (``bcc``, ``header.body_length`` ...).
        reason: a short, human-readable reason.
    """

    def __init__(self, reason: str, *, offset: int = -1, field: str = "") -> None:
        self.offset = offset
        where = f" (at byte {offset})" if offset >= 0 else ""
        super().__init__(field, f"{reason}{where}")
        self.reason = reason


def xor_checksum(
    data: bytes | bytearray | memoryview, start: int = 0, end: int | None = None
) -> int:
    """XOR of ``data[start:end]`` (the BCC of GB/T 32960 and JT/T 808)."""
    view = memoryview(data)[start:end]
    if len(view) == 0:
        return 0
    # int.from_bytes + folding is ~30x faster than a Python loop over bytes.
    value = int.from_bytes(view, "little")
    size = len(view)
    while size > 1:
        half = (size + 1) // 2
        value = (value ^ (value >> (8 * half))) & ((1 << (8 * half)) - 1)
        size = half
    return value


def load_table(package: str, name: str) -> list[dict[str, str]]:
    """Read a CSV code table shipped inside ``package`` (``#`` lines are comments)."""
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return [
        {key: (value or "").strip() for key, value in row.items()}
        for row in csv.DictReader(io.StringIO("\n".join(lines)))
    ]
