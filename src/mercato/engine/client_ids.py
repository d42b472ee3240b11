"""The core's table of client order ids: the idempotency keys it answers for by itself.

A ``client_order_id`` names one accepted order per account and trading day
(``docs/risk.md``). The core keeps the key of every live order and, in the order they
finished, the keys of the newest ``max_done`` finished ones; an older finished order's key
is forgotten, so the table grows with the live orders and not with the traffic. A repeat
of a forgotten key is answered by the gateway from the order history (memory, then the SQL
store) before it reaches the core; ``forgotten`` tells the gateway whether it needs to
look (``docs/api.md``, idempotency).

Everything here is core state: in the snapshot and the state hash (``core_snapshot.py``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

# The finished orders' keys kept. The gateway's own look-up finds an order in the history
# once the OMS has applied its events (at once, in process); the store holds it once the
# persister commits it, and until then the OMS keeps it in memory (up to OVERSHOOT times
# its 5,000-order window: 40,000 finished orders). This covers more than that, so a key
# is forgotten here only long after the history can answer for it.
MAX_DONE: Final = 65_536

Key = tuple[int, str]  # (account, client order id)


class ClientIds:
    """(account, client order id) -> order id, for live orders and recently finished ones."""

    __slots__ = ("_done", "_keys", "_live", "day_seq", "forgotten", "max_done")

    def __init__(self, max_done: int = MAX_DONE) -> None:
        assert max_done >= 0
        self.max_done = max_done
        self._live: dict[Key, int] = {}
        self._keys: dict[int, Key] = {}  # live order id -> its key
        # finished orders' keys, oldest finished first (an OrderedDict: a plain dict that
        # loses its first key on every insert gets slower to find its first key)
        self._done: OrderedDict[Key, int] = OrderedDict()
        self.forgotten = 0  # keys dropped from ``_done`` since the trading day began
        self.day_seq = 0  # the seq at which the trading day began (the last EndOfDay)

    def get(self, account: int, client_order_id: str) -> int | None:
        """The order this key names today, if the table still holds it."""
        key = (account, client_order_id)
        oid = self._live.get(key)
        return oid if oid is not None else self._done.get(key)

    def opened(self, order_id: int, account: int, client_order_id: str) -> None:
        """An order with this key was accepted."""
        key = (account, client_order_id)
        self._live[key] = order_id
        self._keys[order_id] = key

    def closed(self, order_id: int) -> None:
        """Order ``order_id`` ended: its key (if it has one) joins the finished ones."""
        key = self._keys.pop(order_id, None)
        if key is None:
            return
        if self._live.get(key) == order_id:
            del self._live[key]
        done = self._done
        done.pop(key, None)
        done[key] = order_id
        while len(done) > self.max_done:
            done.popitem(last=False)
            self.forgotten += 1

    def new_day(self, seq: int) -> None:
        """End of day: every key may name a new order from now on (seq: the last of the day)."""
        self._live.clear()
        self._keys.clear()
        self._done.clear()
        self.forgotten = 0
        self.day_seq = seq

    def __len__(self) -> int:
        return len(self._live) + len(self._done)

    # -- snapshots -----------------------------------------------------------------------

    def live_items(self) -> list[tuple[int, str, int]]:
        """The live orders' keys, sorted: (account, client order id, order id)."""
        return sorted((a, cid, oid) for (a, cid), oid in self._live.items())

    def done_items(self) -> list[tuple[int, str, int]]:
        """The finished orders' keys, oldest finished first."""
        return [(a, cid, oid) for (a, cid), oid in self._done.items()]

    def restore(self, live: list[tuple[int, str, int]], done: list[tuple[int, str, int]]) -> None:
        for account, cid, oid in live:
            self.opened(oid, account, cid)
        for account, cid, oid in done:
            self._done[(account, cid)] = oid
        while len(self._done) > self.max_done:
            self._done.popitem(last=False)
            self.forgotten += 1
