"""The auth store on SQLite (a temp file); the API-key path also on PostgreSQL.

argon2 runs with the cheapest parameters here: the tests are about the rules, not the cost.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, make_url, select, text

from mercato.adapters.sql.schema import api_keys, sessions, users
from mercato.adapters.sql.urls import sqlalchemy_url
from mercato.services.auth import AuthError, AuthStore, Principal, Role

PW = "correct horse battery"


def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'auth.db'}"


@pytest.fixture
def store(url: str) -> Iterator[AuthStore]:
    s = AuthStore(url, hasher=_hasher())
    yield s
    s.close()


# -- users ----------------------------------------------------------------------------------


def test_create_user_and_read_it_back(store: AuthStore) -> None:
    uid = store.create_user("alice", PW)
    admin = store.create_user("root.admin@example.com", PW, role=Role.ADMIN)
    assert uid != admin
    assert store.user(uid) == Principal(uid, "alice", "trader", ())
    assert store.user(admin) == Principal(admin, "root.admin@example.com", "admin", ())
    assert store.user(999) is None
    assert [p.user_id for p in store.users()] == [uid, admin]


@pytest.mark.parametrize(
    "username", ["ab", "a" * 65, "has space", "semi;colon", "tab\t", "x\n", "", "ünïcode"]
)
def test_bad_usernames_are_refused(store: AuthStore, username: str) -> None:
    with pytest.raises(AuthError) as e:
        store.create_user(username, PW)
    assert e.value.code == "invalid_username"


def test_edge_usernames_are_allowed(store: AuthStore) -> None:
    store.create_user("abc", PW)
    store.create_user("A-z_0.9@x", PW)
    store.create_user("a" * 64, PW)
    assert len(store.users()) == 3


@pytest.mark.parametrize("password", ["short", "x" * 9, "y" * 257, "alice-bob1", "ALICE-BOB1"])
def test_weak_or_huge_passwords_are_refused(store: AuthStore, password: str) -> None:
    with pytest.raises(AuthError) as e:
        store.create_user("alice-bob1", password)
    assert e.value.code == "weak_password"


def test_password_length_bounds(store: AuthStore) -> None:
    a = store.create_user("ten", "x" * 10)
    b = store.create_user("max", "y" * 256)
    assert store.login("ten", "x" * 10) == store.user(a)
    assert store.login("max", "y" * 256) == store.user(b)
    assert store.login("max", "y" * 257) is None


def test_taken_usernames_are_refused_whatever_the_case(store: AuthStore) -> None:
    store.create_user("Alice", PW)
    for name in ("alice", "ALICE", "Alice"):
        with pytest.raises(AuthError) as e:
            store.create_user(name, PW)
        assert e.value.code == "user_exists"
    assert [p.username for p in store.users()] == ["alice"]


def test_unknown_role_is_refused(store: AuthStore) -> None:
    with pytest.raises(AuthError) as e:
        store.create_user("alice", PW, role="god")
    assert e.value.code == "invalid_role"


def test_passwords_are_stored_as_argon2id(store: AuthStore) -> None:
    store.create_user("alice", PW)
    with store.engine.connect() as conn:
        stored = conn.execute(select(users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and PW not in stored


# -- login ----------------------------------------------------------------------------------


def test_login(store: AuthStore) -> None:
    uid = store.create_user("alice", PW)
    store.add_account(uid, 7)
    assert store.login("alice", PW) == Principal(uid, "alice", "trader", (7,))
    assert store.login("ALICE", PW) == store.user(uid)  # usernames ignore case


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", PW + "!"),  # wrong password
        ("alice", PW.upper()),
        ("alice", ""),
        ("alice", "z" * 10_000),  # huge: refused before any hashing of it
        ("bob", PW),  # unknown user: the same answer
        ("no such user at all", PW),  # not even a valid name
        ("", ""),
    ],
)
def test_failed_logins_all_say_none(store: AuthStore, username: str, password: str) -> None:
    store.create_user("alice", PW)
    assert store.login(username, password) is None


class SpyHasher(PasswordHasher):
    """Cheap argon2 that records which hashes it verified against."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified: list[str | bytes] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash)
        return super().verify(hash, password)


def test_an_unknown_user_costs_the_same_argon2_verify(url: str) -> None:
    hasher = SpyHasher()
    store = AuthStore(url, hasher=hasher)
    try:
        store.create_user("alice", PW)
        assert store.login("bob", PW) is None
        assert store.login("alice", "wrong password") is None
        assert store.login("x", "y" * 300) is None  # malformed: still one verify
        assert len(hasher.verified) == 3
        assert hasher.verified[0] == hasher.verified[2] != hasher.verified[1]
    finally:
        store.close()


def test_login_rehashes_when_the_parameters_change(url: str) -> None:
    old = AuthStore(url, hasher=_hasher())
    uid = old.create_user("alice", PW)
    old.close()
    new = AuthStore(url, hasher=PasswordHasher(time_cost=2, memory_cost=16, parallelism=1))
    try:
        with new.engine.connect() as conn:
            before = conn.execute(select(users.c.password_hash)).scalar_one()
        assert "t=1" in before
        assert new.login("alice", PW) == new.user(uid)
        with new.engine.connect() as conn:
            after = conn.execute(select(users.c.password_hash)).scalar_one()
        assert "m=16,t=2" in after
        assert new.login("alice", PW) == new.user(uid)
    finally:
        new.close()


# -- sessions -------------------------------------------------------------------------------


def test_sessions_expire_and_end(store: AuthStore) -> None:
    uid = store.create_user("alice", PW)
    store.add_account(uid, 3)
    token = store.create_session(uid, ttl_s=60, now=1_000.0)
    assert len(token) >= 43
    me = Principal(uid, "alice", "trader", (3,))
    assert store.session(token, now=1_000.0) == me
    assert store.session(token, now=1_059.9) == me
    assert store.session(token, now=1_060.0) is None  # expired
    other = store.create_session(uid, now=2_000.0)
    assert store.session(other, now=2_001.0) == me
    store.end_session(other)
    assert store.session(other, now=2_001.0) is None
    store.end_session(other)  # twice: a no-op


def test_sessions_store_only_a_digest_and_sweep_expired(store: AuthStore) -> None:
    uid = store.create_user("alice", PW)
    old = store.create_session(uid, ttl_s=10, now=0.0)
    new = store.create_session(uid, ttl_s=10, now=100.0)  # sweeps the expired one
    with store.engine.connect() as conn:
        digests = conn.execute(select(sessions.c.token_digest)).scalars().all()
    assert len(digests) == 1 and new not in digests and old not in digests
    assert store.session(new, now=105.0) is not None


def test_bad_session_tokens(store: AuthStore) -> None:
    uid = store.create_user("alice", PW)
    token = store.create_session(uid)
    assert store.session(token) is not None
    for bad in ("", "nope", token[:-1], token + "x", "x" * 10_000):
        assert store.session(bad) is None


def test_sessions_and_keys_need_a_real_user(store: AuthStore) -> None:
    for call in (
        lambda: store.create_session(42),
        lambda: store.create_key(42),
        lambda: store.add_account(42, 1),
    ):
        with pytest.raises(AuthError) as e:
            call()
        assert e.value.code == "unknown_user"


# -- API keys -------------------------------------------------------------------------------


def _check_keys(store: AuthStore) -> None:
    """The API-key rules, on any backend."""
    uid = store.create_user("bot", PW)
    store.add_account(uid, 11)
    key_id, secret = store.create_key(uid)
    assert key_id.startswith("MK") and len(key_id) == 20
    assert all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in key_id[2:])
    assert len(secret) == 40
    me = Principal(uid, "bot", "trader", (11,))
    assert store.authenticate_key(key_id, secret) == me  # from SQL
    assert store.authenticate_key(key_id, secret) == me  # from the cache
    wrong = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.authenticate_key(key_id, wrong) is None  # cached key, wrong secret
    assert store.authenticate_key(key_id, "") is None
    assert store.authenticate_key("MK" + "A" * 18, secret) is None  # unknown key
    other_id, other_secret = store.create_key(uid)
    assert store.authenticate_key(other_id, secret) is None  # another key's secret
    assert store.authenticate_key(key_id, other_secret) is None
    # a new account shows in the principal, even for a cached key
    store.add_account(uid, 12)
    assert store.authenticate_key(key_id, secret) == Principal(uid, "bot", "trader", (11, 12))
    # revoked: refused at once though cached; the other key still works
    store.revoke_key(key_id)
    assert store.authenticate_key(key_id, secret) is None
    assert store.authenticate_key(other_id, other_secret) is not None
    store.revoke_key("MK" + "Z" * 18)  # unknown: a no-op
    with store.engine.connect() as conn:
        stored = conn.execute(select(api_keys.c.secret_digest)).scalars().all()
    assert secret not in stored and other_secret not in stored


def test_api_keys(store: AuthStore) -> None:
    _check_keys(store)


def test_a_cached_key_needs_no_sql(store: AuthStore) -> None:
    uid = store.create_user("bot", PW)
    key_id, secret = store.create_key(uid)
    assert store.authenticate_key(key_id, secret) is not None
    store.engine.dispose()
    store.engine = create_engine("sqlite:////nonexistent/dir/none.db")  # any SQL would fail
    for _ in range(100):
        assert store.authenticate_key(key_id, secret) is not None
    assert store.authenticate_key(key_id, secret[::-1]) is None


def test_the_key_cache_is_bounded(url: str) -> None:
    store = AuthStore(url, hasher=_hasher(), key_cache_size=3)
    try:
        uid = store.create_user("bot", PW)
        keys = [store.create_key(uid) for _ in range(5)]
        for k in keys:
            assert store.authenticate_key(*k) is not None
        assert list(store._keys) == [k[0] for k in keys[-3:]]
        assert store.authenticate_key(*keys[2]) is not None  # refreshes it
        assert store.authenticate_key(*keys[0]) is not None  # evicts keys[3]
        assert list(store._keys) == [keys[4][0], keys[2][0], keys[0][0]]
    finally:
        store.close()


def test_a_revoke_elsewhere_reaches_a_cache_within_a_second(url: str) -> None:
    """Another process's revoke (another gateway, a script): this store's cache drops the
    key at its next poll (``revocation_poll_s``, 1 s), not after the cache's 30 s."""
    clock = Clock()
    gateway = AuthStore(url, hasher=_hasher(), key_cache_ttl_s=30, clock=clock)
    admin = AuthStore(url, hasher=_hasher())
    try:
        uid = admin.create_user("bot", PW)
        key, other = admin.create_key(uid), admin.create_key(uid)
        assert gateway.authenticate_key(*key) is not None
        assert gateway.authenticate_key(*other) is not None
        admin.revoke_key(key[0])
        clock.t += 0.5
        assert gateway.authenticate_key(*key) is not None  # cached, not polled yet
        clock.t += 0.5
        assert gateway.authenticate_key(*key) is None
        assert gateway.authenticate_key(*other) is not None
    finally:
        gateway.close()
        admin.close()


def test_the_pepper_persists_across_a_reopened_store(url: str) -> None:
    first = AuthStore(url, hasher=_hasher())
    uid = first.create_user("bot", PW)
    key = first.create_key(uid)
    first.close()
    again = AuthStore(url, hasher=_hasher())
    try:
        assert again.authenticate_key(*key) == Principal(uid, "bot", "trader", ())
    finally:
        again.close()
    # a configured pepper replaces the stored one: keys made under the other stop working
    configured = AuthStore(url, hasher=_hasher(), pepper=b"p" * 32)
    try:
        assert configured.authenticate_key(*key) is None
        key2 = configured.create_key(uid)
        assert configured.authenticate_key(*key2) is not None
    finally:
        configured.close()
    same = AuthStore(url, hasher=_hasher(), pepper=b"p" * 32)
    try:
        assert same.authenticate_key(*key2) is not None
    finally:
        same.close()


def test_a_short_pepper_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        AuthStore(url, pepper=b"short")


def test_two_databases_have_different_peppers(tmp_path: Path) -> None:
    a = AuthStore(f"sqlite:///{tmp_path / 'a.db'}", hasher=_hasher())
    b = AuthStore(f"sqlite:///{tmp_path / 'b.db'}", hasher=_hasher())
    try:
        assert a._pepper != b._pepper and len(a._pepper) == 32
    finally:
        a.close()
        b.close()


# -- PostgreSQL -----------------------------------------------------------------------------


PG_DSN = sqlalchemy_url(
    os.environ.get("MERCATO_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
)


@pytest.fixture
def pg_url(require_service: Callable[[str], None]) -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh schema, dropped when the test ends."""
    try:
        admin = create_engine(PG_DSN, connect_args={"connect_timeout": 3})
        with admin.connect():
            pass
    except Exception as exc:
        require_service(f"PostgreSQL unreachable at MERCATO_PG_DSN={PG_DSN}: {exc}")
    schema = f"mercato_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = make_url(PG_DSN).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_users_sessions_and_keys_on_postgresql(pg_url: str) -> None:
    store = AuthStore(pg_url, hasher=_hasher())
    try:
        _check_keys(store)
        uid = store.create_user("alice", PW)
        with pytest.raises(AuthError) as e:
            store.create_user("ALICE", PW)
        assert e.value.code == "user_exists"
        assert store.login("alice", PW) == store.user(uid)
        assert store.login("alice", PW + "!") is None
        assert store.login("nobody", PW) is None
        token = store.create_session(uid, ttl_s=5, now=10.0)
        assert store.session(token, now=14.0) == store.user(uid)
        assert store.session(token, now=15.0) is None
        key = store.create_key(uid)
    finally:
        store.close()
    again = AuthStore(pg_url, hasher=_hasher())
    try:  # the pepper survived the restart
        assert again.authenticate_key(*key) == Principal(uid, "alice", "trader", ())
        assert [p.username for p in again.users()] == ["bot", "alice"]
        assert again.users()[0].accounts == (11, 12)
    finally:
        again.close()
