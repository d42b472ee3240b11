"""Commands: the only inputs of the deterministic core.

Each carries its own timestamp and ids, so the engine reads no clock and no randomness.
They are msgspec structs tagged for a compact MessagePack journal encoding.
"""

from __future__ import annotations

import msgspec

from mercato.domain.types import TimeInForce, TradingStatus


class Command(msgspec.Struct, tag_field="k", array_like=True, gc=False, kw_only=True):
    ts: int = 0


class AddInstrument(Command, tag="ai"):
    symbol: str
    tick_size: int = 1
    lot_size: int = 1
    price_scale: int = 2
    qty_scale: int = 0


class NewOrder(Command, tag="n"):
    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    qty: int
    tif: int = TimeInForce.GTC
    price: int = 0
    stop_price: int = 0
    post_only: bool = False


class CancelOrder(Command, tag="c"):
    order_id: int
    symbol: str


class ReplaceOrder(Command, tag="r"):
    """New price and new remaining quantity (``stop_price`` only for untriggered stops)."""

    order_id: int
    symbol: str
    price: int
    qty: int
    stop_price: int = 0


class SetTradingStatus(Command, tag="st"):
    """Halt (HALTED), resume (OPEN) or close (CLOSED) an instrument."""

    symbol: str
    status: TradingStatus


class EndOfDay(Command, tag="eod"):
    """Expire every DAY order, resting or waiting for its stop."""


AnyCommand = AddInstrument | NewOrder | CancelOrder | ReplaceOrder | SetTradingStatus | EndOfDay
