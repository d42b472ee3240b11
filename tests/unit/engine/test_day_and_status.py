"""DAY orders expire at EndOfDay; a halted instrument refuses orders and replaces, not cancels."""

from __future__ import annotations

from mercato.domain import OrderExpired, SetTradingStatus
from mercato.domain.types import TradingStatus

from .helpers import BUY, DAY, SELL, Market, buy, cancel, eod, halt, replace, resume, sell

# -- end of day -------------------------------------------------------------------------------


def test_day_orders_expire_at_end_of_day_and_gtc_orders_stay() -> None:
    m = Market()
    m(buy(1, 5, 100, tif=DAY), buy(2, 5, 100), sell(3, 4, 101, tif=DAY), sell(4, 4, 102))
    assert m(eod()) == [
        ("expired", 1, 5),
        ("delta", "bid", 100, 5),
        ("expired", 3, 4),
        ("delta", "ask", 101, 0),
    ]
    assert m.bids() == [(100, 5)] and m.asks() == [(102, 4)] and m.live() == [2, 4]


def test_a_partially_filled_day_order_expires_with_what_is_left() -> None:
    m = Market()
    m(buy(1, 10, 100, tif=DAY), sell(2, 3, 100))
    events = m.raw(eod(ts=555))
    assert isinstance(events[0], OrderExpired)
    assert (events[0].order_id, events[0].remaining, events[0].ts) == (1, 7, 555)


def test_end_of_day_expires_day_orders_of_every_instrument() -> None:
    m = Market(symbols=("ACME", "OTHER"))
    m(buy(1, 5, 100, tif=DAY), buy(2, 5, 100, tif=DAY, sym="OTHER"))
    assert sorted(e[1] for e in m(eod()) if e[0] == "expired") == [1, 2]
    assert m.bids("ACME") == [] and m.bids("OTHER") == []


def test_end_of_day_with_nothing_to_expire_says_nothing() -> None:
    m = Market()
    m(buy(1, 5, 100))
    assert m(eod()) == []


def test_an_expired_order_cannot_be_cancelled_or_replaced() -> None:
    m = Market()
    m(buy(1, 5, 100, tif=DAY), eod())
    assert m(cancel(1)) == [("rejected", "c", 1, "unknown_order")]
    assert m(replace(1, 100, 5)) == [("rejected", "r", 1, "unknown_order")]


# -- halt and resume --------------------------------------------------------------------------


def test_halt_and_resume_announce_the_status() -> None:
    m = Market()
    assert m(halt()) == [("status", "ACME", "HALTED")]
    assert m(resume()) == [("status", "ACME", "OPEN")]


def test_a_halted_instrument_rejects_new_orders() -> None:
    m = Market()
    m(halt())
    assert m(buy(1, 5, 100)) == [("rejected", "n", 1, "instrument_halted")]
    assert m(sell(2, 5, stop=90)) == [("rejected", "n", 2, "instrument_halted")]
    assert m.bids() == [] and m.live() == []


def test_a_halted_instrument_rejects_replaces() -> None:
    m = Market()
    m(buy(1, 5, 100), halt())
    assert m(replace(1, 100, 4)) == [("rejected", "r", 1, "instrument_halted")]
    assert m.bids() == [(100, 5)]


def test_a_halted_instrument_accepts_cancels() -> None:
    m = Market()
    m(buy(1, 5, 100), sell(2, 5, stop=90), halt())
    assert m(cancel(1), cancel(2)) == [
        ("cancelled", 1, "user", 5),
        ("delta", "bid", 100, 0),
        ("cancelled", 2, "user", 5),
    ]


def test_resuming_allows_orders_again() -> None:
    m = Market()
    m(buy(1, 5, 100), halt(), resume())
    assert m(sell(2, 5, 100)) == [
        ("accepted", 2),
        ("trade", 100, 5, 2, 1),
        ("delta", "bid", 100, 0),
    ]
    m(buy(3, 5, 99))
    assert m(replace(3, 98, 5))[0] == ("replaced", 3, 98, 5, "lost")


def test_halting_one_instrument_leaves_the_others_open() -> None:
    m = Market(symbols=("ACME", "OTHER"))
    m(halt("ACME"))
    assert m(buy(1, 5, 100, sym="OTHER")) == [("accepted", 1), ("delta", "bid", 100, 5)]


def test_a_closed_instrument_rejects_new_orders() -> None:
    m = Market()
    m(SetTradingStatus(symbol="ACME", status=TradingStatus.CLOSED))
    assert m(buy(1, 5, 100)) == [("rejected", "n", 1, "instrument_closed")]


def test_day_orders_expire_on_a_halted_instrument_too() -> None:
    m = Market()
    m(buy(1, 5, 100, tif=DAY), halt())
    assert m(eod()) == [("expired", 1, 5), ("delta", "bid", 100, 0)]


def test_orders_rest_through_a_halt_and_trade_after() -> None:
    m = Market()
    m(sell(1, 5, 100), buy(2, 3, 99), halt(), resume())
    assert m.asks() == [(100, 5)] and m.queue(BUY, 99) == [2] and m.queue(SELL, 100) == [1]
