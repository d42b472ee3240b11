"""API keys' life: expiry, the cap per user, revocation by owner, its listeners and the
sweep of other processes' revokes; sessions per user bounded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select

from mercato.adapters.sql.schema import sessions
from mercato.services.auth import AuthError, AuthStore, KeyInfo

PW = "correct horse battery"


class Wall:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def wall() -> Wall:
    return Wall()


@pytest.fixture
def store(tmp_path: Path, wall: Wall) -> Iterator[AuthStore]:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    s = AuthStore(f"sqlite:///{tmp_path / 'auth.db'}", hasher=hasher, wall=wall)
    yield s
    s.close()


def test_an_expiring_key_works_until_it_expires_cached_or_not(store: AuthStore, wall: Wall) -> None:
    uid = store.create_user("alice", PW)
    key = store.create_key(uid, expires_at=wall.t + 60)
    grant = store.verify_key(*key)
    assert grant is not None and grant.expires_at == wall.t + 60
    wall.t += 59.9
    assert store.authenticate_key(*key) is not None  # (cached)
    wall.t += 0.1
    assert store.authenticate_key(*key) is None  # cached, and refused
    assert store.keys(uid) == []
    other = AuthStore(str(store.engine.url), migrate=False, wall=wall)
    try:
        assert other.authenticate_key(*key) is None  # not cached: refused from SQL too
    finally:
        other.close()


def test_a_key_cannot_expire_in_the_past(store: AuthStore, wall: Wall) -> None:
    uid = store.create_user("alice", PW)
    with pytest.raises(AuthError) as e:
        store.create_key(uid, expires_at=wall.t)
    assert e.value.code == "invalid_expiry"


def test_keys_per_user_are_capped_counting_live_keys_only(tmp_path: Path, wall: Wall) -> None:
    store = AuthStore(f"sqlite:///{tmp_path / 'a.db'}", wall=wall, max_keys_per_user=3)
    try:
        uid = store.create_user("alice", PW)
        bob = store.create_user("bob.b", PW)
        first = store.create_key(uid)
        store.create_key(uid, expires_at=wall.t + 10)
        store.create_key(uid)
        with pytest.raises(AuthError) as e:
            store.create_key(uid)
        assert e.value.code == "too_many_keys"
        store.create_key(bob)  # another user's count is theirs
        assert store.revoke_key(first[0], user_id=uid)
        store.create_key(uid)  # a revoked key frees its place
        wall.t += 10
        store.create_key(uid)  # and so does an expired one
        assert len(store.keys(uid)) == 3
    finally:
        store.close()


def test_only_the_owner_revokes_a_key_and_listeners_hear_it(store: AuthStore) -> None:
    alice, bob = store.create_user("alice", PW), store.create_user("bob.b", PW)
    key = store.create_key(alice)
    heard: list[str] = []
    store.on_revoke(heard.append)
    assert store.authenticate_key(*key) is not None  # cached
    assert not store.revoke_key(key[0], user_id=bob)  # not bob's: nothing happens
    assert store.authenticate_key(*key) is not None and heard == []
    assert store.revoke_key(key[0], user_id=alice)
    assert store.authenticate_key(*key) is None and heard == [key[0]]
    assert not store.revoke_key(key[0])  # already revoked: no second notice
    assert heard == [key[0]]


def test_keys_list_shows_live_keys_without_secrets(store: AuthStore, wall: Wall) -> None:
    uid = store.create_user("alice", PW)
    a = store.create_key(uid)
    wall.t += 1
    b = store.create_key(uid, expires_at=wall.t + 100)
    c = store.create_key(uid)
    store.revoke_key(c[0])
    assert store.keys(uid) == [
        KeyInfo(a[0], wall.t - 1, None),
        KeyInfo(b[0], wall.t, wall.t + 100),
    ]


def test_a_poll_finds_revokes_by_other_stores_once_each(store: AuthStore, wall: Wall) -> None:
    uid = store.create_user("alice", PW)
    a, b = store.create_key(uid), store.create_key(uid)
    heard: list[str] = []
    store.on_revoke(heard.append)
    assert store.authenticate_key(*a) is not None  # cached
    other = AuthStore(str(store.engine.url), migrate=False, wall=lambda: 0.0)  # a clock behind
    try:
        other.revoke_key(a[0])
        assert store.poll_revocations() == [a[0]]
        assert heard == [a[0]] and store.authenticate_key(*a) is None
        assert store.poll_revocations() == []  # each once
        other.revoke_key(b[0])  # stamped after the first whatever its clock
    finally:
        other.close()
    assert store.poll_revocations() == [b[0]]
    assert heard == [a[0], b[0]]


def test_sessions_per_user_are_bounded_the_oldest_ends(tmp_path: Path, wall: Wall) -> None:
    store = AuthStore(f"sqlite:///{tmp_path / 'a.db'}", wall=wall, max_sessions_per_user=3)
    try:
        uid = store.create_user("alice", PW)
        tokens = []
        for _ in range(5):
            tokens.append(store.create_session(uid))
            wall.t += 1
        assert [store.session(t) is not None for t in tokens] == [False, False, True, True, True]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(sessions)).scalar() == 3
    finally:
        store.close()


def test_a_failed_poll_leaves_cached_keys_working(tmp_path: Path) -> None:
    from sqlalchemy.exc import OperationalError

    clock = [0.0]
    store = AuthStore(f"sqlite:///{tmp_path / 'a.db'}", clock=lambda: clock[0])
    try:
        key = store.create_key(store.create_user("alice", PW))
        assert store.authenticate_key(*key) is not None

        def down() -> list[str]:
            raise OperationalError("SELECT", {}, Exception("the database is away"))

        store.poll_revocations = down  # type: ignore[method-assign]
        clock[0] += 2.0
        assert store.authenticate_key(*key) is not None  # cached: no 500 for the outage
    finally:
        store.close()
