"""An opening auction over the API: an administrator moves XYZ through the phases,
alpaca-py places ``opg`` and ``cls`` orders, and the uncross fills them at one price."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest

from mercato.api.app import create_app


@pytest.fixture
def desk(market: Any, serve_app: Any) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """(url, the admin's headers, the trader's headers)."""
    auth = market.auth
    url, _ = serve_app(create_app(market.platform, auth))
    admin_id, admin_secret = auth.create_key(auth.create_user("admin", "a long password", "admin"))
    t_id, t_secret = auth.create_key(market.trader)
    yield (
        url,
        {"APCA-API-KEY-ID": admin_id, "APCA-API-SECRET-KEY": admin_secret},
        {"APCA-API-KEY-ID": t_id, "APCA-API-SECRET-KEY": t_secret},
    )


def set_phase(url: str, headers: dict[str, str], status: str) -> None:
    r = httpx.put(
        f"{url}/v1/admin/instruments/XYZ/status", headers=headers, json={"status": status}
    )
    assert r.status_code == 200, r.text
    assert httpx.get(f"{url}/v1/instruments").json()[0]["status"] == status


def limit(side: OrderSide, qty: int, price: int, tif: TimeInForce) -> LimitOrderRequest:
    return LimitOrderRequest(symbol="XYZ", qty=qty, side=side, time_in_force=tif, limit_price=price)


def test_an_opening_auction_fills_on_open_orders_at_one_price(
    desk: tuple[str, dict[str, str], dict[str, str]],
) -> None:
    url, admin, headers = desk
    trader = TradingClient(
        headers["APCA-API-KEY-ID"], headers["APCA-API-SECRET-KEY"], url_override=url
    )
    order = {"symbol": "XYZ", "qty": "1", "side": "buy", "type": "limit", "limit_price": "100"}
    refused = httpx.post(
        f"{url}/v2/orders", headers=headers, json={**order, "time_in_force": "opg"}
    )
    assert refused.status_code == 403 and "opening auction" in refused.text  # open: too late
    set_phase(url, admin, "pre_open")
    buy: Any = trader.submit_order(limit(OrderSide.BUY, 5, 102, TimeInForce.OPG))
    assert buy.status == OrderStatus.NEW and buy.time_in_force == TimeInForce.OPG
    # the maker (account 1) asks 101.00 for 1,000: an on-open buy at 102.00 crosses it,
    # and nothing trades until the open
    assert trader.get_order_by_id(buy.id).status == OrderStatus.NEW  # type: ignore[union-attr]
    (xyz,) = httpx.get(f"{url}/v1/instruments").json()
    assert xyz["auction"] == {
        "indicative_price": "101.00",
        "indicative_qty": "5",
        "surplus": "995",
        "surplus_side": "sell",
    }
    set_phase(url, admin, "opening_auction")
    set_phase(url, admin, "open")
    assert httpx.get(f"{url}/v1/instruments").json()[0]["auction"] is None
    filled: Any = trader.get_order_by_id(buy.id)
    assert filled.status == OrderStatus.FILLED and str(filled.filled_avg_price) == "101.00"
    # an on-close sell waits through the day, even where it crosses the maker's 99.00 bid
    on_close: Any = trader.submit_order(limit(OrderSide.SELL, 3, 99, TimeInForce.CLS))
    assert trader.get_order_by_id(on_close.id).status == OrderStatus.NEW  # type: ignore[union-attr]
    set_phase(url, admin, "closing_auction")
    set_phase(url, admin, "closed")
    done: Any = trader.get_order_by_id(on_close.id)
    assert done.status == OrderStatus.FILLED and str(done.filled_avg_price) == "99.00"
