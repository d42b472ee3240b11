"""Market-data events: what every source (our engine, a replayed recording, an outside
feed) is turned into before it reaches the books, bars, caches and subscribers.

Prices and quantities are integers at the instrument's scales (``Instrument.price_scale``,
``qty_scale``), times are nanoseconds since the epoch (the source's own event time: the
engine's command time, a recording's exchange time). ``side`` is 1 (buy, bid) or 2 (sell,
ask) as ``mercato.domain.types.Side``; a trade's side is the taker's (0: unknown).
"""

from __future__ import annotations

import msgspec

BUY = 1
SELL = 2


class MdEvent(msgspec.Struct, frozen=True, gc=False, tag_field="k", array_like=True):
    """The common shape: which instrument and when."""

    symbol: str
    ts: int


class MdTrade(MdEvent, tag="t", frozen=True):
    """One trade. ``trade_id`` is the source's (the engine's seq, an exchange's id)."""

    trade_id: int
    price: int
    qty: int
    side: int


class MdLevel(MdEvent, tag="l", frozen=True):
    """An aggregated price level's new total quantity (0: the level is gone)."""

    side: int
    price: int
    qty: int


class MdQuote(MdEvent, tag="q", frozen=True):
    """The top of the book as a source states it (0 price and qty: that side is empty)."""

    bid: int
    bid_qty: int
    ask: int
    ask_qty: int


class MdOrder(MdEvent, tag="o", frozen=True):
    """An order-level (L3) change. ``qty`` is the order's remaining visible quantity after
    the change: the full size on an add, what is left after a partial cancel or an
    execution, 0 when it is gone."""

    order_id: int
    side: int
    price: int
    qty: int


class MdClear(MdEvent, tag="c", frozen=True):
    """The source's book must be forgotten (a resync, a halt, the start of a replay)."""


class MdIndicative(MdEvent, tag="i", frozen=True):
    """While a call auction collects orders: the price it would uncross at now, the
    quantity that would execute there and the surplus left on ``side`` (the heavier one;
    0: none). All 0: nothing would execute, or the call phase is over."""

    price: int
    qty: int
    surplus: int
    side: int


AnyMdEvent = MdTrade | MdLevel | MdQuote | MdOrder | MdClear | MdIndicative
