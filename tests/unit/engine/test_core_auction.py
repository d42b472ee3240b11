"""Auctions through the risk core: holds taken while orders collect, settled by the uncross,
given back when what is left expires or is cancelled; replay from a core snapshot alike."""

from __future__ import annotations

from mercato.domain import (
    NewOrder,
    OrderCancelled,
    OrderExpired,
    Rejected,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import AccountKind, OrderType, TimeInForce, TradingStatus
from mercato.engine.core import Core

from .test_core_scenarios import BUY, SELL, SYM, TRADER, WHALE, Desk

MARKET = int(OrderType.MARKET)


def phase(desk: Desk, st: TradingStatus) -> list[object]:
    return list(desk.do(SetTradingStatus(symbol=SYM, status=st)))


def market(
    desk: Desk, account: int, side: int, qty: int, tif: int = TimeInForce.DAY
) -> list[object]:
    desk.next_id += 1
    return list(
        desk.do(
            NewOrder(
                order_id=desk.next_id,
                account=account,
                symbol=SYM,
                side=side,
                type=MARKET,
                qty=qty,
                tif=tif,
            )
        )
    )


def test_an_opening_auction_settles_through_the_core_and_gives_back_what_is_left() -> None:
    desk = Desk(AccountKind.CASH, 1_000_000)
    desk.print_at(10_000)  # the previous close: the market orders' protection comes from it
    phase(desk, TradingStatus.PRE_OPEN)
    market(desk, TRADER, BUY, 30)
    desk.limit(TRADER, BUY, 10, 9_900, tif=TimeInForce.OPG)
    desk.limit(WHALE, SELL, 25, 10_000)
    s = desk.core.summary(TRADER)
    assert s.open_orders == 2 and s.reserved > 30 * 10_000  # the market order at its collar
    events = phase(desk, TradingStatus.OPEN)
    trades = [e for e in events if isinstance(e, Trade)]
    assert [(t.price, t.qty) for t in trades] == [(10_000, 25)]
    assert desk.core.positions.get(TRADER, SYM).qty == 25
    assert any(isinstance(e, OrderCancelled) and e.reason == "market" for e in events)
    assert any(isinstance(e, OrderExpired) for e in events)  # the on-open limit
    s = desk.core.summary(TRADER)
    assert (s.open_orders, s.reserved) == (0, 0)
    assert s.cash == 1_000_000 - 25 * 10_000


def test_on_open_orders_are_refused_once_the_market_is_open() -> None:
    desk = Desk(AccountKind.CASH, 1_000_000)
    (r,) = desk.limit(TRADER, BUY, 1, 10_000, tif=TimeInForce.OPG)
    assert isinstance(r, Rejected) and r.reason == "invalid_tif"
    assert desk.core.summary(TRADER).reserved == 0


def test_a_core_snapshot_mid_auction_replays_alike() -> None:
    desk = Desk(AccountKind.MARGIN, 1_000_000)
    desk.print_at(10_000)
    desk.limit(TRADER, SELL, 5, 10_100, tif=TimeInForce.CLS)
    phase(desk, TradingStatus.PRE_OPEN)
    market(desk, TRADER, BUY, 3)
    desk.limit(WHALE, SELL, 2, 9_900)
    copy = Core.restore(desk.core.encode())
    assert copy.state_hash() == desk.core.state_hash()
    rest = [
        SetTradingStatus(symbol=SYM, status=TradingStatus.OPEN),
        SetTradingStatus(symbol=SYM, status=TradingStatus.CLOSING_AUCTION),
        NewOrder(order_id=999, account=WHALE, symbol=SYM, side=BUY, type=2, qty=5, price=10_100),
        SetTradingStatus(symbol=SYM, status=TradingStatus.CLOSED),
    ]
    for c in rest:
        assert copy.process(c) == desk.core.process(c)
    assert copy.state_hash() == desk.core.state_hash()
    assert desk.core.positions.get(TRADER, SYM).qty == 2 - 5  # bought 2, sold 5 at the close
