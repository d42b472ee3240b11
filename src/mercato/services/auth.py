"""Users, passwords, sessions and API keys: who is calling the gateway, and as whom.

Three ways to prove an identity, each stored so that a copy of the database gives an
attacker nothing to log in with:

- passwords: argon2id (``argon2-cffi``), slow on purpose; rehashed on login when the
  parameters change;
- browser sessions: an opaque random token, stored as its SHA-256 (the token has 256 bits
  of entropy, so a fast hash is enough), with an expiry;
- API keys: a public ``key_id`` and a 240-bit secret, stored as HMAC-SHA256 under a
  *pepper* that is not in the keys table. Secrets are high-entropy, so argon2 would buy
  nothing but latency; every order a program sends is authenticated, so verified keys are
  cached in memory (bounded, LRU, for ``key_cache_ttl_s``) and the hot path runs no SQL
  but, once a second, one indexed query for keys revoked elsewhere (``poll_revocations``).
  Keys may expire (``expires_at``); a user holds at most ``max_keys_per_user`` live keys
  and ``max_sessions_per_user`` sessions.

The pepper: production passes one from configuration (a secret kept out of the database,
so a leaked dump cannot even brute-force key secrets offline). Without one the store makes
a random pepper on first start and keeps it in ``auth_settings``, so keys survive restarts.
Changing the pepper invalidates every API key.

Blocking (SQLAlchemy Core, synchronous engine): an async caller runs the SQL methods in a
thread; ``authenticate_key`` on a cached key is pure CPU, a few microseconds.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from mercato.adapters.sql.migrations import upgrade
from mercato.adapters.sql.schema import api_keys, auth_settings, sessions, user_accounts, users
from mercato.adapters.sql.urls import private_sqlite_file, sqlalchemy_url

log = logging.getLogger(__name__)

__all__ = ["AuthError", "AuthStore", "KeyGrant", "KeyInfo", "Principal", "Role"]

USERNAME = re.compile(r"[A-Za-z0-9_.@-]{3,64}")
MIN_PASSWORD, MAX_PASSWORD = 10, 256
KEY_PREFIX = "MK"
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_KEY_ID = re.compile(KEY_PREFIX + "[A-Z2-7]{18}")
_SECRET_LEN = 40  # secrets.token_urlsafe(30): 30 random bytes, 40 url-safe characters
MAX_KEYS_PER_USER = 20  # live (neither revoked nor expired) API keys a user may hold
MAX_SESSIONS_PER_USER = 20  # live sessions a user may hold: a new one ends the oldest


class Role(StrEnum):
    TRADER = "trader"
    ADMIN = "admin"


_ROLES = frozenset(r.value for r in Role)


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the user, their role and the core accounts they own (sorted)."""

    user_id: int
    username: str
    role: str
    accounts: tuple[int, ...]


class KeyGrant(msgspec.Struct, frozen=True):
    """A verified API key: whose it is, and until when (Unix seconds; None: no expiry)."""

    key_id: str
    principal: Principal
    expires_at: float | None


class KeyInfo(msgspec.Struct, frozen=True):
    """A live API key as its owner sees it (never its secret)."""

    key_id: str
    created_at: float
    expires_at: float | None


RevokeListener = Callable[[str], None]


class AuthError(Exception):
    """A refused change; ``code`` is machine-readable: ``user_exists``, ``weak_password``,
    ``invalid_username``, ``invalid_role``, ``unknown_user``, ``too_many_keys``,
    ``invalid_expiry``."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(message or code)
        self.code = code


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AuthStore:
    """Users, sessions and API keys in the SQL database at ``url`` (migrated on start).

    Usernames are case-insensitive: stored and reported in lower case. Login failures of
    every kind (unknown user, wrong password, malformed input) return ``None`` after the
    same argon2 work, so a caller cannot tell which usernames exist.
    """

    def __init__(
        self,
        url: str,
        *,
        pepper: bytes | None = None,
        hasher: PasswordHasher | None = None,
        key_cache_size: int = 10_000,
        key_cache_ttl_s: float = 30.0,
        revocation_poll_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        migrate: bool = True,
        max_keys_per_user: int = MAX_KEYS_PER_USER,
        max_sessions_per_user: int = MAX_SESSIONS_PER_USER,
    ) -> None:
        if pepper is not None and len(pepper) < 16:
            raise ValueError("the API-key pepper must be at least 16 bytes")
        private_sqlite_file(url)  # the users' hashes and the pepper: owner only
        if migrate:
            upgrade(url)
        self.engine: Engine = create_engine(sqlalchemy_url(url))
        self._hasher = hasher or PasswordHasher()  # argon2id, the library's RFC 9106 profile
        # verified against when the user does not exist: the same work as a real login
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        self._pepper = pepper if pepper is not None else self._stored_pepper()
        # key_id -> (digest, grant, cached at): bounded LRU, refreshed every
        # ``key_cache_ttl_s``; this store's own revokes reach it at once, another process's
        # within ``revocation_poll_s`` (``poll_revocations``); an expiry is checked on every
        # use, cached or not
        self._keys: OrderedDict[str, tuple[bytes, KeyGrant, float]] = OrderedDict()
        self._key_cache_size = key_cache_size
        self._key_cache_ttl = key_cache_ttl_s
        self._clock = clock
        self._wall = wall
        self.max_keys_per_user = max_keys_per_user
        self.max_sessions_per_user = max_sessions_per_user
        self._revoke_listeners: list[RevokeListener] = []
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every invalidation: a racing lookup does not cache
        self._revocation_poll = revocation_poll_s
        self._polled_at = clock()
        self._revoked_mark = self._latest_revocation()  # the newest revoked_at seen

    def close(self) -> None:
        self.engine.dispose()

    # -- users ------------------------------------------------------------------------------

    def create_user(self, username: str, password: str, role: str = Role.TRADER) -> int:
        """A new user's id; raises ``AuthError`` on a bad name, password or role, or a
        taken name."""
        name = self._username(username)
        if role not in _ROLES:
            raise AuthError("invalid_role", f"role must be one of {[r.value for r in Role]}")
        if len(password) < MIN_PASSWORD:
            raise AuthError("weak_password", f"at least {MIN_PASSWORD} characters")
        if len(password) > MAX_PASSWORD:
            raise AuthError("weak_password", f"at most {MAX_PASSWORD} characters")
        if password.lower() == name:
            raise AuthError("weak_password", "the password is the username")
        row = {
            "username": name,
            "password_hash": self._hasher.hash(password),
            "role": Role(role).value,
            "created_at": time.time(),
        }
        try:
            with self.engine.begin() as conn:
                result = conn.execute(insert(users).values(row))
        except IntegrityError:
            raise AuthError("user_exists", f"user {name!r} exists") from None
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def login(self, username: str, password: str) -> Principal | None:
        """The user, if the password is theirs; ``None`` on any failure."""
        name = username.lower()
        ok_input = MIN_PASSWORD <= len(password) <= MAX_PASSWORD and USERNAME.fullmatch(name)
        row = None
        if ok_input:
            with self.engine.connect() as conn:
                row = conn.execute(
                    select(users.c.user_id, users.c.password_hash).where(users.c.username == name)
                ).first()
        stored = row.password_hash if row is not None else self._dummy_hash
        try:
            self._hasher.verify(stored, password[:MAX_PASSWORD])
        except (VerificationError, InvalidHashError):
            return None
        if row is None or not ok_input:
            return None  # the dummy hash verified: it is random, so this never happens
        if self._hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(
                    update(users)
                    .where(users.c.user_id == row.user_id)
                    .values(password_hash=self._hasher.hash(password))
                )
        return self.user(row.user_id)

    def add_account(self, user_id: int, account: int) -> None:
        """Let the user trade core account ``account`` (idempotent)."""
        with self.engine.begin() as conn:
            self._require_user(conn, user_id)
            owned = conn.execute(
                select(user_accounts.c.account).where(
                    user_accounts.c.user_id == user_id, user_accounts.c.account == account
                )
            ).first()
            if owned is None:
                conn.execute(insert(user_accounts).values(user_id=user_id, account=account))
        self._forget_user(user_id)

    def user(self, user_id: int) -> Principal | None:
        with self.engine.connect() as conn:
            return self._principal(conn, user_id)

    def users(self) -> list[Principal]:
        """Every user, by id."""
        with self.engine.connect() as conn:
            owned: dict[int, list[int]] = {}
            q = select(user_accounts).order_by(user_accounts.c.user_id, user_accounts.c.account)
            for uid, account in conn.execute(q):
                owned.setdefault(uid, []).append(account)
            rows = conn.execute(select(users).order_by(users.c.user_id))
            return [
                Principal(r.user_id, r.username, r.role, tuple(owned.get(r.user_id, ())))
                for r in rows
            ]

    # -- sessions ---------------------------------------------------------------------------

    def create_session(self, user_id: int, *, ttl_s: int = 86_400, now: float | None = None) -> str:
        """A new session token for the user (shown once; only its SHA-256 is stored).

        Expired sessions are swept here, so the table stays as big as the live ones; a user
        holds at most ``max_sessions_per_user``: a new one beyond that ends their oldest.
        """
        now = self._wall() if now is None else now
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            self._require_user(conn, user_id)
            conn.execute(delete(sessions).where(sessions.c.expires_at <= now))
            conn.execute(
                insert(sessions).values(
                    token_digest=_sha256(token), user_id=user_id, expires_at=now + ttl_s
                )
            )
            stale = (
                select(sessions.c.token_digest)
                .where(sessions.c.user_id == user_id)
                .order_by(sessions.c.expires_at.desc(), sessions.c.token_digest)
                .offset(self.max_sessions_per_user)
            )
            old = list(conn.execute(stale).scalars())
            if old:
                conn.execute(delete(sessions).where(sessions.c.token_digest.in_(old)))
        return token

    def session(self, token: str, *, now: float | None = None) -> Principal | None:
        """The session's user, or ``None`` if the token is unknown, ended or expired."""
        now = self._wall() if now is None else now
        if not token or len(token) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(sessions.c.user_id, sessions.c.expires_at).where(
                    sessions.c.token_digest == _sha256(token)
                )
            ).first()
            if row is None or row.expires_at <= now:
                return None
            return self._principal(conn, row.user_id)

    def end_session(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(sessions).where(sessions.c.token_digest == _sha256(token)))

    # -- API keys ---------------------------------------------------------------------------

    def create_key(self, user_id: int, *, expires_at: float | None = None) -> tuple[str, str]:
        """A new ``(key_id, secret)`` for the user; the secret is shown once, never stored.

        ``expires_at`` (Unix seconds, in the future): the key is refused from then on.
        Raises ``AuthError`` ``too_many_keys`` when the user holds ``max_keys_per_user``
        live keys already (revoke one first), ``invalid_expiry`` for a past expiry.
        """
        now = self._wall()
        if expires_at is not None and expires_at <= now:
            raise AuthError("invalid_expiry", "expires_at must be in the future")
        key_id = KEY_PREFIX + "".join(secrets.choice(_B32) for _ in range(18))
        secret = secrets.token_urlsafe(30)
        with self.engine.begin() as conn:
            self._require_user(conn, user_id)
            live = conn.execute(
                select(func.count()).select_from(api_keys).where(*self._live(user_id, now))
            ).scalar_one()
            if live >= self.max_keys_per_user:
                raise AuthError(
                    "too_many_keys",
                    f"at most {self.max_keys_per_user} live keys per user: revoke one first",
                )
            conn.execute(
                insert(api_keys).values(
                    key_id=key_id,
                    user_id=user_id,
                    secret_digest=self._digest(secret).hex(),
                    created_at=now,
                    revoked=False,
                    expires_at=expires_at,
                )
            )
        return key_id, secret

    def keys(self, user_id: int) -> list[KeyInfo]:
        """The user's live keys (neither revoked nor expired), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(api_keys.c.key_id, api_keys.c.created_at, api_keys.c.expires_at)
                .where(*self._live(user_id, self._wall()))
                .order_by(api_keys.c.created_at, api_keys.c.key_id)
            )
            return [KeyInfo(r.key_id, r.created_at, r.expires_at) for r in rows]

    def authenticate_key(self, key_id: str, secret: str) -> Principal | None:
        """The key's user, if the secret is the key's and the key is neither revoked nor
        expired. A cached key costs one HMAC and a constant-time compare, no SQL."""
        grant = self.verify_key(key_id, secret)
        return grant.principal if grant is not None else None

    def verify_key(self, key_id: str, secret: str) -> KeyGrant | None:
        """As ``authenticate_key``, with the key's expiry (a WebSocket closes then)."""
        if len(secret) != _SECRET_LEN:
            return None
        digest = self._digest(secret)
        now = self._clock()
        if now - self._polled_at >= self._revocation_poll:
            try:
                self.poll_revocations()
            except SQLAlchemyError:  # the database is away: cached keys keep working
                log.warning("polling for revoked keys failed", exc_info=True)
        with self._lock:
            hit = self._keys.get(key_id)
            if hit is not None:
                if now - hit[2] < self._key_cache_ttl:
                    self._keys.move_to_end(key_id)
                    grant = hit[1]
                    if not hmac.compare_digest(hit[0], digest) or self._expired(grant):
                        return None
                    return grant
                del self._keys[key_id]
            generation = self._generation
        if not _KEY_ID.fullmatch(key_id):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(
                    api_keys.c.user_id,
                    api_keys.c.secret_digest,
                    api_keys.c.revoked,
                    api_keys.c.expires_at,
                ).where(api_keys.c.key_id == key_id)
            ).first()
            if row is None or row.revoked:
                return None
            stored = bytes.fromhex(row.secret_digest)
            if not hmac.compare_digest(stored, digest):
                return None
            principal = self._principal(conn, row.user_id)
        if principal is None:
            return None
        grant = KeyGrant(key_id, principal, row.expires_at)
        if self._expired(grant):
            return None
        with self._lock:
            if generation == self._generation:  # no revoke or add_account since the read
                self._keys[key_id] = (stored, grant, now)
                self._keys.move_to_end(key_id)
                while len(self._keys) > self._key_cache_size:
                    self._keys.popitem(last=False)
        return grant

    def revoke_key(self, key_id: str, *, user_id: int | None = None) -> bool:
        """Revoke the key (only if it is ``user_id``'s, when given): True if a live key was
        revoked, False for an unknown, another user's or an already revoked one. This
        store refuses it at once, and its revoke listeners hear of it (``on_revoke``);
        other stores on the database within their ``revocation_poll_s``."""
        cond = [api_keys.c.key_id == key_id, api_keys.c.revoked.is_(False)]
        if user_id is not None:
            cond.append(api_keys.c.user_id == user_id)
        with self.engine.begin() as conn:
            # stamped after every earlier revoke, whatever this host's clock says, so that
            # a poll that has seen those sees this one too
            latest = conn.execute(select(func.max(api_keys.c.revoked_at))).scalar()
            at = max(self._wall(), (latest or 0.0) + 1e-3)
            done = conn.execute(
                update(api_keys).where(*cond).values(revoked=True, revoked_at=at)
            ).rowcount
        with self._lock:
            self._generation += 1
            self._keys.pop(key_id, None)
        if done:
            self._notify([key_id])
        return bool(done)

    def on_revoke(self, listener: RevokeListener) -> None:
        """Call ``listener(key_id)`` after each key revoked, by this store or (seen by
        ``poll_revocations``) by another on the same database; the open WebSockets
        authenticated by it close (``api/keywatch.py``). A key may be told twice."""
        self._revoke_listeners.append(listener)

    def poll_revocations(self) -> list[str]:
        """The keys revoked since the last poll, by any store on this database (one query
        on an index): dropped from the cache, told to the revoke listeners. Runs by itself
        at most every ``revocation_poll_s`` on the way of ``authenticate_key``; the key
        watch of open WebSockets calls it on a timer too."""
        self._polled_at = self._clock()
        q = select(api_keys.c.key_id, api_keys.c.revoked_at).order_by(api_keys.c.revoked_at)
        q = q.where(api_keys.c.revoked_at > self._revoked_mark)
        with self.engine.connect() as conn:
            rows = list(conn.execute(q))
        if not rows:
            return []
        self._revoked_mark = max(self._revoked_mark, rows[-1].revoked_at)
        ids = [r.key_id for r in rows]
        with self._lock:
            self._generation += 1
            for key_id in ids:
                self._keys.pop(key_id, None)
        self._notify(ids)
        return ids

    def _notify(self, key_ids: list[str]) -> None:
        for key_id in key_ids:
            for listener in list(self._revoke_listeners):
                listener(key_id)

    def _latest_revocation(self) -> float:
        with self.engine.connect() as conn:
            latest = conn.execute(select(func.max(api_keys.c.revoked_at))).scalar()
        return float(latest or 0.0)

    # -- inside -----------------------------------------------------------------------------

    def _expired(self, grant: KeyGrant) -> bool:
        return grant.expires_at is not None and grant.expires_at <= self._wall()

    @staticmethod
    def _live(user_id: int, now: float) -> list[Any]:
        """The conditions of a user's live keys."""
        return [
            api_keys.c.user_id == user_id,
            api_keys.c.revoked.is_(False),
            or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now),
        ]

    def _digest(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).digest()

    def _forget_user(self, user_id: int) -> None:
        """Drop the user's cached keys: their principal changed."""
        with self._lock:
            self._generation += 1
            stale = [k for k, (_, g, _) in self._keys.items() if g.principal.user_id == user_id]
            for k in stale:
                del self._keys[k]

    @staticmethod
    def _username(username: str) -> str:
        if not USERNAME.fullmatch(username):
            raise AuthError("invalid_username", "3-64 characters of A-Z a-z 0-9 _ . @ -")
        return username.lower()

    @staticmethod
    def _require_user(conn: Connection, user_id: int) -> None:
        if conn.execute(select(users.c.user_id).where(users.c.user_id == user_id)).first() is None:
            raise AuthError("unknown_user", f"no user {user_id}")

    @staticmethod
    def _principal(conn: Connection, user_id: int) -> Principal | None:
        row = conn.execute(
            select(users.c.username, users.c.role).where(users.c.user_id == user_id)
        ).first()
        if row is None:
            return None
        q = (
            select(user_accounts.c.account)
            .where(user_accounts.c.user_id == user_id)
            .order_by(user_accounts.c.account)
        )
        return Principal(user_id, row.username, row.role, tuple(conn.execute(q).scalars()))

    def _stored_pepper(self) -> bytes:
        """This database's pepper, made on first use (two stores racing agree on one)."""
        for _ in range(2):
            with self.engine.connect() as conn:
                got: Any = conn.execute(
                    select(auth_settings.c.pepper).where(auth_settings.c.id == 1)
                ).scalar()
            if got is not None:
                return bytes(got)
            try:
                with self.engine.begin() as conn:
                    conn.execute(insert(auth_settings).values(id=1, pepper=secrets.token_bytes(32)))
            except IntegrityError:
                pass  # another store made it first: read theirs
        raise RuntimeError("auth_settings: no pepper after creating one")
