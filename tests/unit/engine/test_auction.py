"""Call auctions: orders collect without matching, an indicative price is published while
they do, and the uncross executes at one price (docs/matching.md, "Auctions")."""

from __future__ import annotations

from mercato.domain import NewOrder
from mercato.domain.types import OrderType, TimeInForce, TradingStatus
from mercato.engine import snapshot

from .helpers import (
    BUY,
    DAY,
    FOK,
    IOC,
    SELL,
    SYM,
    Market,
    buy,
    cancel,
    eod,
    halt,
    replace,
    sell,
    status,
)

PRE_OPEN = TradingStatus.PRE_OPEN
OPENING = TradingStatus.OPENING_AUCTION
CLOSING = TradingStatus.CLOSING_AUCTION
OPEN, CLOSED = TradingStatus.OPEN, TradingStatus.CLOSED
OPG, CLS = int(TimeInForce.OPG), int(TimeInForce.CLS)
CLEARED = ("indicative", 0, 0, 0, 0)


def traded_at(m: Market, price: int) -> None:
    """Give the instrument a last trade price (the auction's reference price)."""
    m(buy(900, 1, price, acct=8), sell(901, 1, price, acct=9))
    assert m.engine.book(SYM).last_price == price


def market(
    side: int, oid: int, qty: int, *, protect: int = 0, acct: int = 0, **kw: int
) -> NewOrder:
    """A market order with a protection price (0: any price), straight to the engine."""
    o = (buy if side == BUY else sell)(oid, qty, acct=acct or side, **kw)
    return NewOrder(
        ts=o.ts,
        order_id=o.order_id,
        account=o.account,
        symbol=o.symbol,
        side=o.side,
        type=int(OrderType.MARKET),
        qty=o.qty,
        tif=o.tif,
        protect_price=protect,
    )


# -- collecting -----------------------------------------------------------------------------


def test_orders_collect_without_matching_and_the_indicative_price_follows_them() -> None:
    m = Market()
    assert m(status(PRE_OPEN)) == [("status", SYM, "PRE_OPEN")]
    assert m(buy(1, 10, 101)) == [("accepted", 1), ("delta", "bid", 101, 10)]
    # crosses, nothing trades: 6 would execute, 4 left on the buy side
    assert m(sell(2, 6, 99)) == [
        ("accepted", 2),
        ("delta", "ask", 99, 6),
        ("indicative", 99, 6, 4, BUY),
    ]
    assert m(sell(3, 4, 100)) == [
        ("accepted", 3),
        ("delta", "ask", 100, 4),
        ("indicative", 100, 10, 0, 0),
    ]
    assert m.bids() == [(101, 10)] and m.asks() == [(99, 6), (100, 4)]  # crossed, on purpose


def test_the_opening_uncross_executes_everything_at_one_price_then_opens() -> None:
    m = Market()
    m(status(PRE_OPEN), buy(1, 10, 101), sell(2, 6, 99), sell(3, 4, 100))
    assert m(status(OPEN)) == [
        ("trade", 100, 6, 2, 1),  # the later order (higher id) is the taker
        ("trade", 100, 4, 3, 1),
        ("delta", "bid", 101, 0),
        ("delta", "ask", 99, 0),
        ("delta", "ask", 100, 0),
        CLEARED,
        ("status", SYM, "OPEN"),
    ]
    assert m.bids() == [] and m.asks() == [] and m.live() == []
    assert m.engine.book(SYM).last_price == 100


def test_what_is_left_after_the_uncross_rests_and_continuous_trading_follows() -> None:
    m = Market()
    m(status(PRE_OPEN), status(OPENING), buy(1, 10, 101), sell(2, 4, 100), buy(3, 5, 99))
    events = m(status(OPEN))
    assert ("trade", 100, 4, 2, 1) in events and events[-1] == ("status", SYM, "OPEN")
    assert m.bids() == [(101, 6), (99, 5)] and m.asks() == []
    assert m(sell(4, 6, 101)) == [
        ("accepted", 4),
        ("trade", 101, 6, 4, 1),
        ("delta", "bid", 101, 0),
    ]


def test_a_book_that_does_not_cross_opens_without_trades() -> None:
    m = Market()
    m(status(PRE_OPEN), buy(1, 5, 99), sell(2, 5, 101))
    assert m(status(OPEN)) == [("status", SYM, "OPEN")]
    assert m.bids() == [(99, 5)] and m.asks() == [(101, 5)]


# -- the price and its tie-breaks -------------------------------------------------------------


def test_the_price_executes_the_most() -> None:
    m = Market()
    # at 100: 10 buy, 6 sell -> 6; at 101: 7 buy, 9 sell -> 7; at 102: 3 buy, 9 sell -> 3
    m(status(PRE_OPEN), buy(1, 3, 102), buy(2, 4, 101), buy(3, 3, 100))
    m(sell(4, 6, 99), sell(5, 3, 101))
    events = m(status(OPEN))
    assert {e[1] for e in events if e[0] == "trade"} == {101}
    assert sum(e[2] for e in events if e[0] == "trade") == 7


def test_equal_volume_goes_to_the_least_surplus_before_the_reference_price() -> None:
    m = Market()
    traded_at(m, 102)
    # 100 and 101: 10 against 10 (surplus 0); 102, the reference: 10 against 13 (surplus 3)
    m(status(PRE_OPEN), buy(1, 10, 102), sell(2, 10, 100), sell(3, 3, 102))
    assert m.engine.book(SYM).indicative == (101, 10, 0, 0)  # of the two, nearer 102
    assert {e[1] for e in m(status(OPEN)) if e[0] == "trade"} == {101}


def test_equal_volume_and_surplus_go_to_the_price_nearest_the_reference() -> None:
    m = Market()
    traded_at(m, 100)
    m(status(PRE_OPEN), buy(1, 5, 105), sell(2, 5, 95))  # every price 95..105 executes 5
    assert m.engine.book(SYM).indicative == (100, 5, 0, 0)  # the reference itself
    m2 = Market()
    traded_at(m2, 110)
    m2(status(PRE_OPEN), buy(1, 5, 105), sell(2, 5, 95))
    assert m2.engine.book(SYM).indicative == (105, 5, 0, 0)  # the nearest to it
    m3 = Market()  # no trade yet, no reference: the lower price
    m3(status(PRE_OPEN), buy(1, 5, 105), sell(2, 5, 95))
    assert m3.engine.book(SYM).indicative == (95, 5, 0, 0)


# -- market orders ----------------------------------------------------------------------------


def test_market_orders_go_first_and_what_they_cannot_fill_is_cancelled() -> None:
    m = Market()
    traded_at(m, 100)
    m(status(PRE_OPEN), market(BUY, 1, 5), sell(2, 3, 101), sell(3, 4, 99))
    assert m.bids() == []  # market orders are not price levels
    # 99: 5 against 4; 100: 5 against 4; 101: 5 against 7 -> 101
    assert m.engine.book(SYM).indicative == (101, 5, 2, SELL)
    # with a market sell of 2: 5 against 6 at 99 and 100, against 9 at 101 -> 100, the reference
    events = m(market(SELL, 4, 2), status(OPEN))
    assert [e for e in events if e[0] == "trade"] == [
        ("trade", 100, 2, 4, 1),  # the market sell first
        ("trade", 100, 3, 3, 1),
    ]
    assert m.asks() == [(99, 1), (101, 3)]


def test_an_unfilled_market_order_is_cancelled_at_the_open() -> None:
    m = Market()
    traded_at(m, 100)
    m(status(PRE_OPEN), market(BUY, 1, 5, protect=100), sell(2, 5, 101))
    assert m.engine.book(SYM).indicative == (0, 0, 0, 0)  # 100 is as far as it goes
    assert m(status(OPEN)) == [("cancelled", 1, "market", 5), ("status", SYM, "OPEN")]
    assert m.asks() == [(101, 5)]


def test_a_market_order_waiting_for_an_auction_is_cancelled_not_replaced() -> None:
    m = Market()
    traded_at(m, 100)
    m(status(PRE_OPEN), market(BUY, 1, 5))
    assert m(replace(1, 0, 3)) == [("rejected", "r", 1, "invalid_type")]
    assert m(cancel(1)) == [("cancelled", 1, "user", 5)]


# -- on-open and on-close orders ----------------------------------------------------------


def test_on_open_orders_take_part_in_the_opening_auction_only() -> None:
    m = Market()
    assert m(buy(1, 5, 100, tif=OPG)) == [("rejected", "n", 1, "invalid_tif")]
    m(status(PRE_OPEN), buy(2, 10, 100, tif=OPG), buy(3, 3, 99), sell(4, 4, 100))
    events = m(status(OPEN))
    assert ("trade", 100, 4, 4, 2) in events
    assert ("expired", 2, 6) in events and ("delta", "bid", 100, 0) in events
    assert events.index(("expired", 2, 6)) < events.index(("status", SYM, "OPEN"))
    assert m.bids() == [(99, 3)] and m.live() == [3]
    assert m(sell(5, 1, 100, tif=OPG)) == [("rejected", "n", 5, "invalid_tif")]


def test_on_close_orders_wait_through_the_day_and_cross_in_the_closing_auction() -> None:
    m = Market()
    assert m(buy(1, 5, 100, tif=CLS)) == [("accepted", 1)]  # not in the book, not matched
    assert m(sell(2, 3, 99)) == [("accepted", 2), ("delta", "ask", 99, 3)]
    assert m.bids() == [] and m.live() == [1, 2]
    assert m(status(CLOSING)) == [
        ("delta", "bid", 100, 5),
        ("indicative", 99, 3, 2, BUY),
        ("status", SYM, "CLOSING_AUCTION"),
    ]
    assert m(sell(3, 1, 100, tif=CLS)) == [
        ("accepted", 3),
        ("delta", "ask", 100, 1),
        ("indicative", 100, 4, 1, BUY),
    ]
    events = m(status(CLOSED))
    assert [e for e in events if e[0] == "trade"] == [
        ("trade", 100, 3, 2, 1),
        ("trade", 100, 1, 3, 1),
    ]
    assert ("expired", 1, 1) in events and events[-1] == ("status", SYM, "CLOSED")
    assert m.live() == [] and m.bids() == [] and m.asks() == []


def test_without_a_closing_auction_on_close_orders_cross_at_the_close() -> None:
    m = Market()
    m(sell(1, 5, 100), buy(2, 3, 101, tif=CLS))
    assert m.asks() == [(100, 5)]
    events = m(status(CLOSED))
    assert ("trade", 100, 3, 2, 1) in events  # at the close, against the resting sell
    assert m.asks() == [(100, 2)] and m.live() == [1]


def test_on_close_orders_are_market_or_limit_and_never_post_only() -> None:
    m = Market()
    assert m(buy(1, 5, stop=101, tif=CLS)) == [("rejected", "n", 1, "invalid_tif")]
    assert m(buy(2, 5, 100, tif=CLS, post_only=True)) == [
        ("rejected", "n", 2, "post_only_not_allowed")
    ]


def test_an_on_close_order_can_be_replaced_and_cancelled_while_it_waits() -> None:
    m = Market()
    m(buy(1, 5, 100, tif=CLS))
    assert m(replace(1, 101, 4)) == [("replaced", 1, 101, 4, "lost")]
    assert m(cancel(1)) == [("cancelled", 1, "user", 4)]
    assert m(status(CLOSING)) == [("status", SYM, "CLOSING_AUCTION")]


# -- what an auction refuses and what waits -------------------------------------------------


def test_ioc_fok_and_post_only_are_refused_while_an_auction_collects() -> None:
    m = Market()
    m(status(PRE_OPEN))
    assert m(buy(1, 5, 100, tif=IOC)) == [("rejected", "n", 1, "invalid_tif")]
    assert m(buy(2, 5, 100, tif=FOK)) == [("rejected", "n", 2, "invalid_tif")]
    assert m(buy(3, 5, 100, post_only=True)) == [("rejected", "n", 3, "post_only_not_allowed")]


def test_stops_wait_through_the_auction_and_trigger_on_its_price_at_the_open() -> None:
    m = Market()
    traded_at(m, 100)
    m(status(PRE_OPEN), buy(1, 2, stop=101), buy(2, 5, 102), sell(3, 5, 102), sell(4, 2, 103))
    assert m.stops() == [1]
    events = m(status(OPEN))
    assert events[: events.index(("status", SYM, "OPEN"))].count(("triggered", 1, 102)) == 0
    assert events[events.index(("status", SYM, "OPEN")) + 1 :] == [
        ("triggered", 1, 102),
        ("trade", 103, 2, 1, 4),
        ("delta", "ask", 103, 0),
    ]


def test_a_replace_moves_an_order_without_matching() -> None:
    m = Market()
    m(status(PRE_OPEN), buy(1, 5, 99), sell(2, 5, 100))
    assert m(replace(1, 100, 5)) == [
        ("replaced", 1, 100, 5, "lost"),
        ("delta", "bid", 99, 0),
        ("delta", "bid", 100, 5),
        ("indicative", 100, 5, 0, 0),
    ]
    assert m(replace(1, 100, 3)) == [
        ("replaced", 1, 100, 3, "kept"),
        ("delta", "bid", 100, 3),
        ("indicative", 100, 3, 2, SELL),
    ]
    assert m(cancel(2)) == [("cancelled", 2, "user", 5), ("delta", "ask", 100, 0), CLEARED]


def test_two_orders_of_one_account_never_trade_in_an_uncross() -> None:
    m = Market()
    m(status(PRE_OPEN), sell(1, 5, 100, acct=1), buy(2, 5, 100, acct=1), sell(3, 5, 100, acct=3))
    events = m(status(OPEN))
    # the older of the two (lower id) is cancelled, and the uncross goes on
    assert ("cancelled", 1, "self_trade", 5) in events
    assert [e for e in events if e[0] == "trade"] == [("trade", 100, 5, 3, 2)]


def test_a_halt_keeps_what_the_auction_collected_and_the_resume_uncrosses() -> None:
    m = Market()
    m(status(PRE_OPEN), buy(1, 5, 101), sell(2, 5, 100))
    assert m(halt()) == [CLEARED, ("status", SYM, "HALTED")]
    assert m(buy(3, 1, 100)) == [("rejected", "n", 3, "instrument_halted")]
    assert m(status(PRE_OPEN)) == [("indicative", 100, 5, 0, 0), ("status", SYM, "PRE_OPEN")]
    m(halt())
    events = m(status(OPEN))
    assert ("trade", 100, 5, 2, 1) in events and m.live() == []


def test_end_of_day_expires_day_orders_wherever_they_wait() -> None:
    m = Market()
    traded_at(m, 100)
    m(buy(1, 5, 99, tif=CLS), status(PRE_OPEN), market(BUY, 2, 5, tif=DAY), sell(3, 5, 100))
    assert m.engine.book(SYM).indicative == (100, 5, 0, 0)
    events = m(eod())
    assert events == [("expired", 2, 5), CLEARED]
    assert m.live() == [1, 3]


def test_a_snapshot_in_the_middle_of_an_auction_continues_alike() -> None:
    m = Market()
    traded_at(m, 100)
    m(buy(1, 5, 99, tif=CLS), status(PRE_OPEN), market(BUY, 2, 5), sell(3, 3, 100))
    m(buy(4, 2, 101), sell(5, 4, 98))
    copy = snapshot.restore(snapshot.encode(m.engine))
    assert copy.state_hash() == m.engine.state_hash()
    assert copy.book(SYM).indicative == m.engine.book(SYM).indicative
    rest = [sell(6, 1, 99), status(OPEN), status(CLOSING), sell(7, 5, 99), status(CLOSED)]
    for c in rest:
        assert copy.process(c) == m.engine.process(c)
    assert copy.state_hash() == m.engine.state_hash()


def test_the_day_order_rules_are_unchanged_in_continuous_trading() -> None:
    m = Market()
    m(buy(1, 5, 100, tif=DAY), status(CLOSING), status(CLOSED))
    assert m.live() == [1]  # the close does not expire DAY orders: the EndOfDay does
    assert m(eod()) == [("expired", 1, 5), ("delta", "bid", 100, 0)]
