"""The paper venue: fills in full at the market price, against the house, in the engine's
event vocabulary and on the engine's event sequence."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from mercato.domain import (
    PAPER,
    AddInstrument,
    Command,
    Event,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    SetKillSwitch,
    Trade,
)
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType
from mercato.engine import Engine, UnknownCommand
from mercato.engine.paper import PaperState, PaperVenue
from mercato.engine.venue import InternalVenue, Venue

from .helpers import (
    BUY,
    DAY,
    FOK,
    GTC,
    IOC,
    SELL,
    SYM,
    buy,
    cancel,
    eod,
    halt,
    replace,
    resume,
    sell,
    view,
)

MARKET, LIMIT, STOP, STOP_LIMIT = (int(t) for t in OrderType)


class Paper:
    """An engine with ``SYM`` and a paper venue over it, sharing one event sequence."""

    def __init__(self, tick: int = 1, lot: int = 1) -> None:
        self.engine = Engine()
        self.engine.process(AddInstrument(symbol=SYM, tick_size=tick, lot_size=lot))
        self.venue = PaperVenue(self.engine)
        self.seq = self.engine.seq

    def raw(self, *cmds: Command) -> list[Event]:
        out: list[Event] = []
        for c in cmds:
            self.venue.seq = self.seq
            out.extend(self.venue.process(c))
            self.seq = self.venue.seq
        return out

    def tick(self, price: int, ts: int = 0) -> list[Event]:
        self.venue.seq = self.seq
        out = self.venue.on_price(SYM, price, ts)
        self.seq = self.venue.seq
        return out

    def engine_raw(self, *cmds: Command) -> list[Event]:
        out: list[Event] = []
        for c in cmds:
            self.engine.seq = self.seq
            out.extend(self.engine.process(c))
            self.seq = self.engine.seq
        return out

    def __call__(self, *cmds: Command) -> list[tuple[Any, ...]]:
        return [view(e) for e in self.raw(*cmds)]

    def at(self, price: int) -> list[tuple[Any, ...]]:
        return [view(e) for e in self.tick(price)]

    def live(self) -> list[int]:
        return list(self.venue.orders)


def accepted(
    seq: int, ts: int, oid: int, acct: int, side: int, type: int, qty: int, **kw: Any
) -> OrderAccepted:
    """The ``OrderAccepted`` of a ``helpers.buy``/``sell`` order (defaults: GTC, no prices)."""
    return OrderAccepted(
        seq,
        ts,
        oid,
        acct,
        SYM,
        side,
        type,
        kw.get("tif", GTC),
        kw.get("price", 0),
        kw.get("stop_price", 0),
        qty,
        kw.get("post_only", False),
        "",
        kw.get("protect", 0),
    )


def fill(seq: int, ts: int, price: int, qty: int, oid: int, acct: int, side: int) -> Trade:
    """A paper fill: the house (``PAPER``, no order) is the maker."""
    return Trade(seq, ts, SYM, price, qty, oid, 0, acct, PAPER, side, 0, 0)


# -- market orders ---------------------------------------------------------------------------


def test_market_buy_fills_in_full_at_the_market_price() -> None:
    p = Paper()
    assert p.tick(100) == []
    assert p.raw(buy(1, 1000, acct=7, ts=5)) == [
        accepted(2, 5, 1, 7, BUY, MARKET, 1000),
        fill(3, 5, 100, 1000, 1, 7, BUY),
    ]
    assert p.live() == []
    book = p.engine.book(SYM)  # the real book is untouched
    assert book.bids.depth(0) == book.asks.depth(0) == [] and book.last_price == 0


def test_market_sell_fills_at_the_market_price() -> None:
    p = Paper()
    p.tick(100)
    assert p.raw(sell(1, 10, acct=7)) == [
        accepted(2, 0, 1, 7, SELL, MARKET, 10),
        fill(3, 0, 100, 10, 1, 7, SELL),
    ]


def test_market_order_without_a_market_price_is_rejected() -> None:
    p = Paper()
    assert p.raw(buy(1, 10, acct=7, ts=3)) == [
        Rejected(2, 3, "n", 1, SYM, "no_reference_price", "no market price to fill against", 7)
    ]
    assert p.live() == [] and p.venue.price(SYM) == 0


def test_protection_price_blocks_a_fill_beyond_it() -> None:
    p = Paper()
    p.tick(100)
    blocked = buy(1, 10, acct=7)
    blocked.protect_price = 99
    assert p.raw(blocked) == [
        accepted(2, 0, 1, 7, BUY, MARKET, 10, protect=99),
        OrderCancelled(3, 0, 1, 7, SYM, 10, "market"),
    ]
    ok = sell(2, 10, acct=7)
    ok.protect_price = 100  # at the limit: fills
    assert p(ok) == [("accepted", 2), ("trade", 100, 10, 2, 0)]
    fok = buy(3, 10, acct=7, tif=FOK)
    fok.protect_price = 99
    assert p(fok) == [("accepted", 3), ("cancelled", 3, "fok", 10)]


# -- limit orders ----------------------------------------------------------------------------


def test_limit_rests_then_fills_when_the_price_reaches_it() -> None:
    p = Paper()
    assert p.raw(buy(1, 10, 100, acct=7, ts=1), sell(2, 5, 110, acct=8, ts=1)) == [
        accepted(2, 1, 1, 7, BUY, LIMIT, 10, price=100),
        accepted(3, 1, 2, 8, SELL, LIMIT, 5, price=110),
    ]
    assert p.live() == [1, 2]
    assert p.tick(101, ts=2) == []
    assert p.tick(99, ts=3) == [fill(4, 3, 99, 10, 1, 7, BUY)]  # at the market price
    assert p.tick(110, ts=4) == [fill(5, 4, 110, 5, 2, 8, SELL)]  # at the limit: fills
    assert p.live() == []


def test_limit_marketable_on_arrival_fills_at_the_market_price() -> None:
    p = Paper()
    p.tick(100)
    assert p.raw(buy(1, 10, 105, acct=7)) == [
        accepted(2, 0, 1, 7, BUY, LIMIT, 10, price=105),
        fill(3, 0, 100, 10, 1, 7, BUY),  # price improvement: 100, not 105
    ]
    assert p(sell(2, 10, 95, acct=7)) == [("accepted", 2), ("trade", 100, 10, 2, 0)]


def test_one_price_fills_every_order_it_reaches_in_acceptance_order() -> None:
    p = Paper()
    p(buy(1, 1, 100), buy(2, 2, 98), buy(3, 3, 99), sell(4, 4, 120))
    assert p.at(99) == [("trade", 99, 1, 1, 0), ("trade", 99, 3, 3, 0)]
    assert p.live() == [2, 4]


def test_ioc_and_fok_fill_in_full_or_are_cancelled() -> None:
    p = Paper()
    assert p(buy(1, 10, 100, tif=IOC), buy(2, 10, 100, tif=FOK)) == [
        ("accepted", 1),
        ("cancelled", 1, "ioc", 10),  # no price yet
        ("accepted", 2),
        ("cancelled", 2, "fok", 10),
    ]
    p.tick(101)
    assert p(buy(3, 10, 100, tif=IOC), sell(4, 10, 102, tif=FOK)) == [
        ("accepted", 3),
        ("cancelled", 3, "ioc", 10),
        ("accepted", 4),
        ("cancelled", 4, "fok", 10),
    ]
    assert p(buy(5, 10, 101, tif=IOC), sell(6, 10, 100, tif=FOK)) == [
        ("accepted", 5),
        ("trade", 101, 10, 5, 0),
        ("accepted", 6),
        ("trade", 101, 10, 6, 0),
    ]
    assert p.live() == []


def test_post_only_rests_or_is_rejected_when_it_would_take() -> None:
    p = Paper()
    assert p(buy(1, 10, 100, post_only=True)) == [("accepted", 1)]  # no price: rests
    p.tick(101)
    assert p(buy(2, 10, 101, post_only=True), sell(3, 10, 102, post_only=True)) == [
        ("rejected", "n", 2, "post_only_would_take"),
        ("accepted", 3),
    ]
    assert p(buy(4, 10, 100, post_only=True, tif=IOC)) == [
        ("rejected", "n", 4, "post_only_not_allowed")
    ]
    assert p.at(102) == [("trade", 102, 10, 3, 0)]


# -- stops -----------------------------------------------------------------------------------


def test_stop_waits_then_triggers_and_fills_at_the_market_price() -> None:
    p = Paper()
    p.tick(100)
    assert p.raw(buy(1, 5, stop=105, acct=7), sell(2, 5, stop=95, acct=8)) == [
        accepted(2, 0, 1, 7, BUY, STOP, 5, stop_price=105),
        accepted(3, 0, 2, 8, SELL, STOP, 5, stop_price=95),
    ]
    assert p.venue.stops(SYM) == [1, 2]
    assert p.tick(104) == []
    assert p.tick(106, ts=9) == [
        OrderTriggered(4, 9, 1, 7, SYM, 105, 106),
        fill(5, 9, 106, 5, 1, 7, BUY),
    ]
    assert p.at(95) == [("triggered", 2, 95), ("trade", 95, 5, 2, 0)]  # at the stop: triggers
    assert p.live() == [] and p.venue.stops(SYM) == []


def test_stop_already_reached_on_arrival_triggers_at_once() -> None:
    p = Paper()
    assert p(buy(1, 5, stop=105)) == [("accepted", 1)]  # no price: waits
    assert p.at(110) == [("triggered", 1, 110), ("trade", 110, 5, 1, 0)]
    assert p(buy(2, 5, stop=105)) == [
        ("accepted", 2),
        ("triggered", 2, 110),
        ("trade", 110, 5, 2, 0),
    ]


def test_stops_that_trigger_together_all_trigger_before_any_executes() -> None:
    p = Paper()
    p.tick(100)
    p(sell(1, 5, stop=98), sell(2, 3, 90, stop=99), sell(3, 2, stop=97))
    assert p.at(96) == [
        ("triggered", 1, 96),
        ("triggered", 2, 96),
        ("triggered", 3, 96),
        ("trade", 96, 5, 1, 0),
        ("trade", 96, 3, 2, 0),  # a stop-limit at 90: marketable
        ("trade", 96, 2, 3, 0),
    ]


def test_stop_blocked_by_its_protection_price_is_cancelled() -> None:
    p = Paper()
    p.tick(100)
    stop = buy(1, 5, stop=105)
    stop.protect_price = 106
    p(stop)
    assert p.at(107) == [("triggered", 1, 107), ("cancelled", 1, "market", 5)]


def test_stop_limit_triggers_and_rests_as_a_limit() -> None:
    p = Paper()
    p.tick(100)
    assert p(buy(1, 5, 104, stop=105)) == [("accepted", 1)]
    assert p.at(106) == [("triggered", 1, 106)]  # 106 > 104: rests
    assert p.venue.stops(SYM) == [] and p.live() == [1]
    assert p.at(105) == []
    assert p.at(104) == [("trade", 104, 5, 1, 0)]


def test_stop_limit_marketable_when_triggered_fills_at_once() -> None:
    p = Paper()
    p.tick(100)
    p(sell(1, 5, 94, stop=95), buy(2, 5, 100, stop=105, tif=IOC))
    assert p.at(95) == [("triggered", 1, 95), ("trade", 95, 5, 1, 0)]
    assert p.at(106) == [("triggered", 2, 106), ("cancelled", 2, "ioc", 5)]


# -- cancel, replace, end of day -------------------------------------------------------------


def test_cancel() -> None:
    p = Paper()
    p(buy(1, 10, 100, acct=7), sell(2, 5, stop=90, acct=8))
    assert p.raw(cancel(1, ts=4)) == [OrderCancelled(4, 4, 1, 7, SYM, 10, "user")]
    assert p(cancel(2)) == [("cancelled", 2, "user", 5)]
    assert p(cancel(1), cancel(3), cancel(2, sym="OTHER")) == [
        ("rejected", "c", 1, "unknown_order"),
        ("rejected", "c", 3, "unknown_order"),
        ("rejected", "c", 2, "unknown_order"),
    ]
    assert p.live() == [] and p.venue.stops(SYM) == []
    assert p.at(80) == []


def test_replace_changes_the_price_then_fills() -> None:
    p = Paper()
    p.tick(105)
    p(buy(1, 10, 100, acct=7), buy(2, 10, 99, acct=7))
    assert p.raw(replace(1, 101, 8, ts=6)) == [OrderReplaced(4, 6, 1, 7, SYM, 101, 8, 0, False)]
    assert p.live() == [2, 1]  # lost its place
    assert p(replace(2, 99, 4)) == [("replaced", 2, 99, 4, "kept")]
    assert p.live() == [2, 1]
    assert p.at(101) == [("trade", 101, 8, 1, 0)]
    assert p(replace(2, 106, 4)) == [("replaced", 2, 106, 4, "lost"), ("trade", 101, 4, 2, 0)]
    assert p.venue.orders == {}


def test_replace_a_waiting_stop() -> None:
    p = Paper()
    p.tick(100)
    p(buy(1, 5, stop=110))
    assert p(replace(1, 0, 6, stop=108)) == [("replaced", 1, 0, 6, "kept")]
    assert p.at(108) == [("triggered", 1, 108), ("trade", 108, 6, 1, 0)]
    p(buy(2, 5, stop=110))
    assert p(replace(2, 0, 5, stop=107)) == [  # the price is already there: triggers
        ("replaced", 2, 0, 5, "kept"),
        ("triggered", 2, 108),
        ("trade", 108, 5, 2, 0),
    ]


def test_replace_rejections() -> None:
    p = Paper(tick=5, lot=10)
    p.tick(100)
    p(buy(1, 10, 95, acct=7, post_only=True))
    assert p.raw(replace(1, 100, 10)) == [
        Rejected(3, 0, "r", 1, SYM, "post_only_would_take", "", 7)
    ]
    assert p(
        replace(1, 90, 15),
        replace(1, 92, 10),
        replace(1, 90, 10, stop=85),
        replace(9, 90, 10),
    ) == [
        ("rejected", "r", 1, "qty_not_lot_multiple"),
        ("rejected", "r", 1, "price_not_tick_multiple"),
        ("rejected", "r", 1, "invalid_stop_price"),
        ("rejected", "r", 9, "unknown_order"),
    ]
    p.engine_raw(halt())
    assert p(replace(1, 90, 10)) == [("rejected", "r", 1, "instrument_halted")]
    assert p.venue.orders[1].price == 95


def test_end_of_day_expires_day_orders() -> None:
    p = Paper()
    p.tick(100)
    p(
        buy(1, 10, 90, tif=DAY, acct=7),
        buy(2, 10, 91),
        sell(3, 5, stop=80, tif=DAY, acct=8),
        sell(4, 5, 120, tif=DAY, acct=8),
    )
    assert p.raw(eod(ts=50)) == [
        OrderExpired(6, 50, 1, 7, SYM, 10),
        OrderExpired(7, 50, 3, 8, SYM, 5),
        OrderExpired(8, 50, 4, 8, SYM, 5),
    ]
    assert p.live() == [2] and p.venue.stops(SYM) == []
    assert p(eod()) == []
    assert [o.status for o in p.venue.orders.values()] == [OrderStatus.ACCEPTED]


# -- validation ------------------------------------------------------------------------------


def test_duplicate_order_ids_are_rejected_among_paper_and_engine_orders() -> None:
    p = Paper()
    p(buy(1, 10, 90, acct=7))
    p.engine_raw(sell(2, 10, 120, acct=8))  # a live order on the internal venue
    assert p.raw(buy(1, 5, 80, acct=9), buy(2, 5, 80, acct=9)) == [
        Rejected(5, 0, "n", 1, SYM, "duplicate_order_id", "", 9),
        Rejected(6, 0, "n", 2, SYM, "duplicate_order_id", "", 9),
    ]
    assert p.venue.orders[1].account == 7


def test_engine_rules_apply_to_paper_orders() -> None:
    p = Paper(tick=5, lot=10)
    assert p(
        buy(1, 15, 100),
        buy(2, 10, 102),
        buy(3, 10, 100, sym="NOPE"),
        buy(4, 10, stop=0, type=STOP),
    ) == [
        ("rejected", "n", 1, "qty_not_lot_multiple"),
        ("rejected", "n", 2, "price_not_tick_multiple"),
        ("rejected", "n", 3, "unknown_symbol"),
        ("rejected", "n", 4, "invalid_stop_price"),
    ]


def test_halted_instrument_rejects_orders_and_fills_nothing() -> None:
    p = Paper()
    p(buy(1, 10, 100), buy(2, 10, 100))
    p.engine_raw(halt())
    assert p(buy(3, 10, 100)) == [("rejected", "n", 3, "instrument_halted")]
    assert p.at(90) == []  # recorded, but no fill while halted
    assert p.venue.price(SYM) == 90
    assert p(cancel(2)) == [("cancelled", 2, "user", 10)]  # cancels still work
    p.engine_raw(resume())
    assert p.at(90) == [("trade", 90, 10, 1, 0)]  # the first price after reopening fills


def test_only_order_commands() -> None:
    with pytest.raises(UnknownCommand):
        Paper().raw(SetKillSwitch(account=0, on=True))


# -- the shared sequence and snapshots -------------------------------------------------------


def test_events_continue_the_shared_sequence() -> None:
    p = Paper()
    events = [
        *p.engine_raw(sell(1, 5, 100, acct=8), buy(2, 5, 100, acct=9)),
        *p.raw(buy(10, 5, 101, acct=7)),
        *p.tick(p.engine.book(SYM).last_price, ts=1),
        *p.raw(buy(11, 5, acct=7), buy(12, 5, 90), sell(13, 1, stop=95)),
        *p.engine_raw(sell(3, 5, 102, acct=8)),
        *p.tick(95, ts=2),
        *p.raw(cancel(99), eod()),
    ]
    assert [e.seq for e in events] == list(range(2, 2 + len(events)))
    assert p.seq == p.venue.seq == events[-1].seq
    assert any(isinstance(e, Trade) and e.maker_account == PAPER for e in events)


HISTORY: list[Command] = [
    buy(1, 10, 100, acct=1),
    buy(2, 10, 99, acct=2, tif=DAY),
    sell(3, 5, 103, acct=4, post_only=True),
    buy(4, 5, stop=103, acct=6),
    sell(5, 5, 95, stop=99, acct=7, tif=DAY),
    sell(6, 5, 94, stop=98, acct=7),
    replace(1, 100, 8),
]
FUTURE: list[Command | int] = [
    100,
    replace(2, 101, 5),  # lost its place
    98,  # triggers 5 and 6, they rest (limits 95, 94); fills 1, 2
    buy(7, 3, acct=9),
    cancel(3),
    104,  # triggers 4
    eod(),
    94,
    sell(8, 1, acct=9),
]


def run(p: Paper, cmds: list[Command | int]) -> list[Event]:
    return [e for c in cmds for e in (p.tick(c) if isinstance(c, int) else p.raw(c))]


@pytest.mark.parametrize("cut", range(len(FUTURE)))
def test_restore_gives_an_identical_venue(cut: int) -> None:
    p = Paper()
    p.tick(101)
    p.raw(*HISTORY)
    run(p, FUTURE[:cut])
    state = p.venue.capture()
    data = msgspec.msgpack.encode(state)
    q = Paper()
    q.seq = p.seq
    q.venue = PaperVenue.restore(q.engine, msgspec.msgpack.decode(data, type=PaperState))
    assert q.venue.capture() == state and msgspec.msgpack.encode(q.venue.capture()) == data
    assert run(q, FUTURE[cut:]) == run(p, FUTURE[cut:])
    assert q.venue.capture() == p.venue.capture()


def test_capture_holds_every_order_field() -> None:
    p = Paper()
    p.tick(100)
    o = sell(1, 5, stop=90, acct=3, tif=DAY)
    o.protect_price = 80
    o.client_order_id = "abc"
    p(o, buy(2, 5, 99, post_only=True))
    state = p.venue.capture()
    assert state.prices == [(SYM, 100)] and state.stops == [1]
    assert [msgspec.structs.astuple(s) for s in state.orders] == [
        (1, 3, SYM, SELL, STOP, DAY, 0, 90, 5, 0, 5, OrderStatus.ACCEPTED, False, "abc", 80, 0),
        (2, 1, SYM, BUY, LIMIT, GTC, 99, 0, 5, 0, 5, OrderStatus.ACCEPTED, True, "", 0, 0),
    ]
    with pytest.raises(ValueError):
        PaperVenue.restore(p.engine, msgspec.structs.replace(state, version=0))


# -- the venue protocol ----------------------------------------------------------------------


def test_both_venues_behind_one_interface() -> None:
    engine = Engine()
    engine.process(AddInstrument(symbol=SYM))
    venues: list[Venue] = [InternalVenue(engine), PaperVenue(engine)]
    for v, oid in zip(venues, (1, 2), strict=True):
        v.seq = 10 * oid
        ev = v.process(buy(oid, 5, 100))  # the internal venue adds a BookDelta
        assert isinstance(ev[0], OrderAccepted) and ev[0].seq == 10 * oid + 1
        assert v.seq == ev[-1].seq
        assert list(v.orders) == [oid]
    assert venues[0].on_price(SYM, 90, 0) == []
    assert [view(e) for e in venues[1].on_price(SYM, 90, 0)] == [("trade", 90, 5, 2, 0)]
    assert engine.seq == 12
