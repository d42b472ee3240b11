"""The native API's request and response bodies (JSON), validated at the edge by msgspec.

Requests refuse unknown fields and wrong types; prices, quantities and amounts travel as
decimal strings (exact) and become scaled integers only after the instrument's or the
currency's scale is known (at most ``MAX_UNITS`` of them: ``base.units``). No string of
a body may hold a control or other non-printable character (``base.check_json_text``,
by ``str.isprintable``: the ASCII space is the one separator allowed); identifiers are
narrower still (``Symbol``, ``ClientOrderId``, ``Label``). The limits are listed in
``docs/api.md``.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

from mercato.domain.instrument import MAX_CALENDAR, MAX_SCALE
from mercato.marketdata.events import AnyMdEvent

Id = Annotated[int, msgspec.Meta(ge=1, le=2**62 - 1)]  # users and accounts
Count = Annotated[int, msgspec.Meta(ge=0, le=2**62 - 1)]  # limits: 0 means none
Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Scale = Annotated[int, msgspec.Meta(ge=0, le=MAX_SCALE)]
Symbol = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_\-/:]{1,32}$")]
"""An instrument or a currency: as ``Instrument.validate`` allows (bus-subject safe)."""
ClientOrderId = Annotated[str, msgspec.Meta(max_length=64, pattern=r"^[!-~]*$")]
"""Up to 64 visible ASCII characters (no space, no control character); empty: none."""
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
"""A free-text name (a user, a key): 1-64 printable characters (``Ctx.body`` checks)."""
Decimal = Annotated[str, msgspec.Meta(min_length=1, max_length=40)]
"""A decimal string (``"101.25"``), parsed exactly at the field's scale."""
Password = Annotated[str, msgspec.Meta(max_length=1024)]


MAX_FEED_EVENTS: Final = 2_000  # events per request (bodies are at most 64 KiB anyway)


class Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every request body: unknown fields are an error, not silently dropped
    (and ``Ctx.body`` refuses duplicate keys and non-printable characters)."""


class Credentials(Body):
    username: Label
    password: Password


class KeyRequest(Body):
    """``POST /v1/keys``: optionally, when the key stops working (RFC 3339, e.g.
    ``2027-01-31T00:00:00Z``); without it the key works until revoked."""

    expires_at: str | None = None


class TakeProfit(Body):
    """A bracket's, an OTO's or an OCO's limit exit."""

    price: Decimal


class StopLoss(Body):
    """A bracket's, an OTO's or an OCO's stop exit (a stop-limit with ``limit_price``)."""

    stop_price: Decimal
    limit_price: Decimal | None = None


class OrderRequest(Body):
    symbol: Symbol
    side: Literal["buy", "sell"]
    type: Literal["market", "limit", "stop", "stop_limit"]
    qty: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: Literal["gtc", "day", "ioc", "fok", "opg", "cls", "gtd"] = "gtc"
    expire_at: str | None = None  # "gtd" only: RFC 3339, e.g. 2027-01-31T21:00:00Z
    post_only: bool = False
    client_order_id: ClientOrderId = ""
    trail_amount: Decimal | None = None
    trail_bps: Bps = 0
    account: Id | None = None  # which of the caller's accounts (default: the first)
    # contingent orders (``api/contingent.py``): the exits of a bracket / OTO, an OCO's legs
    order_class: Literal["simple", "bracket", "oto", "oco"] = "simple"
    # self-trade prevention for this order (default: the account's mode)
    self_trade: Literal["cancel_resting", "cancel_incoming", "cancel_both"] | None = None
    take_profit: TakeProfit | None = None
    stop_loss: StopLoss | None = None


class ReplaceRequest(Body):
    qty: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None


class SelfTradeRequest(Body):
    """``PUT /v1/admin/accounts/{account}/self_trade``: the mode of the account's orders
    that name none."""

    mode: Literal["cancel_resting", "cancel_incoming", "cancel_both"]


class AccountRequest(Body):
    user_id: Id
    kind: Literal["cash", "margin"] = "cash"
    currency: Symbol = "USD"
    venue: Literal["internal", "paper"] = "internal"


class DepositRequest(Body):
    asset: Symbol
    amount: Decimal
    withdraw: bool = False  # true: a withdrawal


class LimitsRequest(Body):
    max_order_qty: Count = 0
    max_order_notional: Count = 0
    max_open_orders: Count = 0
    max_position: Count = 0
    max_gross_exposure: Count = 0
    daily_loss_limit: Count = 0
    collar_bps: Count = 0
    max_commands_per_s: Count = 0


class CurrencyRequest(Body):
    """``POST /v1/admin/currencies``: a cash asset and its scale (decimals of its amounts).
    The name and the scale are checked by the handler (422 ``invalid_currency``), so that a
    bad one is refused as the core would refuse it, naming what is wrong."""

    currency: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    scale: int


class InstrumentRequest(Body):
    symbol: Symbol
    tick_size: Decimal = "0.01"
    lot_size: Decimal = "1"
    price_scale: Scale = 2
    qty_scale: Scale = 0
    currency: Symbol = "USD"
    reference_price: Decimal | None = None
    maker_fee_bps: Bps = 0
    taker_fee_bps: Bps = 0
    # its trading calendar: "24/7", an exchange code (XNYS) or hours:ZONE,HH:MM-HH:MM[,DAYS]
    # (checked by the handler: 422 invalid_calendar); none: the platform's
    calendar: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_CALENDAR)] | None = None


class StatusRequest(Body):
    status: Literal["open", "halted", "closed", "pre_open", "opening_auction", "closing_auction"]


class KillRequest(Body):
    on: bool
    account: Count = 0  # 0: the whole platform


class UserRequest(Body):
    username: Label
    password: Password
    role: Literal["trader", "admin"] = "trader"


class FeedRequest(Body):
    """An outside instrument: market data only, fed by ``mercato feed replay --publish``."""

    symbol: Symbol
    tick_size: Decimal = "0.01"
    lot_size: Decimal = "1"
    price_scale: Scale = 2
    qty_scale: Scale = 0


class FeedEvents(Body):
    """Market-data events of one outside instrument, as ``mercato.marketdata.events``
    encodes them (tagged arrays, integers at the instrument's scales)."""

    events: Annotated[list[AnyMdEvent], msgspec.Meta(max_length=MAX_FEED_EVENTS)]
