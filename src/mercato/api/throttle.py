"""Login throttling: password guessing slowed down per (user, client address), per user and
per address, without letting an attacker lock a user out for long.

Every attempt (``POST /v1/auth/login``; ``signup`` counts for its address) goes through
``check`` before any password is hashed; a refusal is ``429 login_throttled`` with
``Retry-After`` in seconds and costs the server no argon2 work. The rules:

- per (username, address): ``free`` failures (5), then each further attempt waits
  ``base`` x 2^(n - free) seconds after the last failure (1, 2, 4, ...), at most ``cap``
  (300 s: five minutes), however many failures came before. A success resets it.
- per username, from every address together (a looser limit, for guessing spread over
  many addresses): a bucket of ``user_burst`` failures (50), refilled at ``user_rate``
  a second (one every 6 s). An address that signed in as that user successfully before
  (one of the last ``known_pairs`` such pairs) is exempt: an attacker who keeps the
  bucket empty cannot lock its owner out of the devices they use.
- per address, over every username (spraying): a bucket of ``address_burst`` attempts
  (30), refilled at ``address_rate`` a second (1); this bounds the hashing work one
  address can ask for.

An attempt counts as a failure from the moment it is checked until it succeeds, so that
concurrent guesses cannot all pass before the first failure is recorded. Every map is
bounded (``max_entries``, least recently used dropped first; a dropped entry starts over).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeVar

__all__ = ["LoginPolicy", "LoginThrottle"]

K = TypeVar("K")
V = TypeVar("V")
FORGET_AFTER: Final = 3_600.0  # seconds: a pair's failures are forgotten this long after


@dataclass(frozen=True)
class LoginPolicy:
    free: int = 5
    base: float = 1.0
    cap: float = 300.0
    user_burst: int = 50
    user_rate: float = 1 / 6
    address_burst: int = 30
    address_rate: float = 1.0
    known_pairs: int = 100_000
    max_entries: int = 100_000


class _Lru(OrderedDict[K, V]):
    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = most

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.most:
            self.popitem(last=False)


class LoginThrottle:
    """The rules of the module's docstring, on an injected clock."""

    def __init__(
        self, policy: LoginPolicy | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = p = policy or LoginPolicy()
        self.clock = clock
        self._pairs: _Lru[tuple[str, str], tuple[int, float]] = _Lru(p.max_entries)
        self._users: _Lru[str, tuple[float, float]] = _Lru(p.max_entries)
        self._addresses: _Lru[str, tuple[float, float]] = _Lru(p.max_entries)
        self._known: _Lru[tuple[str, str], None] = _Lru(p.known_pairs)

    def check(self, username: str, address: str) -> float:
        """0 if the attempt may go ahead (it then counts as a failure until ``succeeded``),
        else the seconds to wait."""
        p, now = self.policy, self.clock()
        user, pair = username.lower(), (username.lower(), address)
        wait = self._bucket_wait(self._addresses, address, p.address_burst, p.address_rate, now)
        failures, last = self._pairs.get(pair, (0, now))
        if now - last > FORGET_AFTER:
            failures = 0
        if failures >= p.free:
            backoff = min(p.cap, p.base * 2 ** (failures - p.free))
            wait = max(wait, last + backoff - now)
        known = pair in self._known
        if not known:
            wait = max(wait, self._bucket_wait(self._users, user, p.user_burst, p.user_rate, now))
        if wait > 0:
            return wait
        self._spend(self._addresses, address, p.address_burst, p.address_rate, now)
        if not known:
            self._spend(self._users, user, p.user_burst, p.user_rate, now)
        self._pairs.put(pair, (failures + 1, now))
        return 0.0

    def check_address(self, address: str) -> float:
        """As ``check``, for an attempt that names no existing user (``signup``): only the
        address's bucket."""
        p, now = self.policy, self.clock()
        wait = self._bucket_wait(self._addresses, address, p.address_burst, p.address_rate, now)
        if wait <= 0:
            self._spend(self._addresses, address, p.address_burst, p.address_rate, now)
        return wait

    def succeeded(self, username: str, address: str) -> None:
        """The attempt ``check`` let through succeeded: the pair starts over, and the
        address is known for this user from now on."""
        pair = (username.lower(), address)
        self._pairs.pop(pair, None)
        self._known.put(pair, None)
        user = pair[0]
        if user in self._users:  # it was not a failure after all
            p, now = self.policy, self.clock()
            tokens = self._level(self._users, user, p.user_burst, p.user_rate, now)
            self._users.put(user, (min(float(p.user_burst), tokens + 1.0), now))

    @staticmethod
    def retry_after(wait: float) -> int:
        """``wait`` as a Retry-After header's whole seconds (at least 1)."""
        return max(1, math.ceil(wait))

    # -- buckets -------------------------------------------------------------------------

    @staticmethod
    def _level(
        table: _Lru[str, tuple[float, float]], key: str, burst: int, rate: float, now: float
    ) -> float:
        tokens, last = table.get(key, (float(burst), now))
        return min(float(burst), tokens + (now - last) * rate)

    def _bucket_wait(
        self, table: _Lru[str, tuple[float, float]], key: str, burst: int, rate: float, now: float
    ) -> float:
        tokens = self._level(table, key, burst, rate, now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def _spend(
        self, table: _Lru[str, tuple[float, float]], key: str, burst: int, rate: float, now: float
    ) -> None:
        table.put(key, (self._level(table, key, burst, rate, now) - 1.0, now))

    def __len__(self) -> int:
        return len(self._pairs) + len(self._users) + len(self._addresses) + len(self._known)
