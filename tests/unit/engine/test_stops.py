"""Stop and stop-limit orders: trigger on the last trade price, in acceptance order, cascading."""

from __future__ import annotations

from mercato.domain import OrderTriggered

from .helpers import BUY, DAY, FOK, IOC, Market, buy, cancel, eod, replace, sell


def market_at(last: int) -> Market:
    """A market whose last trade price is ``last`` and whose book is empty."""
    m = Market()
    m(sell(900, 1, last, acct=90), buy(901, 1, last, acct=91))
    assert m.engine.book("ACME").last_price == last and m.bids() == m.asks() == []
    return m


def test_stop_waits_and_is_not_in_the_book() -> None:
    m = Market()
    assert m(buy(1, 5, stop=105)) == [("accepted", 1)]
    assert m.bids() == [] and m.stops() == [1] and m.live() == [1]


def test_no_stop_triggers_before_the_first_trade() -> None:
    m = Market()
    assert m(buy(1, 5, stop=1), sell(2, 5, stop=10**9)) == [("accepted", 1), ("accepted", 2)]


def test_buy_stop_triggers_when_the_last_trade_reaches_its_price() -> None:
    m = market_at(100)
    m(buy(1, 5, stop=102), sell(2, 10, 104, acct=3))
    m(sell(3, 1, 101, acct=3))
    assert m(buy(4, 1, 101, acct=4)) == [
        ("accepted", 4),
        ("trade", 101, 1, 4, 3),
        ("delta", "ask", 101, 0),
    ]  # 101 < 102: waiting
    m(sell(5, 1, 102, acct=3))
    assert m(buy(6, 1, 102, acct=4)) == [
        ("accepted", 6),
        ("trade", 102, 1, 6, 5),
        ("delta", "ask", 102, 0),
        ("triggered", 1, 102),  # last == stop price triggers
        ("trade", 104, 5, 1, 2),  # and it executes as a market order
        ("delta", "ask", 104, 5),
    ]
    assert m.stops() == []


def test_sell_stop_triggers_when_the_last_trade_falls_to_its_price() -> None:
    m = market_at(100)
    m(sell(1, 5, stop=98), buy(2, 10, 90, acct=3))
    m(buy(3, 1, 99, acct=3))
    assert ("triggered", 1, 99) not in m(sell(4, 1, 99, acct=4))
    m(buy(5, 1, 97, acct=3))
    assert m(sell(6, 1, 97, acct=4)) == [
        ("accepted", 6),
        ("trade", 97, 1, 6, 5),
        ("delta", "bid", 97, 0),
        ("triggered", 1, 97),  # 97 <= 98
        ("trade", 90, 5, 1, 2),
        ("delta", "bid", 90, 5),
    ]


def test_stops_trigger_on_the_last_trade_only_not_on_quotes() -> None:
    m = market_at(100)
    m(buy(1, 5, stop=105), sell(2, 5, stop=95))
    # quotes far through both stop prices, but no trade there
    assert m(buy(3, 5, 110, acct=3)) == [("accepted", 3), ("delta", "bid", 110, 5)]
    m(cancel(3))
    assert m(sell(4, 5, 90, acct=3)) == [("accepted", 4), ("delta", "ask", 90, 5)]
    assert m.stops() == [1, 2]


def test_triggered_stop_becomes_a_market_order_and_never_rests() -> None:
    m = market_at(100)
    m(sell(1, 2, 101, acct=3), buy(2, 5, stop=101))
    assert m(buy(3, 1, 101, acct=4)) == [
        ("accepted", 3),
        ("trade", 101, 1, 3, 1),
        ("delta", "ask", 101, 1),
        ("triggered", 2, 101),
        ("trade", 101, 1, 2, 1),
        ("delta", "ask", 101, 0),
        ("cancelled", 2, "market", 4),
    ]
    assert m.bids() == [] and m.live() == []


def test_stop_limit_rests_after_triggering() -> None:
    m = market_at(100)
    m(sell(1, 1, 101, acct=3), sell(2, 4, 102, acct=3), sell(3, 5, 103, acct=3))
    m(buy(4, 10, 102, stop=101))
    assert m(buy(5, 1, 101, acct=5)) == [
        ("accepted", 5),
        ("trade", 101, 1, 5, 1),
        ("delta", "ask", 101, 0),
        ("triggered", 4, 101),
        ("trade", 102, 4, 4, 2),  # a limit at 102: takes 102, not 103
        ("delta", "ask", 102, 0),
        ("delta", "bid", 102, 6),  # and rests the rest
    ]
    assert m.bids() == [(102, 6)] and m.asks() == [(103, 5)]
    assert m.stops() == [] and m.live() == [3, 4]


def test_stop_limit_with_ioc_cancels_what_it_cannot_fill_after_triggering() -> None:
    m = market_at(100)
    m(sell(1, 1, 101, acct=3), sell(2, 4, 102, acct=3))
    m(buy(4, 10, 102, stop=101, tif=IOC))
    assert m(buy(5, 1, 101, acct=5))[-1] == ("cancelled", 4, "ioc", 6)


def test_stop_limit_with_fok_that_cannot_fill_is_killed_after_triggering() -> None:
    m = market_at(100)
    m(sell(1, 1, 101, acct=3), sell(2, 4, 102, acct=3))
    m(buy(4, 10, 102, stop=101, tif=FOK))
    assert m(buy(5, 1, 101, acct=5))[-2:] == [("triggered", 4, 101), ("cancelled", 4, "fok", 10)]
    assert m.asks() == [(102, 4)]


def test_stops_trigger_in_the_order_they_were_accepted() -> None:
    m = market_at(100)
    m(sell(1, 1, 106, acct=3), sell(2, 5, 107, acct=3), sell(3, 5, 108, acct=3))
    m(buy(10, 3, stop=105, acct=10), buy(11, 3, stop=102, acct=11))  # 10 first, though 11 is nearer
    assert m(buy(4, 1, acct=4)) == [
        ("accepted", 4),
        ("trade", 106, 1, 4, 1),
        ("delta", "ask", 106, 0),
        ("triggered", 10, 106),  # every triggered stop is announced...
        ("triggered", 11, 106),
        ("trade", 107, 3, 10, 2),  # ...then they execute one after another
        ("delta", "ask", 107, 2),
        ("trade", 107, 2, 11, 2),
        ("delta", "ask", 107, 0),
        ("trade", 108, 1, 11, 3),
        ("delta", "ask", 108, 4),
    ]


def test_stops_trigger_after_the_order_that_moved_the_price_has_finished() -> None:
    m = market_at(99)
    m(sell(1, 5, 100, acct=3), buy(2, 5, stop=100, acct=2))
    assert m(buy(3, 10, 100, acct=4)) == [
        ("accepted", 3),
        ("trade", 100, 5, 3, 1),
        ("delta", "ask", 100, 0),
        ("delta", "bid", 100, 5),  # the taker rests its remainder first
        ("triggered", 2, 100),
        ("cancelled", 2, "market", 5),
    ]


def test_a_triggered_stop_can_trigger_another_cascade() -> None:
    m = market_at(101)
    m(buy(1, 5, 100, acct=3), buy(2, 5, 98, acct=3), buy(3, 10, 95, acct=3))
    m(sell(10, 5, stop=99, acct=10), sell(11, 5, stop=97, acct=11))
    m(sell(4, 5, acct=4))  # 5 @ 100: last 100, nothing triggers
    assert m.stops() == [10, 11]
    assert m(sell(5, 1, acct=4)) == [
        ("accepted", 5),
        ("trade", 98, 1, 5, 2),
        ("delta", "bid", 98, 4),
        ("triggered", 10, 98),  # 98 <= 99
        ("trade", 98, 4, 10, 2),
        ("delta", "bid", 98, 0),
        ("trade", 95, 1, 10, 3),
        ("delta", "bid", 95, 9),
        ("triggered", 11, 95),  # 10's own trade at 95 <= 97 triggers 11
        ("trade", 95, 5, 11, 3),
        ("delta", "bid", 95, 4),
    ]
    assert m.stops() == [] and m.bids() == [(95, 4)]


def test_a_stop_already_through_the_market_triggers_at_acceptance() -> None:
    m = market_at(100)
    m(sell(1, 5, 103, acct=3))
    assert m(buy(2, 3, stop=99)) == [
        ("accepted", 2),
        ("triggered", 2, 100),  # last 100 >= 99
        ("trade", 103, 3, 2, 1),
        ("delta", "ask", 103, 2),
    ]
    events = m.raw(sell(3, 2, 97, stop=103))  # last 103 <= 103: a stop-limit that rests
    assert isinstance(events[1], OrderTriggered)
    assert (events[1].stop_price, events[1].last_price) == (103, 103)
    assert m.asks() == [(97, 2), (103, 2)]


def test_a_day_stop_expires_at_end_of_day() -> None:
    m = Market()
    m(buy(1, 5, stop=105, tif=DAY), buy(2, 5, stop=105))
    assert m(eod()) == [("expired", 1, 5)]
    assert m.stops() == [2] and m.live() == [2]


def test_a_triggered_day_stop_limit_that_rests_expires_at_end_of_day() -> None:
    m = market_at(100)
    m(sell(1, 7, stop=100, tif=DAY, acct=7))
    m(sell(2, 7, 99, stop=100, tif=DAY, acct=7))  # triggers at once and rests at 99
    assert m.asks() == [(99, 7)]
    assert m(eod()) == [("expired", 2, 7), ("delta", "ask", 99, 0)]


def test_cancel_of_a_waiting_stop() -> None:
    m = Market()
    m(sell(1, 5, stop=95))
    assert m(cancel(1)) == [("cancelled", 1, "user", 5)]
    assert m.stops() == [] and m.live() == []


def test_replace_of_a_waiting_stop_keeps_its_place_among_the_stops() -> None:
    m = market_at(100)
    m(buy(1, 5, stop=110), buy(2, 5, stop=104), sell(3, 10, 120, acct=3))
    assert m(replace(1, 0, 3, stop=103)) == [("replaced", 1, 0, 3, "kept")]
    stop = m.engine.order(1)
    assert stop is not None and (stop.stop_price, stop.qty, stop.remaining) == (103, 3, 3)
    assert m.stops() == [1, 2]
    m(sell(4, 1, 105, acct=3))
    events = m(buy(5, 1, acct=5))
    triggered = [e for e in events if e[0] == "triggered"]
    assert triggered == [("triggered", 1, 105), ("triggered", 2, 105)]


def test_replace_of_a_waiting_stop_limit_changes_its_limit() -> None:
    m = Market()
    m(buy(1, 5, 106, stop=105))
    assert m(replace(1, 107, 5)) == [("replaced", 1, 107, 5, "kept")]
    o = m.engine.order(1)
    assert o is not None and (o.price, o.stop_price) == (107, 105)


def test_replace_of_a_waiting_stop_through_the_market_triggers_it() -> None:
    m = market_at(100)
    m(sell(1, 5, 101, acct=3), buy(2, 5, stop=105))
    assert m(replace(2, 0, 4, stop=100)) == [
        ("replaced", 2, 0, 4, "kept"),
        ("triggered", 2, 100),
        ("trade", 101, 4, 2, 1),
        ("delta", "ask", 101, 1),
    ]


def test_replace_of_a_waiting_stop_with_a_limit_price_is_rejected() -> None:
    m = Market(tick=5)
    m(buy(1, 5, stop=105))
    assert m(replace(1, 110, 5)) == [("rejected", "r", 1, "price_not_allowed")]
    assert m(replace(1, 0, 5, stop=107)) == [("rejected", "r", 1, "stop_price_not_tick_multiple")]
    assert m(replace(1, 0, 5, stop=-5)) == [("rejected", "r", 1, "invalid_stop_price")]


def test_replace_with_a_stop_price_of_a_triggered_resting_stop_limit_is_rejected() -> None:
    m = market_at(100)
    m(buy(1, 5, 99, stop=100))  # triggers at once, rests at 99
    assert m.bids() == [(99, 5)] and m.stops() == []
    assert m(replace(1, 99, 5, stop=101)) == [("rejected", "r", 1, "invalid_stop_price")]
    assert m(replace(1, 98, 5)) == [
        ("replaced", 1, 98, 5, "lost"),
        ("delta", "bid", 99, 0),
        ("delta", "bid", 98, 5),
    ]


def test_a_waiting_stop_is_not_in_the_way_of_matching() -> None:
    m = market_at(100)
    m(sell(1, 5, 100, stop=90, acct=1))  # a waiting sell stop-limit, same account as the buyer
    assert m(buy(2, 5, 101, acct=1)) == [("accepted", 2), ("delta", "bid", 101, 5)]
    assert m.stops() == [1] and m.engine.book("ACME").bids.depth(1) == [(101, 5)]
    assert m.queue(BUY, 101) == [2]
