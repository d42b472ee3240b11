"""The latest market data kept for snapshots: recent trades and one-minute bars per symbol.

A projection of the core's events (``Platform.on_events``), bounded per symbol: the last
``max_trades`` trades and ``max_bars`` bars; older ones are dropped (the SQL store and,
later, the analytics history keep everything). Quotes and depth are read from the book
itself, which is always current. Paper fills are not market data and are left out.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec

from mercato.domain.events import Event, Trade

MINUTE_NS = 60 * 1_000_000_000


class TradePrint(msgspec.Struct, frozen=True, gc=False):
    seq: int
    ts: int
    price: int
    qty: int
    taker_side: int


class Bar(msgspec.Struct, gc=False):
    start_ns: int  # the minute's first nanosecond
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int


class MarketTape:
    """Recent trades and one-minute bars per symbol, from the event stream."""

    def __init__(self, max_trades: int = 1_000, max_bars: int = 1_440) -> None:
        self.max_trades = max_trades
        self.max_bars = max_bars
        self._trades: dict[str, deque[TradePrint]] = {}
        self._bars: dict[str, deque[Bar]] = {}

    def apply(self, events: Iterable[Event]) -> None:
        for e in events:
            if isinstance(e, Trade) and e.maker_account > 0:  # not a paper fill
                self._trade(e)

    def _trade(self, e: Trade) -> None:
        tape = self._trades.get(e.symbol)
        if tape is None:
            tape = self._trades[e.symbol] = deque(maxlen=self.max_trades)
            self._bars[e.symbol] = deque(maxlen=self.max_bars)
        tape.append(TradePrint(e.seq, e.ts, e.price, e.qty, e.taker_side))
        bars = self._bars[e.symbol]
        start = e.ts - e.ts % MINUTE_NS
        if bars and bars[-1].start_ns == start:
            b = bars[-1]
            b.high = max(b.high, e.price)
            b.low = min(b.low, e.price)
            b.close = e.price
            b.volume += e.qty
            b.trades += 1
        elif not bars or start > bars[-1].start_ns:
            bars.append(Bar(start, e.price, e.price, e.price, e.price, e.qty, 1))
        # (a trade stamped before the newest bar's minute joins no bar: time went back)

    def trades(self, symbol: str, limit: int) -> list[TradePrint]:
        """The newest ``limit`` trades, newest first."""
        tape = self._trades.get(symbol, deque())
        return list(reversed(tape))[:limit]

    def bars(self, symbol: str, limit: int) -> list[Bar]:
        """The newest ``limit`` one-minute bars, oldest first."""
        bars = list(self._bars.get(symbol, deque()))
        return bars[-limit:] if limit else []
