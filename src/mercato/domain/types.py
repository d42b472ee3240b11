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
