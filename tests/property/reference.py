"""A deliberately naive reference exchange, written from the matching rules, not from the engine.

Every book is one plain list of resting orders; the best match is found by a linear scan
keyed on (price, arrival). Stops are a list in acceptance order. No levels, no indexes, no
cleverness: it is slow and obviously right, which is the point. ``process`` answers outcome
tuples (see ``outcome`` in the test module) instead of events; book deltas are left out
and checked against the resulting book instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    Instrument,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)

BUY, SELL = 1, 2
MARKET, LIMIT, STOP, STOP_LIMIT = 1, 2, 3, 4
GTC, DAY, IOC, FOK, GTD = 1, 2, 3, 4, 7
OPEN, HALTED, CLOSED = 1, 2, 3

Outcome = tuple[Any, ...]


@dataclass(eq=False)  # identity: two orders are never 'equal'
class RefOrder:
    oid: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    stop_price: int
    qty: int
    post_only: bool
    filled: int = 0
    arrival: int = 0  # time priority in the book: smaller is earlier
    expire_ts: int = 0  # GTD: expires at the first command with ts at or after it
    self_trade: int = 0  # 0/1 cancel resting, 2 cancel incoming, 3 cancel both

    @property
    def remaining(self) -> int:
        return self.qty - self.filled

    @property
    def is_buy(self) -> bool:
        return self.side == BUY

    def would_trade_at(self, price: int) -> bool:
        """Whether this order, as a taker, accepts a maker's ``price``."""
        if self.type in (MARKET, STOP):
            return True
        return price <= self.price if self.is_buy else price >= self.price


@dataclass(eq=False)
class RefBook:
    symbol: str
    tick: int
    lot: int
    status: int = OPEN
    last: int = 0
    resting: list[RefOrder] = field(default_factory=list)
    stops: list[RefOrder] = field(default_factory=list)

    def makers_for(self, taker: RefOrder) -> list[RefOrder]:
        """Resting orders on the other side that ``taker`` would trade with, best first."""
        makers = [m for m in self.resting if m.side != taker.side and taker.would_trade_at(m.price)]
        return sorted(makers, key=lambda m: (m.price if taker.is_buy else -m.price, m.arrival))

    def side(self, side: int) -> list[tuple[int, int]]:
        """(price, total) per level, best first."""
        totals: dict[int, int] = {}
        for o in self.resting:
            if o.side == side:
                totals[o.price] = totals.get(o.price, 0) + o.remaining
        return sorted(totals.items(), reverse=side == BUY)

    def queue(self, side: int, price: int) -> list[int]:
        at = [o for o in self.resting if o.side == side and o.price == price]
        return [o.oid for o in sorted(at, key=lambda o: o.arrival)]


class Reference:
    """The reference exchange: ``process(cmd)`` -> outcome tuples, in order."""

    def __init__(self) -> None:
        self.books: dict[str, RefBook] = {}
        self.live: dict[int, RefOrder] = {}  # resting or waiting stops
        self.clock = 0
        self.out: list[Outcome] = []

    def process(self, cmd: Command) -> list[Outcome]:
        self.out = []
        self.expire_due(cmd.ts)
        if isinstance(cmd, NewOrder):
            self.new(cmd)
        elif isinstance(cmd, CancelOrder):
            self.cancel(cmd)
        elif isinstance(cmd, ReplaceOrder):
            self.replace(cmd)
        elif isinstance(cmd, SetTradingStatus):
            self.set_status(cmd)
        elif isinstance(cmd, EndOfDay):
            self.end_of_day()
        elif isinstance(cmd, AddInstrument):
            self.add_instrument(cmd)
        else:
            raise TypeError(cmd)
        return self.out

    # -- helpers ------------------------------------------------------------------------

    def reject(self, command: str, oid: int, symbol: str, reason: str) -> None:
        self.out.append(("rejected", command, oid, symbol, reason))

    def finish_cancel(self, o: RefOrder, reason: str) -> None:
        self.out.append(("cancelled", o.oid, o.account, reason, o.remaining))

    def take_out(self, book: RefBook, o: RefOrder) -> None:
        """Remove a live order from wherever it is (book or stops)."""
        if o in book.stops:
            book.stops.remove(o)
        else:
            book.resting.remove(o)
        del self.live[o.oid]

    def rest(self, book: RefBook, o: RefOrder) -> None:
        self.clock += 1
        o.arrival = self.clock
        book.resting.append(o)
        self.live[o.oid] = o

    # -- commands -----------------------------------------------------------------------

    def add_instrument(self, c: AddInstrument) -> None:
        if c.symbol in self.books:
            self.reject("ai", 0, c.symbol, "duplicate_symbol")
            return
        inst = Instrument(
            symbol=c.symbol,
            tick_size=c.tick_size,
            lot_size=c.lot_size,
            price_scale=c.price_scale,
            qty_scale=c.qty_scale,
        )
        if inst.validate() is not None:
            self.reject("ai", 0, c.symbol, "invalid_instrument")
            return
        self.books[c.symbol] = RefBook(c.symbol, c.tick_size, c.lot_size)
        self.out.append(("instrument", c.symbol))

    def set_status(self, c: SetTradingStatus) -> None:
        book = self.books.get(c.symbol)
        if book is None:
            self.reject("st", 0, c.symbol, "unknown_symbol")
        elif c.status not in (OPEN, HALTED, CLOSED):
            self.reject("st", 0, c.symbol, "invalid_instrument")
        else:
            book.status = int(c.status)
            self.out.append(("status", c.symbol, int(c.status)))

    def expire_due(self, ts: int) -> None:
        """GTD orders whose time has come, soonest first, then by id, before anything."""
        due = [o for o in self.live.values() if o.tif == GTD and o.expire_ts <= ts]
        for o in sorted(due, key=lambda o: (o.expire_ts, o.oid)):
            self.take_out(self.books[o.symbol], o)
            self.out.append(("expired", o.oid, o.account, o.remaining))

    def end_of_day(self) -> None:
        for o in list(self.live.values()):
            if o.tif == DAY:
                self.take_out(self.books[o.symbol], o)
                self.out.append(("expired", o.oid, o.account, o.remaining))

    def cancel(self, c: CancelOrder) -> None:
        o = self.live.get(c.order_id)
        if o is None or o.symbol != c.symbol:
            self.reject("c", c.order_id, c.symbol, "unknown_order")
            return
        self.take_out(self.books[o.symbol], o)
        self.finish_cancel(o, "user")

    def why_not_new(self, c: NewOrder) -> str:
        book = self.books.get(c.symbol)
        if book is None:
            return "unknown_symbol"
        if book.status == HALTED:
            return "instrument_halted"
        if book.status == CLOSED:
            return "instrument_closed"
        if c.order_id in self.live:  # like the engine: only a live id is a duplicate
            return "duplicate_order_id"
        if c.side not in (BUY, SELL):
            return "invalid_side"
        if c.type not in (MARKET, LIMIT, STOP, STOP_LIMIT):
            return "invalid_type"
        if c.tif not in (GTC, DAY, IOC, FOK, GTD):
            return "invalid_tif"
        if (c.tif == GTD and c.expire_ts <= c.ts) or (c.tif != GTD and c.expire_ts):
            return "invalid_expire_time"
        if not 0 <= c.self_trade <= 3:
            return "invalid_self_trade"
        if c.qty <= 0:
            return "invalid_qty"
        if c.qty % book.lot:
            return "qty_not_lot_multiple"
        if c.type in (LIMIT, STOP_LIMIT):
            if c.price <= 0:
                return "invalid_price"
            if c.price % book.tick:
                return "price_not_tick_multiple"
        elif c.price != 0:
            return "price_not_allowed"
        if c.type in (STOP, STOP_LIMIT):
            if c.stop_price <= 0:
                return "invalid_stop_price"
            if c.stop_price % book.tick:
                return "stop_price_not_tick_multiple"
        elif c.stop_price != 0:
            return "invalid_stop_price"
        if c.post_only:
            if c.type != LIMIT or c.tif in (IOC, FOK):
                return "post_only_not_allowed"
            probe = RefOrder(0, 0, c.symbol, c.side, LIMIT, c.tif, c.price, 0, 1, True)
            if book.makers_for(probe):
                return "post_only_would_take"
        return ""

    def new(self, c: NewOrder) -> None:
        reason = self.why_not_new(c)
        if reason:
            self.reject("n", c.order_id, c.symbol, reason)
            return
        book = self.books[c.symbol]
        o = RefOrder(
            c.order_id,
            c.account,
            c.symbol,
            c.side,
            c.type,
            c.tif,
            c.price,
            c.stop_price,
            c.qty,
            c.post_only,
        )
        o.expire_ts = c.expire_ts
        o.self_trade = c.self_trade
        self.out.append(("accepted", o.oid))
        if o.type in (STOP, STOP_LIMIT):
            book.stops.append(o)
            self.live[o.oid] = o
        else:
            self.execute(book, o)
        self.run_stops(book)

    def why_not_replace(self, c: ReplaceOrder, o: RefOrder, book: RefBook) -> str:
        if book.status == HALTED:
            return "instrument_halted"
        if book.status == CLOSED:
            return "instrument_closed"
        if c.qty <= 0:
            return "invalid_qty"
        if c.qty % book.lot:
            return "qty_not_lot_multiple"
        if o.type in (LIMIT, STOP_LIMIT):
            if c.price <= 0:
                return "invalid_price"
            if c.price % book.tick:
                return "price_not_tick_multiple"
        elif c.price != 0:
            return "price_not_allowed"
        if c.stop_price != 0:  # 0: keep the stop price
            if o not in book.stops or c.stop_price < 0:
                return "invalid_stop_price"
            if c.stop_price % book.tick:
                return "stop_price_not_tick_multiple"
        if o.post_only:
            probe = RefOrder(0, 0, o.symbol, o.side, LIMIT, o.tif, c.price, 0, 1, True)
            if book.makers_for(probe):
                return "post_only_would_take"
        return ""

    def replace(self, c: ReplaceOrder) -> None:
        o = self.live.get(c.order_id)
        if o is None or o.symbol != c.symbol:
            self.reject("r", c.order_id, c.symbol, "unknown_order")
            return
        book = self.books[o.symbol]
        reason = self.why_not_replace(c, o, book)
        if reason:
            self.reject("r", c.order_id, c.symbol, reason)
            return
        waiting = o in book.stops
        keeps = waiting or (c.price == o.price and c.qty <= o.remaining)
        if c.stop_price:
            o.stop_price = c.stop_price
        o.price = c.price
        o.qty = o.filled + c.qty
        self.out.append(("replaced", o.oid, o.price, o.remaining, o.stop_price, keeps))
        if not keeps:  # re-queued: out of the book, then in again as a taker
            self.take_out(book, o)
            self.execute(book, o)
        self.run_stops(book)

    # -- matching -----------------------------------------------------------------------

    def execute(self, book: RefBook, o: RefOrder) -> None:
        stops_at_own = o.self_trade in (2, 3)
        if o.tif == FOK:
            could = 0
            for m in book.makers_for(o):
                if m.account != o.account:
                    could += m.remaining
                elif stops_at_own:
                    break
            if could < o.remaining:
                self.finish_cancel(o, "fok")
                return
        while o.remaining > 0:
            makers = book.makers_for(o)
            if not makers:
                break
            m = makers[0]
            if m.account == o.account:
                if o.self_trade != 2:
                    self.take_out(book, m)
                    self.finish_cancel(m, "self_trade")
                if stops_at_own:
                    self.finish_cancel(o, "self_trade")
                    return
                continue
            q = min(o.remaining, m.remaining)
            o.filled += q
            m.filled += q
            book.last = m.price
            trade = ("trade", m.price, q, o.oid, m.oid, o.account, m.account, o.side)
            self.out.append((*trade, o.remaining, m.remaining))
            if m.remaining == 0:
                self.take_out(book, m)
        if o.remaining == 0:
            return
        if o.type in (MARKET, STOP):
            self.finish_cancel(o, "market")
        elif o.tif in (IOC, FOK):
            self.finish_cancel(o, "ioc")
        else:
            self.rest(book, o)

    def run_stops(self, book: RefBook) -> None:
        """Rounds: trigger every stop the last price reaches (acceptance order), then run them."""
        while book.last:
            last = book.last
            fired = [
                s
                for s in book.stops
                if (last >= s.stop_price if s.is_buy else last <= s.stop_price)
            ]
            if not fired:
                return
            for s in fired:
                self.take_out(book, s)
                self.out.append(("triggered", s.oid, s.stop_price, last))
            for s in fired:
                self.execute(book, s)
