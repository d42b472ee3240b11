"""What the market-data service keeps per instrument, and its publications.

``Market``: one instrument's books (L2, L3), recent trades, bars at every interval,
24-hour statistics (``Stats``), latest quote, a call auction's indicative uncross, and
their JSON forms. ``Channel``: one
channel of one instrument (its seq, its binary encoder, what waits to be published).
``Message``: one publication, encoded once per encoding for every subscriber. Pure: the
service around them (``services/marketdata.py``) owns the timers, listeners and cache.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

from mercato.domain.instrument import format_decimal
from mercato.domain.types import SIDE_NAMES
from mercato.marketdata.bars import INTERVALS, Bar, BarBuilder
from mercato.marketdata.book import LevelBook, OrderBook
from mercato.marketdata.codec import Encoder
from mercato.marketdata.events import MdIndicative, MdQuote, MdTrade

KINDS: Final = ("trades", "quotes", "book", "l3", "bars", "stats", "auction")
STATE_KINDS: Final = frozenset({"quotes", "stats", "auction"})  # each message: the whole state
DEFAULT_BARS: Final = "1m"
RECENT_TRADES: Final = 1_000  # kept per instrument (the trades snapshot sends 100)
SNAPSHOT_TRADES: Final = 100
SNAPSHOT_BARS: Final = 100
BAR_HISTORY: Final = 1_440  # closed bars kept per instrument and interval
DAY_NS: Final = 86_400 * 1_000_000_000
MINUTE_NS: Final = 60 * 1_000_000_000


class Message:
    """One publication of one channel: its seq and its bytes in each encoding, made once
    and sent as they are to every subscriber. ``binary`` is a small-ticks frame (None for
    a channel without a binary form); ``key`` is the same publication as a key frame, made
    on first use for a subscriber that cannot decode the delta (it skipped a message)."""

    __slots__ = ("_key", "binary", "channel", "json", "kind", "seq", "wire")

    def __init__(
        self,
        channel: Channel,
        seq: int,
        json: str,
        binary: bytes | None,
        key: Callable[[], bytes] | None = None,
    ) -> None:
        self.channel = channel
        self.kind = channel.kind
        self.seq = seq
        self.json = json
        self.binary = binary
        self._key: Callable[[], bytes] | bytes | None = key
        # the transport's framing, made once: JSON, binary, binary key frame (md_stream)
        self.wire: list[bytes | None] = [None, None, None]

    def key_frame(self) -> bytes | None:
        k = self._key
        if callable(k):
            k = self._key = k()
        return k if k is not None else self.binary


class Channel:
    """One channel of one instrument: its seq, its binary encoder and what is pending."""

    __slots__ = ("encoder", "id", "kind", "last", "name", "pending", "seq", "snapshots", "symbol")

    def __init__(
        self, name: str, kind: str, symbol: str, encoder: Encoder | None, id: int = 0
    ) -> None:
        self.id = id  # the same for every subscriber: binary frames start with it
        self.name = name
        self.kind = kind
        self.symbol = symbol
        self.seq = 0
        self.encoder = encoder
        self.pending: list[Any] = []
        self.last: Message | None = None  # the latest publication
        # (seq, encoding) -> snapshot bytes: many subscribers joining at once share one
        self.snapshots: dict[tuple[int, str], str | bytes] = {}


class Stats:
    """24-hour statistics from one-minute buckets: the window is the last 1,440 minutes
    (the current one included), so it slides a minute at a time. The closed minutes are
    summed once per minute, not on every query."""

    __slots__ = ("_closed", "_closed_len", "minutes")

    def __init__(self) -> None:
        self.minutes: deque[list[int]] = deque()  # [minute start, o, h, l, c, volume, n]
        self._closed: tuple[int, int, int, int] | None = None  # high, low, volume, n
        self._closed_len = -1  # how many minutes _closed covers (-1: to be summed)

    def on_trade(self, t: MdTrade) -> None:
        start = t.ts - t.ts % MINUTE_NS
        ms = self.minutes
        if ms and ms[-1][0] == start:
            m = ms[-1]
            m[2] = max(m[2], t.price)
            m[3] = min(m[3], t.price)
            m[4] = t.price
            m[5] += t.qty
            m[6] += 1
        elif not ms or start > ms[-1][0]:
            ms.append([start, t.price, t.price, t.price, t.price, t.qty, 1])
            self._closed_len = -1
        # (a trade older than the newest minute is left out: time went back)

    def restore(self, minutes: list[tuple[int, int, int, int, int, int, int]]) -> None:
        """Start from one-minute buckets (start, o, h, l, c, volume, n), oldest first."""
        self.minutes = deque(list(m) for m in minutes[-DAY_NS // MINUTE_NS :])
        self._closed_len = -1

    def window(self, now: int) -> tuple[int, int, int, int, int, int] | None:
        """(open, high, low, last, volume, trades) over the 24 hours to ``now``, or None."""
        floor = now - now % MINUTE_NS - DAY_NS + MINUTE_NS
        ms = self.minutes
        while ms and ms[0][0] < floor:
            ms.popleft()
            self._closed_len = -1
        if not ms:
            return None
        if self._closed_len != len(ms) - 1:
            closed = list(ms)[:-1]
            self._closed = (
                (
                    max(m[2] for m in closed),
                    min(m[3] for m in closed),
                    sum(m[5] for m in closed),
                    sum(m[6] for m in closed),
                )
                if closed
                else None
            )
            self._closed_len = len(ms) - 1
        cur = ms[-1]
        high, low, volume, n = cur[2], cur[3], cur[5], cur[6]
        if self._closed is not None:
            ch, cl, cv, cn = self._closed
            high, low, volume, n = max(high, ch), min(low, cl), volume + cv, n + cn
        return ms[0][1], high, low, cur[4], volume, n


class Market:
    """Everything kept for one instrument."""

    def __init__(
        self, symbol: str, tick_size: int, lot_size: int, price_scale: int, qty_scale: int
    ) -> None:
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.price_scale = price_scale
        self.qty_scale = qty_scale
        self.book = LevelBook(symbol)
        self.l3 = OrderBook(symbol)
        self.trades: deque[MdTrade] = deque(maxlen=RECENT_TRADES)
        self.bars = {name: BarBuilder(symbol, iv, BAR_HISTORY) for name, iv in INTERVALS.items()}
        self.stats = Stats()
        self.quote = MdQuote(symbol, 0, 0, 0, 0, 0)
        self.auction = MdIndicative(symbol, 0, 0, 0, 0, 0)  # a call auction's indicative
        # ``auction`` as the cache's JSON, made once per value (it changes only in auctions)
        self.auction_cached: tuple[MdIndicative, bytes] | None = None
        self.channels: dict[str, Channel] = {}
        # publications of the channels that do not exist, by name (``MarketData.seq_of``)
        self.seqs: dict[str, int] = {}
        self.external = False  # an outside feed's instrument, not the engine's
        # channel names by kind, and the bars' by interval: made once, not on every event
        self.names = {k: f"{k}:{symbol}" for k in KINDS} | {
            iv: f"bars:{symbol}:{iv}" for iv in INTERVALS
        }

    # -- formatting ----------------------------------------------------------------------

    def price(self, value: int) -> str:
        return format_decimal(value, self.price_scale)

    def qty(self, value: int) -> str:
        return format_decimal(value, self.qty_scale)

    def trade_json(self, t: MdTrade) -> dict[str, Any]:
        return {
            "trade_id": str(t.trade_id),
            "symbol": t.symbol,
            "price": self.price(t.price),
            "qty": self.qty(t.qty),
            "side": SIDE_NAMES.get(t.side),
            "ts": t.ts,
        }

    def quote_json(self) -> dict[str, Any]:
        q = self.quote
        return {
            "bid": self.price(q.bid) if q.bid_qty else None,
            "bid_qty": self.qty(q.bid_qty),
            "ask": self.price(q.ask) if q.ask_qty else None,
            "ask_qty": self.qty(q.ask_qty),
            "last": self.price(self.trades[-1].price) if self.trades else None,
            "ts": q.ts,
        }

    def auction_json(self) -> dict[str, Any]:
        """The indicative uncross (``indicative_price`` null: nothing would execute, or
        no auction is collecting orders)."""
        a = self.auction
        return {
            "indicative_price": self.price(a.price) if a.qty else None,
            "indicative_qty": self.qty(a.qty),
            "surplus": self.qty(a.surplus),
            "surplus_side": SIDE_NAMES.get(a.side),
            "ts": a.ts,
        }

    def order_json(self, order_id: int, side: int, price: int, qty: int) -> dict[str, Any]:
        return {
            "id": str(order_id),
            "side": SIDE_NAMES.get(side),
            "price": self.price(price),
            "qty": self.qty(qty),
        }

    def levels_json(self, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[self.price(p), self.qty(q)] for p, q in levels]

    def bar_json(self, b: Bar) -> dict[str, Any]:
        return {
            "start": b.start,
            "interval": b.interval // 1_000_000_000,
            "open": self.price(b.open),
            "high": self.price(b.high),
            "low": self.price(b.low),
            "close": self.price(b.close),
            "volume": self.qty(b.volume),
            "trades": b.trades,
        }

    def stats_json(self, now: int) -> dict[str, Any]:
        w = self.stats.window(now)
        if w is None:
            return {
                "open": None,
                "high": None,
                "low": None,
                "last": None,
                "volume": "0",
                "trades": 0,
                "change": None,
            }
        o, h, lo, last, volume, n = w
        return {
            "open": self.price(o),
            "high": self.price(h),
            "low": self.price(lo),
            "last": self.price(last),
            "volume": self.qty(volume),
            "trades": n,
            "change": self.price(last - o),
        }
