"""Session tokens: signed, expiring, tamper-evident."""

import pytest

from ironbridge.api.auth import issue_token, verify_token
from ironbridge.model import AuthenticationFailed

SECRET = b"k" * 32


def test_round_trip() -> None:
    token = issue_token(SECRET, 42, ttl_s=60, now=1000.0)
    assert verify_token(SECRET, token, now=1059.0) == 42


def test_expired() -> None:
    token = issue_token(SECRET, 42, ttl_s=60, now=1000.0)
    with pytest.raises(AuthenticationFailed, match="expired"):
        verify_token(SECRET, token, now=1061.0)


@pytest.mark.parametrize(
    "mangle", [lambda t: t + "x", lambda t: t.replace("s.", "x.", 1), str.upper]
)
def test_tampered_or_malformed(mangle) -> None:  # type: ignore[no-untyped-def]
    token = issue_token(SECRET, 42, ttl_s=60, now=1000.0)
    with pytest.raises(AuthenticationFailed):
        verify_token(SECRET, mangle(token), now=1001.0)


def test_other_secret_refused() -> None:
    token = issue_token(SECRET, 42, ttl_s=60, now=1000.0)
    with pytest.raises(AuthenticationFailed):
        verify_token(b"other", token, now=1001.0)


@pytest.mark.parametrize("junk", ["", "a.b", "s.!!!.x", "s.e30.sig"])
def test_junk(junk: str) -> None:
    with pytest.raises(AuthenticationFailed):
        verify_token(SECRET, junk)
