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


class TradingStatus(IntEnum):
    OPEN = 1
    HALTED = 2
    CLOSED = 3


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
}
TRADING_STATUS_NAMES = {
    TradingStatus.OPEN: "open",
    TradingStatus.HALTED: "halted",
    TradingStatus.CLOSED: "closed",
}
