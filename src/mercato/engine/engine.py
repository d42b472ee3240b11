"""The matching engine: a pure, synchronous, deterministic state machine.

``Engine.process(command)`` applies one command and returns the events it caused, each
stamped with the next global sequence number. The engine reads no clock and no randomness;
the same commands always give the same events and the same ``state_hash()``.

Matching rules (also the contract of ``mercato replay``) are written down in
``docs/matching.md``; the stop cascade rule is in ``_run_stops``.
"""

from __future__ import annotations

from typing import Any, Final

from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Clock,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.errors import UnknownCommand
from mercato.domain.events import (
    AuctionIndicative,
    BookDelta,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    StopMoved,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.instrument import Instrument
from mercato.domain.orders import Order
from mercato.domain.reasons import CancelReason, Reject
from mercato.engine.auction import NO_PRICE, uncross_price
from mercato.engine.book import Book, BookSide, Level
from mercato.engine.expiry import Expiries

BUY: Final = 1
SELL: Final = 2
MARKET: Final = 1
LIMIT: Final = 2
STOP: Final = 3
STOP_LIMIT: Final = 4
GTC: Final = 1
DAY: Final = 2
IOC: Final = 3
FOK: Final = 4
OPG: Final = 5
CLS: Final = 6
GTD: Final = 7
OPEN: Final = 1
HALTED: Final = 2
CLOSED: Final = 3
PRE_OPEN: Final = 4  # >= PRE_OPEN: an auction collects orders (see ``Book.collecting``)
OPENING: Final = 5
CLOSING: Final = 6
# order status values (mercato.domain.orders.OrderStatus)
ACCEPTED: Final = 1
CANCELLED: Final = 4
REJECTED: Final = 5
EXPIRED: Final = 6
REPLACED: Final = 7

R_UNKNOWN_SYMBOL: Final = str(Reject.UNKNOWN_SYMBOL)
R_UNKNOWN_ORDER: Final = str(Reject.UNKNOWN_ORDER)
R_HALTED: Final = str(Reject.INSTRUMENT_HALTED)
R_CLOSED: Final = str(Reject.INSTRUMENT_CLOSED)
R_INVALID_QTY: Final = str(Reject.INVALID_QTY)
R_QTY_NOT_LOT_MULTIPLE: Final = str(Reject.QTY_NOT_LOT_MULTIPLE)
R_INVALID_PRICE: Final = str(Reject.INVALID_PRICE)
R_PRICE_NOT_TICK_MULTIPLE: Final = str(Reject.PRICE_NOT_TICK_MULTIPLE)
R_PRICE_NOT_ALLOWED: Final = str(Reject.PRICE_NOT_ALLOWED)
R_INVALID_STOP_PRICE: Final = str(Reject.INVALID_STOP_PRICE)
R_STOP_PRICE_NOT_TICK_MULTIPLE: Final = str(Reject.STOP_PRICE_NOT_TICK_MULTIPLE)
R_POST_ONLY_WOULD_TAKE: Final = str(Reject.POST_ONLY_WOULD_TAKE)
R_INVALID_PROTECT_PRICE: Final = str(Reject.INVALID_PROTECT_PRICE)
R_INVALID_TYPE: Final = str(Reject.INVALID_TYPE)
R_INVALID_TIF: Final = str(Reject.INVALID_TIF)
R_POST_ONLY_NOT_ALLOWED: Final = str(Reject.POST_ONLY_NOT_ALLOWED)
R_INVALID_EXPIRE_TIME: Final = str(Reject.INVALID_EXPIRE_TIME)
R_INVALID_SELF_TRADE: Final = str(Reject.INVALID_SELF_TRADE)
# self-trade prevention modes (mercato.domain.types.SelfTrade; 0 is cancel resting)
STP_INCOMING: Final = 2
STP_BOTH: Final = 3
_DETAILS: Final = {
    R_INVALID_QTY: "quantity must be positive",
    R_QTY_NOT_LOT_MULTIPLE: "quantity is not a multiple of the lot size",
    R_INVALID_PRICE: "price must be positive",
    R_PRICE_NOT_TICK_MULTIPLE: "price is not a multiple of the tick size",
    R_PRICE_NOT_ALLOWED: "market and stop orders take no limit price",
    R_INVALID_STOP_PRICE: "only a waiting stop order takes a positive stop price",
    R_STOP_PRICE_NOT_TICK_MULTIPLE: "stop price is not a multiple of the tick size",
    R_INVALID_PROTECT_PRICE: "only market and stop orders take a protection price: "
    "0 or a positive multiple of the tick size",
    R_INVALID_TYPE: "a market order waiting for an auction is cancelled, not replaced",
}
C_USER: Final = str(CancelReason.USER)
C_IOC: Final = str(CancelReason.IOC)
C_MARKET: Final = str(CancelReason.MARKET)
C_FOK: Final = str(CancelReason.FOK)
C_SELF_TRADE: Final = str(CancelReason.SELF_TRADE)
C_OCO: Final = str(CancelReason.OCO)
_STATUSES: Final = (OPEN, HALTED, CLOSED, PRE_OPEN, OPENING, CLOSING)


class Engine:
    """All books, all live orders, and the global event sequence."""

    def __init__(self) -> None:
        self.seq = 0  # sequence number of the last event emitted
        self.books: dict[str, Book] = {}
        self.orders: dict[int, Order] = {}  # live orders: resting or waiting for their stop
        self._out: list[Event] = []
        self.expiries = Expiries()  # the live GTD orders, soonest expiry first
        # the command's timestamp, kept as a Python int (Any): compiled, every event of the
        # command then shares one int object instead of boxing a new one each time
        self._ts: Any = 0

    # -- entry point ---------------------------------------------------------------------

    def process(self, cmd: Command) -> list[Event]:
        """Apply one command; return the events it caused, in order."""
        out: list[Event] = []
        self._out = out
        try:
            self._ts = cmd.ts
        except (AttributeError, TypeError):
            raise UnknownCommand(f"not a command: {cmd!r}") from None
        if self.expiries.heap:
            self.expire_due()
        if isinstance(cmd, ReplaceOrder):
            self._replace(cmd)
        elif isinstance(cmd, NewOrder):
            self._new(cmd)
        elif isinstance(cmd, CancelOrder):
            self._cancel(cmd)
        elif isinstance(cmd, SetTradingStatus):
            self._set_status(cmd)
        elif isinstance(cmd, EndOfDay):
            self._end_of_day(cmd.symbol)
        elif isinstance(cmd, AddInstrument):
            self._add_instrument(cmd)
        elif isinstance(cmd, Clock):
            pass  # what is due has expired above
        else:
            raise UnknownCommand(f"not a command: {cmd!r}")
        return out

    # -- queries -------------------------------------------------------------------------

    def book(self, symbol: str) -> Book:
        return self.books[symbol]

    def order(self, order_id: int) -> Order | None:
        return self.orders.get(order_id)

    def state_hash(self) -> str:
        """A digest of the whole state: equal states, equal hashes (see ``snapshot.py``)."""
        from mercato.engine.snapshot import state_hash  # snapshot.py imports this module

        return state_hash(self)

    def encode(self) -> bytes:
        """The engine's canonical snapshot (see ``snapshot.py``)."""
        from mercato.engine.snapshot import encode

        return encode(self)

    # -- what the risk core asks of the engine (each returns the events it caused) ---------

    def cancel(self, order_id: int, reason: str, ts: int) -> list[Event]:
        """Cancel a live order for ``reason`` (kill switch, liquidation, ...); [] if not live."""
        out: list[Event] = []
        self._out = out
        self._ts = ts
        o = self.orders.get(order_id)
        if o is not None:
            self._take_out(o, reason)
            book = self.books[o.symbol]
            if book.status >= PRE_OPEN:
                self._indicate(book)
        return out

    def expire(self, ts: int) -> list[Event]:
        """Expire the GTD orders due by ``ts`` (what every command does first)."""
        out: list[Event] = []
        self._out = out
        self._ts = ts
        self.expire_due()
        return out

    def link(self, a: int, b: int) -> None:
        """Make two live orders one-cancels-other: the first to trigger, trade, end or be
        cancelled cancels the other (reason ``oco``)."""
        oa, ob = self.orders[a], self.orders[b]
        assert not oa.link and not ob.link, "an order belongs to one pair at most"
        stops = self.books[oa.symbol].stops
        assert (a in stops) != (b in stops), "a pair is one resting order and one waiting stop"
        oa.link, ob.link = b, a

    def move_stop(self, order_id: int, stop_price: int, ts: int, best: int = 0) -> list[Event]:
        """Move a waiting stop's stop price (a trailing stop following the market to
        ``best``), then trigger whatever the last price now reaches."""
        out: list[Event] = []
        self._out = out
        self._ts = ts
        o = self.orders[order_id]
        book = self.books[o.symbol]
        assert order_id in book.stops and stop_price > 0, "only a waiting stop moves"
        o.stop_price = stop_price
        self.seq += 1
        out.append(StopMoved(self.seq, ts, order_id, o.account, o.symbol, stop_price, best))
        book.stops_dirty = True
        self._run_stops(book)
        return out

    # -- emission helpers ----------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def _reject(
        self,
        command: str,
        order_id: int,
        symbol: str,
        reason: str,
        detail: str = "",
        account: int = 0,
    ) -> None:
        self.seq += 1
        self._out.append(
            Rejected(self.seq, self._ts, command, order_id, symbol, reason, detail, account)
        )

    def _delta(self, symbol: str, side: int, price: int, qty: int) -> None:
        self.seq += 1
        self._out.append(BookDelta(self.seq, self._ts, symbol, side, price, qty))

    def _cancelled(self, o: Order, reason: str) -> None:
        o.transition(CANCELLED)
        self.seq += 1
        self._out.append(
            OrderCancelled(self.seq, self._ts, o.order_id, o.account, o.symbol, o.remaining, reason)
        )
        if o.link:
            self._unlink(o)

    def _unlink(self, o: Order) -> None:
        """``o`` of a one-cancels-other pair triggered, traded or ended: cancel the other.

        The other is a waiting stop, or rests on ``o``'s own side of the book (never on the
        side being matched against, so no level is changed under the match loop), or is a
        stop triggered in the same round (``_run_stops`` then skips it).
        """
        other = self.orders.get(o.link)
        o.link = 0
        if other is not None:
            other.link = 0
            self._take_out(other, C_OCO)

    def _take_out(self, o: Order, reason: str) -> None:
        """Remove a live order from the engine and cancel it."""
        book = self.books[o.symbol]
        del self.orders[o.order_id]
        level = self._unrest(book, o)
        self._cancelled(o, reason)
        if level is not None:
            self._delta(book.symbol, o.side, level.price, level.total)

    @staticmethod
    def _unrest(book: Book, o: Order) -> Level | None:
        """Take a live order out of wherever its book keeps it; its price level if it was
        in one (its ``BookDelta`` is then the caller's to emit)."""
        oid = o.order_id
        if oid in book.stops:
            del book.stops[oid]
            return None
        if book.market_bids or book.market_asks:
            queue = book.market_bids if o.is_buy else book.market_asks
            if oid in queue:
                del queue[oid]
                return None
        if oid in book.on_close:
            del book.on_close[oid]
            return None
        return (book.bids if o.is_buy else book.asks).remove(o)

    # -- instruments ---------------------------------------------------------------------

    def _add_instrument(self, c: AddInstrument) -> None:
        if c.symbol in self.books:
            self._reject("ai", 0, c.symbol, str(Reject.DUPLICATE_SYMBOL))
            return
        inst = Instrument(
            symbol=c.symbol,
            tick_size=c.tick_size,
            lot_size=c.lot_size,
            price_scale=c.price_scale,
            qty_scale=c.qty_scale,
        )
        problem = inst.validate()
        if problem is not None:
            self._reject("ai", 0, c.symbol, str(Reject.INVALID_INSTRUMENT), problem)
            return
        self.books[c.symbol] = Book(c.symbol, c.tick_size, c.lot_size, c.price_scale, c.qty_scale)
        self._out.append(
            InstrumentAdded(
                seq=self._next(),
                ts=self._ts,
                symbol=c.symbol,
                tick_size=c.tick_size,
                lot_size=c.lot_size,
                price_scale=c.price_scale,
                qty_scale=c.qty_scale,
            )
        )

    def _set_status(self, c: SetTradingStatus) -> None:
        book = self.books.get(c.symbol)
        if book is None:
            self._reject("st", 0, c.symbol, R_UNKNOWN_SYMBOL)
            return
        status = int(c.status)
        if status not in _STATUSES:
            self._reject("st", 0, c.symbol, str(Reject.INVALID_INSTRUMENT), "unknown status")
            return
        old = book.status
        if status != old and (status == OPEN or status == CLOSED):
            if status == CLOSED:
                self._join_on_close(book)  # on-close orders cross at the close in any case
            self._uncross(book)
            self._end_auction(book, status == CLOSED)
        elif status == CLOSING and old != CLOSING:
            self._join_on_close(book)
        book.status = status
        self._indicate(book)
        self._out.append(
            TradingStatusChanged(seq=self._next(), ts=self._ts, symbol=c.symbol, status=status)
        )
        if status == OPEN and book.stops:  # stops wait while nothing trades
            book.stops_dirty = True
            self._run_stops(book)

    # -- call auctions (docs/matching.md) ------------------------------------------------

    def _join_on_close(self, book: Book) -> None:
        """The closing auction begins: the waiting on-close orders join it, in the order
        they were accepted, behind what the book already holds."""
        waiting = book.on_close
        if not waiting:
            return
        book.on_close = {}
        for o in waiting.values():
            self._collect(book, o)

    def _collect(self, book: Book, o: Order) -> None:
        """Keep ``o`` for the auction, unmatched: a market order in its side's queue, a
        limit order at its price level (the book may cross until the uncross)."""
        self.orders[o.order_id] = o
        if o.type == MARKET:
            (book.market_bids if o.is_buy else book.market_asks)[o.order_id] = o
            return
        level = (book.bids if o.is_buy else book.asks).add(o)
        self._delta(book.symbol, o.side, level.price, level.total)

    def _auction_price(self, book: Book) -> tuple[int, int, int, int]:
        buys = [(o.protect, o.remaining) for o in book.market_bids.values()]
        buys.extend((lv.price, lv.total) for lv in book.bids.levels.values())
        sells = [(o.protect, o.remaining) for o in book.market_asks.values()]
        sells.extend((lv.price, lv.total) for lv in book.asks.levels.values())
        return uncross_price(buys, sells, book.last_price, book.tick_size)

    def _indicate(self, book: Book) -> None:
        """Publish the auction's indicative price when it changed (``AuctionIndicative``)."""
        now = self._auction_price(book) if book.status >= PRE_OPEN else NO_PRICE
        if now != book.indicative:
            book.indicative = now
            price, qty, surplus, side = now
            self.seq += 1
            self._out.append(
                AuctionIndicative(self.seq, self._ts, book.symbol, price, qty, surplus, side)
            )

    def _uncross(self, book: Book) -> None:
        """Execute the collected orders at the auction price (``auction.py``), round after
        round while something crosses: only self-trade prevention leaves a second round."""
        while True:
            price, volume, _, _ = self._auction_price(book)
            if volume == 0:
                return
            self._uncross_at(book, price)

    @staticmethod
    def _willing(book: Book, is_buy: bool, price: int) -> list[Order]:
        """The orders of one side willing to trade at ``price``, in auction priority:
        market orders at any price first, in acceptance order; then by price (a market
        order's price is its protection price), at one price market orders first, each
        kind in acceptance order (its place in the queue or level)."""
        queue = book.market_bids if is_buy else book.market_asks
        out = [o for o in queue.values() if o.protect == 0]
        priced = [
            o
            for o in queue.values()
            if o.protect and (o.protect >= price if is_buy else o.protect <= price)
        ]
        priced.sort(key=lambda o: -o.protect if is_buy else o.protect)  # stable: arrival kept
        k = 0
        for level in (book.bids if is_buy else book.asks).levels_best_first():
            lp = level.price
            if lp < price if is_buy else lp > price:
                break
            while k < len(priced) and (
                priced[k].protect >= lp if is_buy else priced[k].protect <= lp
            ):
                out.append(priced[k])
                k += 1
            out.extend(level.orders.values())
        out.extend(priced[k:])
        return out

    def _uncross_at(self, book: Book, price: int) -> None:
        """One round at ``price``: buys willing to pay it against sells willing to take
        it, in auction priority (``_willing``). The order with the higher id is the taker
        of each trade; two orders of one account never trade: the one with the lower id
        is cancelled (``self_trade``) and the round goes on."""
        buys = self._willing(book, True, price)
        sells = self._willing(book, False, price)
        symbol = book.symbol
        out = self._out
        filled: list[Order] = []
        traded = False
        i = j = 0
        while i < len(buys) and j < len(sells):
            b, s = buys[i], sells[j]
            if b.status == CANCELLED:  # the other order of a pair that just traded
                i += 1
                continue
            if s.status == CANCELLED:
                j += 1
                continue
            if b.account == s.account:  # the newer order's mode decides, as the incoming one
                older, newer = (b, s) if b.order_id < s.order_id else (s, b)
                mode = newer.self_trade
                if mode != STP_INCOMING:
                    self._take_out(older, C_SELF_TRADE)
                if mode == STP_INCOMING or mode == STP_BOTH:
                    self._take_out(newer, C_SELF_TRADE)
                if b.status == CANCELLED:
                    i += 1
                if s.status == CANCELLED:
                    j += 1
                continue
            q = b.remaining if b.remaining < s.remaining else s.remaining
            b.fill(q)
            s.fill(q)
            for o in (b, s):
                if o.type != MARKET:
                    (book.bids if o.is_buy else book.asks).levels[o.price].total -= q
                if o.link:
                    self._unlink(o)
            taker, maker = (b, s) if b.order_id > s.order_id else (s, b)
            traded = True
            self.seq += 1
            out.append(
                Trade(
                    self.seq,
                    self._ts,
                    symbol,
                    price,
                    q,
                    taker.order_id,
                    maker.order_id,
                    taker.account,
                    maker.account,
                    taker.side,
                    taker.remaining,
                    maker.remaining,
                )
            )
            if b.remaining == 0:
                filled.append(b)
                i += 1
            if s.remaining == 0:
                filled.append(s)
                j += 1
        touched: set[tuple[int, int]] = set()
        for o in filled:
            del self.orders[o.order_id]
            level = self._unrest(book, o)
            if level is not None:
                touched.add((o.side, level.price))
        for o in buys[i : i + 1] + sells[j : j + 1]:  # a partly filled order's level
            if o.type != MARKET and o.status != CANCELLED and o.order_id in self.orders:
                touched.add((o.side, o.price))
        for side_, lp in sorted(touched):
            alive = (book.bids if side_ == BUY else book.asks).levels.get(lp)
            self._delta(symbol, side_, lp, alive.total if alive is not None else 0)
        if traded:
            book.last_price = price

    def _end_auction(self, book: Book, closing: bool) -> None:
        """After an uncross: market orders left are cancelled (they never rest), on-open
        orders left expire, and at the close on-close orders left expire too."""
        for queue in (book.market_bids, book.market_asks):
            for o in list(queue.values()):
                del queue[o.order_id]
                del self.orders[o.order_id]
                self._cancelled(o, C_MARKET)
        ending = [
            o
            for side in (book.bids, book.asks)
            for level in side.levels_best_first()
            for o in level.orders.values()
            if o.tif == OPG or (closing and o.tif == CLS)
        ]
        for o in ending:
            self._expire(book, o)

    # -- new orders ----------------------------------------------------------------------

    def _check_new(self, c: NewOrder, book: Book | None) -> tuple[str, str]:
        """Why ``c`` must be rejected, as (reason, detail); ("", "") when it is acceptable."""
        if book is None:
            return R_UNKNOWN_SYMBOL, ""
        status = book.status
        if status == HALTED or status == CLOSED:
            reason = Reject.INSTRUMENT_HALTED if status == HALTED else Reject.INSTRUMENT_CLOSED
            return str(reason), ""
        if c.order_id in self.orders:
            return str(Reject.DUPLICATE_ORDER_ID), ""
        if c.side != BUY and c.side != SELL:
            return str(Reject.INVALID_SIDE), ""
        t = c.type
        if t != MARKET and t != LIMIT and t != STOP and t != STOP_LIMIT:
            return str(Reject.INVALID_TYPE), ""
        tif = c.tif
        if tif == OPG or tif == CLS:
            if t != MARKET and t != LIMIT:
                return R_INVALID_TIF, "on-open and on-close orders are market or limit orders"
            if tif == OPG and status != PRE_OPEN and status != OPENING:
                return R_INVALID_TIF, "on-open orders are taken until the opening auction ends"
        elif tif != GTC and tif != DAY and tif != IOC and tif != FOK and tif != GTD:
            return R_INVALID_TIF, ""
        elif status >= PRE_OPEN and (tif == IOC or tif == FOK):
            return R_INVALID_TIF, "IOC and FOK orders are not taken while an auction collects"
        if tif == GTD:
            if c.expire_ts <= c.ts:
                return R_INVALID_EXPIRE_TIME, "a GTD order's expire time must be in the future"
        elif c.expire_ts != 0:
            return R_INVALID_EXPIRE_TIME, "only GTD orders take an expire time"
        if c.self_trade < 0 or c.self_trade > STP_BOTH:
            return R_INVALID_SELF_TRADE, "self-trade prevention is 0 to 3 (SelfTrade)"
        if c.qty <= 0:
            return str(Reject.INVALID_QTY), "quantity must be positive"
        if c.qty % book.lot_size:
            return str(Reject.QTY_NOT_LOT_MULTIPLE), f"lot size is {book.lot_size}"
        if t == LIMIT or t == STOP_LIMIT:
            if c.price <= 0:
                return str(Reject.INVALID_PRICE), "price must be positive"
            if c.price % book.tick_size:
                return str(Reject.PRICE_NOT_TICK_MULTIPLE), f"tick size is {book.tick_size}"
        elif c.price != 0:
            return str(Reject.PRICE_NOT_ALLOWED), "market and stop orders take no limit price"
        if t == STOP or t == STOP_LIMIT:
            if c.stop_price <= 0:
                return str(Reject.INVALID_STOP_PRICE), "stop price must be positive"
            if c.stop_price % book.tick_size:
                return str(Reject.STOP_PRICE_NOT_TICK_MULTIPLE), f"tick size is {book.tick_size}"
        elif c.stop_price != 0:
            return str(Reject.INVALID_STOP_PRICE), "only stop orders take a stop price"
        if c.protect_price and not _protect_ok(t, c.protect_price, book.tick_size):
            return R_INVALID_PROTECT_PRICE, _DETAILS[R_INVALID_PROTECT_PRICE]
        if c.trail_amount or c.trail_bps:
            return str(Reject.INVALID_TRAIL), "trailing stops are managed by the risk core"
        if c.post_only:
            if t != LIMIT or (tif != GTC and tif != DAY and tif != GTD):
                return R_POST_ONLY_NOT_ALLOWED, "post-only needs a GTC, DAY or GTD limit"
            if status >= PRE_OPEN:
                return R_POST_ONLY_NOT_ALLOWED, "post-only orders wait for continuous trading"
            if book.would_take(c.side == BUY, c.price):
                return str(Reject.POST_ONLY_WOULD_TAKE), ""
        return "", ""

    def _new(self, c: NewOrder) -> None:
        book = self.books.get(c.symbol)
        reason, detail = self._check_new(c, book)
        if reason:
            self._reject("n", c.order_id, c.symbol, reason, detail, c.account)
            return
        assert book is not None
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
            book.stops[o.order_id] = o
            self.orders[o.order_id] = o
            book.stops_dirty = True
        elif book.status == OPEN and o.tif != CLS:
            self._execute(book, o)
        elif o.tif == CLS and book.status != CLOSING:
            book.on_close[o.order_id] = o
            self.orders[o.order_id] = o
        else:
            self._collect(book, o)
        if book.stops_dirty:
            self._run_stops(book)
        if book.status >= PRE_OPEN:
            self._indicate(book)

    # -- matching ------------------------------------------------------------------------

    def _execute(self, book: Book, o: Order) -> None:
        """Match ``o`` as the taker, then rest or cancel what is left, by its type and TIF."""
        market = o.type == MARKET or o.type == STOP
        limit = o.protect if market else o.price  # 0: a market order without protection
        opp = book.asks if o.is_buy else book.bids
        if o.tif == FOK and not self._fok_fillable(opp, o, limit):
            self._cancelled(o, C_FOK)
            return
        best = opp.best_price()
        crosses = best != 0 and (limit == 0 or (best <= limit if o.is_buy else best >= limit))
        if crosses and self._match(book, o, opp, limit):
            self._cancelled(o, C_SELF_TRADE)  # it met its own account's order
            return
        if o.remaining == 0:
            return
        if market:
            self._cancelled(o, C_MARKET)
        elif o.tif == IOC or o.tif == FOK:
            self._cancelled(o, C_IOC)
        else:
            own = book.bids if o.is_buy else book.asks
            level = own.add(o)
            self.orders[o.order_id] = o
            self._delta(book.symbol, o.side, level.price, level.total)
            book.assert_uncrossed()

    def _fok_fillable(self, opp: BookSide, o: Order, limit: int) -> bool:
        """Whether ``o`` could fill completely now at ``limit`` or better (0: at any price),
        not counting its own account's orders (which, unless they are the ones cancelled,
        end the match: then only what comes before the first of them counts)."""
        need = o.remaining
        stops_at_own = o.self_trade == STP_INCOMING or o.self_trade == STP_BOTH
        is_bid = opp.is_bid
        levels = opp.levels
        for k in reversed(opp.keys):
            price = k if is_bid else -k
            if limit and (price > limit if o.is_buy else price < limit):
                return False
            for m in levels[price].orders.values():
                if m.account != o.account:
                    need -= m.remaining
                    if need <= 0:
                        return True
                elif stops_at_own:
                    return False
        return False

    def _match(self, book: Book, o: Order, opp: BookSide, limit: int) -> bool:
        """Trade ``o`` against the opposite side in price-time priority, at ``limit`` or
        better (0: at any price). Meeting an order of its own account, ``o``'s self-trade
        mode decides: the resting order is cancelled and matching goes on (the default),
        or matching stops there and True is returned (cancel incoming: the caller cancels
        what is left of ``o``; cancel both: the resting order is cancelled first)."""
        keys = opp.keys
        levels = opp.levels
        is_bid = opp.is_bid
        is_buy = o.is_buy
        account = o.account
        symbol = book.symbol
        ts = self._ts
        out = self._out
        live = self.orders
        mode = o.self_trade
        stopped = False
        while keys:
            k = keys[-1]
            price = k if is_bid else -k
            if limit and (price > limit if is_buy else price < limit):
                break
            level = levels[price]
            done: list[int] = []
            traded = False
            for m in level.orders.values():
                if m.account == account:  # self-trade prevention
                    if mode != STP_INCOMING:  # cancel the resting order
                        level.total -= m.remaining
                        done.append(m.order_id)
                        self._cancelled(m, C_SELF_TRADE)
                    if mode == STP_INCOMING or mode == STP_BOTH:
                        stopped = True
                        break
                    continue
                q = o.remaining if o.remaining < m.remaining else m.remaining
                o.fill(q)
                m.fill(q)
                level.total -= q
                traded = True
                if o.link:
                    self._unlink(o)
                if m.link:
                    self._unlink(m)
                self.seq += 1
                out.append(
                    Trade(
                        self.seq,
                        ts,
                        symbol,
                        price,
                        q,
                        o.order_id,  # taker
                        m.order_id,  # maker
                        account,
                        m.account,
                        o.side,
                        o.remaining,
                        m.remaining,
                    )
                )
                if m.remaining == 0:
                    done.append(m.order_id)
                if o.remaining == 0:
                    break
            orders = level.orders
            for oid in done:
                del orders[oid]
                del live[oid]
            if orders:
                self._delta(symbol, opp.side, price, level.total)
            else:
                opp.drop(level)
                self._delta(symbol, opp.side, price, 0)
            if traded and book.last_price != price:
                book.last_price = price
                book.stops_dirty = True
            if o.remaining == 0 or stopped:
                break
        return stopped

    # -- stops ---------------------------------------------------------------------------

    def _run_stops(self, book: Book) -> None:
        """Trigger and execute waiting stops until the last trade price triggers no more.

        The cascade rule: once the command's own order has finished (rested, filled or been
        cancelled), every waiting stop whose condition holds at the last trade price (buy:
        last >= stop, sell: last <= stop) triggers: all of them get an ``OrderTriggered``
        event, in the order they were accepted, before any executes. They then execute one
        after another in that order, each to completion, as a market order (stop) or a limit
        order (stop-limit) with its own time in force. When the round is over, the check
        repeats with the new last price, until a round triggers nothing.
        """
        if book.status != OPEN:  # stops wait while nothing trades (``_set_status``)
            book.stops_dirty = False
            return
        while book.stops_dirty:
            book.stops_dirty = False
            last = book.last_price
            if last == 0 or not book.stops:
                return
            fired = [
                o
                for o in book.stops.values()
                if (last >= o.stop_price if o.is_buy else last <= o.stop_price)
            ]
            for o in fired:
                if o.status == CANCELLED:  # the other order of a pair fired before it
                    continue
                del book.stops[o.order_id]
                del self.orders[o.order_id]
                self.seq += 1
                self._out.append(
                    OrderTriggered(
                        seq=self.seq,
                        ts=self._ts,
                        order_id=o.order_id,
                        account=o.account,
                        symbol=o.symbol,
                        stop_price=o.stop_price,
                        last_price=last,
                    )
                )
                if o.link:
                    self._unlink(o)
            for o in fired:
                if o.status != CANCELLED:
                    self._execute(book, o)

    # -- cancel and replace --------------------------------------------------------------

    def _cancel(self, c: CancelOrder) -> None:
        o = self.orders.get(c.order_id)
        if o is None or o.symbol != c.symbol:
            self._reject("c", c.order_id, c.symbol, R_UNKNOWN_ORDER)
            return
        self._take_out(o, C_USER)
        book = self.books[o.symbol]
        if book.status >= PRE_OPEN:
            self._indicate(book)

    def _replace(self, c: ReplaceOrder) -> None:
        oid, symbol, price, qty, stop_price = c.order_id, c.symbol, c.price, c.qty, c.stop_price
        o = self.orders.get(oid)
        if o is None or o.symbol != symbol:
            self._reject("r", oid, symbol, R_UNKNOWN_ORDER)
            return
        book = self.books[symbol]
        reason = self._check_replace(o, book, price, qty, stop_price, c.protect_price)
        if reason:
            self._reject("r", oid, symbol, reason, _DETAILS.get(reason, ""), o.account)
            return
        is_stop = o.type == STOP or o.type == STOP_LIMIT
        if is_stop and oid in book.stops:  # a waiting stop keeps its place among the stops
            if stop_price:
                o.stop_price = stop_price
            o.price = price
            o.protect = c.protect_price
            o.qty = o.filled + qty
            o.remaining = qty
            self._replaced(o, True)
            book.stops_dirty = True
            self._run_stops(book)
            return
        if book.status != OPEN or o.tif == CLS:
            self._replace_collected(book, o, price, qty)
            if book.status >= PRE_OPEN:
                self._indicate(book)
            return
        if price == o.price and qty <= o.remaining:  # keeps time priority
            self._shrink(book, o, qty)
            return
        self._move(book, o, price, qty)
        del self.orders[oid]
        self._execute(book, o)
        if book.stops_dirty:
            self._run_stops(book)

    def _replace_collected(self, book: Book, o: Order, price: int, qty: int) -> None:
        """Replace an order that waits for an auction (collected, or on-close waiting for
        the close): it moves, never matches; priority as for a resting order."""
        keep = price == o.price and qty <= o.remaining
        if o.order_id in book.on_close:
            o.price = price
            o.qty = o.filled + qty
            o.remaining = qty
            if not keep:  # to the back of the on-close orders
                del book.on_close[o.order_id]
                book.on_close[o.order_id] = o
            self._replaced(o, keep)
            return
        if keep:
            self._shrink(book, o, qty)
            return
        self._move(book, o, price, qty)
        level = (book.bids if o.is_buy else book.asks).add(o)
        self._delta(book.symbol, o.side, level.price, level.total)

    def _shrink(self, book: Book, o: Order, qty: int) -> None:
        """A replace that keeps time priority: the same price, ``qty`` no more than left."""
        level = (book.bids if o.is_buy else book.asks).levels[o.price]
        level.total -= o.remaining - qty
        o.qty -= o.remaining - qty
        o.remaining = qty
        self._replaced(o, True)
        self._delta(book.symbol, o.side, level.price, level.total)

    def _move(self, book: Book, o: Order, price: int, qty: int) -> None:
        """A replace that loses priority: out of its level, with its new price and qty."""
        level = (book.bids if o.is_buy else book.asks).remove(o)
        o.price = price
        o.qty = o.filled + qty
        o.remaining = qty
        self._replaced(o, False)
        self._delta(book.symbol, o.side, level.price, level.total)

    def _check_replace(
        self, o: Order, book: Book, price: int, qty: int, stop_price: int, protect: int
    ) -> str:
        """Why this replace must be rejected (details in ``_DETAILS``), or ""."""
        status = book.status
        if status == HALTED or status == CLOSED:
            return R_HALTED if status == HALTED else R_CLOSED
        if o.type == MARKET:
            return R_INVALID_TYPE
        if qty <= 0:
            return R_INVALID_QTY
        if qty % book.lot_size:
            return R_QTY_NOT_LOT_MULTIPLE
        if o.type == LIMIT or o.type == STOP_LIMIT:
            if price <= 0:
                return R_INVALID_PRICE
            if price % book.tick_size:
                return R_PRICE_NOT_TICK_MULTIPLE
        elif price != 0:
            return R_PRICE_NOT_ALLOWED
        if stop_price:
            if o.order_id not in book.stops or stop_price < 0:
                return R_INVALID_STOP_PRICE
            if stop_price % book.tick_size:
                return R_STOP_PRICE_NOT_TICK_MULTIPLE
        if protect and not _protect_ok(o.type, protect, book.tick_size):
            return R_INVALID_PROTECT_PRICE
        if o.post_only and price != o.price and book.would_take(o.is_buy, price):
            return R_POST_ONLY_WOULD_TAKE
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
        """Expire every DAY order (``symbol`` "") or those of ``symbol``, in the order the
        engine holds them."""
        day = [o for o in self.orders.values() if o.tif == DAY]
        for o in day:
            if symbol and o.symbol != symbol:
                continue
            if o.order_id not in self.orders:  # the other order of a pair that just expired
                continue
            self._expire(self.books[o.symbol], o)
        for book in self.books.values():
            if book.status >= PRE_OPEN and (not symbol or book.symbol == symbol):
                self._indicate(book)

    def expire_due(self) -> None:
        """Expire the GTD orders whose time has come by this command's timestamp, soonest
        first (the other order of a pair that goes with one is skipped)."""
        due = self.expiries.due(self._ts, self.orders)
        if not due:
            return
        touched: dict[str, Book] = {}
        for o in due:
            if o.order_id not in self.orders:
                continue
            book = self.books[o.symbol]
            self._expire(book, o)
            touched[book.symbol] = book
        for book in touched.values():
            if book.status >= PRE_OPEN:
                self._indicate(book)

    def _expire(self, book: Book, o: Order) -> None:
        del self.orders[o.order_id]
        o.transition(EXPIRED)
        self.seq += 1
        self._out.append(
            OrderExpired(
                seq=self.seq,
                ts=self._ts,
                order_id=o.order_id,
                account=o.account,
                symbol=o.symbol,
                remaining=o.remaining,
            )
        )
        level = self._unrest(book, o)
        if level is not None:
            self._delta(book.symbol, o.side, level.price, level.total)
        if o.link:
            self._unlink(o)


def _protect_ok(order_type: int, protect: int, tick_size: int) -> bool:
    """Whether a non-zero protection price is allowed: market and stop orders only."""
    return (order_type == MARKET or order_type == STOP) and protect > 0 and protect % tick_size == 0
