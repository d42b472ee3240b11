"""Bracket, OCO and trailing-stop orders on ``/v2``, driven by ``alpaca-py``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderClass, OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    StopLossRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from mercato.api.app import create_app
from mercato.domain.commands import CancelOrder


@pytest.fixture
def clients(market: Any, serve_app: Any) -> Iterator[tuple[TradingClient, TradingClient]]:
    """(the trader, account 2; the maker, account 1 quoting 99.00 / 101.00)."""
    auth = market.auth
    maker = auth.create_user("maker", "correct horse battery")
    auth.add_account(maker, 1)
    url, _ = serve_app(create_app(market.platform, auth))
    t_id, t_secret = auth.create_key(market.trader)
    m_id, m_secret = auth.create_key(maker)
    yield (
        TradingClient(t_id, t_secret, url_override=url),
        TradingClient(m_id, m_secret, url_override=url),
    )


def test_bracket_fills_places_exits_and_one_exit_cancels_the_other(
    clients: tuple[TradingClient, TradingClient],
) -> None:
    trader, maker = clients
    parent: Any = trader.submit_order(
        MarketOrderRequest(
            symbol="XYZ",
            qty=10,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            order_class=OrderClass.BRACKET,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95),
        )
    )
    assert parent.order_class == OrderClass.BRACKET and parent.status == OrderStatus.FILLED
    tp, sl = parent.legs
    assert (str(tp.limit_price), str(sl.stop_price)) == ("110.00", "95.00")
    assert tp.status == OrderStatus.NEW and sl.status == OrderStatus.NEW
    nested: Any = trader.get_orders(GetOrdersRequest(status="open", nested=True))  # type: ignore[arg-type]
    assert nested == []  # both exits are legs of the (filled) parent
    flat: Any = trader.get_orders(GetOrdersRequest(status="open"))  # type: ignore[arg-type]
    assert {o.id for o in flat} == {tp.id, sl.id}
    maker.submit_order(
        LimitOrderRequest(
            symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=110
        )
    )
    again: Any = trader.get_order_by_id(parent.id)
    tp, sl = again.legs
    assert tp.status == OrderStatus.FILLED and sl.status == OrderStatus.CANCELED


def test_oco_pair_cancel_one_cancels_the_other(
    clients: tuple[TradingClient, TradingClient],
) -> None:
    trader, _ = clients
    trader.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    oco: Any = trader.submit_order(
        LimitOrderRequest(
            symbol="XYZ",
            qty=10,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            limit_price=110,
            order_class=OrderClass.OCO,
            take_profit=TakeProfitRequest(limit_price=110),
            stop_loss=StopLossRequest(stop_price=95),
        )
    )
    assert oco.order_class == OrderClass.OCO and oco.status == OrderStatus.NEW
    (stop,) = oco.legs
    assert str(stop.stop_price) == "95.00" and stop.status == OrderStatus.NEW
    trader.cancel_order_by_id(stop.id)
    assert trader.get_order_by_id(oco.id).status == OrderStatus.CANCELED  # type: ignore[union-attr]


def test_trailing_stop_follows_the_market_then_fires_and_stays_a_trailing_stop(
    market: Any, clients: tuple[TradingClient, TradingClient]
) -> None:
    trader, maker = clients
    trader.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    trail: Any = trader.submit_order(
        TrailingStopOrderRequest(
            symbol="XYZ", qty=5, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, trail_price=2
        )
    )
    assert trail.type == "trailing_stop" and str(trail.stop_price) == "99.00"
    assert str(trail.hwm) == "101.00" and str(trail.trail_price) == "2.00"
    # the maker lifts its offer to 105.00 and the trader buys one there: the stop follows
    # (its first offer was placed on the core directly: it is pulled the same way)
    market.platform.core.process(CancelOrder(order_id=2, symbol="XYZ"))
    maker.submit_order(limit_order(OrderSide.SELL, 1, 105))
    trader.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC)
    )
    moved: Any = trader.get_order_by_id(trail.id)
    assert (str(moved.stop_price), str(moved.hwm)) == ("103.00", "105.00")
    assert moved.status == OrderStatus.NEW and market.platform.core.trailing
    # the maker bids 103.00 and the trader sells one into it: the trade there fires the stop
    maker.submit_order(limit_order(OrderSide.BUY, 10, 103))
    trader.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=1, side=OrderSide.SELL, time_in_force=TimeInForce.GTC)
    )
    fired: Any = trader.get_order_by_id(trail.id)
    assert fired.status == OrderStatus.FILLED and market.platform.core.trailing == {}
    assert fired.type == "trailing_stop" and str(fired.trail_price) == "2.00"
    assert str(fired.hwm) == "105.00" and str(fired.filled_avg_price) == "103.00"


def limit_order(side: OrderSide, qty: int, price: int) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol="XYZ", qty=qty, side=side, time_in_force=TimeInForce.GTC, limit_price=price
    )
