"""Snapshots of the whole engine state, and the state hash.

A snapshot is canonical: the same state always encodes to the same bytes, so the hash of
the encoding is the state hash. Restoring a snapshot rebuilds every book level in its
time priority, the waiting stops in acceptance order, and the engine's order index in
its own order (end-of-day expiry walks it).
"""

from __future__ import annotations

import hashlib

import msgspec

from mercato.domain.orders import Order
from mercato.engine.book import Book, BookSide
from mercato.engine.engine import PRE_OPEN, Engine

SNAPSHOT_VERSION = 2


class OrderState(msgspec.Struct, array_like=True, gc=False):
    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    stop_price: int
    qty: int
    filled: int
    remaining: int
    status: int
    post_only: bool
    client_order_id: str
    protect: int
    link: int
    expire_ts: int = 0  # GTD orders (a snapshot from before GTD reads as none)
    self_trade: int = 0  # its self-trade prevention mode (before: cancel resting)


class BookState(msgspec.Struct, array_like=True):
    symbol: str
    tick_size: int
    lot_size: int
    price_scale: int
    qty_scale: int
    status: int
    last_price: int
    bids: list[list[int]]  # order ids per level, best level first, time priority within
    asks: list[list[int]]
    stops: list[int]  # waiting stops in acceptance order
    # an auction's market orders and the on-close orders waiting for the close, each in
    # acceptance order (defaults: a snapshot from before auctions reads as none)
    market_bids: list[int] = []
    market_asks: list[int] = []
    on_close: list[int] = []


class EngineState(msgspec.Struct, array_like=True):
    version: int
    seq: int
    books: list[BookState]
    orders: list[OrderState]  # in the engine's own order


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(EngineState)


def _side_state(side: BookSide) -> list[list[int]]:
    return [list(level.orders) for level in side.levels_best_first()]


def capture(engine: Engine) -> EngineState:
    """The engine's state as plain data (between commands only)."""
    books = []
    for b in engine.books.values():
        assert not b.stops_dirty, "snapshot taken in the middle of a command"
        books.append(
            BookState(
                b.symbol,
                b.tick_size,
                b.lot_size,
                b.price_scale,
                b.qty_scale,
                b.status,
                b.last_price,
                _side_state(b.bids),
                _side_state(b.asks),
                list(b.stops),
                list(b.market_bids),
                list(b.market_asks),
                list(b.on_close),
            )
        )
    orders = [
        OrderState(
            o.order_id,
            o.account,
            o.symbol,
            o.side,
            o.type,
            o.tif,
            o.price,
            o.stop_price,
            o.qty,
            o.filled,
            o.remaining,
            o.status,
            o.post_only,
            o.client_order_id,
            o.protect,
            o.link,
            o.expire_ts,
            o.self_trade,
        )
        for o in engine.orders.values()
    ]
    return EngineState(SNAPSHOT_VERSION, engine.seq, books, orders)


def encode(engine: Engine) -> bytes:
    return _encoder.encode(capture(engine))


def state_hash(engine: Engine) -> str:
    """A digest of the whole engine state: equal states, equal hashes."""
    return hashlib.blake2b(encode(engine), digest_size=32).hexdigest()


def restore(data: bytes) -> Engine:
    """Rebuild an engine from ``encode``'s bytes."""
    state = _decoder.decode(data)
    if state.version != SNAPSHOT_VERSION:
        raise ValueError(f"snapshot version {state.version} is not {SNAPSHOT_VERSION}")
    engine = Engine()
    engine.seq = state.seq
    for s in state.orders:
        o = Order(
            s.order_id,
            s.account,
            s.symbol,
            s.side,
            s.type,
            s.tif,
            s.price,
            s.stop_price,
            s.qty,
            s.post_only,
        )
        o.filled, o.remaining, o.status = s.filled, s.remaining, s.status
        o.client_order_id, o.protect, o.link = s.client_order_id, s.protect, s.link
        o.expire_ts, o.self_trade = s.expire_ts, s.self_trade
        engine.orders[o.order_id] = o
        if o.expire_ts:
            engine.expiries.add(o, engine.orders)
    for bs in state.books:
        book = Book(bs.symbol, bs.tick_size, bs.lot_size, bs.price_scale, bs.qty_scale)
        book.status, book.last_price = bs.status, bs.last_price
        for side, levels in ((book.bids, bs.bids), (book.asks, bs.asks)):
            for ids in levels:
                for oid in ids:
                    side.add(engine.orders[oid])
        for oid in bs.stops:
            book.stops[oid] = engine.orders[oid]
        for queue, ids in (
            (book.market_bids, bs.market_bids),
            (book.market_asks, bs.market_asks),
            (book.on_close, bs.on_close),
        ):
            for oid in ids:
                queue[oid] = engine.orders[oid]
        if book.status >= PRE_OPEN:  # what it last published: the book's auction price
            book.indicative = engine._auction_price(book)
        engine.books[book.symbol] = book
    return engine
