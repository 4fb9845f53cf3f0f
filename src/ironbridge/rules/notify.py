"""Alarm notifications: signed webhooks and SMTP email, rate-limited, with escalation."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Literal

import httpx

from ironbridge.model import InvalidInput
from ironbridge.rules.alarms import Alarm
from ironbridge.rules.definitions import Severity

_LOGGER = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Ironbridge-Signature"
TIMESTAMP_HEADER = "X-Ironbridge-Timestamp"
EVENTS = ("start", "clear", "unacknowledged")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over ``<timestamp>.<body>``, as ``sha256=<hex>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """Check a webhook signature (what a receiver does)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def validate_subscription(d: Mapping[str, Any]) -> dict[str, Any]:
    """Check a subscription definition; raise :class:`InvalidInput` naming the field."""
    kind = d.get("kind")
    if kind not in ("webhook", "email"):
        raise InvalidInput("kind", "must be webhook or email")
    target = d.get("target")
    if not isinstance(target, str) or not target:
        raise InvalidInput("target", "must be a URL (webhook) or an email address")
    if kind == "webhook" and not target.startswith(("http://", "https://")):
        raise InvalidInput("target", "must be an http(s) URL")
    if kind == "email" and "@" not in target:
        raise InvalidInput("target", "must be an email address")
    secret = d.get("secret", "")
    if kind == "webhook" and (not isinstance(secret, str) or len(secret) < 16):
        raise InvalidInput("secret", "a webhook needs a secret of at least 16 characters")
    try:
        sev = Severity(d.get("min_severity", "warning"))
    except ValueError as exc:
        raise InvalidInput("min_severity", f"must be one of {', '.join(Severity)}") from exc
    events = d.get("events", ["start", "unacknowledged"])
    if not isinstance(events, list) or any(e not in EVENTS for e in events):
        raise InvalidInput("events", f"must be a list of {', '.join(EVENTS)}")
    after = d.get("unacked_after_s", 300)
    rate = d.get("rate_limit_per_min", 30)
    for name, v in (("unacked_after_s", after), ("rate_limit_per_min", rate)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v <= 0:
            raise InvalidInput(name, "must be a positive number")
    return {
        "name": str(d.get("name", "")),
        "kind": kind,
        "target": target,
        "secret": secret,
        "min_severity": sev.value,
        "events": events,
        "unacked_after_s": float(after),
        "rate_limit_per_min": int(rate),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SmtpConfig:
    """Where email goes (built from the ``smtp`` settings by the composition root).

    ``tls``: ``none``, ``starttls`` (upgrade after connecting) or ``ssl`` (implicit
    TLS); certificates are verified against the system's trust store.
    """

    host: str = "127.0.0.1"
    port: int = 25
    sender: str = "ironbridge@localhost"
    username: str = ""
    password: str = field(default="", repr=False)
    tls: Literal["none", "starttls", "ssl"] = "none"
    timeout_s: float = 10.0


class Notifier:
    """Sends notifications for alarm changes to the subscriptions that want them."""

    def __init__(
        self,
        smtp: SmtpConfig | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._smtp = smtp or SmtpConfig()
        self._transport = transport
        self._retries = retries
        self._backoff = backoff_s
        self._max_backoff = max_backoff_s
        self._clock = clock
        self._sent: dict[tuple[int, str], deque[float]] = {}
        self.delivered = 0
        self.failed = 0
        self.limited = 0

    def wants(self, sub: Mapping[str, Any], alarm: Alarm, event: str) -> bool:
        """Whether ``sub`` asks for ``event`` of this alarm (tenant, severity, rate)."""
        if event not in sub["events"] or not alarm.tenant_path.startswith(sub["tenant_path"]):
            return False
        if not alarm.severity.at_least(Severity(sub["min_severity"])):
            return False
        window = self._sent.setdefault((int(sub["id"]), alarm.rule_id), deque())
        now = self._clock()
        while window and now - window[0] > 60.0:
            window.popleft()
        if len(window) >= int(sub["rate_limit_per_min"]):
            self.limited += 1
            return False
        window.append(now)
        return True

    async def send(self, sub: Mapping[str, Any], alarm: Alarm, event: str) -> bool:
        """Deliver one notification; return True if it was accepted."""
        body = {
            "event": event,
            "alarm": {
                "id": alarm.id,
                "asset_id": alarm.asset_id,
                "asset_type": alarm.asset_type,
                "rule_id": alarm.rule_id,
                "severity": alarm.severity.value,
                "state": alarm.state.value,
                "active": alarm.active,
                "message": alarm.message,
                "value": alarm.value,
                "count": alarm.count,
                "raised_us": alarm.raised_us,
                "changed_us": alarm.changed_us,
            },
        }
        try:
            if sub["kind"] == "webhook":
                await self._webhook(sub, json.dumps(body, separators=(",", ":")).encode())
            else:
                await asyncio.to_thread(self._email, sub, alarm, event, body)
        except (httpx.HTTPError, OSError, smtplib.SMTPException) as exc:
            self.failed += 1
            _LOGGER.warning("notification to %s failed: %s", sub["target"], exc)
            return False
        self.delivered += 1
        return True

    async def _webhook(self, sub: Mapping[str, Any], payload: bytes) -> None:
        delay = self._backoff
        async with httpx.AsyncClient(timeout=10.0, transport=self._transport) as client:
            for attempt in range(self._retries + 1):
                ts = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    TIMESTAMP_HEADER: ts,
                    SIGNATURE_HEADER: sign(sub["secret"], ts, payload),
                }
                try:
                    r = await client.post(sub["target"], content=payload, headers=headers)
                    if r.status_code < 500 and r.status_code != 429:
                        r.raise_for_status()
                        return
                    error: Exception = httpx.HTTPStatusError(
                        f"status {r.status_code}", request=r.request, response=r
                    )
                except httpx.TransportError as exc:
                    error = exc
                if attempt == self._retries:
                    raise error
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_backoff)

    def _email(
        self, sub: Mapping[str, Any], alarm: Alarm, event: str, body: Mapping[str, Any]
    ) -> None:
        msg = EmailMessage()
        msg["From"] = self._smtp.sender
        msg["To"] = sub["target"]
        msg["Subject"] = (
            f"[ironbridge {alarm.severity.value}] {event}: {alarm.message} on {alarm.asset_id}"
        )
        msg.set_content(json.dumps(body, indent=2))
        cfg = self._smtp
        smtp: smtplib.SMTP
        if cfg.tls == "ssl":
            context = ssl.create_default_context()
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s)
        with smtp:
            if cfg.tls == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.send_message(msg)
