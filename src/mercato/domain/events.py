"""Events: everything the core says. Each is stamped with a global sequence number."""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, tag_field="k", array_like=True, gc=False):
    """Positional construction is allowed (the engine uses it on the hot path): seq, ts, then
    the fields in the order they are declared."""

    seq: int
    ts: int


class InstrumentAdded(Event, tag="ia"):
    symbol: str
    tick_size: int
    lot_size: int
    price_scale: int
    qty_scale: int


class TradingStatusChanged(Event, tag="ts"):
    symbol: str
    status: int


class Rejected(Event, tag="rj"):
    """A command refused; it changed nothing. ``command`` is the command's tag."""

    command: str
    order_id: int
    symbol: str
    reason: str
    detail: str = ""
    account: int = 0  # the order's account when known (0: unknown order)


class OrderAccepted(Event, tag="ac"):
    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    stop_price: int
    qty: int
    post_only: bool


class Trade(Event, tag="tr"):
    """One execution: a fill for the taker and one for the maker, at the maker's price."""

    symbol: str
    price: int
    qty: int
    taker_order_id: int
    maker_order_id: int
    taker_account: int
    maker_account: int
    taker_side: int
    taker_remaining: int
    maker_remaining: int


class OrderCancelled(Event, tag="cx"):
    order_id: int
    account: int
    symbol: str
    remaining: int
    reason: str


class OrderReplaced(Event, tag="rp"):
    order_id: int
    account: int
    symbol: str
    price: int
    qty: int  # the new remaining quantity
    stop_price: int
    kept_priority: bool


class OrderExpired(Event, tag="ex"):
    order_id: int
    account: int
    symbol: str
    remaining: int


class OrderTriggered(Event, tag="tg"):
    order_id: int
    account: int
    symbol: str
    stop_price: int
    last_price: int


class BookDelta(Event, tag="bd"):
    """The aggregate resting quantity at one price level after a change (0: level gone)."""

    symbol: str
    side: int
    price: int
    qty: int


AnyEvent = (
    InstrumentAdded
    | TradingStatusChanged
    | Rejected
    | OrderAccepted
    | Trade
    | OrderCancelled
    | OrderReplaced
    | OrderExpired
    | OrderTriggered
    | BookDelta
)
