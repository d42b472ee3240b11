"""GTD expiry: the live orders that expire at a time, soonest first (``Expiries``).

A heap of ``(expire_ts, order_id)``. An order that ends otherwise (filled, cancelled)
leaves its entry behind, and ``due`` skips it when it comes up; the heap is rebuilt from
the live orders whenever it holds twice as many entries as when last rebuilt, so stale
entries never outnumber the live ones by much (bounded by the live GTD orders, amortized
O(log n) an order).
"""

from __future__ import annotations

import heapq
from typing import Final

from mercato.domain.orders import Order

MIN_REBUILD: Final = 1024  # entries below which the heap is never rebuilt


class Expiries:
    def __init__(self) -> None:
        self.heap: list[tuple[int, int]] = []
        self._rebuild_at = MIN_REBUILD

    def __len__(self) -> int:
        return len(self.heap)

    def next_ts(self) -> int:
        """The earliest expiry time held (0: none); the entry may be stale."""
        return self.heap[0][0] if self.heap else 0

    def add(self, o: Order, live: dict[int, Order]) -> None:
        """Hold ``o`` (``o.expire_ts`` > 0) until its time; ``live``: every live order by
        id (the engine's or the venue's), read only when the heap is rebuilt."""
        heapq.heappush(self.heap, (o.expire_ts, o.order_id))
        if len(self.heap) >= self._rebuild_at:
            self.heap = [(x.expire_ts, i) for i, x in live.items() if x.expire_ts]
            heapq.heapify(self.heap)
            self._rebuild_at = max(MIN_REBUILD, 2 * len(self.heap))

    def due(self, ts: int, live: dict[int, Order]) -> list[Order]:
        """The live orders whose time is at or before ``ts``, soonest first (ties: lower
        id first), taken out of the heap; [] at once when none is due."""
        heap = self.heap
        if not heap or heap[0][0] > ts:
            return []
        out: list[Order] = []
        while heap and heap[0][0] <= ts:
            expire_ts, order_id = heapq.heappop(heap)
            o = live.get(order_id)
            if o is not None and o.expire_ts == expire_ts:
                out.append(o)
        return out
