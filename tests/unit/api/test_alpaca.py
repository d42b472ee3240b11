"""The Alpaca-compatible surface, driven by Alpaca's own SDK (``alpaca-py``) against a real
server: only the base URL changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopOrderRequest,
)

from mercato.api.app import create_app

Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[tuple[str, str, str]]:
    """A served in-memory platform: XYZ at 100.00 with a maker (account 1) quoting
    99.00 / 101.00, and a trader (account 2, cash 100,000.00) whose key is returned."""
    platform, auth, user = market.platform, market.auth, market.trader
    key_id, secret = auth.create_key(user)
    app = create_app(platform, auth)
    url, _ = serve_app(app)
    yield url, key_id, secret


def client(server: tuple[str, str, str]) -> TradingClient:
    url, key_id, secret = server
    return TradingClient(key_id, secret, url_override=url)


def test_account_clock_and_assets(server: tuple[str, str, str]) -> None:
    c = client(server)
    account: Any = c.get_account()
    assert str(account.cash) == "100000.00" and account.account_number == "2"
    clock: Any = c.get_clock()
    assert clock.is_open
    assets: Any = c.get_all_assets()
    assert [a.symbol for a in assets] == ["XYZ"]


def test_orders_of_every_type_and_tif(server: tuple[str, str, str]) -> None:
    c = client(server)
    filled: Any = c.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert filled.status == OrderStatus.FILLED and str(filled.filled_avg_price) == "101.00"
    limit: Any = c.submit_order(
        LimitOrderRequest(
            symbol="XYZ",
            qty=5,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.GTC,
            limit_price=95.5,
            client_order_id="mine-1",
        )
    )
    assert limit.status == OrderStatus.NEW
    assert c.get_order_by_id(limit.id).client_order_id == "mine-1"  # type: ignore[union-attr]
    assert c.get_order_by_client_id("mine-1").id == limit.id  # type: ignore[union-attr]
    stop: Any = c.submit_order(
        StopOrderRequest(
            symbol="XYZ", qty=2, side=OrderSide.SELL, time_in_force=TimeInForce.GTC, stop_price=90
        )
    )
    stop_limit: Any = c.submit_order(
        StopLimitOrderRequest(
            symbol="XYZ",
            qty=2,
            side=OrderSide.SELL,
            time_in_force=TimeInForce.GTC,
            stop_price=90,
            limit_price=89,
        )
    )
    ioc: Any = c.submit_order(
        LimitOrderRequest(
            symbol="XYZ", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.IOC, limit_price=50
        )
    )
    assert ioc.status == OrderStatus.CANCELED
    fok: Any = c.submit_order(
        LimitOrderRequest(
            symbol="XYZ", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.FOK, limit_price=102
        )
    )
    assert fok.status == OrderStatus.FILLED
    open_ids = {o.id for o in c.get_orders(GetOrdersRequest(status="open"))}  # type: ignore[union-attr, arg-type]
    assert open_ids == {limit.id, stop.id, stop_limit.id}
    replaced: Any = c.replace_order_by_id(limit.id, ReplaceOrderRequest(qty=4, limit_price=96))
    assert str(replaced.limit_price) == "96.00" and str(replaced.qty) == "4"
    c.cancel_order_by_id(stop.id)
    assert {o.id for o in c.get_orders()} == {limit.id, stop_limit.id}  # type: ignore[union-attr]
    c.cancel_orders()
    assert c.get_orders() == []


def test_positions_list_and_close(server: tuple[str, str, str]) -> None:
    c = client(server)
    c.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    (pos,) = c.get_all_positions()  # type: ignore[misc]
    assert (pos.symbol, str(pos.qty), str(pos.avg_entry_price)) == ("XYZ", "10", "101.00")  # type: ignore[union-attr]
    closing: Any = c.close_position("XYZ")
    assert closing.status == OrderStatus.FILLED
    assert c.get_all_positions() == []


def test_errors_come_back_as_alpaca_api_errors(server: tuple[str, str, str]) -> None:
    c = client(server)
    with pytest.raises(APIError) as e:
        c.submit_order(
            LimitOrderRequest(
                symbol="XYZ",
                qty=100_000,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.DAY,
                limit_price=100,
            )
        )
    assert e.value.status_code == 403 and "insufficient" in str(e.value)
    url, _, _ = server
    with pytest.raises(APIError):
        TradingClient("nope", "nope", url_override=url).get_account()
