"""The open WebSockets by the API key that signed them in, so that a key that stops being
good closes them, on every endpoint (``/v1/ws``, the Alpaca streams):

- revoked through this process's ``AuthStore`` (``DELETE /v1/keys/{key_id}``, by its owner
  or an administrator): at once, from the revoke itself (``AuthStore.on_revoke``);
- expired: when it expires (a timer per socket, from the key's ``expires_at``);
- revoked by another process (another gateway, a script on the database): at the next
  poll, one indexed query every ``sweep_every`` seconds while sockets are open
  (``AuthStore.poll_revocations``, which REST requests also run once a second).

Each socket gives a ``close(reason)`` callback; the endpoint closes with 1008 and that
reason (``"key revoked"``, ``"key expired"``). What is held is one entry per open socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from mercato.services.auth import AuthStore, KeyGrant

if TYPE_CHECKING:
    from mercato.api.base import ApiBase
    from mercato.api.outbox import Outbox

__all__ = [
    "KEY_EXPIRED",
    "KEY_REVOKED",
    "SWEEP_EVERY",
    "KeyWatch",
    "close_unless_signed_in",
    "close_with_key",
]

log = logging.getLogger(__name__)

SWEEP_EVERY: Final = 1.0  # seconds between polls for other processes' revokes
KEY_REVOKED: Final = "key revoked"
KEY_EXPIRED: Final = "key expired"
Close = Callable[[str], None]


class _Watch:
    __slots__ = ("close", "key_id", "timer")

    def __init__(self, key_id: str, close: Close) -> None:
        self.key_id = key_id
        self.close = close
        self.timer: asyncio.TimerHandle | None = None


class KeyWatch:
    """Open sockets by key id; see the module's docstring."""

    def __init__(
        self,
        auth: AuthStore,
        *,
        sweep_every: float = SWEEP_EVERY,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.auth = auth
        self.sweep_every = sweep_every
        self.wall = wall
        self._by_key: dict[str, set[_Watch]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        auth.on_revoke(self.revoked)

    def watch(self, grant: KeyGrant, close: Close) -> Callable[[], None]:
        """Follow a socket signed in with ``grant``'s key; the result stops following it
        (call it when the socket ends)."""
        w = _Watch(grant.key_id, close)
        self._by_key.setdefault(grant.key_id, set()).add(w)
        loop = asyncio.get_running_loop()
        if grant.expires_at is not None:
            delay = max(0.0, grant.expires_at - self.wall())
            w.timer = loop.call_later(delay, self._fire, w, KEY_EXPIRED)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())
        return lambda: self._drop(w)

    def watching(self, key_id: str | None = None) -> int:
        """How many sockets are followed (signed in with ``key_id``, or with any key)."""
        if key_id is not None:
            return len(self._by_key.get(key_id, ()))
        return sum(len(ws) for ws in self._by_key.values())

    def revoked(self, key_id: str) -> None:
        """``AuthStore``'s revoke listener: close the key's sockets now."""
        for w in list(self._by_key.get(key_id, ())):
            self._fire(w, KEY_REVOKED)

    def _fire(self, w: _Watch, reason: str) -> None:
        self._drop(w)
        try:
            w.close(reason)
        except Exception:  # one socket's failure must not keep the others open
            log.exception("closing a socket of key %s failed", w.key_id)

    def _drop(self, w: _Watch) -> None:
        if w.timer is not None:
            w.timer.cancel()
            w.timer = None
        watches = self._by_key.get(w.key_id)
        if watches is not None:
            watches.discard(w)
            if not watches:
                del self._by_key[w.key_id]

    async def _sweep(self) -> None:
        """While sockets are open: poll for keys another process revoked (the store tells
        ``revoked`` of each)."""
        while self._by_key:
            await asyncio.sleep(self.sweep_every)
            if not self._by_key:
                return
            try:  # one indexed query, on the loop: the listeners must run here
                self.auth.poll_revocations()
            except Exception:  # the database is away: try again at the next sweep
                log.exception("polling for revoked keys failed")

    async def close(self) -> None:
        """Stop the sweeper (at shutdown)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


POLICY_VIOLATION: Final = 1008


class _Signed(Protocol):
    principal: Any


def close_with_key(api: ApiBase, grant: KeyGrant, outbox: Outbox) -> Callable[[], None]:
    """Close ``outbox``'s socket with 1008 when ``grant``'s key stops working; the result
    stops following it."""
    return api.keys.watch(grant, lambda why: outbox.close(POLICY_VIOLATION, why))


def close_unless_signed_in(api: ApiBase, conn: _Signed, outbox: Outbox) -> asyncio.TimerHandle:
    """Close the socket with 1008 ("auth timeout") if ``conn`` has not signed in within
    ``Limits.ws_idle_timeout`` (``api/limits.py``); cancel the result when it ends."""

    def check() -> None:
        if conn.principal is None:
            outbox.close(POLICY_VIOLATION, "auth timeout")

    return asyncio.get_running_loop().call_later(api.limits.ws_idle_timeout, check)
