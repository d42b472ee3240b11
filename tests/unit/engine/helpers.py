"""A tiny command builder and event views for the engine tests.

``buy(1, 10, 100)`` is a GTC limit buy, id 1, 10 @ 100; ``buy(2, 10)`` a market buy;
``buy(3, 10, stop=105)`` a stop; ``buy(4, 10, 106, stop=105)`` a stop-limit.
``Market`` wraps an engine with one instrument (``SYM``) and answers compact event tuples.
"""

from __future__ import annotations

from typing import Any

from mercato.domain import (
    AddInstrument,
    AuctionIndicative,
    BookDelta,
    CancelOrder,
    Command,
    EndOfDay,
    Event,
    InstrumentAdded,
    NewOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    ReplaceOrder,
    SetTradingStatus,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.engine import Engine

SYM = "ACME"
BUY, SELL = int(Side.BUY), int(Side.SELL)
GTC, DAY, IOC, FOK = (int(t) for t in TimeInForce if t <= TimeInForce.FOK)


def _order(
    side: int,
    oid: int,
    qty: int,
    price: int = 0,
    *,
    acct: int,
    stop: int = 0,
    tif: int = GTC,
    post_only: bool = False,
    sym: str = SYM,
    ts: int = 0,
    type: int | None = None,
) -> NewOrder:
    if type is None:
        if stop:
            type = OrderType.STOP_LIMIT if price else OrderType.STOP
        else:
            type = OrderType.LIMIT if price else OrderType.MARKET
    return NewOrder(
        ts=ts,
        order_id=oid,
        account=acct,
        symbol=sym,
        side=side,
        type=int(type),
        qty=qty,
        tif=tif,
        price=price,
        stop_price=stop,
        post_only=post_only,
    )


def buy(oid: int, qty: int, price: int = 0, *, acct: int = 1, **kw: Any) -> NewOrder:
    """A buy: limit with a price, market without, stop(-limit) with ``stop=``.

    Keywords: ``stop``, ``tif``, ``post_only``, ``sym``, ``ts``, ``type`` (to force one).
    """
    return _order(BUY, oid, qty, price, acct=acct, **kw)


def sell(oid: int, qty: int, price: int = 0, *, acct: int = 2, **kw: Any) -> NewOrder:
    """A sell, like ``buy``; account 2 unless told, so that buys and sells trade by default."""
    return _order(SELL, oid, qty, price, acct=acct, **kw)


def cancel(oid: int, *, sym: str = SYM, ts: int = 0) -> CancelOrder:
    return CancelOrder(ts=ts, order_id=oid, symbol=sym)


def replace(
    oid: int, price: int, qty: int, *, stop: int = 0, sym: str = SYM, ts: int = 0
) -> ReplaceOrder:
    return ReplaceOrder(ts=ts, order_id=oid, symbol=sym, price=price, qty=qty, stop_price=stop)


def halt(sym: str = SYM) -> SetTradingStatus:
    return SetTradingStatus(symbol=sym, status=TradingStatus.HALTED)


def resume(sym: str = SYM) -> SetTradingStatus:
    return SetTradingStatus(symbol=sym, status=TradingStatus.OPEN)


def status(st: TradingStatus, sym: str = SYM) -> SetTradingStatus:
    return SetTradingStatus(symbol=sym, status=st)


def eod(ts: int = 0) -> EndOfDay:
    return EndOfDay(ts=ts)


def view(e: Event) -> tuple[Any, ...]:
    """A compact, readable tuple for one event (the fields a test usually cares about)."""
    if isinstance(e, OrderAccepted):
        return ("accepted", e.order_id)
    if isinstance(e, Trade):
        return ("trade", e.price, e.qty, e.taker_order_id, e.maker_order_id)
    if isinstance(e, OrderCancelled):
        return ("cancelled", e.order_id, e.reason, e.remaining)
    if isinstance(e, BookDelta):
        return ("delta", "bid" if e.side == BUY else "ask", e.price, e.qty)
    if isinstance(e, Rejected):
        return ("rejected", e.command, e.order_id, e.reason)
    if isinstance(e, OrderReplaced):
        return ("replaced", e.order_id, e.price, e.qty, "kept" if e.kept_priority else "lost")
    if isinstance(e, OrderTriggered):
        return ("triggered", e.order_id, e.last_price)
    if isinstance(e, OrderExpired):
        return ("expired", e.order_id, e.remaining)
    if isinstance(e, TradingStatusChanged):
        return ("status", e.symbol, TradingStatus(e.status).name)
    if isinstance(e, InstrumentAdded):
        return ("instrument", e.symbol)
    if isinstance(e, AuctionIndicative):
        return ("indicative", e.price, e.qty, e.surplus, e.surplus_side)
    raise AssertionError(f"unexpected event {e!r}")


def trades(events: list[Event]) -> list[tuple[int, int, int, int]]:
    """(price, qty, taker, maker) of every trade, in order."""
    return [
        (e.price, e.qty, e.taker_order_id, e.maker_order_id) for e in events if isinstance(e, Trade)
    ]


class Market:
    """An engine with instrument ``SYM`` (tick and lot 1 unless told), driven command by command."""

    def __init__(self, tick: int = 1, lot: int = 1, symbols: tuple[str, ...] = (SYM,)) -> None:
        self.engine = Engine()
        for s in symbols:
            (added,) = self.engine.process(AddInstrument(symbol=s, tick_size=tick, lot_size=lot))
            assert isinstance(added, InstrumentAdded)

    def raw(self, *cmds: Command) -> list[Event]:
        """Process ``cmds``; return every event they caused, in order."""
        out: list[Event] = []
        for c in cmds:
            out.extend(self.engine.process(c))
        return out

    def __call__(self, *cmds: Command) -> list[tuple[Any, ...]]:
        """Process ``cmds``; return the events as ``view`` tuples."""
        return [view(e) for e in self.raw(*cmds)]

    def bids(self, sym: str = SYM) -> list[tuple[int, int]]:
        return self.engine.book(sym).bids.depth(0)

    def asks(self, sym: str = SYM) -> list[tuple[int, int]]:
        return self.engine.book(sym).asks.depth(0)

    def queue(self, side: int, price: int, sym: str = SYM) -> list[int]:
        """The order ids resting at one price level, in time priority."""
        book = self.engine.book(sym)
        level = (book.bids if side == BUY else book.asks).levels.get(price)
        return [] if level is None else list(level.orders)

    def stops(self, sym: str = SYM) -> list[int]:
        return list(self.engine.book(sym).stops)

    def live(self) -> list[int]:
        return sorted(self.engine.orders)
