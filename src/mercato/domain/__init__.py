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
from mercato.domain.errors import InsufficientFunds
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
from mercato.domain.ledger import EXTERNAL, FEES, Entry, Posting, UnbalancedPosting
from mercato.domain.orders import FINAL, TRANSITIONS, IllegalTransition, Order, OrderStatus
from mercato.domain.reasons import CancelReason, Reject, RiskReject
from mercato.domain.risk import RiskLimits
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus

__all__ = [
    "EXTERNAL",
    "FEES",
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
    "Entry",
    "Event",
    "IllegalTransition",
    "Instrument",
    "InstrumentAdded",
    "InsufficientFunds",
    "NewOrder",
    "Order",
    "OrderAccepted",
    "OrderCancelled",
    "OrderExpired",
    "OrderReplaced",
    "OrderStatus",
    "OrderTriggered",
    "OrderType",
    "Posting",
    "Reject",
    "Rejected",
    "ReplaceOrder",
    "RiskLimits",
    "RiskReject",
    "SetTradingStatus",
    "Side",
    "TimeInForce",
    "Trade",
    "TradingStatus",
    "TradingStatusChanged",
    "UnbalancedPosting",
    "format_decimal",
    "parse_decimal",
]
