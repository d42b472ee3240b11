"""Bars from trades: epoch-aligned boundaries, closing by trade or clock, late trades."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.marketdata.bars import INTERVALS, Bar, BarBuilder, interval_ns
from mercato.marketdata.events import BUY, MdTrade

S = 1_000_000_000
M = 60 * S


def trade(ts: int, price: int, qty: int = 1, tid: int = 0) -> MdTrade:
    return MdTrade("X", ts, tid, price, qty, BUY)


def test_intervals() -> None:
    assert [interval_ns(n) for n in ("1s", "1m", "5m", "1h", "1d")] == [
        S,
        M,
        5 * M,
        60 * M,
        1440 * M,
    ]
    assert list(INTERVALS) == ["1s", "1m", "5m", "1h", "1d"]
    with pytest.raises(ValueError, match="1s, 1m"):
        interval_ns("2m")
    with pytest.raises(ValueError):
        BarBuilder("X", 0)


def test_a_later_trade_closes_the_bar_and_empty_intervals_make_none() -> None:
    b = BarBuilder("X", M)
    assert b.on_trade(trade(10 * M + 5, 100, 2)) == []
    assert b.on_trade(trade(10 * M + 6, 103, 1)) == []
    assert b.on_trade(trade(11 * M - 1, 99, 4)) == []
    assert b.current() == Bar("X", 10 * M, M, 100, 103, 99, 99, 7, 3)
    closed = b.on_trade(trade(13 * M, 101, 1))  # minutes 11 and 12 had no trade
    assert closed == [Bar("X", 10 * M, M, 100, 103, 99, 99, 7, 3)]
    assert b.flush() == [Bar("X", 13 * M, M, 101, 101, 101, 101, 1, 1)]
    assert b.flush() == [] and b.current() is None
    assert list(b.history) == [*closed, Bar("X", 13 * M, M, 101, 101, 101, 101, 1, 1)]


def test_the_clock_closes_a_bar_at_its_end_exactly() -> None:
    b = BarBuilder("X", S)
    b.on_trade(trade(5 * S + 10, 7))
    assert b.advance(6 * S - 1) == []
    assert b.advance(6 * S) == [Bar("X", 5 * S, S, 7, 7, 7, 7, 1, 1)]
    assert b.advance(9 * S) == []


def test_day_bars_are_utc_midnight_to_midnight() -> None:
    day = interval_ns("1d")
    b = BarBuilder("X", day)
    ts = 1_340_285_400 * S  # 2012-06-21 13:30 UTC
    b.on_trade(trade(ts, 5))
    bar = b.current()
    assert bar is not None and bar.start == 1_340_236_800 * S  # 2012-06-21 00:00 UTC


def test_late_trades_are_ignored_and_counted() -> None:
    b = BarBuilder("X", M)
    b.on_trade(trade(2 * M, 10))
    b.on_trade(trade(3 * M, 11))
    assert b.on_trade(trade(2 * M + 1, 99)) == []  # its minute was published
    assert b.on_trade(trade(3 * M - 1, 99)) == []
    assert b.late == 2
    b.on_trade(trade(3 * M + 5, 9))  # out of order within the open bar: counted in it
    b.on_trade(trade(3 * M + 1, 12))
    assert b.current() == Bar("X", 3 * M, M, 11, 12, 9, 12, 3, 3)
    b.advance(7 * M + 30 * S)  # closes minute 3; minutes 4 to 6 are past
    assert b.on_trade(trade(5 * M, 1)) == [] and b.late == 3
    assert b.on_trade(trade(7 * M, 1)) == [] and b.current() is not None  # minute 7 is open


def test_history_is_bounded() -> None:
    b = BarBuilder("X", S, history=3)
    for i in range(10):
        b.on_trade(trade(i * S, i))
    b.flush()
    assert [bar.open for bar in b.history] == [7, 8, 9]


_trades = st.lists(
    st.tuples(st.integers(0, 10 * M), st.integers(1, 1000), st.integers(1, 50)), max_size=60
)


def _groupby(trades: list[tuple[int, int, int]], interval: int) -> list[Bar]:
    """The bars, directly: group the trades by interval start, in order."""
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for t in trades:
        groups.setdefault(t[0] // interval * interval, []).append(t)
    return [
        Bar(
            "X",
            start,
            interval,
            g[0][1],
            max(p for _, p, _ in g),
            min(p for _, p, _ in g),
            g[-1][1],
            sum(q for _, _, q in g),
            len(g),
        )
        for start, g in sorted(groups.items())
    ]


@given(_trades, st.sampled_from([S, 7 * S, M, 5 * M, 60 * M]), st.data())
def test_bars_equal_a_groupby_of_the_trades(
    raw: list[tuple[int, int, int]], interval: int, data: st.DataObject
) -> None:
    """In time order, with clock ticks that never pass the next trade: every trade is in
    exactly one bar, and the bars are the groupby of the trades by interval."""
    trades = sorted(raw, key=lambda t: t[0])
    b = BarBuilder("X", interval, history=0)
    bars: list[Bar] = []
    clock = 0
    for ts, price, qty in trades:
        if data.draw(st.booleans()):
            clock = data.draw(st.integers(clock, ts))
            bars += b.advance(clock)
        bars += b.on_trade(trade(ts, price, qty))
    bars += b.flush()
    assert bars == _groupby(trades, interval)
    assert sum(bar.trades for bar in bars) == len(trades) and b.late == 0
    assert sum(bar.volume for bar in bars) == sum(q for _, _, q in trades)
    assert all(bar.start % interval == 0 for bar in bars)


@given(_trades, st.sampled_from([S, M]))
def test_out_of_order_trades_land_in_one_bar_or_count_late(
    trades: list[tuple[int, int, int]], interval: int
) -> None:
    b = BarBuilder("X", interval)
    bars: list[Bar] = []
    for ts, price, qty in trades:
        bars += b.on_trade(trade(ts, price, qty))
    bars += b.flush()
    assert sum(bar.trades for bar in bars) + b.late == len(trades)
    starts = [bar.start for bar in bars]
    assert starts == sorted(set(starts))  # increasing: no interval twice
