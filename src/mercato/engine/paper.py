"""The paper venue: simulated fills for paper-trading accounts, against the market price.

Paper orders never touch the real book. Each fills **in full, at the market price, with
unlimited liquidity** (the Alpaca-paper style fill model): no partial fills, no queue, no
market impact, and the venue's house account ``PAPER`` is the other side of every fill.
The market price of a symbol is whatever the caller last fed to ``on_price``: the internal
book's last trade price and external ``MarketPrice`` commands. It is taken as given; the
core feeds every move, whether or not paper orders are open (a market order with no paper
order before it must not find the venue without a price, or with a stale one).

- A market order fills at once at the market price (rejected ``no_reference_price`` when
  there is none), unless its protection price forbids that price: then it is cancelled
  (``market``), as the engine cancels a market order's remainder.
- A limit order is marketable when the market price is at or better than its limit (buy:
  price <= limit, sell: price >= limit); it then fills at the market price (price
  improvement). Otherwise GTC and DAY orders rest and fill on the first price that reaches
  them; IOC and FOK orders are cancelled (``ioc`` / ``fok``: all or nothing, so both behave
  alike). A post-only order that would be marketable is rejected ``post_only_would_take``.
- A stop waits until the market price reaches its stop (buy: price >= stop, sell: price <=
  stop), or triggers on arrival when the price is already there. Then, as in the engine,
  it executes as a market order (stop) or a limit order (stop-limit) with its own TIF.
- While an instrument is halted or closed, prices are recorded but nothing fills or
  triggers; the first price after it reopens does.

The venue is pure, synchronous and deterministic, and speaks the engine's event vocabulary
(no ``BookDelta``: paper orders are not market data). It shares the engine's event sequence:
the caller sets ``seq`` before each call and reads it after, as with ``Engine.seq``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from mercato.domain.commands import (
    CancelOrder,
    Clock,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
)
from mercato.domain.errors import UnknownCommand
from mercato.domain.events import (
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    Trade,
)
from mercato.domain.ledger import PAPER
from mercato.domain.orders import Order, OrderStatus
from mercato.domain.reasons import CancelReason, Reject
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus
from mercato.engine.book import Book
from mercato.engine.engine import Engine
from mercato.engine.expiry import Expiries

BUY: Final = int(Side.BUY)
MARKET: Final = int(OrderType.MARKET)
LIMIT: Final = int(OrderType.LIMIT)
STOP: Final = int(OrderType.STOP)
STOP_LIMIT: Final = int(OrderType.STOP_LIMIT)
DAY: Final = int(TimeInForce.DAY)
IOC: Final = int(TimeInForce.IOC)
FOK: Final = int(TimeInForce.FOK)
OPEN: Final = int(TradingStatus.OPEN)
HALTED: Final = int(TradingStatus.HALTED)
ACCEPTED: Final = int(OrderStatus.ACCEPTED)
CANCELLED: Final = int(OrderStatus.CANCELLED)
EXPIRED: Final = int(OrderStatus.EXPIRED)
REPLACED: Final = int(OrderStatus.REPLACED)

PAPER_STATE_VERSION: Final = 1


class PaperOrderState(msgspec.Struct, array_like=True, gc=False):
    """One live paper order, every field (its own struct: the engine's snapshot format
    may change without changing the paper venue's)."""

    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    stop_price: int
    qty: int
    filled: int
    remaining: int
    status: int
    post_only: bool
    client_order_id: str
    protect: int
    expire_ts: int = 0  # GTD orders (older states read as none)


class PaperState(msgspec.Struct, array_like=True):
    """The paper venue's state as plain data: canonical, so equal states encode equally."""

    version: int
    seq: int
    prices: list[tuple[str, int]]  # in the order the symbols were first priced
    orders: list[PaperOrderState]  # live orders, in the venue's own order (end of day walks it)
    stops: list[int]  # the waiting stops among them, in acceptance order


class PaperVenue:
    """Live paper orders, the market price per symbol, and the shared event sequence.

    It reads instruments (tick, lot, trading status) from ``engine`` and validates new
    orders with the engine's own rules; it never changes the engine.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seq = 0  # sequence number of the last event emitted (set by the caller)
        self.orders: dict[int, Order] = {}  # live: resting or waiting for their stop
        self.prices: dict[str, int] = {}
        # per symbol, in the venue's order: resting limit orders, and waiting stops
        self._limits: dict[str, dict[int, Order]] = {}
        self._stops: dict[str, dict[int, Order]] = {}
        self._out: list[Event] = []
        self._ts = 0
        self.expiries = Expiries()  # the live GTD orders, soonest expiry first

    # -- entry points --------------------------------------------------------------------

    def process(self, cmd: Command) -> list[Event]:
        """Apply one order command; return the events it caused, in order."""
        out: list[Event] = []
        self._out = out
        self._ts = cmd.ts
        if self.expiries.heap:
            self._expire_due()
        if isinstance(cmd, NewOrder):
            self._new(cmd)
        elif isinstance(cmd, CancelOrder):
            self._cancel(cmd)
        elif isinstance(cmd, ReplaceOrder):
            self._replace(cmd)
        elif isinstance(cmd, EndOfDay):
            self._end_of_day(cmd.symbol)
        elif isinstance(cmd, Clock):
            pass  # what is due has expired above
        else:
            raise UnknownCommand(f"not a paper venue command: {cmd!r}")
        return out

    def cancel(self, order_id: int, reason: str, ts: int) -> list[Event]:
        """Cancel a live order for ``reason`` (kill switch, liquidation); [] if not live."""
        out: list[Event] = []
        self._out = out
        self._ts = ts
        o = self.orders.get(order_id)
        if o is not None:
            self._unlist(o)
            self._cancelled(o, CancelReason(reason))
        return out

    def on_price(self, symbol: str, price: int, ts: int) -> list[Event]:
        """Record ``symbol``'s market price; fill the resting orders it reaches, then
        trigger the stops it reaches (all ``OrderTriggered`` events first, in acceptance
        order, then each executes in that order, as the engine's stop rule says)."""
        assert price > 0, f"{symbol}: market price {price} must be positive"
        out: list[Event] = []
        self._out = out
        self._ts = ts
        self.prices[symbol] = price
        book = self.engine.books.get(symbol)
        if book is None or book.status != OPEN:
            return out
        limits = self._limits.get(symbol)
        if limits:
            hit = [
                o for o in limits.values() if (price <= o.price if o.is_buy else price >= o.price)
            ]
            for o in hit:
                self._unlist(o)
                self._trade(o, price)
        stops = self._stops.get(symbol)
        if stops:
            fired = [
                o
                for o in stops.values()
                if (price >= o.stop_price if o.is_buy else price <= o.stop_price)
            ]
            for o in fired:
                self._trigger(o, price)
            for o in fired:
                self._execute(o)
        return out

    # -- queries -------------------------------------------------------------------------

    def price(self, symbol: str) -> int:
        """The market price of ``symbol`` (0: none known yet)."""
        return self.prices.get(symbol, 0)

    def order(self, order_id: int) -> Order | None:
        return self.orders.get(order_id)

    def stops(self, symbol: str) -> list[int]:
        """The waiting stops of ``symbol``, in acceptance order."""
        return list(self._stops.get(symbol, ()))

    # -- snapshots -----------------------------------------------------------------------

    def capture(self) -> PaperState:
        """The venue's state as plain data (between calls only)."""
        orders = [
            PaperOrderState(
                o.order_id,
                o.account,
                o.symbol,
                o.side,
                o.type,
                o.tif,
                o.price,
                o.stop_price,
                o.qty,
                o.filled,
                o.remaining,
                o.status,
                o.post_only,
                o.client_order_id,
                o.protect,
                o.expire_ts,
            )
            for o in self.orders.values()
        ]
        # the venue's order is acceptance order for waiting stops (they never move in it)
        stops = [oid for oid, o in self.orders.items() if oid in self._stops.get(o.symbol, ())]
        return PaperState(PAPER_STATE_VERSION, self.seq, list(self.prices.items()), orders, stops)

    @classmethod
    def restore(cls, engine: Engine, state: PaperState) -> PaperVenue:
        """Rebuild a venue from ``capture``'s state, over ``engine`` (restored separately)."""
        if state.version != PAPER_STATE_VERSION:
            raise ValueError(f"paper state version {state.version} is not {PAPER_STATE_VERSION}")
        venue = cls(engine)
        venue.seq = state.seq
        venue.prices = dict(state.prices)
        waiting = set(state.stops)
        for s in state.orders:
            o = Order(
                s.order_id,
                s.account,
                s.symbol,
                s.side,
                s.type,
                s.tif,
                s.price,
                s.stop_price,
                s.qty,
                s.post_only,
            )
            o.filled, o.remaining, o.status = s.filled, s.remaining, s.status
            o.client_order_id, o.protect = s.client_order_id, s.protect
            o.expire_ts = s.expire_ts
            # both per-symbol indexes follow the venue's order, so this rebuilds them exactly
            index = venue._stops if o.order_id in waiting else venue._limits
            index.setdefault(o.symbol, {})[o.order_id] = o
            venue.orders[o.order_id] = o
            if o.expire_ts:
                venue.expiries.add(o, venue.orders)
        return venue

    # -- emission helpers ----------------------------------------------------------------

    def _reject(
        self, command: str, order_id: int, symbol: str, reason: str, detail: str, account: int
    ) -> None:
        self.seq += 1
        self._out.append(
            Rejected(self.seq, self._ts, command, order_id, symbol, reason, detail, account)
        )

    def _cancelled(self, o: Order, reason: CancelReason) -> None:
        o.transition(CANCELLED)
        self.seq += 1
        self._out.append(
            OrderCancelled(
                self.seq, self._ts, o.order_id, o.account, o.symbol, o.remaining, str(reason)
            )
        )

    def _trade(self, o: Order, price: int) -> None:
        """Fill all that is left of ``o`` at ``price``, against the house."""
        qty = o.remaining
        o.fill(qty)
        self.seq += 1
        self._out.append(
            Trade(
                self.seq,
                self._ts,
                o.symbol,
                price,
                qty,
                o.order_id,  # taker
                0,  # maker: the house has no order
                o.account,
                PAPER,
                o.side,
                0,
                0,
            )
        )

    def _trigger(self, o: Order, price: int) -> None:
        self._unlist(o)
        self.seq += 1
        self._out.append(
            OrderTriggered(self.seq, self._ts, o.order_id, o.account, o.symbol, o.stop_price, price)
        )

    # -- order index ---------------------------------------------------------------------

    def _unlist(self, o: Order) -> None:
        """Take ``o`` out of the live orders (resting or waiting)."""
        del self.orders[o.order_id]
        stops = self._stops.get(o.symbol)
        if stops is not None and o.order_id in stops:
            del stops[o.order_id]
        else:
            del self._limits[o.symbol][o.order_id]

    def _marketable(self, is_buy: bool, limit: int, price: int) -> bool:
        """Whether an order may trade at ``price`` with ``limit`` (0: any price; price 0:
        no market price known)."""
        return price != 0 and (limit == 0 or (price <= limit if is_buy else price >= limit))

    # -- new orders ----------------------------------------------------------------------

    def _check_new(self, c: NewOrder, book: Book | None) -> tuple[str, str]:
        """The engine's checks, with duplicates among paper orders too, and post-only
        judged against the market price instead of the real book."""
        if book is not None and book.status == OPEN and c.order_id in self.orders:
            return str(Reject.DUPLICATE_ORDER_ID), ""
        plain = msgspec.structs.replace(c, post_only=False) if c.post_only else c
        reason, detail = self.engine._check_new(plain, book)
        if reason or not c.post_only:
            return reason, detail
        if c.type != LIMIT or c.tif == IOC or c.tif == FOK:
            return str(Reject.POST_ONLY_NOT_ALLOWED), "post-only needs a GTC or DAY limit"
        if self._marketable(c.side == BUY, c.price, self.price(c.symbol)):
            return str(Reject.POST_ONLY_WOULD_TAKE), ""
        return "", ""

    def _new(self, c: NewOrder) -> None:
        book = self.engine.books.get(c.symbol)
        reason, detail = self._check_new(c, book)
        if not reason and c.type == MARKET and self.price(c.symbol) == 0:
            reason, detail = str(Reject.NO_REFERENCE_PRICE), "no market price to fill against"
        if reason:
            self._reject("n", c.order_id, c.symbol, reason, detail, c.account)
            return
        o = Order(
            c.order_id,
            c.account,
            c.symbol,
            int(c.side),
            int(c.type),
            int(c.tif),
            c.price,
            c.stop_price,
            c.qty,
            c.post_only,
        )
        o.client_order_id = c.client_order_id
        o.protect = c.protect_price
        o.expire_ts = c.expire_ts
        o.self_trade = c.self_trade
        o.transition(ACCEPTED)
        self.seq += 1
        self._out.append(
            OrderAccepted(
                self.seq,
                self._ts,
                o.order_id,
                o.account,
                o.symbol,
                o.side,
                o.type,
                o.tif,
                o.price,
                o.stop_price,
                o.qty,
                o.post_only,
                o.client_order_id,
                o.protect,
                o.expire_ts,
                o.self_trade,
            )
        )
        if o.expire_ts:
            self.expiries.add(o, self.orders)
        if o.type == STOP or o.type == STOP_LIMIT:
            self.orders[o.order_id] = o
            self._stops.setdefault(o.symbol, {})[o.order_id] = o
            self._check_stop(o)
        else:
            self._execute(o)

    def _check_stop(self, o: Order) -> None:
        """Trigger and execute the waiting stop ``o`` if the market price has reached it."""
        price = self.price(o.symbol)
        if price and (price >= o.stop_price if o.is_buy else price <= o.stop_price):
            self._trigger(o, price)
            self._execute(o)

    def _execute(self, o: Order) -> None:
        """Fill ``o`` in full at the market price if it may trade there; else cancel or
        rest it, by its type and TIF (the engine's order of reasons: fok, market, ioc)."""
        market = o.type == MARKET or o.type == STOP
        price = self.price(o.symbol)
        if self._marketable(o.is_buy, o.protect if market else o.price, price):
            self._trade(o, price)
        elif o.tif == FOK:
            self._cancelled(o, CancelReason.FOK)
        elif market:
            self._cancelled(o, CancelReason.MARKET)
        elif o.tif == IOC:
            self._cancelled(o, CancelReason.IOC)
        else:
            self.orders[o.order_id] = o
            self._limits.setdefault(o.symbol, {})[o.order_id] = o

    # -- cancel and replace --------------------------------------------------------------

    def _cancel(self, c: CancelOrder) -> None:
        o = self.orders.get(c.order_id)
        if o is None or o.symbol != c.symbol:
            self._reject("c", c.order_id, c.symbol, str(Reject.UNKNOWN_ORDER), "", 0)
            return
        self._unlist(o)
        self._cancelled(o, CancelReason.USER)

    def _replace(self, c: ReplaceOrder) -> None:
        o = self.orders.get(c.order_id)
        if o is None or o.symbol != c.symbol:
            self._reject("r", c.order_id, c.symbol, str(Reject.UNKNOWN_ORDER), "", 0)
            return
        waiting = c.order_id in self._stops.get(o.symbol, {})
        reason = self._check_replace(o, waiting, c)
        if reason:
            self._reject("r", c.order_id, c.symbol, reason, "", o.account)
            return
        if waiting:  # a waiting stop keeps its place among the stops
            if c.stop_price:
                o.stop_price = c.stop_price
            o.price = c.price
            o.protect = c.protect_price
            o.qty = o.filled + c.qty
            o.remaining = c.qty
            self._replaced(o, True)
            self._check_stop(o)
            return
        if c.price == o.price and c.qty <= o.remaining:  # keeps its place
            o.qty -= o.remaining - c.qty
            o.remaining = c.qty
            self._replaced(o, True)
            return
        self._unlist(o)
        o.price = c.price
        o.qty = o.filled + c.qty
        o.remaining = c.qty
        self._replaced(o, False)
        self._execute(o)

    def _check_replace(self, o: Order, waiting: bool, c: ReplaceOrder) -> str:
        """Why this replace must be rejected, or "" (the engine's rules, against the
        market price instead of the real book)."""
        book = self.engine.books[o.symbol]
        tick = book.tick_size
        if book.status != OPEN:
            return str(
                Reject.INSTRUMENT_HALTED if book.status == HALTED else Reject.INSTRUMENT_CLOSED
            )
        if c.qty <= 0:
            return str(Reject.INVALID_QTY)
        if c.qty % book.lot_size:
            return str(Reject.QTY_NOT_LOT_MULTIPLE)
        if o.type == LIMIT or o.type == STOP_LIMIT:
            if c.price <= 0:
                return str(Reject.INVALID_PRICE)
            if c.price % tick:
                return str(Reject.PRICE_NOT_TICK_MULTIPLE)
        elif c.price != 0:
            return str(Reject.PRICE_NOT_ALLOWED)
        if c.stop_price:
            if not waiting or c.stop_price < 0:
                return str(Reject.INVALID_STOP_PRICE)
            if c.stop_price % tick:
                return str(Reject.STOP_PRICE_NOT_TICK_MULTIPLE)
        if c.protect_price and not (
            (o.type == MARKET or o.type == STOP)
            and c.protect_price > 0
            and c.protect_price % tick == 0
        ):
            return str(Reject.INVALID_PROTECT_PRICE)
        if (
            o.post_only
            and c.price != o.price
            and self._marketable(o.is_buy, c.price, self.price(o.symbol))
        ):
            return str(Reject.POST_ONLY_WOULD_TAKE)
        return ""

    def _replaced(self, o: Order, kept_priority: bool) -> None:
        o.transition(REPLACED)
        self.seq += 1
        self._out.append(
            OrderReplaced(
                self.seq,
                self._ts,
                o.order_id,
                o.account,
                o.symbol,
                o.price,
                o.remaining,
                o.stop_price,
                kept_priority,
            )
        )

    # -- end of day ----------------------------------------------------------------------

    def _end_of_day(self, symbol: str) -> None:
        """Expire every DAY order ("") or those of ``symbol``, resting or waiting, in the
        venue's order."""
        for o in [o for o in self.orders.values() if o.tif == DAY]:
            if not symbol or o.symbol == symbol:
                self._expire(o)

    def expire(self, ts: int) -> list[Event]:
        """Expire the GTD orders due by ``ts`` (what every command does first)."""
        out: list[Event] = []
        self._out = out
        self._ts = ts
        self._expire_due()
        return out

    def _expire_due(self) -> None:
        for o in self.expiries.due(self._ts, self.orders):
            self._expire(o)

    def _expire(self, o: Order) -> None:
        self._unlist(o)
        o.transition(EXPIRED)
        self.seq += 1
        self._out.append(
            OrderExpired(self.seq, self._ts, o.order_id, o.account, o.symbol, o.remaining)
        )
