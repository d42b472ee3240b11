"""Commands: the only inputs of the deterministic core.

Each carries its own timestamp and ids, so the engine reads no clock and no randomness.
They are msgspec structs tagged for a compact MessagePack journal encoding.
"""

from __future__ import annotations

import msgspec

from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind, OrderType, TimeInForce, TradingStatus, Venue


class Command(msgspec.Struct, tag_field="k", array_like=True, gc=False, kw_only=True):
    ts: int = 0


class _AddInstrument(Command):
    """``AddInstrument``'s first fields (positional in the journal's arrays)."""

    symbol: str
    tick_size: int = 1
    lot_size: int = 1
    price_scale: int = 2
    qty_scale: int = 0
    currency: str = "USD"  # what it trades in (must have been added: USD always is)


class AddInstrument(_AddInstrument, tag="ai", kw_only=True):
    # the trading calendar it follows, as ``adapters.calendars.calendar_from_spec`` reads
    # it ("XNYS", "24/7", "hours:UTC,10:00-11:00,mon-sun"); "" = the platform's calendar.
    # The core keeps it (at most ``instrument.MAX_CALENDAR`` characters) and reads no
    # clock: the session service turns it into phases. Keyword-only, so that it comes last in the
    # journal's array: a journal written before it (one element fewer) still reads.
    calendar: str = ""


class _Order(Command):
    """``NewOrder``'s fields up to trailing stops (positional in the journal's arrays)."""

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
    client_order_id: str = ""  # idempotency key per account and trading day ("" = none)
    # market and stop orders: trade at no price worse than this (0 = the core's collar)
    protect_price: int = 0
    # trailing stops (stop and stop-limit): the stop follows the best price seen since
    # acceptance at this distance, in price units or in basis points (at most one is set)
    trail_amount: int = 0
    trail_bps: int = 0


class NewOrder(_Order, tag="n", kw_only=True):
    # GTD orders (and only they): the core time, in ns since the epoch, at which what is
    # left expires; checked against each command's ``ts`` (see ``Clock``). Keyword-only,
    # so that it comes last in the journal's array: a journal written before it existed
    # (one element fewer) still reads, as orders without an expiry.
    expire_ts: int = 0
    # self-trade prevention (``SelfTrade``): 0, the account's mode
    self_trade: int = 0


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
    protect_price: int = 0  # a waiting stop's protection (as in ``NewOrder``)


class SetTradingStatus(Command, tag="st"):
    """Halt (HALTED), resume (OPEN) or close (CLOSED) an instrument."""

    symbol: str
    status: TradingStatus


class EndOfDay(Command, tag="eod", kw_only=True):
    """The end of a trading day. ``symbol`` "" (the platform's, at its calendar's close):
    expire the DAY orders of every instrument on the platform's calendar, resting or
    waiting for their stop, and start a new day (client order ids, the daily loss limit).
    ``symbol`` set (an instrument with a calendar of its own, at its close): expire that
    instrument's DAY orders only. Keyword-only, after ``ts``: older journals still read."""

    symbol: str = ""


class SetSelfTrade(Command, tag="stp"):
    """An account's self-trade prevention mode (``SelfTrade``; DEFAULT: cancel resting),
    for its orders that do not name one."""

    account: int
    mode: int


class Clock(Command, tag="clk"):
    """The time is ``ts``: GTD orders whose ``expire_ts`` has come expire. Every command
    does this before its own work; the session service sends this one when no other
    command would come in time (``services/sessions.py``)."""


# -- accounts, money and risk (the risk core, ``mercato.engine.core``) ---------------------


class AddCurrency(Command, tag="cur"):
    """A cash asset and its scale: amounts are integers of ``10**-scale`` units."""

    code: str
    scale: int


class CreateAccount(Command, tag="acct"):
    account: int  # > 0, chosen by the caller (the gateway), never reused
    kind: int = AccountKind.CASH
    currency: str = "USD"
    venue: int = Venue.INTERNAL  # where its orders go: the matching engine or paper


class Deposit(Command, tag="dep"):
    """Cash (``asset`` = a currency) or an instrument (``asset`` = a symbol) arrives.

    ``cost`` is an instrument's cost basis in the account's currency (0 for cash).
    """

    account: int
    asset: str
    amount: int
    ref: int = 0  # the caller's reference (a transfer id)
    cost: int = 0


class Withdraw(Command, tag="wd"):
    """Cash or an instrument leaves; never more than is free (not held for open orders)."""

    account: int
    asset: str
    amount: int
    ref: int = 0


class SetRiskLimits(Command, tag="lim"):
    """Account 0: the platform defaults. ``limits`` None: the account follows them again."""

    account: int
    limits: RiskLimits | None = None


class SetInstrumentRisk(Command, tag="irisk"):
    """Fees, margin rates and the reference price of one instrument (basis points)."""

    symbol: str
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    initial_margin_bps: int = 10_000  # margin accounts: equity needed to open
    maintenance_margin_bps: int = 5_000  # below it: a margin call
    liquidation_margin_bps: int = 2_500  # below it: the account is liquidated
    reference_price: int = 0  # for the collar and marks before the first trade


class SetKillSwitch(Command, tag="kill"):
    """Account 0: the whole platform. On: cancel every open order and block new ones."""

    account: int
    on: bool


class MarketPrice(Command, tag="mp"):
    """An outside market price for a symbol (the paper venue fills against it)."""

    symbol: str
    price: int


class NewBracket(Command, tag="brk"):
    """An entry order with a take-profit (limit) and a stop-loss (stop, or stop-limit when
    ``stop_loss_limit_price`` is set) exit.

    The exits go in when the entry fills (in proportion as it fills) and are one-cancels-
    other: when either fills, the other is cancelled. With one of the two exit prices 0
    it is a one-triggers-other order (OTO): the entry and that one exit.
    """

    account: int
    symbol: str
    side: int  # the entry's side; the exits take the other
    qty: int
    entry_id: int
    take_profit_id: int
    stop_loss_id: int
    take_profit_price: int
    stop_loss_price: int
    type: int = OrderType.LIMIT  # of the entry: LIMIT or MARKET
    price: int = 0  # the entry's limit price
    tif: int = TimeInForce.GTC
    client_order_id: str = ""
    stop_loss_limit_price: int = 0  # 0: the stop-loss is a stop (market); else a stop-limit


class NewOco(Command, tag="oco"):
    """A limit order and a stop order on the same side and quantity: one cancels other."""

    account: int
    symbol: str
    side: int
    qty: int
    limit_id: int
    limit_price: int
    stop_id: int
    stop_price: int
    stop_limit_price: int = 0  # 0: the stop leg is a stop (market); else a stop-limit
    tif: int = TimeInForce.GTC
    client_order_id: str = ""


AnyCommand = (
    AddInstrument
    | NewOrder
    | CancelOrder
    | ReplaceOrder
    | SetTradingStatus
    | EndOfDay
    | AddCurrency
    | CreateAccount
    | Deposit
    | Withdraw
    | SetRiskLimits
    | SetInstrumentRisk
    | SetKillSwitch
    | MarketPrice
    | NewBracket
    | NewOco
    | Clock
    | SetSelfTrade
)
