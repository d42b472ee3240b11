"""Market data restored after a restart (``BarBuilder.restore``, ``Stats.restore``,
``MarketData.restore``) answers as the market data that saw every trade, and goes on the
same way: bars aggregated from the stored trades, the newest one open."""

from __future__ import annotations

import random

from mercato.marketdata.bars import INTERVALS, Bar, BarBuilder
from mercato.marketdata.events import MdTrade
from mercato.services.marketdata import MarketData

SEC = 1_000_000_000
T0 = 1_764_000_000 * SEC


def tape(seed: int, n: int, start: int = T0) -> list[MdTrade]:
    rng = random.Random(seed)
    out, ts = [], start
    for i in range(n):
        ts += rng.choice([1, 10, 500_000_000, SEC, 7 * SEC, 70 * SEC, 4_000 * SEC])
        out.append(MdTrade("X", ts, i + 1, 10_000 + rng.randint(-50, 50), rng.randint(1, 9), 1))
    return out


def aggregate(trades: list[MdTrade], interval: int, limit: int) -> list[Bar]:
    """What the store's ``GROUP BY`` gives: per bucket, open/close by seq, oldest first."""
    buckets: dict[int, list[MdTrade]] = {}
    for t in trades:
        buckets.setdefault(t.ts - t.ts % interval, []).append(t)
    bars = []
    for start in sorted(buckets)[-limit:]:
        ts = sorted(buckets[start], key=lambda t: t.trade_id)
        prices = [t.price for t in ts]
        volume = sum(t.qty for t in ts)
        bars.append(
            Bar(
                "X",
                start,
                interval,
                prices[0],
                max(prices),
                min(prices),
                prices[-1],
                volume,
                len(ts),
            )
        )
    return bars


def test_a_restored_bar_builder_goes_on_as_the_one_that_saw_every_trade() -> None:
    trades = tape(5, 600)
    for interval in INTERVALS.values():
        seen = BarBuilder("X", interval, history=50)
        for t in trades[:400]:
            seen.on_trade(t)
        restored = BarBuilder("X", interval, history=50)
        restored.restore(aggregate(trades[:400], interval, 51))
        assert list(restored.history) == list(seen.history)
        assert restored.current() == seen.current()
        for t in trades[400:]:
            assert restored.on_trade(t) == seen.on_trade(t)
        now = trades[-1].ts + 10 * interval
        assert restored.advance(now) == seen.advance(now)
        assert list(restored.history) == list(seen.history) and restored.current() is None


def test_market_data_restored_answers_as_before() -> None:
    trades = tape(9, 1_500)
    seen, restored = MarketData(), MarketData()
    for md in (seen, restored):
        md.add_instrument("X", 1, 1, 2, 0)
    seen.publish(trades)
    kept = trades[-seen.max_trades :]
    bars = {name: aggregate(trades, iv, seen.max_bars) for name, iv in INTERVALS.items()}
    restored.restore("X", kept, bars)
    assert restored.trades("X", 1_000) == seen.trades("X", 1_000)
    for name in INTERVALS:
        assert restored.bars("X", 2_000, name) == seen.bars("X", 2_000, name)
    m, n = seen.market("X"), restored.market("X")
    assert n.stats_json(restored.now) == m.stats_json(seen.now)
    assert n.quote_json()["last"] == m.quote_json()["last"]
    more = tape(10, 50, start=trades[-1].ts)
    more = [MdTrade("X", t.ts, t.trade_id + 10_000, t.price, t.qty, t.side) for t in more]
    seen.publish(more)
    restored.publish(more)
    for name in INTERVALS:
        assert restored.bars("X", 2_000, name) == seen.bars("X", 2_000, name)
    assert n.stats_json(restored.now) == m.stats_json(seen.now)
