"""Small ticks: a compact binary encoding of one stream's market-data events.

One ``Encoder`` and one ``Decoder`` per stream (one channel of one instrument): frames carry
several events, each a tag byte and zigzag varints of deltas against the stream's previous
event (prices in ticks, quantities in lots, times in the frame's unit). A key frame carries
absolute base values, so a subscriber can start at any key frame. The wire format, with a
worked example, is specified in ``docs/ticks.md``; this module is its reference.

Pure: no I/O, no clock. Lossless for every event whose integer fields are signed 64-bit.
"""

from __future__ import annotations

from collections.abc import Sequence

from mercato.marketdata.bars import Bar
from mercato.marketdata.events import MdClear, MdIndicative, MdLevel, MdOrder, MdQuote, MdTrade

TickEvent = MdTrade | MdLevel | MdQuote | MdOrder | MdClear | Bar | MdIndicative
"""What a frame carries: the market-data events and bars (a bar's time is its ``start``)."""

MAGIC = 0xB0
"""Byte 0 of every frame is ``0b10110uuk``: this magic and version 1, the time unit ``uu``,
the key-frame bit ``k``."""
_MAGIC_MASK = 0xF8
KEY_BIT = 0x01
UNITS_NS = (1, 1_000, 1_000_000, 1_000_000_000)
"""The time unit of a frame by its code: ns, µs, ms, s."""
MAX_VARINT_BYTES = 10

# The tag byte of an event (docs/ticks.md, "Events").
_TRADE = 0x01
_RAW = 0x08
_SAME_TS = 0x10
_NEXT_ID = 0x20  # trades only: trade_id is the previous one + 1
_SAME_PRICE = 0x40  # trades only: the price is the previous price
_SIDE_ESCAPE = 3
LEVEL, QUOTE, ORDER, CLEAR, BAR, INDICATIVE = 0, 1, 2, 3, 4, 5
"""Kind codes of the events other than trades (tag bits 5-7)."""
_KIND_SHIFT = 5
_MAX_ZIGZAG = 1 << (7 * MAX_VARINT_BYTES)
_INT64 = 1 << 63


class CodecError(ValueError):
    """A frame that is not valid small ticks (truncated, malformed, from another version)."""


class GapError(CodecError):
    """A frame that does not follow the last one decoded (or no key frame seen yet): frames
    were lost, and decoding can resume only at a key frame."""

    def __init__(self, message: str, expected: int | None, got: int) -> None:
        super().__init__(message)
        self.expected = expected
        self.got = got


def _check_sizes(tick_size: int, lot_size: int) -> None:
    if tick_size < 1 or lot_size < 1:
        raise ValueError(f"tick_size and lot_size must be >= 1: {tick_size}, {lot_size}")


def _put(out: bytearray, v: int) -> None:
    """Append ``v`` as a zigzag varint."""
    z = v << 1 if v >= 0 else (~v << 1) | 1
    if z < 0x80:
        out.append(z)
        return
    if z >= _MAX_ZIGZAG:
        raise ValueError(f"value out of range (signed 64-bit fields only): {v}")
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _put_unsigned(out: bytearray, z: int) -> None:
    if z < 0 or z >= _MAX_ZIGZAG:
        raise ValueError(f"unsigned value out of range: {z}")
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


def _side_bits(side: int) -> int:
    return side << 1 if 0 <= side <= 2 else _SIDE_ESCAPE << 1


class Encoder:
    """Encodes one stream's events into frames, keeping the state the deltas run against.

    The first frame is a key frame; so is every ``key_interval``-th frame after it (0: only
    on request, ``encode(..., key=True)``). ``snapshot()`` makes a key frame with no events
    for a subscriber that joins or resyncs mid-stream.
    """

    def __init__(
        self, symbol: str, tick_size: int, lot_size: int, *, seq: int = 0, key_interval: int = 0
    ) -> None:
        _check_sizes(tick_size, lot_size)
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.key_interval = key_interval
        self.seq = seq  # of the last frame made; the next one is seq + 1
        self._since_key = -1  # frames since the last key frame; -1: none made yet
        self._ts = self._price = self._trade_id = self._order_id = self._interval = 0

    def copy(self) -> Encoder:
        """An independent encoder in this one's state: what a key frame made later must start
        from (``copy.copy`` does not work on the compiled build)."""
        other = Encoder(
            self.symbol, self.tick_size, self.lot_size, seq=self.seq, key_interval=self.key_interval
        )
        other._since_key = self._since_key
        other._ts, other._price, other._trade_id = self._ts, self._price, self._trade_id
        other._order_id, other._interval = self._order_id, self._interval
        return other

    def snapshot(self) -> bytes:
        """A key frame with no events and the seq of the last frame: the state a subscriber
        needs to decode the next frame. It does not advance the stream's seq."""
        out = bytearray((MAGIC | KEY_BIT,))
        _put_unsigned(out, self.seq)
        self._put_bases(out)
        out.append(0)
        return bytes(out)

    def _put_bases(self, out: bytearray) -> None:
        for v in (self._ts, self._price, self._trade_id, self._order_id, self._interval):
            _put(out, v)

    def encode(self, events: Sequence[TickEvent], *, key: bool = False) -> bytes:
        """The next frame, carrying ``events`` in order. Raises ``ValueError`` (and changes
        nothing) for an event of another symbol or a field out of the signed 64-bit range."""
        key = key or self._since_key < 0 or 0 < self.key_interval <= self._since_key
        seq = self.seq + 1
        # The coarsest unit that divides every time delta of the frame.
        code, ts = 3, self._ts
        for e in events:
            t = e.start if isinstance(e, Bar) else e.ts
            d = t - ts
            ts = t
            while code and d % UNITS_NS[code]:
                code -= 1
        out = bytearray((MAGIC | code << 1 | (KEY_BIT if key else 0),))
        _put_unsigned(out, seq)
        if key:
            self._put_bases(out)
        _put_unsigned(out, len(events))
        state = self._encode_events(out, events, UNITS_NS[code])
        self._ts, self._price, self._trade_id, self._order_id, self._interval = state
        self.seq = seq
        self._since_key = 1 if key else self._since_key + 1
        return bytes(out)

    def _encode_events(
        self, out: bytearray, events: Sequence[TickEvent], unit: int
    ) -> tuple[int, int, int, int, int]:
        symbol, tick, lot, put = self.symbol, self.tick_size, self.lot_size, _put
        ts, price, trade_id, order_id, interval = (
            self._ts,
            self._price,
            self._trade_id,
            self._order_id,
            self._interval,
        )
        for e in events:
            if e.symbol != symbol:
                raise ValueError(f"event of {e.symbol!r} on the stream of {symbol!r}")
            t = e.start if isinstance(e, Bar) else e.ts
            if not -_INT64 <= t < _INT64:
                raise ValueError(f"time out of range: {e!r}")
            dt = t - ts
            ts = t
            flags = 0 if dt else _SAME_TS
            if type(e) is MdTrade:
                if not (
                    -_INT64 <= e.price < _INT64
                    and -_INT64 <= e.qty < _INT64
                    and -_INT64 <= e.trade_id < _INT64
                    and -_INT64 <= e.side < _INT64
                ):
                    raise ValueError(f"field out of the signed 64-bit range: {e!r}")
                dp, q = e.price - price, e.qty
                price = e.price
                did = e.trade_id - trade_id
                trade_id = e.trade_id
                if dp % tick or q % lot:
                    flags |= _RAW
                else:
                    dp //= tick
                    q //= lot
                if did == 1:
                    flags |= _NEXT_ID
                if not dp:
                    flags |= _SAME_PRICE
                side = e.side
                out.append(_TRADE | _side_bits(side) | flags)
                if not 0 <= side <= 2:
                    put(out, side)
                if dt:
                    put(out, dt // unit)
                if did != 1:
                    put(out, did)
                if dp:
                    put(out, dp)
                put(out, q)
                continue
            # The other kinds: their prices (chained through the price register) and their
            # quantities, in ticks and lots unless one of them is not a multiple.
            side = 0
            ids: tuple[int, ...] = ()
            counts: tuple[int, ...] = ()
            prices: tuple[int, ...]
            qtys: tuple[int, ...]
            if type(e) is MdLevel:
                kind, side, prices, qtys = LEVEL, e.side, (e.price,), (e.qty,)
            elif type(e) is MdQuote:
                kind, prices, qtys = QUOTE, (e.bid, e.ask), (e.bid_qty, e.ask_qty)
            elif type(e) is MdOrder:
                kind, side, prices, qtys = ORDER, e.side, (e.price,), (e.qty,)
                ids = (e.order_id - order_id,)
                order_id = e.order_id
            elif type(e) is MdClear:
                kind, prices, qtys = CLEAR, (), ()
            elif type(e) is Bar:
                kind, prices, qtys = BAR, (e.open, e.high, e.low, e.close), (e.volume,)
                ids, counts = (e.interval - interval,), (e.trades,)
                interval = e.interval
            elif type(e) is MdIndicative:
                kind, side, prices, qtys = INDICATIVE, e.side, (e.price,), (e.qty, e.surplus)
            else:
                raise ValueError(f"not a market-data event: {e!r}")
            ints = (*prices, *qtys, *counts, side, order_id, interval)
            if not all(-_INT64 <= v < _INT64 for v in ints):
                raise ValueError(f"field out of the signed 64-bit range: {e!r}")
            deltas = []
            for p in prices:
                deltas.append(p - price)
                price = p
            if any(d % tick for d in deltas) or any(q % lot for q in qtys):
                flags |= _RAW
                values = deltas + list(qtys)
            else:
                values = [d // tick for d in deltas] + [q // lot for q in qtys]
            out.append(kind << _KIND_SHIFT | _side_bits(side) | flags)
            if not 0 <= side <= 2:
                put(out, side)
            if dt:
                put(out, dt // unit)
            for v in (*ids, *values, *counts):
                put(out, v)
        return ts, price, trade_id, order_id, interval


class _Reader:
    """A cursor over one frame; every read past the end raises ``CodecError``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.end = len(data)

    def byte(self) -> int:
        if self.pos >= self.end:
            raise CodecError(f"truncated frame: {self.end} bytes")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def unsigned(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        if pos >= end:
            raise CodecError(f"truncated frame: {end} bytes")
        b = data[pos]
        pos += 1
        if b < 0x80:
            self.pos = pos
            return b
        z, shift = b & 0x7F, 7
        while True:
            if pos >= end:
                raise CodecError(f"truncated frame: {end} bytes, in a varint")
            b = data[pos]
            pos += 1
            z |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift >= 7 * MAX_VARINT_BYTES:
                raise CodecError(f"varint longer than {MAX_VARINT_BYTES} bytes at {self.pos}")
        if b == 0:
            raise CodecError(f"overlong varint at {self.pos}")
        self.pos = pos
        return z

    def signed(self) -> int:
        z = self.unsigned()
        return (z >> 1) ^ -(z & 1)


def channel_prefix(channel_id: int) -> bytes:
    """The varint that starts each of a channel's frames on a binary WebSocket connection
    (``docs/ticks.md``, "On the WebSocket")."""
    out = bytearray()
    _put_unsigned(out, channel_id)
    return bytes(out)


def split_channel(message: bytes | bytearray | memoryview) -> tuple[int, bytes]:
    """A binary WebSocket message: (its channel id, the small-ticks frame after it)."""
    r = _Reader(bytes(message))
    channel_id = r.unsigned()
    return channel_id, r.data[r.pos :]


class Decoder:
    """Decodes one stream's frames, in order, into events of ``symbol``.

    It starts unsynced: until a key frame arrives, every frame raises ``GapError``. A key
    frame is always accepted (``skipped`` counts the frames it jumped over); a delta frame
    must have the seq after the last frame's, otherwise ``GapError``, and the decoder waits
    for the next key frame. A malformed frame raises ``CodecError`` and changes nothing.
    """

    def __init__(self, symbol: str, tick_size: int, lot_size: int) -> None:
        _check_sizes(tick_size, lot_size)
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.seq: int | None = None  # of the last frame decoded; None: not synced
        self.skipped = 0
        self._ts = self._price = self._trade_id = self._order_id = self._interval = 0

    @property
    def synced(self) -> bool:
        return self.seq is not None

    def reset(self) -> None:
        """Forget the stream's state: decode again from the next key frame."""
        self.seq = None

    def decode(self, frame: bytes | bytearray | memoryview) -> list[TickEvent]:
        """The events of the next frame."""
        r = _Reader(bytes(frame))
        head = r.byte()
        if head & _MAGIC_MASK != MAGIC:
            raise CodecError(f"not a small-ticks v1 frame: first byte 0x{head:02x}")
        seq = r.unsigned()
        if head & KEY_BIT:
            state = (r.signed(), r.signed(), r.signed(), r.signed(), r.signed())
        elif self.seq is None:
            raise GapError(f"frame {seq} before any key frame", None, seq)
        elif seq != self.seq + 1:
            expected, self.seq = self.seq + 1, None
            raise GapError(f"frame {seq} where {expected} was due", expected, seq)
        else:
            state = (self._ts, self._price, self._trade_id, self._order_id, self._interval)
        count = r.unsigned()
        if count > r.end - r.pos:
            raise CodecError(f"{count} events announced in {r.end - r.pos} bytes")
        events, state = self._decode_events(r, count, UNITS_NS[(head >> 1) & 3], state)
        if r.pos != r.end:
            raise CodecError(f"{r.end - r.pos} bytes after the last event")
        if self.seq is not None and seq > self.seq + 1:
            self.skipped += seq - self.seq - 1
        self._ts, self._price, self._trade_id, self._order_id, self._interval = state
        self.seq = seq
        return events

    def _decode_events(
        self, r: _Reader, count: int, unit: int, state: tuple[int, int, int, int, int]
    ) -> tuple[list[TickEvent], tuple[int, int, int, int, int]]:
        symbol, signed = self.symbol, r.signed
        ts, price, trade_id, order_id, interval = state
        events: list[TickEvent] = []
        for _ in range(count):
            tag = r.byte()
            if tag & 0x81 == 0x81:
                raise CodecError(f"reserved bit set in trade tag 0x{tag:02x}")
            side = (tag >> 1) & 3
            if side == _SIDE_ESCAPE:
                side = signed()
            if not tag & _SAME_TS:
                ts += signed() * unit
            tick, lot = (1, 1) if tag & _RAW else (self.tick_size, self.lot_size)
            if tag & _TRADE:
                trade_id += 1 if tag & _NEXT_ID else signed()
                if not tag & _SAME_PRICE:
                    price += signed() * tick
                events.append(MdTrade(symbol, ts, trade_id, price, signed() * lot, side))
                continue
            kind = tag >> _KIND_SHIFT
            if kind == LEVEL or kind == ORDER:
                if kind == ORDER:
                    order_id += signed()
                price += signed() * tick
                qty = signed() * lot
                if kind == LEVEL:
                    events.append(MdLevel(symbol, ts, side, price, qty))
                else:
                    events.append(MdOrder(symbol, ts, order_id, side, price, qty))
                continue
            if kind == INDICATIVE:  # (a side: the surplus's)
                price += signed() * tick
                qty = signed() * lot
                events.append(MdIndicative(symbol, ts, price, qty, signed() * lot, side))
                continue
            if tag & 0x06 or (kind == CLEAR and tag & _RAW):
                raise CodecError(f"flags not allowed in tag 0x{tag:02x}")
            if kind == QUOTE:
                bid = price = price + signed() * tick
                price += signed() * tick
                bid_qty = signed() * lot
                events.append(MdQuote(symbol, ts, bid, bid_qty, price, signed() * lot))
            elif kind == CLEAR:
                events.append(MdClear(symbol, ts))
            elif kind == BAR:
                interval += signed()
                o = price = price + signed() * tick
                h = price = price + signed() * tick
                lo = price = price + signed() * tick
                c = price = price + signed() * tick
                volume = signed() * lot
                events.append(Bar(symbol, ts, interval, o, h, lo, c, volume, signed()))
            else:
                raise CodecError(f"unknown event kind {kind} in tag 0x{tag:02x}")
        return events, (ts, price, trade_id, order_id, interval)
