"""Matching: price-time priority, maker's price, market/IOC/FOK/post-only, self-trade prevention."""

from __future__ import annotations

from mercato.domain import OrderAccepted, Trade

from .helpers import BUY, DAY, FOK, IOC, SELL, Market, buy, sell, trades

# -- resting and priority ---------------------------------------------------------------


def test_limit_order_that_does_not_cross_rests() -> None:
    m = Market()
    assert m(buy(1, 10, 100)) == [("accepted", 1), ("delta", "bid", 100, 10)]
    assert m(sell(2, 7, 101)) == [("accepted", 2), ("delta", "ask", 101, 7)]
    assert m.bids() == [(100, 10)] and m.asks() == [(101, 7)]
    assert m.live() == [1, 2]


def test_book_depth_is_best_first_and_aggregates_a_level() -> None:
    m = Market()
    m(buy(1, 10, 99), buy(2, 5, 100), buy(3, 7, 100), buy(4, 1, 98))
    m(sell(5, 3, 103), sell(6, 4, 102), sell(7, 2, 102))
    assert m.bids() == [(100, 12), (99, 10), (98, 1)]
    assert m.asks() == [(102, 6), (103, 3)]
    assert m.engine.book("ACME").bids.depth(2) == [(100, 12), (99, 10)]


def test_better_price_matches_first() -> None:
    m = Market()
    m(sell(1, 5, 102), sell(2, 5, 101), sell(3, 5, 103))
    assert trades(m.raw(buy(9, 12, 103))) == [(101, 5, 9, 2), (102, 5, 9, 1), (103, 2, 9, 3)]


def test_at_one_price_the_earlier_order_matches_first() -> None:
    m = Market()
    m(sell(1, 5, 101), sell(2, 5, 101), sell(3, 5, 101))
    assert trades(m.raw(buy(9, 7, 101))) == [(101, 5, 9, 1), (101, 2, 9, 2)]
    assert m.queue(SELL, 101) == [2, 3]


def test_trade_executes_at_the_resting_makers_price() -> None:
    m = Market()
    m(sell(1, 5, 100))
    assert m(buy(2, 5, 105)) == [
        ("accepted", 2),
        ("trade", 100, 5, 2, 1),  # at the maker's 100, not the taker's 105
        ("delta", "ask", 100, 0),
    ]
    m(buy(3, 5, 90))
    assert trades(m.raw(sell(4, 5, 80))) == [(90, 5, 4, 3)]


def test_taker_remainder_rests_after_sweeping() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 101))
    assert m(buy(3, 15, 101)) == [
        ("accepted", 3),
        ("trade", 100, 5, 3, 1),
        ("delta", "ask", 100, 0),
        ("trade", 101, 5, 3, 2),
        ("delta", "ask", 101, 0),
        ("delta", "bid", 101, 5),
    ]
    assert m.bids() == [(101, 5)] and m.asks() == []


def test_a_limit_does_not_trade_beyond_its_price() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 102))
    assert trades(m.raw(buy(3, 10, 101))) == [(100, 5, 3, 1)]
    assert m.bids() == [(101, 5)] and m.asks() == [(102, 5)]


def test_trade_event_carries_both_sides() -> None:
    m = Market()
    m(sell(1, 8, 100, acct=22))
    events = m.raw(buy(2, 5, 100, acct=11, ts=1234))
    trade = events[1]
    assert trade == Trade(
        seq=trade.seq,
        ts=1234,
        symbol="ACME",
        price=100,
        qty=5,
        taker_order_id=2,
        maker_order_id=1,
        taker_account=11,
        maker_account=22,
        taker_side=BUY,
        taker_remaining=0,
        maker_remaining=3,
    )


def test_accepted_event_echoes_the_order() -> None:
    m = Market()
    (accepted, _) = m.raw(sell(7, 5, 100, acct=3, tif=DAY, post_only=True, ts=99))
    assert accepted == OrderAccepted(
        seq=accepted.seq,
        ts=99,
        order_id=7,
        account=3,
        symbol="ACME",
        side=SELL,
        type=2,
        tif=DAY,
        price=100,
        stop_price=0,
        qty=5,
        post_only=True,
    )


# -- market orders ------------------------------------------------------------------------


def test_market_order_never_rests_and_its_remainder_is_cancelled() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 200))
    assert m(buy(3, 12)) == [
        ("accepted", 3),
        ("trade", 100, 5, 3, 1),
        ("delta", "ask", 100, 0),
        ("trade", 200, 5, 3, 2),  # a market order takes any price
        ("delta", "ask", 200, 0),
        ("cancelled", 3, "market", 2),
    ]
    assert m.bids() == [] and m.live() == []


def test_market_order_on_an_empty_side_is_cancelled() -> None:
    m = Market()
    m(buy(1, 5, 100))
    assert m(sell(2, 5, acct=1)) == [
        ("accepted", 2),
        ("cancelled", 1, "self_trade", 5),  # the only bid is the seller's own
        ("delta", "bid", 100, 0),
        ("cancelled", 2, "market", 5),
    ]
    assert m(buy(3, 5)) == [("accepted", 3), ("cancelled", 3, "market", 5)]


def test_market_order_with_ioc_or_fok_tif_still_never_rests() -> None:
    m = Market()
    m(sell(1, 5, 100))
    assert m(buy(2, 5, tif=IOC)) == [
        ("accepted", 2),
        ("trade", 100, 5, 2, 1),
        ("delta", "ask", 100, 0),
    ]
    m(sell(3, 5, 100))
    assert m(buy(4, 6, tif=FOK)) == [("accepted", 4), ("cancelled", 4, "fok", 6)]
    assert m.asks() == [(100, 5)]


# -- IOC ------------------------------------------------------------------------------------


def test_ioc_remainder_is_cancelled() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 102))
    assert m(buy(3, 8, 101, tif=IOC)) == [
        ("accepted", 3),
        ("trade", 100, 5, 3, 1),
        ("delta", "ask", 100, 0),
        ("cancelled", 3, "ioc", 3),
    ]
    assert m.bids() == [] and m.asks() == [(102, 5)] and m.live() == [2]


def test_ioc_that_fills_completely_leaves_nothing() -> None:
    m = Market()
    m(sell(1, 5, 100))
    assert m(buy(2, 3, 100, tif=IOC)) == [
        ("accepted", 2),
        ("trade", 100, 3, 2, 1),
        ("delta", "ask", 100, 2),
    ]


def test_ioc_that_cannot_trade_is_cancelled_whole() -> None:
    m = Market()
    m(sell(1, 5, 101))
    assert m(buy(2, 3, 100, tif=IOC)) == [("accepted", 2), ("cancelled", 2, "ioc", 3)]


# -- FOK ------------------------------------------------------------------------------------


def test_fok_fills_completely_at_once() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 101))
    assert m(buy(3, 8, 101, tif=FOK)) == [
        ("accepted", 3),
        ("trade", 100, 5, 3, 1),
        ("delta", "ask", 100, 0),
        ("trade", 101, 3, 3, 2),
        ("delta", "ask", 101, 2),
    ]


def test_fok_that_cannot_fill_changes_nothing_in_the_book() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 102))
    assert m(buy(3, 8, 101, tif=FOK)) == [("accepted", 3), ("cancelled", 3, "fok", 8)]
    assert m.asks() == [(100, 5), (102, 5)] and m.queue(SELL, 100) == [1]
    assert m.engine.book("ACME").last_price == 0
    assert m.live() == [1, 2]


def test_fok_does_not_count_its_own_accounts_resting_orders() -> None:
    m = Market()
    m(sell(1, 5, 100, acct=2), sell(2, 5, 100, acct=1), sell(3, 2, 101, acct=2))
    # 12 offered at <= 101, but 5 of them are the buyer's own: only 7 could fill
    assert m(buy(4, 8, 101, acct=1, tif=FOK)) == [("accepted", 4), ("cancelled", 4, "fok", 8)]
    assert m.queue(SELL, 100) == [1, 2], "its own order is not cancelled either"


def test_fok_fills_past_its_own_orders_and_cancels_them() -> None:
    m = Market()
    m(sell(1, 5, 100, acct=1), sell(2, 5, 100, acct=2))
    assert m(buy(3, 5, 100, acct=1, tif=FOK)) == [
        ("accepted", 3),
        ("cancelled", 1, "self_trade", 5),
        ("trade", 100, 5, 3, 2),
        ("delta", "ask", 100, 0),
    ]


def test_market_fok_counts_every_price() -> None:
    m = Market()
    m(sell(1, 5, 100), sell(2, 5, 500))
    assert trades(m.raw(buy(3, 10, tif=FOK))) == [(100, 5, 3, 1), (500, 5, 3, 2)]


# -- post-only ------------------------------------------------------------------------------


def test_post_only_that_would_take_is_rejected() -> None:
    m = Market()
    m(sell(1, 5, 100))
    assert m(buy(2, 5, 100, post_only=True)) == [("rejected", "n", 2, "post_only_would_take")]
    assert m(buy(3, 5, 101, post_only=True)) == [("rejected", "n", 3, "post_only_would_take")]
    assert m.asks() == [(100, 5)] and m.bids() == []


def test_post_only_that_does_not_cross_rests() -> None:
    m = Market()
    m(sell(1, 5, 100))
    assert m(buy(2, 5, 99, post_only=True)) == [("accepted", 2), ("delta", "bid", 99, 5)]
    assert m(sell(3, 5, 100, post_only=True, tif=DAY)) == [
        ("accepted", 3),
        ("delta", "ask", 100, 10),
    ]


# -- self-trade prevention ------------------------------------------------------------------


def test_self_trade_cancels_the_resting_order_and_matching_goes_on() -> None:
    m = Market()
    m(sell(1, 5, 100, acct=1), sell(2, 5, 100, acct=2))
    assert m(buy(3, 5, 100, acct=1)) == [
        ("accepted", 3),
        ("cancelled", 1, "self_trade", 5),
        ("trade", 100, 5, 3, 2),
        ("delta", "ask", 100, 0),
    ]
    assert m.live() == []


def test_self_trade_prevention_on_a_sweep_across_levels() -> None:
    m = Market()
    m(
        sell(1, 5, 100, acct=2),
        sell(2, 5, 100, acct=1),  # own
        sell(3, 5, 101, acct=1),  # own
        sell(4, 5, 101, acct=3),
        sell(5, 5, 102, acct=1),  # own, but beyond what the taker needs
        sell(6, 5, 102, acct=2),
    )
    assert m(buy(9, 12, 102, acct=1)) == [
        ("accepted", 9),
        ("trade", 100, 5, 9, 1),
        ("cancelled", 2, "self_trade", 5),
        ("delta", "ask", 100, 0),
        ("cancelled", 3, "self_trade", 5),
        ("trade", 101, 5, 9, 4),
        ("delta", "ask", 101, 0),
        ("cancelled", 5, "self_trade", 5),
        ("trade", 102, 2, 9, 6),
        ("delta", "ask", 102, 3),
    ]
    assert m.asks() == [(102, 3)] and m.queue(SELL, 102) == [6]


def test_self_trade_prevention_stops_where_the_taker_is_filled() -> None:
    m = Market()
    m(sell(1, 5, 100, acct=2), sell(2, 5, 100, acct=1))
    assert trades(m.raw(buy(3, 5, 100, acct=1))) == [(100, 5, 3, 1)]
    assert m.queue(SELL, 100) == [2], "own order behind the fill is untouched"


def test_self_trade_prevention_only_within_the_takers_price() -> None:
    m = Market()
    m(sell(1, 5, 101, acct=1))
    assert m(buy(2, 5, 100, acct=1)) == [("accepted", 2), ("delta", "bid", 100, 5)]
    assert m.asks() == [(101, 5)]


def test_self_trade_never_happens_between_two_orders_of_one_account() -> None:
    m = Market()
    events = m.raw(
        buy(1, 5, 100, acct=4),
        buy(2, 5, 101, acct=4),
        sell(3, 20, 99, acct=4),
        sell(4, 5, acct=4),
    )
    assert trades(events) == []


# -- invariants -------------------------------------------------------------------------------


def test_every_trade_takes_the_same_quantity_from_both_sides() -> None:
    m = Market()
    m(sell(1, 3, 100), sell(2, 4, 100), sell(3, 9, 101))
    events = m.raw(buy(4, 10, 101, acct=5))
    left = {1: 3, 2: 4, 3: 9, 4: 10}
    for e in events:
        if isinstance(e, Trade):
            left[e.taker_order_id] -= e.qty
            left[e.maker_order_id] -= e.qty
            assert (e.taker_remaining, e.maker_remaining) == (
                left[e.taker_order_id],
                left[e.maker_order_id],
            )
    assert left == {1: 0, 2: 0, 3: 6, 4: 0}
    maker = m.engine.order(3)
    assert maker is not None and (maker.filled, maker.remaining, maker.qty) == (3, 6, 9)


def test_event_seq_is_strictly_increasing_across_commands() -> None:
    m = Market()
    events = m.raw(
        sell(1, 5, 100),
        buy(2, 10, 101),
        buy(3, 5, 300, sym="NOPE"),
        sell(4, 20),
        sell(5, 1, 100, stop=99),
    )
    seqs = [e.seq for e in events]
    assert seqs == sorted(set(seqs))
    assert seqs[0] == 2  # the instrument was event 1
    assert seqs == list(range(2, 2 + len(seqs))), "no gaps either"
    assert m.engine.seq == seqs[-1]


def test_the_engine_reads_no_clock_ts_comes_from_the_command() -> None:
    m = Market()
    m(sell(1, 5, 100, ts=10))
    events = m.raw(buy(2, 10, 100, ts=7))  # time may even go backwards: not the engine's job
    assert {e.ts for e in events} == {7}
