"""The order book of one instrument: price levels in price-time priority, and waiting stops."""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

from mercato.domain.orders import Order
from mercato.domain.types import Side, TradingStatus

BUY: Final = 1
SELL: Final = 2
OPEN: Final = 1
PRE_OPEN: Final = 4  # PRE_OPEN, OPENING_AUCTION, CLOSING_AUCTION are 4, 5, 6
# True when this module runs as mypyc-compiled code: then a written-out binary search over
# unboxed ints beats calling ``bisect`` (which compares boxed ints); in plain Python the C
# ``bisect`` wins.
COMPILED: Final = not __file__.endswith(".py")


def _bisect(keys: list[int], key: int) -> int:
    """The index of the first element >= ``key`` in the ascending ``keys`` (bisect_left)."""
    if not COMPILED:
        return bisect_left(keys, key)
    lo = 0
    hi = len(keys)
    while lo < hi:
        mid = (lo + hi) >> 1
        if keys[mid] < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


class Level:
    """One price level: orders in time priority (dicts keep insertion order) and their total."""

    __slots__ = ("orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.total = 0
        self.orders: dict[int, Order] = {}


class BookSide:
    """One side of a book.

    ``keys`` is sorted ascending and holds the price for bids and minus the price for asks,
    so that on both sides the best level is the last key: popping it is O(1).
    """

    __slots__ = ("is_bid", "keys", "levels", "side")

    def __init__(self, side: int) -> None:
        self.side = side
        self.is_bid = side == BUY
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def best_price(self) -> int:
        """The best price, or 0 when the side is empty (prices are positive)."""
        keys = self.keys
        if not keys:
            return 0
        k = keys[-1]
        return k if self.is_bid else -k

    def add(self, order: Order) -> Level:
        """Queue ``order`` at the back of its price level."""
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            key = price if self.is_bid else -price
            keys = self.keys
            keys.insert(_bisect(keys, key), key)
        level.orders[order.order_id] = order
        level.total += order.remaining
        return level

    def remove(self, order: Order) -> Level:
        """Take ``order`` out of its level, dropping the level when it empties."""
        level = self.levels[order.price]
        del level.orders[order.order_id]
        level.total -= order.remaining
        if not level.orders:
            self.drop(level)
        return level

    def drop(self, level: Level) -> None:
        del self.levels[level.price]
        keys = self.keys
        key = level.price if self.is_bid else -level.price
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[_bisect(keys, key)]

    def depth(self, n: int) -> list[tuple[int, int]]:
        """The best ``n`` levels as (price, total quantity), best first."""
        out: list[tuple[int, int]] = []
        levels = self.levels
        for k in reversed(self.keys[-n:] if n > 0 else self.keys):
            price = k if self.is_bid else -k
            out.append((price, levels[price].total))
        return out

    def levels_best_first(self) -> list[Level]:
        levels = self.levels
        return [levels[k if self.is_bid else -k] for k in reversed(self.keys)]


class Book:
    """Everything the engine keeps per instrument."""

    __slots__ = (
        "asks",
        "bids",
        "indicative",
        "last_price",
        "lot_size",
        "market_asks",
        "market_bids",
        "on_close",
        "price_scale",
        "qty_scale",
        "status",
        "stops",
        "stops_dirty",
        "symbol",
        "tick_size",
    )

    def __init__(
        self, symbol: str, tick_size: int, lot_size: int, price_scale: int, qty_scale: int
    ) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.price_scale = price_scale
        self.qty_scale = qty_scale
        self.status: int = int(TradingStatus.OPEN)
        self.bids = BookSide(int(Side.BUY))
        self.asks = BookSide(int(Side.SELL))
        self.last_price = 0  # 0 until the first trade
        self.stops: dict[int, Order] = {}  # waiting stops, in the order they were accepted
        self.stops_dirty = False  # True when the stops must be compared with the last price
        # while an auction collects orders (PRE_OPEN, OPENING_AUCTION, CLOSING_AUCTION):
        # its market orders, in the order they were accepted, outside the price levels
        self.market_bids: dict[int, Order] = {}
        self.market_asks: dict[int, Order] = {}
        # on-close (CLS) orders waiting for the closing auction, in acceptance order
        self.on_close: dict[int, Order] = {}
        # the last indicative (price, volume, surplus, surplus side) published while an
        # auction collects: always ``uncross_price`` of the book then, NO_PRICE otherwise
        self.indicative: tuple[int, int, int, int] = (0, 0, 0, 0)

    def side(self, is_buy: bool) -> BookSide:
        return self.bids if is_buy else self.asks

    def market_orders(self, is_buy: bool) -> dict[int, Order]:
        return self.market_bids if is_buy else self.market_asks

    @property
    def collecting(self) -> bool:
        """Whether an auction collects orders now: nothing matches until it uncrosses."""
        return self.status >= PRE_OPEN

    def would_take(self, is_buy: bool, price: int) -> bool:
        """Whether a limit order at ``price`` would cross the best opposite price."""
        if is_buy:
            best = self.asks.best_price()
            return best != 0 and price >= best
        best = self.bids.best_price()
        return best != 0 and price <= best

    def assert_uncrossed(self) -> None:
        bid, ask = self.bids.best_price(), self.asks.best_price()
        assert bid == 0 or ask == 0 or bid < ask, f"{self.symbol}: crossed book {bid} >= {ask}"
