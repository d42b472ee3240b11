"""Books built from market-data events: ``OrderBook`` (L3, by order) and ``LevelBook`` (L2).

Pure and synchronous. Each side keeps ``dict`` price -> total quantity plus a sorted list of
keys (the price for bids, minus the price for asks) so that on both sides the best level is
the last key: reading or removing it is O(1), other inserts and removals are a ``bisect``.

An outside source's book is taken as the source states it: a crossed or locked book (bid >=
ask) is *not* refused or repaired, because feeds are briefly crossed in normal operation
(two streams with different latencies, an auction, a missed message). ``crossed()`` says so
and callers decide. What is asserted is the books' own consistency: every stored level has a
positive quantity, every order a positive quantity and a known side, and the sorted keys
always match the levels (``check()`` verifies it all, for tests).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator

from mercato.marketdata.events import BUY, SELL, MdLevel, MdOrder, MdQuote

__all__ = ["BookSide", "LevelBook", "OrderBook"]


class BookSide:
    """Aggregated levels of one side: price -> total quantity, best level last in ``keys``."""

    __slots__ = ("is_bid", "keys", "levels", "side")

    def __init__(self, side: int) -> None:
        assert side == BUY or side == SELL, side
        self.side = side
        self.is_bid = side == BUY
        self.levels: dict[int, int] = {}
        self.keys: list[int] = []

    def __len__(self) -> int:
        return len(self.levels)

    def get(self, price: int) -> int:
        """The quantity at ``price`` (0: no level)."""
        return self.levels.get(price, 0)

    def set(self, price: int, qty: int) -> bool:
        """Make the level at ``price`` hold ``qty`` (0 removes it); False if nothing changed."""
        assert qty >= 0, qty
        levels = self.levels
        old = levels.get(price, 0)
        if old == qty:
            return False
        key = price if self.is_bid else -price
        keys = self.keys
        if qty == 0:
            del levels[price]
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        else:
            if old == 0:
                if not keys or key > keys[-1]:
                    keys.append(key)
                else:
                    keys.insert(bisect_left(keys, key), key)
            levels[price] = qty
        return True

    def best(self) -> tuple[int, int]:
        """The best (price, quantity), or (0, 0) when the side is empty."""
        if not self.keys:
            return 0, 0
        k = self.keys[-1]
        price = k if self.is_bid else -k
        return price, self.levels[price]

    def depth(self, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels (all when ``n`` <= 0) as (price, quantity), best first."""
        levels = self.levels
        sign = 1 if self.is_bid else -1
        keys = self.keys[-n:] if n > 0 else self.keys
        return [(k * sign, levels[k * sign]) for k in reversed(keys)]

    def clear(self) -> None:
        self.levels.clear()
        self.keys.clear()

    def check(self) -> None:
        """Assert the invariants (for tests: O(n log n))."""
        sign = 1 if self.is_bid else -1
        assert sorted(p * sign for p in self.levels) == self.keys, "keys out of step"
        assert all(q > 0 for q in self.levels.values()), "a level holds no quantity"


class _TwoSided:
    """What both books share: the two sides, top of book, depth."""

    __slots__ = ("asks", "bids", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(BUY)
        self.asks = BookSide(SELL)

    def side(self, side: int) -> BookSide:
        return self.bids if side == BUY else self.asks

    def best_bid(self) -> tuple[int, int]:
        return self.bids.best()

    def best_ask(self) -> tuple[int, int]:
        return self.asks.best()

    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (locked counts as crossed)."""
        return bool(self.bids.keys and self.asks.keys) and self.bids.keys[-1] >= -self.asks.keys[-1]

    def depth(self, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``n`` (bid, ask) levels as (price, quantity), best first."""
        return self.bids.depth(n), self.asks.depth(n)

    def quote(self, ts: int) -> MdQuote:
        """The top of the book as an ``MdQuote`` stamped ``ts`` (0s for an empty side)."""
        bid, bid_qty = self.bids.best()
        ask, ask_qty = self.asks.best()
        return MdQuote(self.symbol, ts, bid, bid_qty, ask, ask_qty)

    def levels(self, ts: int) -> Iterator[MdLevel]:
        """The whole book as ``MdLevel`` events (bids then asks, best first): a snapshot."""
        for book_side in (self.bids, self.asks):
            for price, qty in book_side.depth(0):
                yield MdLevel(self.symbol, ts, book_side.side, price, qty)


class LevelBook(_TwoSided):
    """An L2 book: aggregated levels only, fed ``MdLevel`` events."""

    __slots__ = ()

    def apply(self, e: MdLevel) -> bool:
        """Set the level; False when it already held that quantity (or was absent, for 0)."""
        assert e.symbol == self.symbol, (e.symbol, self.symbol)
        return self.side(e.side).set(e.price, e.qty)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    def check(self) -> None:
        self.bids.check()
        self.asks.check()


class OrderBook(_TwoSided):
    """An L3 book: orders by id and the levels they add up to, fed ``MdOrder`` events.

    An ``MdOrder`` states the order's quantity *after* the change, so an add, a partial
    cancel, an execution and a delete are all "the order now holds qty": unknown id and
    qty > 0 adds it; a known id with qty 0 removes it; otherwise its quantity is replaced
    (an increase is taken as stated: priority is not modelled here). A known id at another
    price or side moves: it leaves its old level and joins the new one. A delete of an
    unknown id changes nothing. ``apply`` returns the resulting ``MdLevel`` changes (0, 1 or
    2), so an L2 stream can be derived from an L3 one.
    """

    __slots__ = ("orders",)

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol)
        self.orders: dict[int, tuple[int, int, int]] = {}  # id -> (side, price, qty)

    def apply(self, e: MdOrder) -> list[MdLevel]:
        assert e.symbol == self.symbol, (e.symbol, self.symbol)
        assert e.qty >= 0, e.qty
        assert e.side == BUY or e.side == SELL, e.side
        out: list[MdLevel] = []
        old = self.orders.get(e.order_id)
        if old is not None:
            side, price, qty = old
            if side == e.side and price == e.price:
                if e.qty == qty:
                    return out
                self._change(out, e.ts, side, price, e.qty - qty)
                if e.qty:
                    self.orders[e.order_id] = (side, price, e.qty)
                else:
                    del self.orders[e.order_id]
                return out
            del self.orders[e.order_id]  # moved: out of the old level, into the new one
            self._change(out, e.ts, side, price, -qty)
        if e.qty:
            self.orders[e.order_id] = (e.side, e.price, e.qty)
            self._change(out, e.ts, e.side, e.price, e.qty)
        return out

    def _change(self, out: list[MdLevel], ts: int, side: int, price: int, delta: int) -> None:
        book_side = self.bids if side == BUY else self.asks
        qty = book_side.get(price) + delta
        assert qty >= 0, f"level {price} would hold {qty}"
        book_side.set(price, qty)
        out.append(MdLevel(self.symbol, ts, side, price, qty))

    def order(self, order_id: int) -> tuple[int, int, int] | None:
        """(side, price, qty) of a resting order, or None."""
        return self.orders.get(order_id)

    def clear(self) -> None:
        self.orders.clear()
        self.bids.clear()
        self.asks.clear()

    def check(self) -> None:
        """Assert that the levels are exactly the sums of the orders."""
        self.bids.check()
        self.asks.check()
        sums: dict[tuple[int, int], int] = {}
        for side, price, qty in self.orders.values():
            assert qty > 0 and (side == BUY or side == SELL)
            sums[side, price] = sums.get((side, price), 0) + qty
        levels = {(BUY, p): q for p, q in self.bids.levels.items()}
        levels.update({(SELL, p): q for p, q in self.asks.levels.items()})
        assert sums == levels, "levels differ from the sum of the orders"
