"""Login throttling and the per-user rate limit, on a fake clock; then over the REST API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mercato.api.base import RateLimiter
from mercato.api.throttle import LoginPolicy, LoginThrottle

from .test_rest import PASSWORD, World


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def fail(t: LoginThrottle, user: str = "alice", address: str = "1.1.1.1") -> float:
    """One attempt that fails (as the login handler does it): the wait, 0 if it ran."""
    return t.check(user, address)


def test_backoff_per_user_and_address_doubles_to_a_cap() -> None:
    clock = Clock()
    t = LoginThrottle(LoginPolicy(free=3, base=1.0, cap=8.0), clock)
    for _ in range(3):
        assert fail(t) == 0
    waits = []
    for _ in range(6):
        w = fail(t)
        assert w > 0  # refused: no password is checked
        waits.append(w)
        clock.t += w
        assert fail(t) == 0  # after the wait, one more try (a failure)
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]  # capped: never locked out for longer
    assert fail(t, address="2.2.2.2") == 0  # another address is not held back by this one
    t.succeeded("alice", "1.1.1.1")
    assert fail(t) == 0  # a success starts the pair over


def test_the_per_user_limit_spares_addresses_that_signed_in_before() -> None:
    clock = Clock()
    t = LoginThrottle(LoginPolicy(free=100, user_burst=10, user_rate=0.5), clock)
    assert fail(t, address="home") == 0
    t.succeeded("alice", "home")
    for i in range(10):  # an attacker spread over many addresses empties the user's bucket
        assert fail(t, address=f"10.0.0.{i}") == 0
    wait = fail(t, address="10.0.1.1")
    assert wait == pytest.approx(2.0)  # one failure's refill, at 0.5 a second
    assert fail(t, address="elsewhere") > 0  # an unknown address waits too
    assert fail(t, address="home") == 0  # the owner's known address does not
    assert fail(t, user="bob") == 0  # other users are not touched
    clock.t += wait
    assert fail(t, address="10.0.1.1") == 0


def test_the_per_address_limit_bounds_spraying_over_usernames() -> None:
    clock = Clock()
    t = LoginThrottle(LoginPolicy(address_burst=5, address_rate=1.0), clock)
    for i in range(5):
        assert fail(t, user=f"user{i}") == 0
    assert fail(t, user="user9") == pytest.approx(1.0)
    assert t.check_address("1.1.1.1") == pytest.approx(1.0)  # signups share it
    assert fail(t, user="user9", address="2.2.2.2") == 0


def test_the_throttle_maps_are_bounded() -> None:
    clock = Clock()
    t = LoginThrottle(LoginPolicy(max_entries=50, known_pairs=50), clock)
    for i in range(1_000):
        fail(t, user=f"u{i}", address=f"a{i}")
        t.succeeded(f"u{i}", f"a{i}")
    assert len(t) <= 4 * 50


def test_keys_of_one_user_share_a_bucket_and_each_key_has_its_own() -> None:
    clock = Clock()
    r = RateLimiter(10, 10, clock, user_rate=10, user_burst=20)
    allowed = sum(r.allow(f"k:{i % 4}", user_id=1) for i in range(100))  # four keys
    assert allowed == 20  # the user's burst, not four times a key's
    assert sum(r.allow("k:9", user_id=2) for _ in range(100)) == 10  # a key's own limit
    assert r.allow("u:3", user_id=3)  # a session: the user's bucket alone
    clock.t += 1.0
    assert sum(r.allow(f"k:{i % 4}", user_id=1) for i in range(100)) == 10  # refilled


def test_the_rate_limiter_is_bounded_least_recently_used_first() -> None:
    r = RateLimiter(1, 1, Clock(), max_buckets=100)
    assert r.allow("k:hot")
    for i in range(1_000):
        r.allow(f"ip:{i}")
        r.allow("k:hot")  # used: kept
    assert len(r) == 100
    assert not r.allow("k:hot")  # still remembered as spent


# -- over the API ------------------------------------------------------------------------


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path, rate=1_000.0, burst=1_000)
    yield world
    world.client.__exit__(None, None, None)


def test_login_is_throttled_with_retry_after_and_a_success_resets(w: World) -> None:
    w.client.app.state.api.logins = LoginThrottle(LoginPolicy(free=2, base=30.0))
    bad = {"username": "alice", "password": "wrong password!"}
    assert w.call("POST", "/v1/auth/login", json=bad).status_code == 401
    assert w.call("POST", "/v1/auth/login", json=bad).status_code == 401
    r = w.call("POST", "/v1/auth/login", json=bad)
    assert r.status_code == 429
    assert r.json()["error"]["code"] == "login_throttled"
    assert r.headers["Retry-After"] == "30"
    good = {"username": "alice", "password": PASSWORD}
    assert w.call("POST", "/v1/auth/login", json=good).status_code == 429  # also waits
    w.client.app.state.api.logins.clock = lambda: 10**9  # (time passes)
    assert w.call("POST", "/v1/auth/login", json=good).status_code == 200
    assert w.call("POST", "/v1/auth/login", json=bad).status_code == 401  # started over


def test_four_keys_do_not_multiply_a_users_rate_limit(tmp_path: Path) -> None:
    w = World(tmp_path, rate=1_000.0, burst=1_000)
    try:
        w.client.app.state.api.limiter = RateLimiter(0.001, 30, user_rate=0.001, user_burst=30)
        alice = w.ok("GET", "/v1/me", w.alice)["user_id"]
        keys = [w.headers(alice) for _ in range(4)]
        codes = [w.call("GET", "/v1/me", keys[i % 4]).status_code for i in range(60)]
        assert codes.count(200) == 30 - 1  # (one spent by the first /v1/me above)
        assert set(codes[29:]) == {429}
    finally:
        w.client.__exit__(None, None, None)
