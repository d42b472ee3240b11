"""LOBSTER recordings (Nasdaq order-level data): parse, replay as market data, check.

A day comes as two CSV files without a header (https://lobsterdata.com, format in
``docs/feeds.md``):

- ``*_message_L.csv``: ``time,type,order_id,size,price,direction`` where time is seconds
  after midnight (New York) with up to 9 decimals, price is dollars x 10000, direction 1 is a
  buy order and -1 a sell order. Types: 1 add, 2 partial cancel, 3 delete, 4 execution of a
  visible order, 5 execution of a hidden order (a trade, no book change), 6 cross (auction)
  trade, 7 trading halt.
- ``*_orderbook_L.csv``: the L-level book after each message, ``ask price, ask size, bid
  price, bid size`` per level; an empty level reads 9999999999 (ask) or -9999999999 (bid)
  with size 0.

Seeding: an orderbook row has levels, not orders, so each level is seeded as one synthetic
order (a negative id). A later message on an order the replay never saw added (it rested
before the seed) takes its size off the synthetic order at its side and price; with no such
level the message changes nothing and is counted in ``unmatched``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import NamedTuple
from zoneinfo import ZoneInfo

from mercato.domain.instrument import DecimalError, Instrument, parse_decimal
from mercato.feeds import FeedError
from mercato.marketdata.book import OrderBook
from mercato.marketdata.events import BUY, SELL, AnyMdEvent, MdClear, MdOrder, MdTrade

__all__ = [
    "AAPL",
    "EMPTY_ASK",
    "EMPTY_BID",
    "BookRow",
    "CheckResult",
    "LobsterBook",
    "LobsterReplay",
    "Message",
    "Mismatch",
    "check",
    "day_start_ns",
    "file_info",
    "format_row",
    "parse_message",
    "parse_row",
    "read_messages",
    "read_rows",
]

AAPL = Instrument(symbol="AAPL", tick_size=100, price_scale=4, qty_scale=0)
EMPTY_ASK = 9_999_999_999
EMPTY_BID = -9_999_999_999
ADD, PARTIAL, DELETE, EXECUTE, HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7
NEW_YORK = "America/New_York"
_NAME = re.compile(
    r"(?P<symbol>[A-Za-z0-9.]+)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_[a-z]+_(?P<levels>\d+)\.csv"
)


class Message(NamedTuple):
    """One message line. ``time`` is ns after midnight; ``side`` is BUY or SELL."""

    line: int
    time: int
    type: int
    order_id: int
    size: int
    price: int
    side: int


class BookRow(NamedTuple):
    """One orderbook line: the non-empty levels as (price, size), best first."""

    line: int
    asks: tuple[tuple[int, int], ...]
    bids: tuple[tuple[int, int], ...]


def _int(text: str, what: str, line: int) -> int:
    try:
        return int(text)
    except ValueError:
        raise FeedError(f"{what} is not an integer: {text!r}", line) from None


def parse_message(text: str, line: int) -> Message:
    """One message line, checked: a FeedError names the line and the field."""
    fields = text.strip().split(",")
    if len(fields) != 6:
        raise FeedError(
            f"expected 6 fields (time,type,id,size,price,direction), got {text!r}", line
        )
    try:
        time = parse_decimal(fields[0], 9)
    except DecimalError:
        raise FeedError(f"time is not seconds after midnight: {fields[0]!r}", line) from None
    kind = _int(fields[1], "type", line)
    if kind not in (ADD, PARTIAL, DELETE, EXECUTE, HIDDEN, CROSS, HALT):
        raise FeedError(f"unknown event type {kind}", line)
    order_id = _int(fields[2], "order id", line)
    size = _int(fields[3], "size", line)
    price = _int(fields[4], "price", line)
    direction = _int(fields[5], "direction", line)
    if direction not in (1, -1):
        raise FeedError(f"direction must be 1 or -1, not {direction}", line)
    if kind != HALT and (size <= 0 or price <= 0):
        raise FeedError(f"size and price must be positive: {size}, {price}", line)
    return Message(line, time, kind, order_id, size, price, BUY if direction == 1 else SELL)


def _side_levels(fields: list[int], first: int, empty: int, line: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in range(first, len(fields), 4):
        price, size = fields[i], fields[i + 1]
        if price == empty:
            continue
        if size <= 0 or price <= 0:
            raise FeedError(f"level {i // 4 + 1}: price {price} with size {size}", line)
        out.append((price, size))
    return out


def parse_row(text: str, line: int) -> BookRow:
    """One orderbook line (any number of levels), checked."""
    parts = text.strip().split(",")
    if len(parts) % 4 or not parts[0]:
        raise FeedError(f"expected 4 fields per level, got {len(parts)} fields", line)
    fields = [_int(p, f"field {i + 1}", line) for i, p in enumerate(parts)]
    asks = _side_levels(fields, 0, EMPTY_ASK, line)
    bids = _side_levels(fields, 2, EMPTY_BID, line)
    if any(a[0] >= b[0] for a, b in pairwise(asks)) or any(a[0] <= b[0] for a, b in pairwise(bids)):
        raise FeedError("levels are not in price order", line)
    return BookRow(line, tuple(asks), tuple(bids))


def read_messages(lines: Iterable[str]) -> Iterator[Message]:
    for n, text in enumerate(lines, 1):
        if text.strip():
            yield parse_message(text, n)


def read_rows(lines: Iterable[str]) -> Iterator[BookRow]:
    for n, text in enumerate(lines, 1):
        if text.strip():
            yield parse_row(text, n)


def format_row(bids: list[tuple[int, int]], asks: list[tuple[int, int]], levels: int) -> str:
    """A book in LOBSTER's orderbook format, padded with empty levels to ``levels``."""
    out: list[str] = []
    for i in range(levels):
        ask = asks[i] if i < len(asks) else (EMPTY_ASK, 0)
        bid = bids[i] if i < len(bids) else (EMPTY_BID, 0)
        out += (str(ask[0]), str(ask[1]), str(bid[0]), str(bid[1]))
    return ",".join(out)


def file_info(name: str) -> tuple[str, date, int]:
    """(symbol, trading day, levels) from a LOBSTER file name such as
    ``AAPL_2012-06-21_34200000_57600000_message_10.csv``."""
    m = _NAME.search(name)
    if m is None:
        raise FeedError(f"not a LOBSTER file name (SYMBOL_YYYY-MM-DD_..._N.csv): {name}")
    return m["symbol"], date.fromisoformat(m["date"]), int(m["levels"])


def day_start_ns(day: date, tz: str = NEW_YORK) -> int:
    """Epoch ns of midnight of ``day`` in ``tz``, at the UTC offset of that day's noon.

    LOBSTER's times are seconds after the exchange's midnight. Trading hours never straddle
    the 02:00 daylight-saving switch, so one offset per day is exact for them: 2012-06-21 is
    EDT (UTC-4), so its 09:30:00 (34200 s) is 13:30:00 UTC.
    """
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(tz))
    offset = noon.utcoffset()
    assert offset is not None
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC) - offset
    return (midnight - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


class LobsterBook:
    """An ``OrderBook`` that can be seeded from an orderbook row and fed LOBSTER messages.

    Counters: ``unmatched`` messages on an unknown order with no level at its price,
    ``overfilled`` messages taking more than the order (or seeded level) held (clamped at 0).
    """

    def __init__(self, symbol: str) -> None:
        self.book = OrderBook(symbol)
        self._seeded: dict[tuple[int, int], int] = {}  # (side, price) -> synthetic id
        self._next_synthetic = -1
        self.unmatched = 0
        self.overfilled = 0

    def seed(self, row: BookRow, ts: int) -> list[AnyMdEvent]:
        """Forget everything and rest one synthetic order per level of ``row``."""
        symbol = self.book.symbol
        self.book.clear()
        self._seeded.clear()
        out: list[AnyMdEvent] = [MdClear(symbol, ts)]
        for side, levels in ((BUY, row.bids), (SELL, row.asks)):
            for price, size in levels:
                oid = self._next_synthetic
                self._next_synthetic -= 1
                self._seeded[side, price] = oid
                order = MdOrder(symbol, ts, oid, side, price, size)
                out.append(order)
                out += self.book.apply(order)
        return out

    def apply(self, m: Message, ts: int, trade_id: int) -> list[AnyMdEvent]:
        """The events of one message stamped ``ts``: a trade first (types 4, 5, 6), then the
        order change and the level change it makes."""
        symbol = self.book.symbol
        out: list[AnyMdEvent] = []
        if m.type == EXECUTE or m.type == HIDDEN:  # the resting order's opposite took it
            out.append(MdTrade(symbol, ts, trade_id, m.price, m.size, BUY + SELL - m.side))
        elif m.type == CROSS:
            out.append(MdTrade(symbol, ts, trade_id, m.price, m.size, 0))
        if m.type == ADD:
            order = MdOrder(symbol, ts, m.order_id, m.side, m.price, m.size)
        elif m.type == PARTIAL or m.type == DELETE or m.type == EXECUTE:
            known = self.book.order(m.order_id)
            oid = m.order_id
            if known is None:  # rested before the seed: take it off the seeded level
                oid = self._seeded.get((m.side, m.price), 0)
                known = self.book.order(oid) if oid else None
                if known is None:
                    self.unmatched += 1
                    return out
                left = known[2] - m.size
            else:
                left = 0 if m.type == DELETE else known[2] - m.size
            if left < 0:
                self.overfilled += 1
                left = 0
            order = MdOrder(symbol, ts, oid, known[0], known[1], left)
        else:  # hidden or cross trades and halts leave the visible book alone
            return out
        out.append(order)
        out += self.book.apply(order)
        return out

    def row(self, levels: int) -> str:
        bids, asks = self.book.depth(levels)
        return format_row(bids, asks, levels)


class LobsterReplay:
    """A LOBSTER day as market data for ``symbol``: seeded from ``seed`` (the orderbook row
    after the first message; that message is then skipped as already in the book), then
    every message in order. Times: ``day_start`` (epoch ns of the day's midnight) plus the
    message's time. Trade ids are the message's line number."""

    def __init__(self, symbol: str, day_start: int) -> None:
        self.lobster = LobsterBook(symbol)
        self.day_start = day_start
        self.messages = 0
        self.halts = 0

    def iter_events(
        self, messages: Iterable[Message], seed: BookRow | None = None
    ) -> Iterator[AnyMdEvent]:
        it = iter(messages)
        if seed is not None:
            first = next(it, None)
            if first is None:
                return
            if first.line != seed.line:
                raise FeedError(f"seed row {seed.line} is not the book after message 1")
            self.messages += 1
            yield from self.lobster.seed(seed, self.day_start + first.time)
        else:
            yield MdClear(self.lobster.book.symbol, self.day_start)
        for m in it:
            self.messages += 1
            self.halts += m.type == HALT
            yield from self.lobster.apply(m, self.day_start + m.time, m.line)


class Mismatch(NamedTuple):
    """Orderbook line ``line`` differs from row ``line - 1`` plus message ``line``."""

    line: int
    expected: str
    got: str


class CheckResult(NamedTuple):
    rows: int
    mismatches: list[Mismatch]
    unmatched: int


def check(
    messages: Iterable[Message],
    rows: Iterable[BookRow],
    levels: int = 10,
    compare: int = 9,
    out: list[str] | None = None,
) -> CheckResult:
    """Row k plus message k+1 against row k+1, for every k, comparing the top ``compare``
    levels (the last of ``levels`` can fill from depth the file never showed). The books
    built are appended to ``out`` in LOBSTER's format (one fewer than the rows)."""
    msgs = list(messages)
    book_rows = list(rows)
    if len(msgs) != len(book_rows):
        raise FeedError(f"{len(msgs)} messages but {len(book_rows)} orderbook rows")
    width = 4 * compare
    mismatches: list[Mismatch] = []
    unmatched = 0
    for k in range(1, len(msgs)):
        lob = LobsterBook("X")
        lob.seed(book_rows[k - 1], 0)
        lob.apply(msgs[k], 0, 0)
        unmatched += lob.unmatched
        got = lob.row(levels)
        if out is not None:
            out.append(got)
        expected = format_row(list(book_rows[k].bids), list(book_rows[k].asks), levels)
        if got.split(",")[:width] != expected.split(",")[:width]:
            mismatches.append(Mismatch(msgs[k].line, expected, got))
    return CheckResult(max(len(msgs) - 1, 0), mismatches, unmatched)
