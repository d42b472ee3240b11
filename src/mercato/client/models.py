"""The API's answers as typed structs, decoded from its JSON.

Prices, quantities and money travel as decimal strings and are decoded as exact
``decimal.Decimal`` values (keeping the scale the server printed: ``Decimal("100.00")``).
Order and trade ids are strings, as the API sends them; account and user ids are ints.
Timestamps are the platform's integer clock (``created_at``, ``updated_at``, ``ts``).
Unknown fields in an answer are ignored, so a newer server does not break an older client.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec


class Me(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    username: str
    role: str  # "trader" or "admin"
    accounts: list[int]


class Instrument(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    price_scale: int
    qty_scale: int
    currency: str | None
    status: str  # "open", "halted", "closed", "pre_open", "opening_auction", "closing_auction"
    last_price: Decimal | None = None
    # while an auction collects: indicative_price, indicative_qty, surplus, surplus_side
    auction: dict[str, str | None] | None = None
    calendar: str | None = None  # the calendar it follows (its own, else the platform's)
    next_open: int | None = None  # ns since the epoch
    next_close: int | None = None


class Currency(msgspec.Struct, frozen=True, kw_only=True):
    """A cash asset: its amounts have ``scale`` decimals (USD 2, USDT perhaps 6)."""

    currency: str
    scale: int


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account: int
    kind: str  # "cash" or "margin"
    currency: str
    cash: Decimal
    reserved: Decimal
    buying_power: Decimal
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    gross_exposure: Decimal
    net_exposure: Decimal
    realized: Decimal
    unrealized: Decimal
    day_pnl: Decimal
    open_orders: int
    margin_status: str  # "ok", "call" or "liquidating"
    killed: bool


class Position(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    qty: Decimal  # negative when short
    cost_basis: Decimal
    market_value: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    mark: Decimal
    currency: str | None = None  # of the money fields (the account's; older servers: none)


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One step of an order's life (``Order.history``, filled in by ``get_order`` only)."""

    seq: int
    ts: int
    status: str
    what: str


class OrderLeg(msgspec.Struct, frozen=True, kw_only=True):
    """A bracket's or OTO's exit, or an OCO's stop, as its first order lists it."""

    id: str
    role: str  # "take_profit" or "stop_loss"
    status: str  # an order status, or "held" until the entry fills
    type: str | None
    price: Decimal | None
    stop_price: Decimal | None


class Order(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    client_order_id: str
    account: int
    symbol: str
    side: str | None  # "buy" or "sell"
    type: str | None  # "market", "limit", "stop", "stop_limit"
    tif: str | None  # "gtc", "day", "ioc", "fok", "opg", "cls", "gtd"
    price: Decimal | None
    stop_price: Decimal | None
    qty: Decimal
    filled_qty: Decimal
    remaining_qty: Decimal
    avg_fill_price: Decimal | None
    status: str  # "accepted", "partially_filled", "filled", "cancelled", "replaced", ...
    reason: str | None
    created_at: int
    updated_at: int
    expire_at: int | None = None  # a GTD order: when what is left expires (ns)
    order_class: str = "simple"  # "simple", "bracket", "oto" or "oco"
    legs: list[OrderLeg] | None = None  # the first order of a group: the other orders
    history: list[OrderEvent] = msgspec.field(default_factory=list)


class Fill(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: str
    order_id: str
    account: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    liquidity: str  # "maker" or "taker"
    fee: Decimal
    ts: int


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A user created by an administrator."""

    user_id: int
    username: str
    role: str


class NewAccount(msgspec.Struct, frozen=True, kw_only=True):
    """An account created by an administrator, and whose it is."""

    account: int
    user_id: int


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    """An account's cash balance after a deposit or a withdrawal."""

    account: int
    balance: Decimal


class RiskLimits(msgspec.Struct, frozen=True, kw_only=True):
    """One account's limits; 0 means "no limit". Cash amounts in the currency's units."""

    max_order_qty: int = 0
    max_order_notional: int = 0
    max_open_orders: int = 0
    max_position: int = 0
    max_gross_exposure: int = 0
    daily_loss_limit: int = 0
    collar_bps: int = 0
    max_commands_per_s: int = 0


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    account: int
    limits: RiskLimits


class InstrumentStatus(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    status: str


class KillSwitch(msgspec.Struct, frozen=True, kw_only=True):
    account: int  # 0: the whole platform
    on: bool


class Cancelled(msgspec.Struct, frozen=True, kw_only=True):
    cancelled: list[str]  # the ids of the orders cancelled


class Created(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str


# -- market data (/v1/marketdata/SYM/...) ---------------------------------------------


class Quote(msgspec.Struct, frozen=True, kw_only=True):
    """The top of the book (None: that side is empty) and the last trade's price; ``seq``
    is the ``quotes:SYM`` channel's, so a stream can take over from here."""

    symbol: str
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None
    last: Decimal | None
    seq: int


class Depth(msgspec.Struct, frozen=True, kw_only=True):
    """Aggregated levels, best first: (price, total quantity); ``seq`` as ``book:SYM``'s."""

    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    seq: int


class Trade(msgspec.Struct, frozen=True, kw_only=True):
    trade_id: str
    price: Decimal
    qty: Decimal
    side: str | None  # the aggressor's, "buy" or "sell" (None: unknown)
    ts: int


class Bar(msgspec.Struct, frozen=True, kw_only=True):
    start: int  # ns since the epoch
    interval: int  # seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    trades: int


class Stats(msgspec.Struct, frozen=True, kw_only=True):
    """The last 24 hours (None, volume 0: no trade in them)."""

    symbol: str
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    last: Decimal | None
    volume: Decimal
    trades: int
    change: Decimal | None
