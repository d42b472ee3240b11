"""Events: everything the core says. Each is stamped with a global sequence number."""

from __future__ import annotations

import msgspec

from mercato.domain.ledger import Entry
from mercato.domain.risk import RiskLimits


class Event(msgspec.Struct, tag_field="k", array_like=True, gc=False):
    """Positional construction is allowed (the engine uses it on the hot path): seq, ts, then
    the fields in the order they are declared."""

    seq: int
    ts: int


class InstrumentAdded(Event, tag="ia"):
    symbol: str
    tick_size: int
    lot_size: int
    price_scale: int
    qty_scale: int


class TradingStatusChanged(Event, tag="ts"):
    symbol: str
    status: int


class Rejected(Event, tag="rj"):
    """A command refused; it changed nothing. ``command`` is the command's tag."""

    command: str
    order_id: int
    symbol: str
    reason: str
    detail: str = ""
    account: int = 0  # the order's account when known (0: unknown order)


class OrderAccepted(Event, tag="ac"):
    order_id: int
    account: int
    symbol: str
    side: int
    type: int
    tif: int
    price: int
    stop_price: int
    qty: int
    post_only: bool
    client_order_id: str = ""
    protect_price: int = 0  # market and stop orders: the worst price they may trade at
    expire_ts: int = 0  # GTD orders: when what is left expires (core time, ns)
    self_trade: int = 0  # its self-trade prevention mode as resolved (``SelfTrade``)


class Trade(Event, tag="tr"):
    """One execution: a fill for the taker and one for the maker, at the maker's price."""

    symbol: str
    price: int
    qty: int
    taker_order_id: int
    maker_order_id: int
    taker_account: int
    maker_account: int
    taker_side: int
    taker_remaining: int
    maker_remaining: int


class OrderCancelled(Event, tag="cx"):
    order_id: int
    account: int
    symbol: str
    remaining: int
    reason: str


class OrderReplaced(Event, tag="rp"):
    order_id: int
    account: int
    symbol: str
    price: int
    qty: int  # the new remaining quantity
    stop_price: int
    kept_priority: bool


class OrderExpired(Event, tag="ex"):
    order_id: int
    account: int
    symbol: str
    remaining: int


class OrderTriggered(Event, tag="tg"):
    order_id: int
    account: int
    symbol: str
    stop_price: int
    last_price: int


class BookDelta(Event, tag="bd"):
    """The aggregate resting quantity at one price level after a change (0: level gone)."""

    symbol: str
    side: int
    price: int
    qty: int


class AuctionIndicative(Event, tag="ind"):
    """While an auction collects orders: the price it would uncross at now, the volume
    that would execute and the surplus left on the heavier side (``surplus_side`` 1 buy,
    2 sell, 0 none); all 0 when nothing would execute, and once more when the auction
    ends. Published when it changes."""

    symbol: str
    price: int
    qty: int
    surplus: int
    surplus_side: int


# -- accounts, money and risk (``mercato.engine.core``) ------------------------------------


class CurrencyAdded(Event, tag="cur"):
    code: str
    scale: int


class AccountCreated(Event, tag="acct"):
    account: int
    kind: int
    currency: str
    venue: int


class LedgerPosted(Event, tag="lp"):
    """One balanced ledger posting (deposit, withdrawal, trade, ...).

    ``posting`` is the ledger's own sequence number; ``ref`` what caused it: the seq of the
    ``Trade`` event for a trade, the caller's reference for a deposit or a withdrawal.
    """

    posting: int
    kind: str
    ref: int
    entries: tuple[Entry, ...]


class PositionChanged(Event, tag="pos"):
    """An account's position in a symbol after a fill or a deposit (cost: signed cash)."""

    account: int
    symbol: str
    qty: int
    cost: int
    realized: int


class RiskLimitsSet(Event, tag="lim"):
    account: int  # 0: the platform defaults
    limits: RiskLimits | None  # None: the account follows the defaults again


class InstrumentRiskSet(Event, tag="irisk"):
    symbol: str
    maker_fee_bps: int
    taker_fee_bps: int
    initial_margin_bps: int
    maintenance_margin_bps: int
    liquidation_margin_bps: int
    reference_price: int


class KillSwitchSet(Event, tag="kill"):
    account: int  # 0: the whole platform
    on: bool


class SelfTradeSet(Event, tag="stp"):
    """An account's self-trade prevention mode (``SelfTrade``) was set."""

    account: int
    mode: int


class MarketPriceSet(Event, tag="mp"):
    symbol: str
    price: int


class MarginCall(Event, tag="mc"):
    """A margin account's equity fell below its maintenance requirement (cash units)."""

    account: int
    equity: int
    maintenance: int


class MarginRestored(Event, tag="mok"):
    """A margin account under a call is back at or above its maintenance requirement."""

    account: int
    equity: int
    maintenance: int


class Liquidation(Event, tag="liq"):
    """The core sends ``order_id`` (a market order) to close a position of ``account``,
    whose equity is below its liquidation requirement. The order follows, as usual."""

    account: int
    order_id: int
    symbol: str
    side: int
    qty: int
    equity: int
    requirement: int


class DuplicateClientOrder(Event, tag="dup"):
    """A new order repeated a ``client_order_id``: nothing was created. ``order_id`` is
    the original order's id, ``rejected_id`` the id the repeat asked for."""

    account: int
    client_order_id: str
    order_id: int
    rejected_id: int


class OrdersLinked(Event, tag="link"):
    """Orders the core manages together: ``kind`` "bracket" (entry, take-profit,
    stop-loss) or "oco" (limit, stop). Exit legs of a bracket go in when the entry fills."""

    kind: str
    account: int
    symbol: str
    order_ids: tuple[int, ...]


class StopTrails(Event, tag="trails"):
    """An accepted stop order trails the market by ``trail_amount`` price units or by
    ``trail_bps`` of the best price; ``best`` is the price it starts from (the mark)."""

    order_id: int
    account: int
    symbol: str
    trail_amount: int
    trail_bps: int
    best: int


class StopMoved(Event, tag="trail"):
    """A trailing stop's stop price followed the market; ``best`` is the best price traded
    since it was accepted (highest for a sell stop, lowest for a buy stop)."""

    order_id: int
    account: int
    symbol: str
    stop_price: int
    best: int = 0


AnyEvent = (
    InstrumentAdded
    | TradingStatusChanged
    | Rejected
    | OrderAccepted
    | Trade
    | OrderCancelled
    | OrderReplaced
    | OrderExpired
    | OrderTriggered
    | BookDelta
    | AuctionIndicative
    | CurrencyAdded
    | AccountCreated
    | LedgerPosted
    | PositionChanged
    | RiskLimitsSet
    | InstrumentRiskSet
    | KillSwitchSet
    | MarketPriceSet
    | MarginCall
    | MarginRestored
    | Liquidation
    | DuplicateClientOrder
    | OrdersLinked
    | StopTrails
    | StopMoved
    | SelfTradeSet
)
