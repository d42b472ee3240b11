"""Binance spot WebSocket recordings: parse and replay as market data.

A recording has one message a line: the local receive time in ns, a space, then the JSON
of a combined stream, ``{"stream": "btcusdt@trade", "data": {...}}``, or a REST depth
snapshot ``{"lastUpdateId": ..., "bids": [[p, q], ...], "asks": [...]}`` (no stream). Streams:

- ``@trade``: ``t`` id, ``p`` price, ``q`` qty, ``T`` trade time (ms), ``m`` the buyer is the
  maker, so the taker sold -> ``MdTrade`` stamped ``T``.
- ``@bookTicker``: ``b``/``B`` best bid and size, ``a``/``A`` best ask -> ``MdQuote``. It has
  no exchange time: it is stamped with its receive time moved onto the exchange clock by the
  offset (exchange time - receive time) of the latest trade or depth message before it.
- ``@depth@100ms``: diffs ``b``/``a`` of [price, qty] (qty 0: the level is gone) covering
  update ids ``U``..``u``, event time ``E`` (ms) -> ``MdLevel`` per entry.

Depth follows Binance's book-sync rule: diffs are held until a snapshot arrives, which
yields ``MdClear`` and its levels; then the held diffs with ``u`` > ``lastUpdateId`` apply,
and every later diff must start at most one past the last ``u``. A gap yields ``MdClear``
and the depth waits for the next snapshot (counted in ``gaps``).

Prices and quantities are parsed exactly at the instrument's scales (8 decimals, as the
feed prints them). Prices are checked against the tick; quantities are *not* checked against
the lot: a level can hold orders placed under an older, finer lot size (the BTCUSDT
recording has three depth quantities off the 0.00001 lot).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

import msgspec

from mercato.domain.instrument import DecimalError, Instrument, parse_decimal
from mercato.feeds import FeedError
from mercato.marketdata.events import BUY, SELL, AnyMdEvent, MdClear, MdLevel, MdQuote, MdTrade

__all__ = ["BTCUSDT", "BinanceReplay"]

BTCUSDT = Instrument(
    symbol="BTCUSDT", tick_size=1_000_000, lot_size=1_000, price_scale=8, qty_scale=8
)
MS = 1_000_000
MAX_HELD = 10_000  # depth diffs held while waiting for a snapshot (the oldest go first)

_Pairs = list[tuple[str, str]]


class _Line(msgspec.Struct):
    stream: str = ""
    data: msgspec.Raw = msgspec.Raw(b"null")
    lastUpdateId: int = -1
    bids: _Pairs = []
    asks: _Pairs = []


class _Trade(msgspec.Struct):
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool
    E: int


class _Ticker(msgspec.Struct):
    s: str
    b: str
    B: str
    a: str
    A: str


class _Depth(msgspec.Struct):
    s: str
    E: int
    U: int
    u: int
    b: _Pairs
    a: _Pairs


_line = msgspec.json.Decoder(_Line)
_trade = msgspec.json.Decoder(_Trade)
_ticker = msgspec.json.Decoder(_Ticker)
_depth = msgspec.json.Decoder(_Depth)


class BinanceReplay:
    """One instrument's recording as market data. Counters for a summary: ``lines``,
    ``gaps`` (depth sequence breaks), ``dropped`` (diffs older than the snapshot or held
    past ``MAX_HELD``)."""

    def __init__(self, instrument: Instrument = BTCUSDT) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self._prefix = instrument.symbol.lower() + "@"
        self._qty_scale = instrument.qty_scale
        self._offset = 0  # exchange time - receive time, ns, from the latest timed message
        self._last_u: int | None = None  # the depth's last update id; None: not in sync
        self._held: deque[_Depth] = deque(maxlen=MAX_HELD)
        self.lines = 0
        self.gaps = 0
        self.dropped = 0

    def iter_events(self, lines: Iterable[bytes]) -> Iterator[AnyMdEvent]:
        """The events of every line, in order. A bad line raises FeedError with its number."""
        for n, raw in enumerate(lines, 1):
            if raw.strip():
                yield from self.line_events(raw, n)

    def line_events(self, raw: bytes, n: int) -> list[AnyMdEvent]:
        head, _, body = raw.partition(b" ")
        try:
            recv = int(head)
        except ValueError:
            raise FeedError("expected the receive time in ns, a space, then JSON", n) from None
        self.lines += 1
        try:
            line = _line.decode(body)
            if not line.stream:
                if line.lastUpdateId < 0:
                    raise FeedError("neither a stream message nor a depth snapshot", n)
                return self._snapshot(line, recv + self._offset)
            if not line.stream.startswith(self._prefix):
                raise FeedError(f"stream {line.stream!r} is not {self.symbol}'s", n)
            kind = line.stream[len(self._prefix) :]
            if kind == "trade":
                t = _trade.decode(line.data)
                self._offset = t.E * MS - recv
                return [self._trade_event(t)]
            if kind == "bookTicker":
                q = _ticker.decode(line.data)
                return [self._quote(q, recv + self._offset)]
            if kind.startswith("depth"):
                d = _depth.decode(line.data)
                self._offset = d.E * MS - recv
                return self._diff(d)
        except msgspec.DecodeError as e:  # ValidationError is one
            raise FeedError(f"bad JSON: {e}", n) from None
        except DecimalError as e:
            raise FeedError(str(e), n) from None
        raise FeedError(f"unknown stream {line.stream!r}", n)

    def _trade_event(self, t: _Trade) -> MdTrade:
        price, qty = self.instrument.price(t.p), self._qty(t.q)
        return MdTrade(self.symbol, t.T * MS, t.t, price, qty, SELL if t.m else BUY)

    def _quote(self, q: _Ticker, ts: int) -> MdQuote:
        price, qty = self.instrument.price, self._qty
        return MdQuote(self.symbol, ts, price(q.b), qty(q.B), price(q.a), qty(q.A))

    def _qty(self, text: str) -> int:
        return parse_decimal(text, self._qty_scale)

    def _levels(self, ts: int, bids: _Pairs, asks: _Pairs) -> list[AnyMdEvent]:
        price, qty, symbol = self.instrument.price, self._qty, self.symbol
        out: list[AnyMdEvent] = [MdLevel(symbol, ts, BUY, price(p), qty(q)) for p, q in bids]
        out += [MdLevel(symbol, ts, SELL, price(p), qty(q)) for p, q in asks]
        return out

    def _snapshot(self, line: _Line, ts: int) -> list[AnyMdEvent]:
        out: list[AnyMdEvent] = [MdClear(self.symbol, ts)]
        out += self._levels(ts, line.bids, line.asks)
        self._last_u = line.lastUpdateId
        held = list(self._held)
        self._held.clear()
        for d in held:
            out += self._diff(d)
        return out

    def _diff(self, d: _Depth) -> list[AnyMdEvent]:
        last = self._last_u
        if last is None:
            if len(self._held) == self._held.maxlen:
                self.dropped += 1
            self._held.append(d)
            return []
        if d.u <= last:
            self.dropped += 1
            return []
        first = d.U
        if first > last + 1:  # missed updates: the book is unknown until the next snapshot
            self.gaps += 1
            self._last_u = None
            self._held.append(d)
            return [MdClear(self.symbol, d.E * MS)]
        self._last_u = d.u
        return self._levels(d.E * MS, d.b, d.a)
