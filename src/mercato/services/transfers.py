"""The accounts' transfers (deposits and withdrawals, of cash or of an instrument), a
projection of the core's ``LedgerPosted`` events, for ``/v2/account/activities``.

Memory keeps the newest ``max_kept`` (dropping the oldest, but with a SQL store only once
the store holds them, up to twice that many); ``horizon`` is the seq up to which memory
may be missing some (dropped, or from before a restart): the store answers for those.
Without a store, what came before the newest snapshot at start-up, or fell out of the
window, is not known.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import msgspec

from mercato.domain.events import Event, LedgerPosted
from mercato.domain.ledger import EXTERNAL

KINDS: Final = ("deposit", "withdrawal")
MAX_KEPT: Final = 10_000


class Transfer(msgspec.Struct, frozen=True, gc=False):
    """``amount`` of ``asset`` into ``account`` (negative: out of it), at event ``seq``."""

    seq: int
    ts: int
    account: int
    asset: str
    amount: int


def transfers_of(e: LedgerPosted) -> list[Transfer]:
    if e.kind not in KINDS:
        return []
    return [
        Transfer(e.seq, e.ts, x.account, x.asset, x.amount)
        for x in e.entries
        if x.account != EXTERNAL
    ]


class TransferLog:
    """The newest transfers in memory, bounded (the module's docstring)."""

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self.max_kept = max_kept
        self.horizon = 0
        self.durable: Callable[[], int] | None = None  # the store's seq, with a store
        self._kept: deque[Transfer] = deque()

    def apply(self, events: Iterable[Event]) -> None:
        for e in events:
            if type(e) is LedgerPosted and e.kind in KINDS:
                self._kept.extend(transfers_of(e))
        kept = self._kept
        if len(kept) <= self.max_kept:
            return
        durable = self.durable() if self.durable is not None else None
        while len(kept) > self.max_kept:
            if durable is not None and kept[0].seq > durable and len(kept) <= 2 * self.max_kept:
                break  # not in the store yet
            self.horizon = max(self.horizon, kept.popleft().seq)

    def page(self, accounts: Sequence[int], before: int | None, limit: int) -> list[Transfer]:
        """``accounts``' transfers memory holds above the horizon, newest first, with seq
        below ``before``."""
        out: list[Transfer] = []
        mine = set(accounts)
        for t in reversed(self._kept):
            if len(out) >= limit or t.seq <= self.horizon:
                break
            if t.account in mine and (before is None or t.seq < before):
                out.append(t)
        return out

    def __len__(self) -> int:
        return len(self._kept)
