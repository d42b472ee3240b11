"""Typed clients of Mercato's native REST API: ``Client`` (sync) and ``AsyncClient``;
of its streaming API: ``Stream`` (async) and ``SyncStream``.

::

    from mercato.client import Client

    with Client("http://localhost:8000", key_id, secret) as api:
        order = api.place_order("XYZ", "buy", "limit", qty=10, price="100.00")
        api.cancel_order(order.id)

Prices, quantities and amounts are passed as ``str``, ``int`` or ``decimal.Decimal``
(a float raises ``TypeError``) and sent as decimal strings; answers are msgspec structs
whose prices, quantities and money are ``Decimal``. A refusal raises ``MercatoError`` or
one of its subclasses (``RiskRejected`` for a 422, with the core's reason as ``code``).
"""

from mercato.client import ticks  # small-ticks market data: ticks.Decoder
from mercato.client._calls import (
    AccountKind,
    Number,
    OrderClass,
    OrderStatusFilter,
    OrderType,
    Role,
    Side,
    TimeInForce,
    TradingStatus,
    Venue,
)
from mercato.client.client import AsyncClient, Client
from mercato.client.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MercatoError,
    NotFound,
    RateLimited,
    RiskRejected,
    Unauthorized,
)
from mercato.client.models import (
    Account,
    Balance,
    Bar,
    Currency,
    Depth,
    Fill,
    Instrument,
    InstrumentStatus,
    KillSwitch,
    Limits,
    Me,
    NewAccount,
    Order,
    OrderEvent,
    OrderLeg,
    Position,
    Quote,
    RiskLimits,
    Stats,
    Trade,
    User,
)
from mercato.client.stream import (
    SequenceGap,
    Stream,
    StreamClosed,
    StreamError,
    StreamOverflow,
)
from mercato.client.sync_stream import SyncStream

__all__ = [
    "Account",
    "AccountKind",
    "AsyncClient",
    "BadRequest",
    "Balance",
    "Bar",
    "Client",
    "Conflict",
    "Currency",
    "Depth",
    "Fill",
    "Forbidden",
    "Instrument",
    "InstrumentStatus",
    "KillSwitch",
    "Limits",
    "Me",
    "MercatoError",
    "NewAccount",
    "NotFound",
    "Number",
    "Order",
    "OrderClass",
    "OrderEvent",
    "OrderLeg",
    "OrderStatusFilter",
    "OrderType",
    "Position",
    "Quote",
    "RateLimited",
    "RiskLimits",
    "RiskRejected",
    "Role",
    "SequenceGap",
    "Side",
    "Stats",
    "Stream",
    "StreamClosed",
    "StreamError",
    "StreamOverflow",
    "SyncStream",
    "TimeInForce",
    "Trade",
    "TradingStatus",
    "Unauthorized",
    "User",
    "Venue",
    "ticks",
]
