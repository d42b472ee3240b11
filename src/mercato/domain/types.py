"""Enumerations and scalar aliases shared by every layer.

Prices and quantities are plain ``int``s scaled per instrument (see ``Instrument``);
decimal strings appear only at the edges (API, files, UI).
"""

from __future__ import annotations

from enum import IntEnum

OrderId = int
AccountId = int
Symbol = str
Price = int
Qty = int
Timestamp = int  # nanoseconds since the epoch, supplied by the caller, never read from a clock


class Side(IntEnum):
    BUY = 1
    SELL = 2


class OrderType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP = 3  # stop-loss: becomes a market order when triggered
    STOP_LIMIT = 4  # becomes a limit order when triggered


class TimeInForce(IntEnum):
    GTC = 1
    DAY = 2
    IOC = 3
    FOK = 4
    OPG = 5  # on the open: takes part in the opening auction only, the rest expires
    CLS = 6  # on the close: takes part in the closing auction only, the rest expires
    GTD = 7  # good till a date: expires at the order's ``expire_ts``


class TradingStatus(IntEnum):
    """An instrument's phase. ``OPEN`` is continuous trading; the auction phases collect
    orders without matching and uncross at one price when they end."""

    OPEN = 1
    HALTED = 2
    CLOSED = 3
    PRE_OPEN = 4  # orders accepted, nothing matches
    OPENING_AUCTION = 5  # orders collect; uncrossed when the phase ends
    CLOSING_AUCTION = 6  # orders collect; uncrossed when the phase ends


class AccountKind(IntEnum):
    CASH = 1  # buys with its cash, sells only what it holds
    MARGIN = 2  # borrows against its equity; may sell short


class Venue(IntEnum):
    INTERNAL = 1  # our own matching engine
    PAPER = 2  # simulated fills against the market price


class SelfTrade(IntEnum):
    """What self-trade prevention cancels when an order meets one of its own account's
    (``docs/matching.md``): the incoming order's mode decides. ``DEFAULT`` on an order
    means its account's mode; an account's ``DEFAULT`` is ``CANCEL_RESTING``."""

    DEFAULT = 0
    CANCEL_RESTING = 1  # the resting order (the older one, in an auction)
    CANCEL_INCOMING = 2  # what is left of the incoming order (the newer one)
    CANCEL_BOTH = 3


SELF_TRADE_NAMES: dict[int, str] = {
    SelfTrade.CANCEL_RESTING: "cancel_resting",
    SelfTrade.CANCEL_INCOMING: "cancel_incoming",
    SelfTrade.CANCEL_BOTH: "cancel_both",
}


SIDE_NAMES: dict[int, str] = {Side.BUY: "buy", Side.SELL: "sell"}
ORDER_TYPE_NAMES: dict[int, str] = {
    OrderType.MARKET: "market",
    OrderType.LIMIT: "limit",
    OrderType.STOP: "stop",
    OrderType.STOP_LIMIT: "stop_limit",
}
TIF_NAMES: dict[int, str] = {
    TimeInForce.GTC: "gtc",
    TimeInForce.DAY: "day",
    TimeInForce.IOC: "ioc",
    TimeInForce.FOK: "fok",
    TimeInForce.OPG: "opg",
    TimeInForce.CLS: "cls",
    TimeInForce.GTD: "gtd",
}
TRADING_STATUS_NAMES = {
    TradingStatus.OPEN: "open",
    TradingStatus.HALTED: "halted",
    TradingStatus.CLOSED: "closed",
    TradingStatus.PRE_OPEN: "pre_open",
    TradingStatus.OPENING_AUCTION: "opening_auction",
    TradingStatus.CLOSING_AUCTION: "closing_auction",
}
