"""What ``mercato feed`` adds to the pure replays: files, pacing, summaries and CSV output.

``events(...)`` opens a recording and returns its events as an iterator, for any consumer
(the CLI here, a service publishing into a running platform); ``paced`` spaces them out at a
multiple of the recorded speed with an injectable clock and sleep.
"""

from __future__ import annotations

import gzip
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TextIO, TypeVar

from mercato.domain.instrument import Instrument
from mercato.feeds import FeedError
from mercato.feeds import binance as bn
from mercato.feeds import lobster as lb
from mercato.marketdata.bars import Bar, BarBuilder
from mercato.marketdata.book import LevelBook
from mercato.marketdata.events import AnyMdEvent, MdClear, MdLevel, MdQuote, MdTrade

__all__ = [
    "BARS_HEADER",
    "Source",
    "Summary",
    "binance_source",
    "binary_lines",
    "check_lobster",
    "lobster_source",
    "located",
    "paced",
    "replay",
    "text_lines",
    "write_bars",
]

BARS_HEADER = "symbol,start,open,high,low,close,volume,trades"
T = TypeVar("T")


class Source:
    """An opened recording: its instrument, its events (an iterator, read lazily), and the
    replay object whose counters the summary reports (``notes``)."""

    def __init__(
        self, instrument: Instrument, events: Iterator[AnyMdEvent], notes: Callable[[], str]
    ) -> None:
        self.instrument = instrument
        self.events = events
        self.notes = notes


def located(path: str, items: Iterable[T]) -> Iterator[T]:
    """``items``, with the file's name put on any FeedError they raise."""
    try:
        yield from items
    except FeedError as e:
        e.path = e.path or path
        raise


def binary_lines(path: str) -> Iterator[bytes]:
    """The recording's lines, as bytes: gzip-compressed (``.gz``) or not."""
    f: IO[bytes] = gzip.open(path) if path.endswith(".gz") else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    with f:
        try:
            yield from f
        except (OSError, EOFError) as e:  # a truncated or corrupt gzip stream
            raise FeedError(f"cannot read: {e}", path=path) from None


def text_lines(path: str) -> Iterator[str]:
    with open(path, encoding="ascii", errors="replace") as f:
        yield from f


def lobster_source(messages: str, seed_book: str) -> Source:
    """A LOBSTER day: symbol and date from the message file's name, the book seeded from the
    orderbook file's first row (see ``mercato.feeds.lobster``)."""
    symbol, day, _ = lb.file_info(Path(messages).name)
    instrument = lb.AAPL if symbol == "AAPL" else Instrument(symbol=symbol, price_scale=4)
    seed = next(located(seed_book, lb.read_rows(text_lines(seed_book))), None)
    if seed is None:
        raise FeedError("the orderbook file is empty", path=seed_book)
    replay = lb.LobsterReplay(symbol, lb.day_start_ns(day))
    msgs = located(messages, lb.read_messages(text_lines(messages)))
    return Source(
        instrument,
        replay.iter_events(msgs, seed),
        lambda: (
            f"{replay.messages:,} messages, {replay.lobster.unmatched:,} on orders "
            f"outside the seeded book, {replay.halts:,} halts"
        ),
    )


def binance_source(path: str, instrument: Instrument = bn.BTCUSDT) -> Source:
    replay = bn.BinanceReplay(instrument)
    return Source(
        instrument,
        located(path, replay.iter_events(binary_lines(path))),
        lambda: (
            f"{replay.lines:,} lines, {replay.gaps:,} depth gaps, "
            f"{replay.dropped:,} stale depth diffs dropped"
        ),
    )


def paced(
    events: Iterable[AnyMdEvent],
    speed: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[AnyMdEvent]:
    """``events`` at ``speed`` times the recorded pace (event time ``ts``): each waits until
    its offset from the first, divided by ``speed``, has passed. An event stamped earlier
    than one before it goes at once."""
    start_wall = 0.0
    start_ts: int | None = None
    for e in events:
        if start_ts is None:
            start_wall, start_ts = clock(), e.ts
        else:
            delay = start_wall + (e.ts - start_ts) / 1e9 / speed - clock()
            if delay > 0:
                sleep(delay)
        yield e


class Summary:
    """Counts a replay's events and keeps its L2 book and last quote, for the closing lines."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.book = LevelBook(instrument.symbol)
        self.kinds: Counter[str] = Counter()
        self.quote: MdQuote | None = None
        self.events = 0

    def add(self, e: AnyMdEvent) -> None:
        self.events += 1
        self.kinds[type(e).__name__] += 1
        if isinstance(e, MdLevel):
            self.book.apply(e)
        elif isinstance(e, MdQuote):
            self.quote = e
        elif isinstance(e, MdClear):
            self.book.clear()

    def _top(self, bid: int, bid_qty: int, ask: int, ask_qty: int) -> str:
        p, q = self.instrument.format_price, self.instrument.format_qty
        b = f"{p(bid)} x {q(bid_qty)}" if bid_qty else "none"
        a = f"{p(ask)} x {q(ask_qty)}" if ask_qty else "none"
        return f"bid {b} | ask {a}"

    def lines(self) -> list[str]:
        k = self.kinds
        out = [
            f"{self.events:,} events: {k['MdTrade']:,} trades, {k['MdQuote']:,} quotes, "
            f"{k['MdOrder']:,} order changes, {k['MdLevel']:,} level changes, "
            f"{k['MdClear']:,} clears",
            f"final book: {self._top(*self.book.best_bid(), *self.book.best_ask())}"
            + (" (crossed)" if self.book.crossed() else ""),
        ]
        if self.quote is not None:
            q = self.quote
            out.append(f"last quote: {self._top(q.bid, q.bid_qty, q.ask, q.ask_qty)}")
        return out


def _write_atomically(path: str, lines: Iterable[str]) -> None:
    """Write ``lines`` to ``path`` through a temporary file: a failed run leaves it alone."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="ascii", newline="") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def write_bars(path: str, bars: Iterable[Bar], instrument: Instrument) -> None:
    """``symbol,start,open,high,low,close,volume,trades``: start in epoch ms, prices and
    volume as decimals at the instrument's scales."""
    p, q = instrument.format_price, instrument.format_qty
    _write_atomically(
        path,
        [BARS_HEADER]
        + [
            f"{b.symbol},{b.start // 1_000_000},{p(b.open)},{p(b.high)},{p(b.low)},"
            f"{p(b.close)},{q(b.volume)},{b.trades}"
            for b in bars
        ],
    )


def replay(
    source: Source,
    out: TextIO,
    *,
    speed: float | None = None,
    bars_out: str | None = None,
    bar_interval: int = 60_000_000_000,
    sink: Callable[[AnyMdEvent], None] | None = None,
) -> Summary:
    """Run ``source`` to its end (paced when ``speed`` is given), optionally writing bars,
    and print the summary to ``out``."""
    started = time.perf_counter()
    summary = Summary(source.instrument)
    builder = BarBuilder(source.instrument.symbol, bar_interval, history=0)
    bars: list[Bar] = []
    events = source.events if speed is None else paced(source.events, speed)
    for e in events:
        summary.add(e)
        if sink is not None:
            sink(e)
        if bars_out is not None and isinstance(e, MdTrade):
            bars += builder.on_trade(e)
    bars += builder.flush()
    seconds = time.perf_counter() - started
    print(f"replayed {source.instrument.symbol} in {seconds:.2f} s: {source.notes()}", file=out)
    for line in summary.lines():
        print(line, file=out)
    if bars_out is not None:
        write_bars(bars_out, bars, source.instrument)
        late = f" ({builder.late:,} late trades left out)" if builder.late else ""
        print(f"{len(bars):,} bars -> {bars_out}{late}", file=out)
    return summary


def check_lobster(messages: str, orderbook: str, book_out: str | None) -> lb.CheckResult:
    """``lobster.check`` on two files, writing the books it built to ``book_out``."""
    msgs = located(messages, lb.read_messages(text_lines(messages)))
    rows = located(orderbook, lb.read_rows(text_lines(orderbook)))
    try:
        levels = lb.file_info(Path(orderbook).name)[2]
    except FeedError:
        levels = 10
    built: list[str] = []
    result = lb.check(msgs, rows, levels=levels, compare=levels - 1, out=built)
    if book_out is not None:
        _write_atomically(book_out, built)
    return result
