"""Cancel and replace: what keeps time priority, what re-queues, what is refused."""

from __future__ import annotations

from mercato.domain import OrderReplaced
from mercato.domain.orders import OrderStatus

from .helpers import BUY, SELL, Market, buy, cancel, replace, sell, trades

# -- cancel -----------------------------------------------------------------------------------


def test_cancel_removes_a_resting_order() -> None:
    m = Market()
    m(buy(1, 5, 100), buy(2, 7, 100))
    assert m(cancel(1)) == [("cancelled", 1, "user", 5), ("delta", "bid", 100, 7)]
    assert m.queue(BUY, 100) == [2] and m.live() == [2]


def test_cancel_of_the_last_order_of_a_level_drops_the_level() -> None:
    m = Market()
    m(buy(1, 5, 100), buy(2, 5, 99))
    assert m(cancel(1)) == [("cancelled", 1, "user", 5), ("delta", "bid", 100, 0)]
    assert m.bids() == [(99, 5)]


def test_cancel_of_a_partially_filled_order_reports_what_was_left() -> None:
    m = Market()
    m(buy(1, 10, 100), sell(2, 4, 100))
    assert m(cancel(1)) == [("cancelled", 1, "user", 6), ("delta", "bid", 100, 0)]


def test_cancel_of_an_unknown_order_is_rejected() -> None:
    m = Market()
    assert m(cancel(42)) == [("rejected", "c", 42, "unknown_order")]


def test_cancel_of_a_finished_order_is_rejected() -> None:
    m = Market()
    m(buy(1, 5, 100), sell(2, 5, 100))  # both filled
    m(buy(3, 5, 100), cancel(3))  # cancelled
    m(buy(4, 5, tif=3))  # IOC market: cancelled at once
    for oid in (1, 2, 3, 4):
        assert m(cancel(oid)) == [("rejected", "c", oid, "unknown_order")]


# -- replace: priority --------------------------------------------------------------------------


def test_replace_to_a_lower_quantity_at_the_same_price_keeps_priority() -> None:
    m = Market()
    m(buy(1, 10, 100), buy(2, 10, 100))
    assert m(replace(1, 100, 4)) == [
        ("replaced", 1, 100, 4, "kept"),
        ("delta", "bid", 100, 14),
    ]
    assert m.queue(BUY, 100) == [1, 2]
    assert trades(m.raw(sell(3, 5, 100))) == [(100, 4, 3, 1), (100, 1, 3, 2)]


def test_replace_to_the_same_quantity_and_price_keeps_priority() -> None:
    m = Market()
    m(buy(1, 10, 100), buy(2, 10, 100))
    assert m(replace(1, 100, 10)) == [
        ("replaced", 1, 100, 10, "kept"),
        ("delta", "bid", 100, 20),
    ]
    assert m.queue(BUY, 100) == [1, 2]


def test_replace_to_a_higher_quantity_at_the_same_price_loses_priority() -> None:
    m = Market()
    m(buy(1, 10, 100), buy(2, 10, 100))
    assert m(replace(1, 100, 11)) == [
        ("replaced", 1, 100, 11, "lost"),
        ("delta", "bid", 100, 10),  # out of the queue...
        ("delta", "bid", 100, 21),  # ...and back in at its end
    ]
    assert m.queue(BUY, 100) == [2, 1]
    assert trades(m.raw(sell(3, 12, 100))) == [(100, 10, 3, 2), (100, 2, 3, 1)]


def test_replace_to_a_new_price_loses_priority() -> None:
    m = Market()
    m(buy(1, 10, 100), buy(2, 10, 99))
    assert m(replace(1, 99, 5)) == [
        ("replaced", 1, 99, 5, "lost"),
        ("delta", "bid", 100, 0),
        ("delta", "bid", 99, 15),
    ]
    assert m.queue(BUY, 99) == [2, 1] and m.bids() == [(99, 15)]


def test_replace_priority_is_about_the_remaining_quantity() -> None:
    m = Market()
    m(buy(1, 10, 100), sell(2, 6, 100), buy(3, 10, 100))  # 1 has 4 left, then 3 queues
    assert m(replace(1, 100, 4)) == [("replaced", 1, 100, 4, "kept"), ("delta", "bid", 100, 14)]
    assert m(replace(1, 100, 5)) == [
        ("replaced", 1, 100, 5, "lost"),  # grows beyond the 4 left: re-queued
        ("delta", "bid", 100, 10),
        ("delta", "bid", 100, 15),
    ]
    assert m.queue(BUY, 100) == [3, 1]
    o = m.engine.order(1)
    assert o is not None and (o.qty, o.filled, o.remaining) == (11, 6, 5)


def test_replace_event_and_status() -> None:
    m = Market()
    m(sell(1, 10, 105))
    replaced = m.raw(replace(1, 104, 8, ts=77))[0]
    assert replaced == OrderReplaced(
        seq=replaced.seq,
        ts=77,
        order_id=1,
        account=2,
        symbol="ACME",
        price=104,
        qty=8,
        stop_price=0,
        kept_priority=False,
    )
    o = m.engine.order(1)
    assert o is not None and o.status == OrderStatus.REPLACED


def test_replace_that_crosses_trades_as_the_taker() -> None:
    m = Market()
    m(buy(1, 5, 100), sell(2, 5, 102), sell(3, 3, 103))
    assert m(replace(1, 102, 8)) == [
        ("replaced", 1, 102, 8, "lost"),
        ("delta", "bid", 100, 0),
        ("trade", 102, 5, 1, 2),  # at the maker's price; order 1 is the taker
        ("delta", "ask", 102, 0),
        ("delta", "bid", 102, 3),
    ]
    assert m.bids() == [(102, 3)] and m.asks() == [(103, 3)]
    o = m.engine.order(1)
    assert o is not None and (o.qty, o.filled, o.remaining) == (8, 5, 3)


def test_replace_that_crosses_its_own_account_cancels_the_resting_order() -> None:
    m = Market()
    m(buy(1, 5, 100, acct=1), sell(2, 5, 102, acct=1), sell(3, 5, 102, acct=2))
    assert m(replace(1, 102, 5)) == [
        ("replaced", 1, 102, 5, "lost"),
        ("delta", "bid", 100, 0),
        ("cancelled", 2, "self_trade", 5),
        ("trade", 102, 5, 1, 3),
        ("delta", "ask", 102, 0),
    ]


def test_replace_of_an_unknown_order_is_rejected() -> None:
    m = Market()
    assert m(replace(9, 100, 5)) == [("rejected", "r", 9, "unknown_order")]


def test_replace_of_a_finished_order_is_rejected() -> None:
    m = Market()
    m(buy(1, 5, 100), sell(2, 5, 100), buy(3, 5, 99), cancel(3))
    for oid in (1, 2, 3):
        assert m(replace(oid, 100, 5)) == [("rejected", "r", oid, "unknown_order")]


def test_replace_rejected_leaves_the_order_alone() -> None:
    m = Market()
    m(buy(1, 10, 100), buy(2, 10, 100))
    assert m(replace(1, 101, 0)) == [("rejected", "r", 1, "invalid_qty")]
    assert m.queue(BUY, 100) == [1, 2] and m.bids() == [(100, 20)]


def test_replace_of_a_limit_to_price_zero_is_rejected() -> None:
    m = Market()
    m(buy(1, 10, 100))
    assert m(replace(1, 0, 10)) == [("rejected", "r", 1, "invalid_price")]


def test_replace_with_a_stop_price_of_a_resting_order_is_rejected() -> None:
    m = Market()
    m(buy(1, 10, 100))
    assert m(replace(1, 100, 10, stop=99)) == [("rejected", "r", 1, "invalid_stop_price")]


# -- replace: post-only -------------------------------------------------------------------------


def test_post_only_replace_that_would_take_is_rejected() -> None:
    m = Market()
    m(buy(1, 5, 99, post_only=True), sell(2, 5, 101))
    assert m(replace(1, 101, 5)) == [("rejected", "r", 1, "post_only_would_take")]
    assert m.bids() == [(99, 5)] and m.asks() == [(101, 5)]


def test_post_only_replace_that_does_not_cross_is_accepted() -> None:
    m = Market()
    m(buy(1, 5, 99, post_only=True), sell(2, 5, 101))
    assert m(replace(1, 100, 6)) == [
        ("replaced", 1, 100, 6, "lost"),
        ("delta", "bid", 99, 0),
        ("delta", "bid", 100, 6),
    ]
    o = m.engine.order(1)
    assert o is not None and o.post_only


def test_post_only_sell_replace_that_would_take_is_rejected() -> None:
    m = Market()
    m(sell(1, 5, 105, post_only=True), buy(2, 5, 100))
    assert m(replace(1, 100, 5)) == [("rejected", "r", 1, "post_only_would_take")]
    assert m(replace(1, 99, 5)) == [("rejected", "r", 1, "post_only_would_take")]
    assert m.asks() == [(105, 5)]


def test_replaced_sell_moves_to_the_ask_side_level() -> None:
    m = Market()
    m(sell(1, 5, 105), sell(2, 5, 104))
    m(replace(1, 104, 5))
    assert m.asks() == [(104, 10)] and m.queue(SELL, 104) == [2, 1]
