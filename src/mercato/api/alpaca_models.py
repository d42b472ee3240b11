"""The Alpaca-compatible trading API's bodies, in and out, as msgspec structs: what
``alpaca.py`` decodes and encodes, and what ``openapi.alpaca_document`` describes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Final, Literal

import msgspec

from mercato.api.base import ApiError
from mercato.api.schemas import ClientOrderId, Symbol

EXCHANGE: Final = "MERCATO"  # the exchange of every trade and quote on /v2 (x, ax, bx)
TAPE: Final = "M"  # and its tape (z)
NS: Final = uuid.UUID("6d657263-6174-6f00-0000-000000000000")  # names asset and account ids


def number(value: int, scale: int) -> float | int:
    """A scaled integer as the JSON / msgpack number Alpaca's wire format has."""
    return value if scale == 0 else value / 10**scale


Kind = Literal["market", "limit", "stop", "stop_limit", "trailing_stop"]
OrderClass = Literal["simple", "bracket", "oco", "oto"]
Tif = Literal["day", "gtc", "ioc", "fok", "opg", "cls"]
State = Literal["new", "held", "partially_filled", "filled", "canceled", "rejected", "expired"]
Amount = str | int | float  # alpaca-py sends numbers, Alpaca's docs strings: both are read
_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str, name: str) -> int:
    """An RFC-3339 time (or a date) as ns since the epoch; nanoseconds are kept. A bad
    one is a 422 naming the parameter."""
    raw = text.strip().replace(" ", "+")  # a '+' unescaped in a query string is a space
    frac_ns = 0
    m = _FRACTION.search(raw)
    if m is not None:
        digits = m.group(1)
        frac_ns = int((digits + "0" * 9)[:9])
        raw = raw[: m.start()] + raw[m.end() :]
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        whole = int(dt.timestamp())
    except (ValueError, OverflowError, OSError):
        raise ApiError(422, "invalid_time", f"{name} must be an RFC-3339 time") from None
    return whole * 1_000_000_000 + frac_ns


# -- bodies --------------------------------------------------------------------------------


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A ``/v2`` request body: a field Mercato does not know is refused (422, naming it),
    never ignored (and ``Ctx.body`` refuses duplicate keys and non-printable characters)."""


class TakeProfit(_Body):
    """A bracket's, an OCO's or an OTO's take-profit exit: a limit order."""

    limit_price: Amount


class StopLoss(_Body):
    """The stop-loss exit: a stop order, or a stop-limit with ``limit_price``."""

    stop_price: Amount
    limit_price: Amount | None = None


class OrderBody(_Body):
    """``POST /v2/orders``: simple, bracket, OCO and OTO orders, trailing stops and
    notional market orders (``alpaca_orders.py``). ``order_class`` ``mleg`` and
    ``extended_hours: true`` are read only to be refused with a 422 that names them; any
    other unknown field is refused as well."""

    symbol: Symbol
    side: Literal["buy", "sell"]
    type: Kind | None = None  # default market
    order_type: Kind | None = None  # the same, as some clients name it
    time_in_force: Tif = "day"
    qty: Amount | None = None
    limit_price: Amount | None = None
    stop_price: Amount | None = None
    client_order_id: ClientOrderId | None = None
    order_class: Literal["simple", "", "bracket", "oco", "oto", "mleg"] | None = None
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None
    notional: Amount | None = None
    trail_price: Amount | None = None
    trail_percent: Amount | None = None
    extended_hours: bool | None = None


class OrderPatch(_Body):
    """``PATCH /v2/orders/{id}``: what is not sent stays as it is (a leg of a bracket or
    OCO is replaced by its own id, as on Alpaca)."""

    qty: Amount | None = None
    limit_price: Amount | None = None
    stop_price: Amount | None = None


class Order(msgspec.Struct, kw_only=True):
    id: str
    client_order_id: str
    created_at: str
    updated_at: str
    submitted_at: str
    filled_at: str | None
    expired_at: str | None
    canceled_at: str | None
    failed_at: str | None
    replaced_at: str | None
    replaced_by: str | None
    replaces: str | None
    asset_id: str
    symbol: str
    asset_class: Literal["us_equity"]
    notional: str | None
    qty: str
    filled_qty: str
    filled_avg_price: str | None
    order_class: OrderClass
    order_type: Kind
    type: Kind
    side: Literal["buy", "sell"]
    time_in_force: Tif
    limit_price: str | None
    stop_price: str | None
    status: State
    extended_hours: bool
    legs: list[Order] | None
    trail_percent: str | None
    trail_price: str | None
    hwm: str | None


class Account(msgspec.Struct, kw_only=True):
    id: str
    account_number: str
    status: Literal["ACTIVE"]
    crypto_status: str | None
    currency: str
    buying_power: str
    regt_buying_power: str
    daytrading_buying_power: str
    non_marginable_buying_power: str
    cash: str
    accrued_fees: str
    pending_transfer_in: str
    portfolio_value: str
    equity: str
    last_equity: str
    long_market_value: str
    short_market_value: str
    initial_margin: str
    maintenance_margin: str
    last_maintenance_margin: str
    sma: str
    multiplier: str
    shorting_enabled: bool
    pattern_day_trader: bool
    trading_blocked: bool
    transfers_blocked: bool
    account_blocked: bool
    trade_suspended_by_user: bool
    daytrade_count: int
    created_at: str


class Clock(msgspec.Struct, kw_only=True):
    timestamp: str
    is_open: bool
    next_open: str
    next_close: str


class CalendarDay(msgspec.Struct, kw_only=True):
    """One trading day: local times (HH:MM) in the calendar's zone; no extended hours,
    so ``session_open`` / ``session_close`` (HHMM) are the same times."""

    date: str
    open: str
    close: str
    session_open: str
    session_close: str


class Asset(msgspec.Struct, kw_only=True, rename={"class_": "class"}):
    id: str
    class_: Literal["us_equity"]
    asset_class: Literal["us_equity"]
    exchange: str
    symbol: str
    name: str
    status: Literal["active", "inactive"]
    tradable: bool
    marginable: bool
    shortable: bool
    easy_to_borrow: bool
    fractionable: bool
    min_order_size: str | None
    min_trade_increment: str | None
    price_increment: str | None
    maintenance_margin_requirement: float | None
    attributes: list[str]


class Position(msgspec.Struct, kw_only=True):
    asset_id: str
    symbol: str
    exchange: str
    asset_class: Literal["us_equity"]
    avg_entry_price: str
    qty: str
    qty_available: str
    side: Literal["long", "short"]
    market_value: str
    cost_basis: str
    unrealized_pl: str
    unrealized_plpc: str | None
    unrealized_intraday_pl: str
    unrealized_intraday_plpc: str | None
    current_price: str | None
    lastday_price: str | None
    change_today: str | None
    # Mercato's own: the currency of the money fields (the account's, the instrument's
    # quote currency); alpaca-py ignores it
    currency: str


class Canceled(msgspec.Struct):
    """One order of ``DELETE /v2/orders`` (a 207): its status is 200, or 500 if refused."""

    id: str
    status: int
    body: Order | None = None


class Closed(msgspec.Struct):
    """One position of ``DELETE /v2/positions`` (a 207): the closing order."""

    symbol: str
    status: int
    body: Order


class Error(msgspec.Struct):
    """Alpaca's error shape: ``code`` is the HTTP status times 100,000, plus one."""

    code: int
    message: str


# -- watchlists and configurations (``alpaca_account.py``) ---------------------------------


class WatchlistBody(_Body):
    """``POST /v2/watchlists``: a name and its first symbols."""

    name: str
    symbols: list[str] | None = None


class WatchlistUpdate(_Body):
    """``PUT /v2/watchlists/{id}``: a new name, or all its symbols anew, or both."""

    name: str | None = None
    symbols: list[str] | None = None


class WatchlistSymbol(_Body):
    """``POST /v2/watchlists/{id}``: one more symbol, at the end."""

    symbol: str


class Watchlist(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    name: str
    created_at: str
    updated_at: str
    assets: list[Asset]


class Configurations(msgspec.Struct, kw_only=True):
    """``/v2/account/configurations``: ``suspend_trade`` and ``fractional_trading`` are
    the account's to change; the others say what Mercato does and take only that value."""

    dtbp_check: Literal["both", "entry", "exit"] | None
    pdt_check: Literal["both", "entry", "exit"] | None
    trade_confirm_email: Literal["all", "none"]
    suspend_trade: bool
    no_shorting: bool
    fractional_trading: bool
    max_margin_multiplier: str
    ptp_no_exception_entry: bool
    max_options_trading_level: int | None


class ConfigurationsPatch(_Body):
    """``PATCH /v2/account/configurations``: what is absent (or null) stays; a value
    Mercato cannot honour is refused naming the field (``alpaca_account.py``)."""

    dtbp_check: str | None = None
    pdt_check: str | None = None
    trade_confirm_email: str | None = None
    suspend_trade: bool | None = None
    no_shorting: bool | None = None
    fractional_trading: bool | None = None
    max_margin_multiplier: str | None = None
    ptp_no_exception_entry: bool | None = None
    max_options_trading_level: int | None = None


class FillActivity(msgspec.Struct, kw_only=True, tag_field="activity_type", tag="FILL"):
    """A ``FILL`` of ``/v2/account/activities`` (alpaca-py's ``TradeActivity``)."""

    id: str
    account_id: str
    transaction_time: str
    type: Literal["fill", "partial_fill"]
    price: str
    qty: str
    side: Literal["buy", "sell"]
    symbol: str
    leaves_qty: str
    order_id: str
    cum_qty: str
    order_status: State


class TransferActivity(msgspec.Struct, kw_only=True, tag_field="activity_type"):
    """A deposit (``CSD``), a withdrawal (``CSW``) of cash, or an instrument transferred
    in or out (``JNLS``: ``qty`` signed, ``net_amount`` 0) (alpaca-py's
    ``NonTradeActivity``); ``activity_type`` is the subclass's tag."""

    id: str
    account_id: str
    date: str
    net_amount: str
    description: str
    status: Literal["executed"]
    symbol: str | None
    qty: str | None


class CashDeposit(TransferActivity, tag="CSD"):
    pass


class CashWithdrawal(TransferActivity, tag="CSW"):
    pass


class SecuritiesTransfer(TransferActivity, tag="JNLS"):
    pass


Activity = FillActivity | CashDeposit | CashWithdrawal | SecuritiesTransfer
TRANSFERS: Final[dict[str, type[CashDeposit] | type[CashWithdrawal] | type[SecuritiesTransfer]]] = {
    "CSD": CashDeposit,
    "CSW": CashWithdrawal,
    "JNLS": SecuritiesTransfer,
}
