"""The engine against a naive reference exchange (``reference.py``), command by command.

Hypothesis drives both with the same random commands: every order type and time in force,
post-only, several accounts (so self-trade prevention happens), cancels and replaces of live,
finished and unknown ids, halts, end of day, a few malformed commands, and snapshot/restore
of the engine in the middle. After every step the outcomes (trades, cancels, triggers,
expiries, rejections) must be equal, the books equal level by level and queue by queue, and
the engine's invariants must hold. Hypothesis prints the failing steps and a reproduction
blob; ``MERCATO_HYPOTHESIS_PROFILE=long`` runs many more examples.
"""

from __future__ import annotations

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from msgspec.structs import replace as with_fields

from mercato.domain import (
    AddInstrument,
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
from mercato.engine import Engine, encode, restore, state_hash

from .reference import (
    BUY,
    CLOSED,
    HALTED,
    MARKET,
    OPEN,
    SELL,
    STOP,
    Outcome,
    Reference,
)
from .strategies import BASE, SPEC, START, ReplaceArgs, order_batches, replace_args

Levels = dict[tuple[int, int], int]  # (side, price) -> total


def label(o: Outcome) -> str:
    """What kind of outcome this is, with the reason for cancels and rejections."""
    if o[0] == "cancelled":
        return f"cancelled {o[3]}"
    if o[0] == "replaced":
        return "replaced, kept priority" if o[-1] else "replaced, re-queued"
    return f"rejected {o[-1]}" if o[0] == "rejected" else str(o[0])


def outcome(e: Event) -> Outcome | None:
    """An engine event as the reference's outcome tuple (None for book deltas)."""
    if isinstance(e, OrderAccepted):
        return ("accepted", e.order_id)
    if isinstance(e, Trade):
        return (
            "trade",
            e.price,
            e.qty,
            e.taker_order_id,
            e.maker_order_id,
            e.taker_account,
            e.maker_account,
            e.taker_side,
            e.taker_remaining,
            e.maker_remaining,
        )
    if isinstance(e, OrderCancelled):
        return ("cancelled", e.order_id, e.account, e.reason, e.remaining)
    if isinstance(e, OrderTriggered):
        return ("triggered", e.order_id, e.stop_price, e.last_price)
    if isinstance(e, OrderExpired):
        return ("expired", e.order_id, e.account, e.remaining)
    if isinstance(e, OrderReplaced):
        return ("replaced", e.order_id, e.price, e.qty, e.stop_price, e.kept_priority)
    if isinstance(e, Rejected):
        return ("rejected", e.command, e.order_id, e.symbol, e.reason)
    if isinstance(e, TradingStatusChanged):
        return ("status", e.symbol, e.status)
    if isinstance(e, InstrumentAdded):
        return ("instrument", e.symbol)
    if isinstance(e, BookDelta):
        return None
    raise AssertionError(f"unexpected event {e!r}")


# -- the state machine ------------------------------------------------------------------------


class EngineMatchesReference(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.engine = Engine()
        self.ref = Reference()
        self.seq = 0
        self.ts = 0
        self.ids: list[int] = []  # every order id sent so far
        self.symbol_of: dict[int, str] = {}
        for sym in START:
            tick, lot = SPEC[sym]
            self.step(AddInstrument(symbol=sym, tick_size=tick, lot_size=lot))

    # -- the one way commands go in --

    def step(self, cmd: Command) -> list[Event]:
        self.ts += 1
        cmd = with_fields(cmd, ts=self.ts)
        before = {s: self.levels(s) for s in self.engine.books}
        events = self.engine.process(cmd)
        expected = self.ref.process(cmd)
        got = [o for o in map(outcome, events) if o is not None]
        if isinstance(cmd, EndOfDay):  # which DAY order expires first is not in the rules
            got, expected = sorted(got), sorted(expected)
        assert got == expected, f"\ncommand  {cmd}\nengine   {got}\nexpected {expected}"
        for o in got:  # coverage, shown by --hypothesis-show-statistics
            event(label(o))
        for e in events:
            assert e.seq == self.seq + 1, f"seq {e.seq} after {self.seq}: {e}"
            assert e.ts == self.ts
            self.seq = e.seq
        assert self.engine.seq == self.seq
        self.check_deltas(before, events)
        self.check_state()
        return events

    def levels(self, sym: str) -> Levels:
        book = self.engine.book(sym)
        out = {(BUY, p): q for p, q in book.bids.depth(0)}
        out.update({(SELL, p): q for p, q in book.asks.depth(0)})
        return out

    def check_deltas(self, before: dict[str, Levels], events: list[Event]) -> None:
        """Every level that changed got a delta, and the last delta of a level is its total."""
        last: dict[tuple[str, int, int], int] = {}
        for e in events:
            if isinstance(e, BookDelta):
                last[(e.symbol, e.side, e.price)] = e.qty
        for sym in self.engine.books:
            now, then = self.levels(sym), before.get(sym, {})
            for side, price in set(now) | set(then):
                if now.get((side, price)) != then.get((side, price)):
                    assert (sym, side, price) in last, f"no delta for {sym} {side} @ {price}"
        for (sym, side, price), qty in last.items():
            assert self.levels(sym).get((side, price), 0) == qty, (sym, side, price, qty)

    def check_state(self) -> None:
        engine, ref = self.engine, self.ref
        assert list(engine.books) == list(ref.books)
        for sym, rb in ref.books.items():
            book = engine.book(sym)
            assert book.bids.depth(0) == rb.side(BUY), sym
            assert book.asks.depth(0) == rb.side(SELL), sym
            for side in (book.bids, book.asks):
                for price, level in side.levels.items():
                    assert list(level.orders) == rb.queue(side.side, price), (sym, price)
                    assert level.total == sum(o.remaining for o in level.orders.values())
                    for o in level.orders.values():
                        assert (o.price, o.side) == (price, side.side), o
            assert list(book.stops) == [s.oid for s in rb.stops], sym
            assert (book.last_price, book.status) == (rb.last, rb.status), sym
            bid, ask = book.bids.best_price(), book.asks.best_price()
            assert not (bid and ask and bid >= ask), f"{sym} crossed: {bid} >= {ask}"
        assert set(engine.orders) == set(ref.live)
        for oid, o in engine.orders.items():
            r = ref.live[oid]
            assert 0 < o.remaining == o.qty - o.filled and o.filled <= o.qty, o
            assert (o.price, o.stop_price, o.qty, o.filled, o.account, o.tif) == (
                r.price,
                r.stop_price,
                r.qty,
                r.filled,
                r.account,
                r.tif,
            ), (o, r)

    # -- rules --
    # Hypothesis picks among rules evenly, so order flow gets several rules and the rarer
    # commands (status, end of day, instruments) share one.

    def pick_id(self, source: str, pick: int) -> int:
        """A live id ("live"), any id sent so far ("any"), or one never sent; falls back."""
        live = sorted(self.ref.live)
        if source == "live" and live:
            return live[pick % len(live)]
        if source in ("live", "any") and self.ids:
            return self.ids[pick % len(self.ids)]
        return 10_000 + pick % 100  # never used

    def send_orders(self, orders: list[tuple[NewOrder, int, int]]) -> None:
        for cmd, reuse, pick in orders:
            if reuse == 0 and self.ids:  # a live id is a duplicate, a finished one is reused
                oid = self.ids[pick % len(self.ids)]
            else:
                oid = len(self.ids) + 1
                self.ids.append(oid)
            self.symbol_of[oid] = cmd.symbol
            self.step(with_fields(cmd, order_id=oid))

    @rule(orders=order_batches)
    def new_orders(self, orders: list[tuple[NewOrder, int, int]]) -> None:
        self.send_orders(orders)

    @rule(orders=order_batches)
    def more_new_orders(self, orders: list[tuple[NewOrder, int, int]]) -> None:
        self.send_orders(orders)

    def symbol_for(self, oid: int) -> str:
        o = self.ref.live.get(oid)
        return o.symbol if o is not None else self.symbol_of.get(oid, "AAA")

    def send_cancel(self, oid: int, wrong_symbol: bool) -> None:
        sym = self.symbol_for(oid)
        if wrong_symbol:
            sym = "BBB" if sym == "AAA" else "AAA"
        self.step(CancelOrder(order_id=oid, symbol=sym))

    @rule(pick=st.integers(0, 999), wrong_symbol=st.integers(0, 19))
    def cancel_live(self, pick: int, wrong_symbol: int) -> None:
        self.send_cancel(self.pick_id("live", pick), wrong_symbol == 0)

    def send_replace(self, oid: int, r: ReplaceArgs) -> None:
        price_ticks, how, qty_lots, stop_ticks, flaw = r
        sym = self.symbol_for(oid)
        tick, lot = SPEC[sym]
        o = self.ref.live.get(oid)
        same_price = how == "same" and o is not None
        opposite = self.ref.books[sym].side(SELL if o.is_buy else BUY) if o is not None else []
        if o is not None and o.type in (MARKET, STOP):
            price = 0
        elif same_price and o is not None:
            price = o.price
        elif how == "cross" and opposite:  # takes liquidity (or is refused, if post-only)
            price = opposite[0][0]
        else:
            price = BASE + price_ticks * tick
        waiting = o is not None and o in self.ref.books[sym].stops
        stop = BASE + stop_ticks * tick if stop_ticks is not None and waiting else 0
        qty = qty_lots * lot
        if same_price and o is not None and flaw is None and qty_lots % 2:
            qty = max(lot, o.remaining - lot * (qty_lots // 2))  # shrink: keeps priority
        if flaw == "tick" and tick > 1:
            price += 1
        elif flaw == "lot" and lot > 1:
            qty += 1
        elif flaw == "zero_qty":
            qty = 0
        elif flaw == "price":
            price = BASE if price == 0 else 0
        elif flaw == "neg_stop":
            stop = -tick
        self.step(ReplaceOrder(order_id=oid, symbol=sym, price=price, qty=qty, stop_price=stop))

    @rule(pick=st.integers(0, 999), r=replace_args)
    def replace_live(self, pick: int, r: ReplaceArgs) -> None:
        self.send_replace(self.pick_id("live", pick), r)

    @rule(
        source=st.sampled_from(["any", "any", "unknown"]),
        pick=st.integers(0, 999),
        r=replace_args,
        do_cancel=st.booleans(),
    )
    def cancel_or_replace_any(
        self, source: str, pick: int, r: ReplaceArgs, do_cancel: bool
    ) -> None:
        oid = self.pick_id(source, pick)
        if do_cancel:
            self.send_cancel(oid, False)
        else:
            self.send_replace(oid, r)

    @rule(
        op=st.sampled_from(
            ["eod", "eod", "open", "open", "halt", "close", "bad_status", "add", "add_bad"]
        ),
        sym=st.sampled_from(["AAA", "BBB", "ZZZ"]),
    )
    def admin(self, op: str, sym: str) -> None:
        if op == "eod":
            self.step(EndOfDay())
        elif op in ("open", "halt", "close", "bad_status"):
            status = {"open": OPEN, "halt": HALTED, "close": CLOSED, "bad_status": 9}[op]
            self.step(SetTradingStatus(symbol=sym, status=status))  # type: ignore[arg-type]
        elif op == "add":  # adds ZZZ, or is refused as a duplicate
            tick, lot = SPEC[sym]
            self.step(AddInstrument(symbol=sym, tick_size=tick, lot_size=lot))
        else:
            self.step(AddInstrument(symbol=sym + "!", tick_size=0))

    @rule()
    def snapshot_and_restore(self) -> None:
        """Carry on with an engine restored from a snapshot: nothing may tell the difference."""
        data = encode(self.engine)
        restored = restore(data)
        assert state_hash(restored) == state_hash(self.engine)
        assert encode(restored) == data
        self.engine = restored
        self.check_state()

    @invariant()
    def every_live_order_is_somewhere_once(self) -> None:
        where: dict[int, int] = {}
        for book in self.engine.books.values():
            for oid in book.stops:
                where[oid] = where.get(oid, 0) + 1
            for side in (book.bids, book.asks):
                for level in side.levels.values():
                    for oid in level.orders:
                        where[oid] = where.get(oid, 0) + 1
        assert where == dict.fromkeys(self.engine.orders, 1)


TestEngineMatchesReference = EngineMatchesReference.TestCase
