"""LOBSTER: parsing, seeding, messages on unseen orders, the step check and the replay."""

from __future__ import annotations

from datetime import date
from itertools import pairwise
from pathlib import Path

import pytest

from mercato.feeds import FeedError
from mercato.feeds import lobster as lb
from mercato.marketdata.book import LevelBook, OrderBook
from mercato.marketdata.events import BUY, SELL, MdClear, MdLevel, MdOrder, MdTrade

ROW = lb.BookRow(1, ((1010, 5), (1020, 7)), ((1000, 3), (990, 4)))


def test_parse_message() -> None:
    m = lb.parse_message("34200.004241176,1,16113575,18,5853300,1\n", 1)
    assert m == lb.Message(1, 34_200_004_241_176_000 // 1000, 1, 16113575, 18, 5853300, BUY)
    assert lb.parse_message("34200.5,4,7,1,5853300,-1", 2).side == SELL
    assert lb.parse_message("34200,7,0,0,-1,-1", 3).type == lb.HALT


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("34200.1,1,7,18,5853300", "expected 6 fields"),
        ("9:30,1,7,18,5853300,1", "time is not seconds"),
        ("34200.1,9,7,18,5853300,1", "unknown event type 9"),
        ("34200.1,1,x,18,5853300,1", "order id is not an integer"),
        ("34200.1,1,7,18,5853300,0", "direction must be 1 or -1"),
        ("34200.1,1,7,0,5853300,1", "must be positive"),
    ],
)
def test_bad_messages_name_the_line(text: str, why: str) -> None:
    with pytest.raises(FeedError, match=why) as e:
        lb.parse_message(text, 12)
    assert e.value.line == 12 and str(e.value).startswith("line 12: ")


def test_parse_row_skips_empty_levels_and_checks_order() -> None:
    row = lb.parse_row("1010,5,1000,3,9999999999,0,-9999999999,0", 4)
    assert row == lb.BookRow(4, ((1010, 5),), ((1000, 3),))
    assert lb.format_row([(1000, 3)], [(1010, 5)], 2) == "1010,5,1000,3,9999999999,0,-9999999999,0"
    for bad, why in [
        ("1010,5,1000", "4 fields per level"),
        ("1010,5,1000,x", "field 4 is not an integer"),
        ("1010,5,1000,3,1005,5,990,1", "not in price order"),
        ("1010,0,1000,3", "level 1"),
    ]:
        with pytest.raises(FeedError, match=why):
            lb.parse_row(bad, 4)


def test_file_name_and_new_york_time() -> None:
    assert lb.file_info("x/AAPL_2012-06-21_34200000_57600000_message_10.csv") == (
        "AAPL",
        date(2012, 6, 21),
        10,
    )
    with pytest.raises(FeedError, match="not a LOBSTER file name"):
        lb.file_info("messages.csv")
    # EDT in June (UTC-4), EST in January (UTC-5)
    assert lb.day_start_ns(date(2012, 6, 21)) == 1_340_251_200 * 10**9  # 04:00 UTC
    assert lb.day_start_ns(date(2012, 1, 3)) == 1_325_566_800 * 10**9  # 05:00 UTC


def test_seed_then_messages_on_unseen_orders_take_from_the_seeded_level() -> None:
    lob = lb.LobsterBook("X")
    seeded = lob.seed(ROW, 1)
    assert seeded[0] == MdClear("X", 1)
    assert [e for e in seeded if isinstance(e, MdOrder)] == [
        MdOrder("X", 1, -1, BUY, 1000, 3),
        MdOrder("X", 1, -2, BUY, 990, 4),
        MdOrder("X", 1, -3, SELL, 1010, 5),
        MdOrder("X", 1, -4, SELL, 1020, 7),
    ]
    # a visible execution of a sell order nobody saw added: a buy trade, then the level
    out = lob.apply(lb.Message(2, 0, lb.EXECUTE, 77, 2, 1010, SELL), 9, 2)
    assert out == [
        MdTrade("X", 9, 2, 1010, 2, BUY),
        MdOrder("X", 9, -3, SELL, 1010, 3),
        MdLevel("X", 9, SELL, 1010, 3),
    ]
    # a full delete of an unseen order takes its size, not the whole level
    lob.apply(lb.Message(3, 0, lb.DELETE, 78, 1, 990, BUY), 9, 3)
    assert lob.book.bids.get(990) == 3
    # a new order, then its own partial cancel and delete
    lob.apply(lb.Message(4, 0, lb.ADD, 80, 6, 1000, BUY), 9, 4)
    assert lob.book.bids.get(1000) == 9
    lob.apply(lb.Message(5, 0, lb.PARTIAL, 80, 2, 1000, BUY), 9, 5)
    assert lob.book.order(80) == (BUY, 1000, 4)
    lob.apply(lb.Message(6, 0, lb.DELETE, 80, 4, 1000, BUY), 9, 6)
    assert lob.book.order(80) is None and lob.book.bids.get(1000) == 3
    # hidden executions trade without touching the book; the taker is the other side
    assert lob.apply(lb.Message(7, 0, lb.HIDDEN, 0, 5, 1005, BUY), 9, 7) == [
        MdTrade("X", 9, 7, 1005, 5, SELL)
    ]
    assert lob.apply(lb.Message(8, 0, lb.HALT, 0, 0, -1, SELL), 9, 8) == []
    # no level at that price: nothing to take from
    assert lob.apply(lb.Message(9, 0, lb.DELETE, 81, 1, 1500, SELL), 9, 9) == []
    assert lob.unmatched == 1
    # more than the seeded level holds: clamped, counted
    lob.apply(lb.Message(10, 0, lb.EXECUTE, 82, 50, 1020, SELL), 9, 10)
    assert lob.overfilled == 1 and lob.book.asks.get(1020) == 0
    lob.book.check()
    assert lob.row(3) == "1010,3,1000,3,9999999999,0,990,3,9999999999,0,-9999999999,0"


def _read(messages: Path, orderbook: Path) -> tuple[list[lb.Message], list[lb.BookRow]]:
    with messages.open() as m, orderbook.open() as o:
        return list(lb.read_messages(m)), list(lb.read_rows(o))


def test_check_on_the_real_sample_finds_no_difference(
    lobster_messages: Path, lobster_orderbook: Path
) -> None:
    msgs, rows = _read(lobster_messages, lobster_orderbook)
    built: list[str] = []
    result = lb.check(msgs, rows, out=built)
    assert result.rows == len(rows) - 1 == len(built) == 998
    assert result.mismatches == []
    assert result.unmatched == 0


def test_check_reports_a_row_that_differs(lobster_messages: Path, lobster_orderbook: Path) -> None:
    msgs, rows = _read(lobster_messages, lobster_orderbook)
    asks = ((rows[500].asks[0][0], rows[500].asks[0][1] + 1), *rows[500].asks[1:])
    rows[500] = rows[500]._replace(asks=asks)
    result = lb.check(msgs, rows)
    # row 501 is built wrong from it, and row 501 itself is not what message 501 makes
    assert [m.line for m in result.mismatches] == [501, 502]
    with pytest.raises(FeedError, match="999 messages but 998"):
        lb.check(msgs, rows[:-1])


def test_replay_of_the_real_sample(lobster_messages: Path, lobster_orderbook: Path) -> None:
    msgs, rows = _read(lobster_messages, lobster_orderbook)
    day = lb.day_start_ns(date(2012, 6, 21))
    replay = lb.LobsterReplay("AAPL", day)
    events = list(replay.iter_events(msgs, rows[0]))
    assert events[0] == MdClear("AAPL", day + 34_200_004_241_176)  # the first message's time
    trades = [e for e in events if isinstance(e, MdTrade)]
    assert len(trades) == sum(m.type in (lb.EXECUTE, lb.HIDDEN) for m in msgs[1:]) == 159
    # line 36: 34200.275016159,4,5740544,40,5857400,-1 (a sell order hit: a buy trade)
    assert trades[0] == MdTrade("AAPL", day + 34_200_275_016_159, 36, 5857400, 40, BUY)
    assert all(a.ts <= b.ts for a, b in pairwise(events))
    assert replay.messages == 999
    # the L3 stream and the L2 stream derived from it describe the same book
    l3, l2 = OrderBook("AAPL"), LevelBook("AAPL")
    for e in events:
        if isinstance(e, MdOrder):
            l3.apply(e)
        elif isinstance(e, MdLevel):
            l2.apply(e)
    assert l3.depth(0) == l2.depth(0) == replay.lobster.book.depth(0)
    l3.check()


def test_continuous_replay_follows_lobsters_top_of_book(
    lobster_messages: Path, lobster_orderbook: Path
) -> None:
    """From row 1 alone the book drifts deep down (orders below the 10 visible levels), but
    its top stays LOBSTER's for the first 439 messages."""
    msgs, rows = _read(lobster_messages, lobster_orderbook)
    lob = lb.LobsterBook("AAPL")
    lob.seed(rows[0], 0)
    for m, row in zip(msgs[1:439], rows[1:439], strict=True):
        lob.apply(m, 0, m.line)
        assert (lob.book.best_bid(), lob.book.best_ask()) == (row.bids[0], row.asks[0]), m.line
    lob.book.check()
