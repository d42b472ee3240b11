"""Market data: the engine's events and outside feeds turned into per-instrument channels.

``MarketData`` keeps, per instrument, the latest of everything a subscriber or a snapshot
query can ask for — top of book (L1), aggregated depth (L2), the order-level book (L3), the
recent trades, bars at 1s/1m/5m/1h/1d and 24-hour statistics — without reading the engine
(the L3 view of our own instruments excepted: see ``resting``). The same values go to a
last-value cache (``ports.Cache``) for processes that have no ``MarketData`` of their own.

Channels, each sequenced per instrument (``seq`` 1, 2, 3, ... per channel, the same for
every subscriber because the same bytes go to all of them)::

    trades:SYM        every trade, in order                       (ordered)
    quotes:SYM        the top of the book                          (state: latest wins)
    book:SYM          aggregated levels: snapshot, then deltas     (deltas; a lagging
                                                                    subscriber is re-sent
                                                                    a snapshot)
    l3:SYM            orders: snapshot, then changes               (ordered)
    bars:SYM[:IV]     the bars that changed (IV: 1s 1m 5m 1h 1d;   (ordered)
                      default 1m)
    stats:SYM         24-hour statistics                           (state: latest wins)
    auction:SYM       a call auction's indicative uncross: price,  (state: latest wins)
                      volume, surplus and its side, after each
                      change while orders collect; all 0 again
                      when the call phase ends

What happens between two publications (``flush``: at most ``flush_interval`` after the
first change, or at once when it is 0) goes out as one message per channel: the trades of
the interval, the levels that changed (each with its new total), the latest quote. Under
load that is several events per message, so the fan-out's cost per subscriber is paid per
message, not per event ("smart batching"). Each message is encoded once per encoding —
JSON text, and small-ticks binary (``docs/ticks.md``) for the channels that have it — and
the same bytes go to every subscriber (``Message``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec

from mercato.domain.events import (
    AuctionIndicative,
    BookDelta,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Trade,
)
from mercato.marketdata.bars import INTERVALS, Bar
from mercato.marketdata.codec import Encoder
from mercato.marketdata.events import (
    BUY,
    MdClear,
    MdEvent,
    MdIndicative,
    MdLevel,
    MdOrder,
    MdQuote,
    MdTrade,
)
from mercato.marketdata.market import (
    BAR_HISTORY,
    DEFAULT_BARS,
    KINDS,
    RECENT_TRADES,
    SNAPSHOT_BARS,
    SNAPSHOT_TRADES,
    Channel,
    Market,
    Message,
)
from mercato.ports import Cache

_ORDER_EVENTS: Final = frozenset(
    {OrderAccepted, OrderCancelled, OrderExpired, OrderReplaced, OrderTriggered}
)

_json = msgspec.json.Encoder()

Resting = Callable[[str, int], tuple[int, int, int] | None]
"""(symbol, order id) -> (side, price, remaining) if the order rests in our own book."""


class ChannelError(ValueError):
    """A channel name that names no channel: ``status`` and ``code`` as the API says it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class MarketData:
    """The market-data service: feed it events, read snapshots, listen to publications."""

    max_trades = RECENT_TRADES  # the most ``trades`` can return
    max_bars = BAR_HISTORY + 1  # the most ``bars`` can return (the open bar included)

    def __init__(
        self,
        *,
        flush_interval: float = 0.0,
        cache: Cache | None = None,
        resting: Resting | None = None,
        resting_all: Callable[[str], Iterable[tuple[int, int, int, int]]] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.flush_interval = flush_interval
        self.cache = cache
        self.resting = resting
        self.clock = clock
        self.markets: dict[str, Market] = {}
        self.resting_all = resting_all
        self._l3_live: set[str] = set()  # our own instruments whose L3 view is kept
        self._channel_ids = 0
        self._listeners: list[Callable[[list[Message]], None]] = []
        self._tick_listeners: list[Callable[[list[MdTrade], list[Market]], None]] = []
        self._dirty: dict[Channel, None] = {}
        # channels that changed but do not exist (no one asked for them): each is counted
        # in its market's ``seqs`` at the next flush, as if it had published
        self._idle: dict[str, Market] = {}
        self._cache_dirty: set[str] = set()
        self._scheduled: asyncio.TimerHandle | None = None
        self._now = 0  # the newest time known (events, advance): the clock of stats
        self._event_now = 0  # the newest event time, and when (monotonic) it was seen
        self._event_seen = 0.0
        self.monotonic = time.monotonic

    # -- set-up --------------------------------------------------------------------------

    def add_instrument(
        self,
        symbol: str,
        tick_size: int,
        lot_size: int,
        price_scale: int,
        qty_scale: int,
        external: bool = False,
    ) -> Market:
        """Start keeping ``symbol``: one of the engine's, or ``external`` (an outside feed's,
        whose L2 book follows from its L3 orders when it sends them)."""
        m = self.markets.get(symbol)
        if m is None:
            m = self.markets[symbol] = Market(symbol, tick_size, lot_size, price_scale, qty_scale)
            m.external = external
        return m

    def on_publish(self, listener: Callable[[list[Message]], None]) -> None:
        """``listener(messages)`` after each flush (it must neither block nor raise)."""
        self._listeners.append(listener)

    def on_ticks(self, listener: Callable[[list[MdTrade], list[Market]], None]) -> None:
        """``listener(trades, quoted)`` after each batch of events is applied, as it is
        applied (not batched by ``flush_interval``): its trades, and the markets whose
        quote (best bid and ask, with their sizes) changed. For a protocol that formats
        its own messages (the Alpaca stream); it must neither block nor raise."""
        self._tick_listeners.append(listener)

    def channel(self, name: str) -> Channel:
        """The channel called ``name``; ValueError (unknown kind or interval) or KeyError
        (unknown symbol) otherwise."""
        kind, _, rest = name.partition(":")
        if kind not in KINDS or not rest:
            raise ValueError(f"no channel {name[:100]!r}")
        symbol = rest
        if kind == "bars":
            head, _, iv = rest.rpartition(":")
            if head and iv in INTERVALS:
                symbol = head
            elif (iv in INTERVALS and not head) or (head in self.markets and iv[:-1].isdigit()):
                raise ValueError(f"no channel {name[:100]!r}: intervals {', '.join(INTERVALS)}")
            else:
                name = f"bars:{rest}:{DEFAULT_BARS}"
        m = self.markets[symbol]
        ch = m.channels.get(name)
        if ch is None:
            self._channel_ids += 1
            ch = Channel(name, kind, symbol, self._encoder(m, kind), self._channel_ids)
            ch.seq = self.seq_of(m, name)  # its publications before it existed counted
            self._idle.pop(name, None)  # (the unpublished change: in its state at seq)
            m.seqs.pop(name, None)
            if ch.encoder is not None:
                ch.encoder.seq = ch.seq
            m.channels[name] = ch
            if kind == "l3" and not m.external and self.resting is not None:
                self._start_l3(m)
        return ch

    def canonical(self, name: str) -> str:
        """The name of the channel ``name`` means ("bars:X" is "bars:X:1m"), creating it
        if needed; ``ChannelError`` (unknown kind or interval: 400, unknown symbol: 404)."""
        try:
            return self.channel(name).name
        except ValueError:
            raise ChannelError(400, "unknown_channel", f"no channel {name[:100]!r}") from None
        except KeyError:
            symbol = name.partition(":")[2]
            raise ChannelError(404, "unknown_symbol", f"no instrument {symbol[:100]!r}") from None

    def seq_of(self, m: Market, name: str) -> int:
        """The seq of ``m``'s channel ``name`` (canonical) as of the state now, whether
        or not the channel exists: every channel counts its publications from the
        service's start, and one that does not exist counts those it would have made. A
        change not yet flushed is counted, as ``published`` would publish it first."""
        ch = m.channels.get(name)
        if ch is not None:
            return self.published(name).seq
        return m.seqs.get(name, 0) + (name in self._idle)

    def _start_l3(self, m: Market) -> None:
        """Keep the L3 view of one of our own books from now on, starting from the book
        itself (``resting_all``: its resting orders as (id, side, price, remaining))."""
        m.l3.clear()
        for oid, side, price, qty in self.resting_all(m.symbol) if self.resting_all else ():
            m.l3.apply(MdOrder(m.symbol, self._now, oid, side, price, qty))
        self._l3_live.add(m.symbol)

    def _encoder(self, m: Market, kind: str) -> Encoder | None:
        if kind not in ("trades", "book", "l3", "quotes", "bars", "auction"):
            return None
        enc = Encoder(m.symbol, m.tick_size, m.lot_size)
        enc.encode([])  # frame 1, a key frame with no events: from here on deltas...
        enc.seq = 0  # ...numbered from 1 like the channel's own messages
        return enc

    # -- input ---------------------------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        """The platform's listener: one command's events (trades, book changes, orders).
        On the order path: a type switch, no work for what nobody can ask about (the L3
        view of our own book is kept only once someone subscribed to it)."""
        md: list[MdEvent] = []
        touched: dict[tuple[str, int], None] = {}
        live = self._l3_live
        for e in events:
            t = type(e)
            if t is Trade:
                assert isinstance(e, Trade)
                if e.maker_account > 0:  # not a paper fill: market data
                    md.append(MdTrade(e.symbol, e.ts, e.seq, e.price, e.qty, e.taker_side))
                    if e.symbol in live:
                        touched[(e.symbol, e.maker_order_id)] = None
                if e.symbol in live:
                    touched[(e.symbol, e.taker_order_id)] = None
            elif t is BookDelta:
                assert isinstance(e, BookDelta)
                md.append(MdLevel(e.symbol, e.ts, e.side, e.price, e.qty))
            elif t in _ORDER_EVENTS:
                symbol: str = e.symbol  # type: ignore[attr-defined]
                if symbol in live:
                    touched[(symbol, e.order_id)] = None  # type: ignore[attr-defined]
            elif t is AuctionIndicative:
                assert isinstance(e, AuctionIndicative)
                md.append(MdIndicative(e.symbol, e.ts, e.price, e.qty, e.surplus, e.surplus_side))
            elif t is InstrumentAdded:
                assert isinstance(e, InstrumentAdded)
                self.add_instrument(e.symbol, e.tick_size, e.lot_size, e.price_scale, e.qty_scale)
        if touched and self.resting is not None:
            ts = events[-1].ts
            for symbol, oid in touched:
                m = self.markets[symbol]
                now = self.resting(symbol, oid)
                if now is not None:
                    side, price, qty = now
                    md.append(MdOrder(symbol, ts, oid, side, price, qty))
                elif oid in m.l3.orders:
                    side, price, _ = m.l3.orders[oid]
                    md.append(MdOrder(symbol, ts, oid, side, price, 0))
        if md:
            self.publish(md)

    def publish(self, events: Iterable[MdEvent]) -> None:
        """Apply market-data events (from the engine, or a feed: ``mercato feed``)."""
        moved: dict[Market, int] = {}  # books that changed: their quote is looked at after
        quoted: dict[Market, None] = {}  # markets whose quote changed
        trades: list[MdTrade] = []
        markets = self.markets
        events = list(events)
        for e in events:  # all known, or nothing applied
            if e.symbol not in markets:
                raise KeyError(f"no instrument {e.symbol!r} in market data")
        for e in events:
            m = markets[e.symbol]
            if e.ts > self._event_now:
                self._event_now = e.ts
                self._event_seen = -1.0  # stamped below, once per batch
                if e.ts > self._now:
                    self._now = e.ts
            t = type(e)
            if t is MdTrade:
                assert isinstance(e, MdTrade)
                self._trade(m, e)
                trades.append(e)
            elif t is MdLevel:
                assert isinstance(e, MdLevel)
                if m.book.apply(e):
                    self._pending(m, "book", e)
                    moved[m] = e.ts
            elif t is MdOrder:
                assert isinstance(e, MdOrder)
                self._pending(m, "l3", e)
                if m.external or self.resting is None:  # an outside feed: levels from L3
                    for level in m.l3.apply(e):
                        if m.book.apply(level):
                            self._pending(m, "book", level)
                            moved[m] = e.ts
                else:
                    m.l3.apply(e)
            elif t is MdQuote:
                assert isinstance(e, MdQuote)
                m.quote = e
                moved.pop(m, None)
                quoted[m] = None
                self._mark(m, "quotes")
            elif t is MdIndicative:
                assert isinstance(e, MdIndicative)
                m.auction = e
                self._mark(m, "auction")
            elif t is MdClear:
                m.book.clear()
                m.l3.clear()
                self._pending(m, "book", e)
                self._pending(m, "l3", e)
                moved[m] = e.ts
        for m, ts in moved.items():
            q, old = m.book.quote(ts), m.quote
            if (q.bid, q.bid_qty, q.ask, q.ask_qty) != (old.bid, old.bid_qty, old.ask, old.ask_qty):
                m.quote = q
                quoted[m] = None
                self._mark(m, "quotes")
        if self._event_seen < 0:
            self._event_seen = self.monotonic()
        if self._tick_listeners and (trades or quoted):
            changed = list(quoted)
            for listener in self._tick_listeners:
                listener(trades, changed)
        self._schedule()

    @property
    def now(self) -> int:
        """The market data's clock (ns): the newest event time, or later once ``tick`` or
        ``advance`` moved it on. Event times are the sources' own (the engine's command
        times; a replay's recorded times), so this is not the wall clock."""
        return self._now

    def tick(self) -> None:
        """Called on a timer: move the clock on by the time passed since the newest event
        was seen, so that bars close when nothing trades, whatever clock the events use."""
        if self._event_now and self._event_seen >= 0:  # (< 0: a batch that failed midway)
            self.advance(self._event_now + int((self.monotonic() - self._event_seen) * 1e9))

    def _trade(self, m: Market, t: MdTrade) -> None:
        if not m.trades or m.trades[-1].price != t.price:
            self._mark(m, "quotes")  # the quote's "last" moves, even if its book does not
        m.trades.append(t)
        m.stats.on_trade(t)
        self._pending(m, "trades", t)
        self._mark(m, "stats")
        for name, builder in m.bars.items():
            closed = builder.on_trade(t)
            ch = m.channels.get(m.names[name])
            if ch is not None:
                ch.pending.extend(closed)
                ch.pending.append(None)  # "the open bar as it stands"
                self._dirty[ch] = None
            else:
                self._idle[m.names[name]] = m
        self._cache_dirty.add(m.symbol)

    def advance(self, now: int) -> None:
        """The clock reads ``now`` (ns): close the bars whose interval has ended."""
        if now > self._now:
            self._now = now
        for m in self.markets.values():
            for name, builder in m.bars.items():
                closed = builder.advance(now)
                if closed:
                    ch = m.channels.get(m.names[name])
                    if ch is not None:
                        ch.pending.extend(closed)
                        self._dirty[ch] = None
                    else:
                        self._idle[m.names[name]] = m
        self._schedule()

    def _pending(self, m: Market, kind: str, e: Any) -> None:
        name = m.names[kind]
        ch = m.channels.get(name)
        if ch is not None:
            ch.pending.append(e)
            self._dirty[ch] = None
        else:
            self._idle[name] = m
        self._cache_dirty.add(m.symbol)

    def _mark(self, m: Market, kind: str) -> None:
        name = m.names[kind]
        ch = m.channels.get(name)
        if ch is not None:
            self._dirty[ch] = None
        else:
            self._idle[name] = m
        self._cache_dirty.add(m.symbol)

    def _schedule(self) -> None:
        if not self._dirty and not self._cache_dirty and not self._idle:
            return
        if self.flush_interval <= 0:
            self.flush()
        elif self._scheduled is None:
            loop = asyncio.get_running_loop()
            self._scheduled = loop.call_later(self.flush_interval, self.flush)

    # -- output --------------------------------------------------------------------------

    def flush(self) -> list[Message]:
        """Publish what changed since the last flush: one message per channel."""
        self._scheduled = None
        dirty, self._dirty = self._dirty, {}
        if self._idle:
            idle, self._idle = self._idle, {}
            for name, m in idle.items():
                m.seqs[name] = m.seqs.get(name, 0) + 1
        out: list[Message] = []
        for ch in dirty:
            msg = self._message(self.markets[ch.symbol], ch)
            ch.pending = []
            if msg is not None:
                out.append(msg)
        if out:
            for listener in self._listeners:
                listener(out)
        if self.cache is not None and self._cache_dirty:
            self.cache.put_many(
                {k: v for s in self._cache_dirty for k, v in self.cache_values(s).items()}
            )
        self._cache_dirty.clear()
        return out

    def _message(self, m: Market, ch: Channel) -> Message | None:
        kind, events = ch.kind, ch.pending
        head: dict[str, Any] = {"channel": ch.name, "seq": ch.seq + 1, "type": "update"}
        binary_events: list[Any] = []
        if kind == "trades":
            if not events:
                return None
            head["trades"] = [m.trade_json(t) for t in events]
            binary_events = events
        elif kind == "book":
            bids: dict[int, int] = {}
            asks: dict[int, int] = {}
            for e in events:
                if isinstance(e, MdClear):
                    bids.clear()
                    asks.clear()
                    head["clear"] = True
                else:
                    (bids if e.side == BUY else asks)[e.price] = e.qty
            head["bids"] = m.levels_json(bids.items())
            head["asks"] = m.levels_json(asks.items())
            binary_events = events
        elif kind == "l3":
            head["orders"] = [
                m.order_json(e.order_id, e.side, e.price, e.qty)
                if isinstance(e, MdOrder)
                else {"clear": True}
                for e in events
            ]
            binary_events = events
        elif kind == "quotes":
            head["quote"] = m.quote_json()
            binary_events = [m.quote]
        elif kind == "bars":
            builder = m.bars[ch.name.rpartition(":")[2]]
            bars = [b if b is not None else builder.current() for b in events]
            shown = [b for b in bars if b is not None]
            if not shown:
                return None
            head["bars"] = [m.bar_json(b) for b in shown]
            binary_events = shown
        elif kind == "stats":
            head["stats"] = m.stats_json(self._now)
        elif kind == "auction":
            head["auction"] = m.auction_json()
            binary_events = [m.auction]
        ch.seq += 1
        binary, key = self._encode(ch, binary_events)
        msg = Message(ch, ch.seq, _json.encode(head).decode(), binary, key)
        ch.last = msg
        return msg

    def _encode(
        self, ch: Channel, events: list[Any]
    ) -> tuple[bytes | None, Callable[[], bytes] | None]:
        enc = ch.encoder
        if enc is None:
            return None, None
        before = enc.copy()  # the state the key frame of this publication starts from
        return enc.encode(events), lambda: before.encode(events, key=True)

    # -- snapshots -----------------------------------------------------------------------

    def snapshot(self, name: str) -> dict[str, Any]:
        """A channel's current state as JSON data, with the seq it is current as of: the
        next update is ``seq + 1``."""
        ch = self.channel(name)
        m = self.markets[ch.symbol]
        out: dict[str, Any] = {"channel": ch.name, "seq": ch.seq, "type": "snapshot"}
        kind = ch.kind
        if kind == "trades":
            out["trades"] = [m.trade_json(t) for t in list(m.trades)[-SNAPSHOT_TRADES:]]
        elif kind == "book":
            bids, asks = m.book.depth(0)
            out["bids"] = m.levels_json(bids)
            out["asks"] = m.levels_json(asks)
        elif kind == "l3":
            out["orders"] = [
                m.order_json(oid, side, price, qty)
                for oid, (side, price, qty) in m.l3.orders.items()
            ]
        elif kind == "quotes":
            out["quote"] = m.quote_json()
        elif kind == "bars":
            builder = m.bars[ch.name.rpartition(":")[2]]
            bars = list(builder.history)[-SNAPSHOT_BARS:]
            current = builder.current()
            out["bars"] = [m.bar_json(b) for b in ([*bars, current] if current else bars)]
        elif kind == "stats":
            out["stats"] = m.stats_json(self._now)
        elif kind == "auction":
            out["auction"] = m.auction_json()
        return out

    def published(self, name: str) -> Channel:
        """The channel, with what is pending on it published first: a snapshot at seq S
        must hold exactly what messages 1..S carried (a trade in it must not come again
        in message S+1). Every snapshot that carries a seq reads the state after it
        (the WebSocket ones, and the REST quote and depth)."""
        ch = self.channel(name)
        if ch in self._dirty:
            self.flush()
        return ch

    def snapshot_json(self, name: str) -> str:
        """``snapshot(name)`` encoded, shared by every subscriber joining at this seq."""
        ch = self.published(name)
        cached = _cached(ch, "json", lambda: _json.encode(self.snapshot(name)).decode())
        assert isinstance(cached, str)
        return cached

    def snapshot_binary(self, name: str) -> list[bytes]:
        """The binary snapshot: the state as a key frame of its own (decode it with a fresh
        decoder; nothing for trades and stats), then the key frame with no events that
        syncs the channel's stream decoder to its seq. ``[]`` for a channel without a
        binary form."""
        ch = self.published(name)
        enc = ch.encoder
        if enc is None:
            return []
        state = _cached(ch, "binary", lambda: self._state_frame(ch))
        assert isinstance(state, bytes)
        return [state, enc.snapshot()] if state else [enc.snapshot()]

    def _state_frame(self, ch: Channel) -> bytes:
        """A channel's state as one key frame of its own (b"": it has none)."""
        m, now = self.markets[ch.symbol], self._now
        events: list[Any] = []
        if ch.kind == "book":
            events = [MdClear(m.symbol, now), *m.book.levels(now)]
        elif ch.kind == "l3":
            events = [MdClear(m.symbol, now)] + [
                MdOrder(m.symbol, now, oid, side, price, qty)
                for oid, (side, price, qty) in m.l3.orders.items()
            ]
        elif ch.kind == "quotes":
            events = [m.quote]
        elif ch.kind == "auction":
            events = [m.auction]
        elif ch.kind == "bars":
            current = m.bars[ch.name.rpartition(":")[2]].current()
            events = [current] if current is not None else []
        if not events:
            return b""
        alone = Encoder(m.symbol, m.tick_size, m.lot_size, seq=ch.seq - 1)
        return alone.encode(events, key=True)

    # -- queries (the REST snapshots) ----------------------------------------------------

    def market(self, symbol: str) -> Market:
        return self.markets[symbol]

    def cache_values(self, symbol: str) -> dict[str, bytes]:
        """What the last-value cache holds for ``symbol``: its snapshots, by key."""
        m = self.markets[symbol]
        bids, asks = m.book.depth(10)
        bar = m.bars[DEFAULT_BARS].current()
        values: dict[str, Any] = {
            "quote": m.quote_json(),
            "depth": {"bids": m.levels_json(bids), "asks": m.levels_json(asks)},
            "stats": m.stats_json(self._now),
            "trade": m.trade_json(m.trades[-1]) if m.trades else None,
            "bar": m.bar_json(bar) if bar is not None else None,
        }
        out = {f"md:{symbol}:{k}": _json.encode(v) for k, v in values.items()}
        cached = m.auction_cached
        if cached is None or cached[0] is not m.auction:  # (quiet outside auctions)
            cached = m.auction_cached = (m.auction, _json.encode(m.auction_json()))
        out[f"md:{symbol}:auction"] = cached[1]
        return out

    def trades(self, symbol: str, limit: int) -> list[MdTrade]:
        """The newest ``limit`` trades, newest first."""
        tape = self.markets[symbol].trades
        return [tape[-i] for i in range(1, min(limit, len(tape)) + 1)]

    def bars(self, symbol: str, limit: int, interval: str = DEFAULT_BARS) -> list[Bar]:
        """The newest ``limit`` bars (the open one last), oldest first."""
        builder = self.markets[symbol].bars[interval]
        current = builder.current()
        bars = [*builder.history, current] if current is not None else list(builder.history)
        return bars[-limit:] if limit > 0 else []

    def restore(self, symbol: str, tape: list[MdTrade], bars: dict[str, list[Bar]]) -> None:
        """Start ``symbol`` from its history (after a restart, read back from the store):
        the recent trades and each interval's bars, oldest first, the newest bar open.
        Nothing is published (no one subscribed yet)."""
        m = self.markets[symbol]
        m.trades.extend(tape)
        for name, history in bars.items():
            m.bars[name].restore(history)
        minutes = bars.get("1m", [])
        m.stats.restore(
            [(b.start, b.open, b.high, b.low, b.close, b.volume, b.trades) for b in minutes]
        )
        if tape and tape[-1].ts > self._now:
            self._now = tape[-1].ts

    def seed(self, books: Iterable[Any]) -> None:
        """Start from the engine's books (after a restart): their instruments and levels.
        (The L3 view starts from the book itself when someone first asks for it.)"""
        for b in books:
            m = self.add_instrument(b.symbol, b.tick_size, b.lot_size, b.price_scale, b.qty_scale)
            for side, levels in ((1, b.bids.depth(0)), (2, b.asks.depth(0))):
                for price, qty in levels:
                    m.book.apply(MdLevel(b.symbol, 0, side, price, qty))
            m.quote = m.book.quote(0)
            price, qty, surplus, side = b.indicative  # (0s: no auction collecting)
            m.auction = MdIndicative(b.symbol, 0, price, qty, surplus, side)


def _cached(ch: Channel, encoding: str, make: Callable[[], str | bytes]) -> str | bytes:
    """The channel's snapshot in ``encoding`` as of its current seq, made once for all the
    subscribers joining at that seq (older ones are dropped)."""
    key = (ch.seq, encoding)
    value = ch.snapshots.get(key)
    if value is None:
        if any(k[0] != ch.seq for k in ch.snapshots):
            ch.snapshots.clear()
        value = ch.snapshots[key] = make()
    return value
