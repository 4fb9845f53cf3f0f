"""What the ingest pipeline needs from the message backbone (implemented by ``bus``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class InboundMessage(Protocol):
    """A raw device message delivered by a durable consumer."""

    @property
    def subject(self) -> str:
        """The subject it was published on (``ib.v1.<device>.telemetry``)."""
        ...

    @property
    def data(self) -> bytes:
        """The payload."""
        ...

    @property
    def headers(self) -> Mapping[str, str] | None:
        """Message headers, if any."""
        ...

    @property
    def stream_seq(self) -> int:
        """The message's sequence number in its stream."""
        ...

    @property
    def timestamp_us(self) -> int:
        """When the stream stored the message (µs since epoch)."""
        ...


class MessageSource(Protocol):
    """A durable pull consumer."""

    async def fetch(self, batch: int, timeout: float) -> Sequence[InboundMessage]:
        """Return up to ``batch`` messages, or an empty list after ``timeout`` seconds."""
        ...

    async def ack_all(self, messages: Sequence[InboundMessage]) -> None:
        """Acknowledge the messages (they will not be delivered again)."""
        ...


class Publisher(Protocol):
    """Publishes to a JetStream stream and waits for its acknowledgement."""

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: Mapping[str, str] | None = None,
        msg_id: str | None = None,
    ) -> int:
        """Publish and return the stream sequence assigned to the message."""
        ...
