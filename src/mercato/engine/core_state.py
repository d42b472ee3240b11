"""The risk core's state records: an account's reservations and status, an order's hold,
an instrument's risk parameters, trailing stops and brackets, and the account summary the
core answers queries with. Plain slotted classes, compiled with the core (``core.py``)."""

from __future__ import annotations

from typing import Final

import msgspec

from mercato.engine.money import BPS
from mercato.engine.positions import Position

OK: Final = 0
CALL: Final = 1
LIQUIDATING: Final = 2


class AccountSummary(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of one account's figures (``Core.summary``), for queries and screens."""

    account: int
    kind: int
    currency: str
    cash: int
    reserved: int
    buying_power: int
    equity: int  # cash + longs - shorts, marked
    initial_margin: int
    maintenance_margin: int
    gross_exposure: int
    net_exposure: int
    realized: int
    unrealized: int
    day_pnl: int
    open_orders: int
    margin_status: str  # ok, call, liquidating
    killed: bool


class Account:
    """One customer account: what the ledger does not hold (reservations, counts, status)."""

    __slots__ = (
        "account",
        "currency",
        "kind",
        "margin_status",
        "open_orders",
        "positions",
        "reserved",
        "self_trade",
        "selling",
        "sod_pnl",
        "venue",
    )

    def __init__(self, account: int, kind: int, currency: str, venue: int) -> None:
        self.account = account
        self.kind = kind
        self.currency = currency
        self.venue = venue
        self.reserved = 0  # cash (cash account) or margin (margin account) held for orders
        self.open_orders = 0
        self.selling: dict[str, int] = {}  # cash accounts: quantity held for open sells
        self.positions: dict[str, Position] = {}  # the same objects as in ``Positions``
        self.margin_status = OK
        self.sod_pnl = 0  # realized + unrealized PnL at the last end of day
        self.self_trade = 0  # its orders' self-trade prevention unless they name one


class Hold:
    """What one live order holds: ``cash`` (or margin) and, for a cash account's sell,
    ``qty`` of the instrument. ``sibling``: the other order of a one-cancels-other pair,
    which receives this hold when this order is cancelled because the other one fired."""

    __slots__ = ("account", "cash", "order_id", "qty", "sibling", "side", "symbol", "venue")

    def __init__(
        self, order_id: int, account: int, symbol: str, side: int, venue: int, cash: int, qty: int
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.venue = venue
        self.cash = cash
        self.qty = qty
        self.sibling = 0


class InstrumentRisk:
    """Per instrument: currency, cash conversion, fees, margin rates, reference price,
    and the trading calendar it follows."""

    __slots__ = (
        "calendar",
        "currency",
        "div",
        "im",
        "liq",
        "maker",
        "mm",
        "mul",
        "reference",
        "symbol",
        "taker",
        "tick",
    )

    def __init__(
        self, symbol: str, currency: str, mul: int, div: int, tick: int, calendar: str = ""
    ) -> None:
        self.symbol = symbol
        self.currency = currency
        self.calendar = calendar  # its trading calendar's spec ("": the platform's)
        self.mul = mul
        self.div = div
        self.tick = tick
        self.maker = 0
        self.taker = 0
        self.im = BPS
        self.mm = BPS // 2
        self.liq = BPS // 4
        self.reference = 0


class Trailing:
    """A trailing stop: the best price seen since it was accepted, and its distance."""

    __slots__ = ("amount", "best", "bps", "order_id", "side", "symbol")

    def __init__(self, order_id: int, symbol: str, side: int, amount: int, bps: int) -> None:
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.amount = amount
        self.bps = bps
        self.best = 0  # highest trade price (sell stop) or lowest (buy stop) since accepted


class Bracket:
    """An entry whose fills get a take-profit and a stop-loss exit (a one-cancels-other
    pair), or only one of them (an OTO: the other's price is 0); ``pending`` is filled
    quantity not yet covered by exits. ``sl_limit`` makes the stop-loss a stop-limit."""

    __slots__ = (
        "account",
        "entry_id",
        "pending",
        "side",
        "sl_id",
        "sl_limit",
        "sl_price",
        "symbol",
        "tp_id",
        "tp_price",
        "used_ids",
    )

    def __init__(
        self,
        entry_id: int,
        account: int,
        symbol: str,
        side: int,
        tp_id: int,
        sl_id: int,
        tp_price: int,
        sl_price: int,
        sl_limit: int = 0,
    ) -> None:
        self.entry_id = entry_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.tp_id = tp_id
        self.sl_id = sl_id
        self.tp_price = tp_price
        self.sl_price = sl_price
        self.sl_limit = sl_limit
        self.pending = 0
        self.used_ids = False  # the first exit pair takes the ids the client chose
