"""Mercato's domain: value types, orders, commands and events (pure, no I/O)."""

from mercato.domain.commands import (
    AddInstrument,
    AnyCommand,
    CancelOrder,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.events import (
    AnyEvent,
    BookDelta,
    Event,
    InstrumentAdded,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    Rejected,
    Trade,
    TradingStatusChanged,
)
from mercato.domain.instrument import DecimalError, Instrument, format_decimal, parse_decimal
from mercato.domain.orders import FINAL, TRANSITIONS, IllegalTransition, Order, OrderStatus
from mercato.domain.reasons import CancelReason, Reject
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus

__all__ = [
    "FINAL",
    "TRANSITIONS",
    "AddInstrument",
    "AnyCommand",
    "AnyEvent",
    "BookDelta",
    "CancelOrder",
    "CancelReason",
    "Command",
    "DecimalError",
    "EndOfDay",
    "Event",
    "IllegalTransition",
    "Instrument",
    "InstrumentAdded",
    "NewOrder",
    "Order",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderReplaced",
    "OrderStatus",
    "OrderTriggered",
    "OrderType",
    "Reject",
    "Rejected",
    "ReplaceOrder",
    "SetTradingStatus",
    "Side",
    "TimeInForce",
    "Trade",
    "TradingStatus",
    "TradingStatusChanged",
    "format_decimal",
    "parse_decimal",
]
