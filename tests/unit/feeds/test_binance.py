"""Binance: each stream's events, the depth sync rule, bad lines, and real bars vs direct."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import pytest

from mercato.feeds import FeedError
from mercato.feeds.binance import BinanceReplay
from mercato.feeds.run import binance_source, replay
from mercato.marketdata.book import LevelBook
from mercato.marketdata.events import BUY, SELL, MdClear, MdLevel, MdQuote, MdTrade

P = 10**8  # 8 decimals
MS = 10**6


def line(recv: int, obj: object) -> bytes:
    return f"{recv} {json.dumps(obj)}\n".encode()


def trade(recv: int, t: int, p: str, q: str, m: bool, T: int) -> bytes:
    data = {"e": "trade", "E": T + 1, "s": "BTCUSDT", "t": t, "p": p, "q": q, "T": T, "m": m}
    return line(recv, {"stream": "btcusdt@trade", "data": data})


def depth(recv: int, E: int, U: int, u: int, b: list[list[str]], a: list[list[str]]) -> bytes:
    data = {"e": "depthUpdate", "E": E, "s": "BTCUSDT", "U": U, "u": u, "b": b, "a": a}
    return line(recv, {"stream": "btcusdt@depth@100ms", "data": data})


def ticker(recv: int, b: str, a: str) -> bytes:
    data = {"u": 1, "s": "BTCUSDT", "b": b, "B": "1.00000000", "a": a, "A": "0.50000000"}
    return line(recv, {"stream": "btcusdt@bookTicker", "data": data})


def snapshot(recv: int, last: int, bids: list[list[str]], asks: list[list[str]]) -> bytes:
    return line(recv, {"lastUpdateId": last, "bids": bids, "asks": asks})


def test_trades_and_quotes() -> None:
    r = BinanceReplay()
    out = list(
        r.iter_events(
            [
                trade(1_000, 7, "61837.63000000", "0.02000000", True, 5_000),
                trade(2_000, 8, "61837.64000000", "0.00001000", False, 5_001),
                b"\n",
                ticker(3_000, "61837.63000000", "61837.64000000"),
            ]
        )
    )
    assert out[:2] == [
        MdTrade("BTCUSDT", 5_000 * MS, 7, 6_183_763 * 10**6, 2_000_000, SELL),  # buyer maker
        MdTrade("BTCUSDT", 5_001 * MS, 8, 6_183_764 * 10**6, 1_000, BUY),
    ]
    # no exchange time: receive time + (exchange - receive) of the last trade (E = T + 1)
    offset = 5_002 * MS - 2_000
    assert out[2] == MdQuote(
        "BTCUSDT", 3_000 + offset, 6_183_763 * 10**6, P, 6_183_764 * 10**6, P // 2
    )
    assert r.lines == 3


def test_depth_is_held_until_the_snapshot_then_kept_in_sequence() -> None:
    r = BinanceReplay()
    held = [
        depth(1, 100, 10, 12, [["100.00000000", "1.00000000"]], []),  # before the snapshot
        depth(2, 200, 13, 16, [["99.00000000", "2.00000000"]], [["101.00000000", "0"]]),
    ]
    assert [e for raw in held for e in r.line_events(raw, 1)] == []
    snap = snapshot(3, 14, [["100.00000000", "5.00000000"]], [["101.00000000", "3.00000000"]])
    out = r.line_events(snap, 3)
    ts = 3 + 200 * MS - 2  # the snapshot's receive time on the exchange clock
    assert out == [
        MdClear("BTCUSDT", ts),
        MdLevel("BTCUSDT", ts, BUY, 100 * P, 5 * P),
        MdLevel("BTCUSDT", ts, SELL, 101 * P, 3 * P),
        MdLevel("BTCUSDT", 200 * MS, BUY, 99 * P, 2 * P),  # the held diff that straddles 14
        MdLevel("BTCUSDT", 200 * MS, SELL, 101 * P, 0),
    ]
    assert r.dropped == 1  # u 12 <= 14
    nxt = depth(4, 300, 17, 17, [], [["102.00000000", "1.00000000"]])
    assert r.line_events(nxt, 4) == [MdLevel("BTCUSDT", 300 * MS, SELL, 102 * P, P)]
    gap = depth(5, 400, 19, 20, [["98.00000000", "1.00000000"]], [])
    assert r.line_events(gap, 5) == [MdClear("BTCUSDT", 400 * MS)]
    assert r.gaps == 1
    # waiting again: the gap's diff is held for the next snapshot
    assert r.line_events(depth(6, 500, 21, 21, [], []), 6) == []
    out = r.line_events(snapshot(7, 19, [], []), 7)
    assert out[-1] == MdLevel("BTCUSDT", 400 * MS, BUY, 98 * P, P)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"abc {}", "receive time in ns"),
        (b'1 {"stream": "btcusdt@trade", "data": {"p": 1', "bad JSON"),
        (b'1 {"stream": "btcusdt@trade", "data": {"p": "1"}}', "bad JSON: Object missing"),
        (b'1 {"stream": "ethusdt@trade", "data": {}}', "not BTCUSDT's"),
        (b'1 {"stream": "btcusdt@kline_1m", "data": {}}', "unknown stream"),
        (b'1 {"result": null}', "neither a stream message nor a depth snapshot"),
        (trade(1, 1, "61837.63500000", "1", True, 1), "not a multiple of the tick"),
        (trade(1, 1, "61837.63000000", "1e-5", True, 1), "not a decimal number"),
    ],
)
def test_bad_lines_name_the_line(raw: bytes, why: str) -> None:
    r = BinanceReplay()
    with pytest.raises(FeedError, match=why) as e:
        list(r.iter_events([ticker(1, "1.00000000", "2.00000000"), raw]))
    assert e.value.line == 2


def _direct_bars(path: Path) -> list[str]:
    """1-minute bars straight from the file's trades, with json, Decimal and a dict."""
    bars: dict[int, list[Decimal | int]] = {}
    with gzip.open(path, "rt") as f:
        for text in f:
            msg = json.loads(text.split(" ", 1)[1])
            if msg.get("stream") != "btcusdt@trade":
                continue
            t = msg["data"]
            price, qty, minute = Decimal(t["p"]), Decimal(t["q"]), t["T"] // 60_000 * 60_000
            bar = bars.get(minute)
            if bar is None:
                bars[minute] = [price, price, price, price, qty, 1]
            else:
                bar[1] = max(bar[1], price)
                bar[2] = min(bar[2], price)
                bar[3] = price
                bar[4] += qty
                bar[5] += 1
    return ["symbol,start,open,high,low,close,volume,trades"] + [
        f"BTCUSDT,{m},{b[0]:.8f},{b[1]:.8f},{b[2]:.8f},{b[3]:.8f},{b[4]:.8f},{b[5]}"
        for m, b in sorted(bars.items())
    ]


def test_real_recording_bars_equal_a_direct_computation(binance_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "bars.csv"
    with (tmp_path / "summary.txt").open("w") as summary_out:
        summary = replay(binance_source(str(binance_file)), summary_out, bars_out=str(out))
    assert out.read_text().splitlines() == _direct_bars(binance_file)
    assert summary.kinds == {"MdTrade": 9757, "MdQuote": 28040, "MdLevel": 126073, "MdClear": 1}
    book = summary.book
    book.check()
    assert not book.crossed()
    assert book.best_bid() == (61_685_99 * 10**6, 1_00_870_000)
    assert book.best_ask() == (61_686_00 * 10**6, 2_29_327_000)


def test_real_recording_depth_agrees_with_the_book_ticker(binance_file: Path) -> None:
    """The book rebuilt from the snapshot and the diffs against the ticker stream (not
    simultaneous: diffs come every 100 ms): the best bids agree exactly at more than half of
    the ticker updates and within $10 at 95%. A wrong side or a broken sync would put them
    far apart."""
    book = LevelBook("BTCUSDT")
    updates = same = near = 0
    for e in binance_source(str(binance_file)).events:
        if isinstance(e, MdLevel):
            book.apply(e)
        elif isinstance(e, MdQuote) and len(book.bids):
            updates += 1
            diff = abs(book.best_bid()[0] - e.bid)
            same += diff == 0
            near += diff <= 10 * P
    assert updates > 28_000 and same / updates > 0.5 and near / updates > 0.95
