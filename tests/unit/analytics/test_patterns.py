"""Trading patterns: FIFO round trips worked by hand, checked against a unit-by-unit FIFO
of our own on random fills, and the statistics on a known set of trades."""

from __future__ import annotations

import datetime as dt
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from mercato.analytics.patterns import Fill, patterns, round_trips

NS = 1_000_000_000
MON = int(dt.datetime(2026, 11, 30, 14, 0, tzinfo=dt.UTC).timestamp()) * NS  # a Monday


def test_fifo_round_trips_by_hand() -> None:
    fills = [
        Fill(MON, "X", 1, 100, 10, fee=2),  # long 10 @ 100
        Fill(MON + 60 * NS, "X", 1, 110, 10, fee=2),  # long 20: lots 10 @ 100, 10 @ 110
        Fill(MON + 120 * NS, "X", 2, 120, 15, fee=3),  # sells 10 @ 100 and 5 @ 110
        Fill(MON + 180 * NS, "X", 2, 90, 10, fee=2),  # 5 @ 110 closed, then short 5 @ 90
        Fill(MON + 240 * NS, "X", 1, 80, 5, fee=1),  # the short closed at 80
    ]
    t = round_trips(fills)
    assert [(x.direction, x.qty, x.pnl) for x in t] == [
        ("long", 15, 10 * 20 + 5 * 10),
        ("long", 5, 5 * (90 - 110)),
        ("short", 5, 5 * (90 - 80)),
    ]
    # holding: (10 x 120 s + 5 x 60 s) / 15 = 100 s; then 5 x 120 s / 5; then 60 s
    assert [x.holding_ns for x in t] == [100 * NS, 120 * NS, 60 * NS]
    p = patterns(fills)
    assert (p.trades, p.wins, p.losses) == (3, 2, 1)
    assert p.win_rate == 2 / 3 and p.gross_profit == 300 and p.gross_loss == -100
    assert p.profit_factor == 3.0 and p.expectancy == 200 / 3
    assert p.average_win == 150.0 and p.average_loss == -100.0
    assert p.fees == 10 and p.fills == 5
    assert p.by_hour[14] == 5 and sum(p.by_hour) == 5 and p.by_weekday == [5, 0, 0, 0, 0, 0, 0]
    assert [x.pnl for x in p.largest_wins] == [250, 50] and [x.pnl for x in p.largest_losses] == [
        -100
    ]
    assert (p.longest_win_streak, p.longest_loss_streak) == (1, 1)
    assert p.average_holding_ns == (100 + 120 + 60) * NS // 3


def test_no_trades_and_symbols_apart() -> None:
    p = patterns([])
    assert p.trades == 0 and p.win_rate is None and p.profit_factor is None
    assert p.expectancy is None and p.average_holding_ns is None
    two = [Fill(1, "A", 1, 10, 1), Fill(2, "B", 2, 20, 1), Fill(3, "A", 2, 12, 1)]
    assert [(t.symbol, t.pnl) for t in round_trips(two)] == [("A", 2)]


def _unit_fifo(fills: list[Fill]) -> int:
    """An independent FIFO: one queue entry per unit, signed."""
    total = 0
    queues: dict[str, deque[tuple[int, int]]] = {}
    for f in fills:
        q = queues.setdefault(f.symbol, deque())
        sign = 1 if f.side == 1 else -1
        for _ in range(f.qty):
            if q and q[0][1] != sign:
                price, s = q.popleft()
                total += s * (f.price - price)
            else:
                q.append((f.price, sign))
    return total


fill_lists = st.lists(
    st.builds(
        Fill,
        ts=st.just(0),
        symbol=st.sampled_from(["A", "B"]),
        side=st.sampled_from([1, 2]),
        price=st.integers(1, 500),
        qty=st.integers(1, 20),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(fill_lists)
def test_against_a_unit_by_unit_fifo(fills: list[Fill]) -> None:
    fills = [Fill(i * NS, f.symbol, f.side, f.price, f.qty) for i, f in enumerate(fills)]
    trades = round_trips(fills)
    assert sum(t.pnl for t in trades) == _unit_fifo(fills)
    p = patterns(fills)
    assert p.wins + p.losses <= p.trades == len(trades)
    assert p.gross_profit + p.gross_loss == sum(t.pnl for t in trades)
    # a symbol that ends flat realized exactly its sells less its buys
    for sym in ("A", "B"):
        mine = [f for f in fills if f.symbol == sym]
        if sum(f.qty if f.side == 1 else -f.qty for f in mine) == 0:
            cash = sum(f.price * f.qty * (1 if f.side == 2 else -1) for f in mine)
            assert sum(t.pnl for t in trades if t.symbol == sym) == cash


def test_a_time_range_keeps_the_older_lots() -> None:
    fills = [
        Fill(10, "X", 1, 100, 10),  # opened before the range
        Fill(20, "X", 2, 110, 4),  # closed inside it: +40
        Fill(30, "X", 2, 90, 6),  # closed after it: -60
    ]
    inside = patterns(fills, since=15, until=25)
    assert (inside.trades, inside.gross_profit, inside.fills) == (1, 40, 1)
    assert patterns(fills, since=25).gross_loss == -60
    assert patterns(fills, until=15).trades == 0 and patterns(fills, until=15).fills == 1
