"""Secrets of the registry: device credentials, user passwords and API keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from typing import Generic, NamedTuple, TypeVar

import bcrypt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ironbridge.model import InvalidInput

# A device credential is a 192-bit random token, not a human password: no dictionary or
# brute-force attack on its hash is feasible at any bcrypt cost, so cost 8 loses nothing.
# It matters because the NATS server checks this same bcrypt hash on every MQTT CONNECT
# (the bus writes device_credentials() into its config): a connection storm of 10k
# devices must not cost 10k x 250 ms of CPU, as the default cost 12 would.
DEVICE_BCRYPT_COST = 8
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
API_KEY_TAG = "ib"

_PASSWORDS = PasswordHasher()
# Verified against when a username or device does not exist, so that the answer takes
# as long as for a wrong password and does not reveal which names exist.
_DUMMY_ARGON2 = _PASSWORDS.hash("not-a-real-password")
_DUMMY_BCRYPT = bcrypt.hashpw(b"not-a-real-credential", bcrypt.gensalt(DEVICE_BCRYPT_COST))


def new_device_credential() -> str:
    """Return a fresh device credential: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def hash_device_credential(credential: str) -> str:
    """Return the bcrypt hash (``$2b$08$...``) of a device credential."""
    return bcrypt.hashpw(credential.encode(), bcrypt.gensalt(DEVICE_BCRYPT_COST)).decode()


def check_device_credential(credential: str, hashed: str | None) -> bool:
    """Return True if ``credential`` matches the bcrypt hash (``None``: unknown device)."""
    raw = credential.encode()
    if len(raw) > 72:  # bcrypt's limit; bcrypt>=5 raises rather than truncating
        return False
    try:
        return bcrypt.checkpw(raw, (hashed or _DUMMY_BCRYPT.decode()).encode()) and bool(hashed)
    except ValueError:
        return False


def sha256_hex(secret: str) -> str:
    """Return the hex SHA-256 of ``secret`` (for high-entropy tokens only)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_password_policy(password: str, field: str = "password") -> None:
    """Raise :class:`InvalidInput` if ``password`` is too short or too long."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(field, f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(field, f"must be at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """Return the argon2id hash of a user password (checked against the policy)."""
    check_password_policy(password)
    return _PASSWORDS.hash(password)


def check_password(password: str, hashed: str | None) -> bool:
    """Return True if ``password`` matches the argon2 hash (``None``: unknown user)."""
    try:
        return _PASSWORDS.verify(hashed or _DUMMY_ARGON2, password) and hashed is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(hashed: str) -> bool:
    """Return True if the hash was made with weaker parameters than the current ones."""
    return _PASSWORDS.check_needs_rehash(hashed)


class ApiKeySecret(NamedTuple):
    """A parsed API key: the lookup prefix and the whole secret."""

    prefix: str
    secret: str


def new_api_key() -> ApiKeySecret:
    """Return a new API key ``ib_<prefix>_<random>`` (prefix: 12 hex, random: 256 bits)."""
    prefix = secrets.token_hex(6)
    return ApiKeySecret(prefix, f"{API_KEY_TAG}_{prefix}_{secrets.token_urlsafe(32)}")


def parse_api_key(secret: str) -> ApiKeySecret | None:
    """Return the parts of an API key, or ``None`` if it is not shaped like one."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_TAG or not parts[2]:
        return None
    prefix = parts[1]
    if len(prefix) != 12 or any(c not in "0123456789abcdef" for c in prefix):
        return None
    return ApiKeySecret(prefix, secret)


def same_digest(a: str, b: str) -> bool:
    """Compare two digests in constant time."""
    return hmac.compare_digest(a.encode(), b.encode())


_V = TypeVar("_V")


class VerifiedCache(Generic[_V]):
    """Recently verified credentials: key -> (sha256 of the credential, value).

    Thread-safe, bounded (least recently used entries go first) and time-limited, so
    that an invalidation missed in another process (cluster mode) lasts at most
    ``ttl_s``. Only digests are kept, never the credentials themselves.
    """

    def __init__(self, max_entries: int = 10_000, ttl_s: float = 60.0) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[str, float, _V]] = OrderedDict()
        self._generation = 0

    def generation(self) -> int:
        """Return a counter that every invalidation bumps.

        Take it before reading the hash from the database and pass it to :meth:`put`:
        a rotation that committed in between then keeps the stale result out.
        """
        with self._lock:
            return self._generation

    def get(self, key: str, credential: str) -> _V | None:
        """Return the cached value if ``credential`` was verified for ``key`` recently."""
        digest = sha256_hex(credential)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            cached, expires, value = entry
            if time.monotonic() >= expires or not same_digest(cached, digest):
                return None
            self._entries.move_to_end(key)
            return value

    def put(self, key: str, credential: str, value: _V, generation: int) -> None:
        """Remember that ``credential`` is valid for ``key`` (unless invalidated since)."""
        digest = sha256_hex(credential)
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = (digest, time.monotonic() + self._ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def invalidate(self, key: str) -> None:
        """Forget ``key`` (after a rotation, revocation or deletion)."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
