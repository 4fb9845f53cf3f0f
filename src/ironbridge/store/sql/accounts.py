"""Users, passwords and API keys of the SQL registry."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, insert, select, update

from ironbridge.model import (
    ApiKey,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Principal,
    Role,
    User,
)
from ironbridge.store.sql import credentials as cred
from ironbridge.store.sql._common import SqlBase, check_label, require, utc, utcnow, visible
from ironbridge.store.sql.engine import translate_errors
from ironbridge.store.sql.schema import api_keys, tenants, users

_USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+\-]{0,127}$")
_DUMMY_DIGEST = cred.sha256_hex("no-such-api-key")

_PRINCIPAL_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.tenant_id,
    users.c.role,
    users.c.disabled,
    users.c.password_hash,
    tenants.c.path,
)


def check_username(value: object, field: str = "username") -> str:
    """Return a valid username: 1-128 letters, digits or ``_ . @ + -`` (e-mail works)."""
    if not isinstance(value, str) or not _USERNAME_RE.match(value):
        raise InvalidInput(
            field, "must be 1-128 letters, digits or '_', '.', '@', '+', '-' (no spaces)"
        )
    return value


def _check_role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InvalidInput("role", f"{value!r} is not one of: {allowed}") from None


def _user(row: Any) -> User:
    return User(
        id=row.id,
        tenant_id=row.tenant_id,
        username=row.username,
        role=Role(row.role),
        disabled=bool(row.disabled),
    )


def _principal(row: Any) -> Principal:
    return Principal(
        user_id=row.id,
        username=row.username,
        tenant_id=row.tenant_id,
        tenant_path=row.path,
        role=Role(row.role),
    )


def _api_key(row: Any) -> ApiKey:
    created = utc(row.created_at)
    assert created is not None
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=created,
        revoked=bool(row.revoked),
    )


class AccountsMixin(SqlBase):
    """Users (argon2 passwords) and API keys (``ib_<prefix>_<random>``, SHA-256 stored)."""

    @staticmethod
    def _principal_query() -> Any:
        return select(*_PRINCIPAL_COLUMNS).join(tenants, tenants.c.id == users.c.tenant_id)

    def create_user(
        self, who: Principal | None, tenant_id: str, username: str, password: str, role: Role
    ) -> User:
        """Create a user (password hashed with argon2); needs the admin role."""
        require(who, Role.ADMIN)
        username = check_username(username)
        checked_role = _check_role(role)
        hashed = cred.hash_password(password)  # policy check; slow, so outside the lock
        with self._write() as conn:
            tenant = self._visible_tenant(conn, who, tenant_id, "tenant_id")
            taken = select(users.c.id).where(users.c.username == username)
            if conn.execute(taken).first() is not None:
                raise Conflict(f"user {username!r} already exists")
            result = conn.execute(
                insert(users)
                .values(
                    tenant_id=tenant.id,
                    username=username,
                    password_hash=hashed,
                    role=checked_role.value,
                    disabled=False,
                )
                .returning(users.c.id)
            )
            user_id = int(result.scalar_one())
        return User(id=user_id, tenant_id=tenant.id, username=username, role=checked_role)

    def list_users(self, who: Principal | None) -> list[User]:
        """Return users of ``who``'s subtree, ordered by username (admin role needed)."""
        require(who, Role.ADMIN)
        with self._read() as conn:
            rows = conn.execute(
                select(users.c.id, users.c.tenant_id, users.c.username, users.c.role)
                .add_columns(users.c.disabled)
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(visible(tenants.c.path, who))
                .order_by(users.c.username)
            ).all()
        return [_user(r) for r in rows]

    def authenticate_user(self, username: str, password: str) -> Principal:
        """Return the principal for a correct username/password (:class:`AuthenticationFailed`)."""
        with self._read() as conn:
            row = conn.execute(self._principal_query().where(users.c.username == username)).first()
        # Unknown users cost one argon2 verification too: timing does not reveal names.
        ok = cred.check_password(str(password), None if row is None else row.password_hash)
        if row is None or not ok:
            raise AuthenticationFailed("wrong username or password")
        if row.disabled:
            raise AuthenticationFailed("user is disabled")
        if cred.password_needs_rehash(row.password_hash):
            self._store_password(row.id, cred.hash_password(password))
        return _principal(row)

    def principal_for_user(self, user_id: int) -> Principal:
        """Return the principal of an enabled user (:class:`AuthenticationFailed`)."""
        with self._read() as conn:
            row = conn.execute(self._principal_query().where(users.c.id == user_id)).first()
        if row is None or row.disabled:
            raise AuthenticationFailed("unknown or disabled user")
        return _principal(row)

    def _store_password(self, user_id: int, hashed: str) -> None:
        with self._write() as conn:
            conn.execute(update(users).where(users.c.id == user_id).values(password_hash=hashed))

    def set_password(self, who: Principal | None, user_id: int, password: str) -> None:
        """Change a user's password: one's own, or (admin) any user's in the subtree."""
        hashed = cred.hash_password(password)
        with self._write() as conn:
            if who is not None and who.user_id != user_id:
                require(who, Role.ADMIN)
            row = conn.execute(
                select(users.c.id)
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(users.c.id == user_id, visible(tenants.c.path, who))
            ).first()
            if row is None:
                raise NotFound("user", str(user_id))
            conn.execute(update(users).where(users.c.id == user_id).values(password_hash=hashed))

    def reset_password(self, username: str, password: str) -> None:
        """Set a user's password by username (operator CLI, e.g. a lost admin password).

        Not part of the port: it bypasses tenancy, so only the composition root calls it.
        """
        hashed = cred.hash_password(password)
        with self._write() as conn:
            done = conn.execute(
                update(users).where(users.c.username == username).values(password_hash=hashed)
            )
            if done.rowcount != 1:
                raise NotFound("user", username)

    def set_user_disabled(self, who: Principal | None, user_id: int, disabled: bool) -> User:
        """Disable (or enable) a user of the subtree (admin role; not part of the port)."""
        require(who, Role.ADMIN)
        with self._write() as conn:
            query = (
                select(users.c.id, users.c.tenant_id, users.c.username, users.c.role)
                .add_columns(users.c.disabled)
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(users.c.id == user_id, visible(tenants.c.path, who))
            )
            row = conn.execute(query).first()
            if row is None:
                raise NotFound("user", str(user_id))
            if who is not None and who.user_id == user_id and disabled:
                raise PermissionDenied("you cannot disable yourself")
            conn.execute(update(users).where(users.c.id == user_id).values(disabled=disabled))
            return _user(conn.execute(query).one())

    def create_api_key(self, who: Principal | None, name: str) -> tuple[ApiKey, str]:
        """Create an API key for ``who``; return it and its secret (shown once)."""
        if who is None:
            raise PermissionDenied("API keys belong to users; the system has none")
        name = check_label(name, "name")
        created = utcnow()
        for attempt in range(3):
            key = cred.new_api_key()
            try:
                with self._write() as conn:
                    self._require_enabled(conn, who.user_id)
                    result = conn.execute(
                        insert(api_keys)
                        .values(
                            user_id=who.user_id,
                            name=name,
                            prefix=key.prefix,
                            secret_hash=cred.sha256_hex(key.secret),
                            created_at=created,
                            revoked=False,
                        )
                        .returning(api_keys.c.id)
                    )
                    key_id = int(result.scalar_one())
            except Conflict:
                if attempt == 2:  # pragma: no cover - three 48-bit prefix collisions
                    raise
                continue
            made = ApiKey(
                id=key_id, user_id=who.user_id, name=name, prefix=key.prefix, created_at=created
            )
            return made, key.secret
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _require_enabled(conn: Connection, user_id: int) -> None:
        row = conn.execute(select(users.c.disabled).where(users.c.id == user_id)).first()
        if row is None or row.disabled:
            raise AuthenticationFailed("unknown or disabled user")

    def list_api_keys(self, who: Principal | None) -> list[ApiKey]:
        """Return ``who``'s API keys, ordered by id."""
        if who is None:
            return []
        with self._read() as conn:
            rows = conn.execute(
                select(api_keys).where(api_keys.c.user_id == who.user_id).order_by(api_keys.c.id)
            ).all()
        return [_api_key(r) for r in rows]

    def revoke_api_key(self, who: Principal | None, key_id: int) -> None:
        """Revoke one of ``who``'s API keys (an admin: any key of the subtree's users)."""
        with self._write() as conn:
            row = conn.execute(
                select(api_keys.c.user_id, tenants.c.path)
                .join(users, users.c.id == api_keys.c.user_id)
                .join(tenants, tenants.c.id == users.c.tenant_id)
                .where(api_keys.c.id == key_id)
            ).first()
            allowed = row is not None and (
                who is None
                or row.user_id == who.user_id
                or (who.role.allows(Role.ADMIN) and who.can_see(row.path))
            )
            if not allowed:
                raise NotFound("api key", str(key_id))
            conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(revoked=True))

    def authenticate_api_key(self, secret: str) -> Principal:
        """Return the principal owning a valid API key (:class:`AuthenticationFailed`)."""
        parsed = cred.parse_api_key(secret) if isinstance(secret, str) else None
        if parsed is None:
            raise AuthenticationFailed("malformed API key")
        with self._read() as conn:
            row = conn.execute(
                self._principal_query()
                .add_columns(api_keys.c.secret_hash, api_keys.c.revoked)
                .join(api_keys, api_keys.c.user_id == users.c.id)
                .where(api_keys.c.prefix == parsed.prefix)
            ).first()
        stored = _DUMMY_DIGEST if row is None else row.secret_hash
        ok = cred.same_digest(cred.sha256_hex(parsed.secret), stored)
        if row is None or not ok:
            raise AuthenticationFailed("unknown API key")
        if row.revoked:
            raise AuthenticationFailed("API key is revoked")
        if row.disabled:
            raise AuthenticationFailed("user is disabled")
        return _principal(row)

    def has_users(self) -> bool:
        """Return True once any user exists (first-start bootstrap checks this)."""
        with translate_errors(), self._read() as conn:
            return conn.execute(select(users.c.id).limit(1)).first() is not None
