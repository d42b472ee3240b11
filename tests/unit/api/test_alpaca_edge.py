"""Nothing silently wrong on ``/v2``: what an Alpaca client asks and Mercato does not
serve is refused with a 422 naming it (bracket, OCO and OTO orders, notional, trailing,
extended hours, unknown fields and query parameters), and what it serves works as Alpaca
documents it (closing a quantity or a percentage of a position, listing orders by time,
side and direction), driven by alpaca-py where it can be."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from argon2 import PasswordHasher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from mercato.api.app import create_app
from mercato.domain.commands import (
    AddInstrument,
    CreateAccount,
    Deposit,
    NewOrder,
    SetInstrumentRisk,
)
from mercato.domain.types import AccountKind, OrderType, Side
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

Serve = Callable[[Any], tuple[str, int]]


@pytest.fixture
def http(market: Any) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The ``market`` fixture's platform in process, and the trader's Alpaca headers."""
    key_id, secret = market.auth.create_key(market.trader)
    with TestClient(create_app(market.platform, market.auth)) as client:
        yield client, {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}


def _order(**kw: Any) -> dict[str, Any]:
    return {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": "1", "limit_price": "95", **kw}


def _refused(r: Any, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"} and body["code"] == status * 100_000 + 1
    for word in words:
        assert word in body["message"], body


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"take_profit": {"limit_price": "110"}}, "take_profit"),
        ({"stop_loss": {"stop_price": "90"}}, "stop_loss"),
        ({"trail_price": "1"}, "trail_price"),
        ({"trail_percent": "1"}, "trail_percent"),
        ({"extended_hours": True}, "extended_hours"),
        ({"position_intent": "buy_to_open"}, "position_intent"),
        ({"colour": "red"}, "colour"),
        ({"client_order_id": "a\u0000b"}, "client_order_id"),
        ({"type": "limit", "order_type": "market"}, "order_type"),
    ],
)
def test_an_order_field_mercato_does_not_serve_is_refused(
    http: tuple[TestClient, dict[str, str]], extra: dict[str, Any], named: str
) -> None:
    client, headers = http
    _refused(client.post("/v2/orders", json=_order(**extra), headers=headers), 422, named)
    assert client.get("/v2/orders?status=all", headers=headers).json() == []


def test_simple_orders_and_plain_fields_still_work(http: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = http
    for extra in ({}, {"order_class": "simple"}, {"order_class": ""}, {"extended_hours": False}):
        r = client.post("/v2/orders", json=_order(**extra), headers=headers)
        assert r.status_code == 200, r.text
    assert len(client.get("/v2/orders", headers=headers).json()) == 4


def test_unknown_query_parameters_and_bodies_are_refused_on_v2(
    http: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = http
    _refused(client.get("/v2/orders?colour=red", headers=headers), 422, "colour")
    _refused(client.get("/v2/account?x=1", headers=headers), 422, "'x'")
    _refused(client.get("/v2/orders?limit=0", headers=headers), 422, "limit")
    _refused(client.get("/v2/orders?limit=x", headers=headers), 422, "limit")
    _refused(client.get("/v2/orders?direction=up", headers=headers), 422, "direction")
    _refused(client.get("/v2/orders?side=short", headers=headers), 422, "side")
    _refused(client.get("/v2/orders?after=yesterday", headers=headers), 422, "after")
    _refused(client.get("/v2/orders?nested=maybe", headers=headers), 422, "nested")
    _refused(client.get("/v2/orders?page_token=1.2", headers=headers), 422, "paged")
    _refused(client.get("/v2/stocks/trades?symbols=XYZ&asof=2024-01-01"), 422, "asof")
    _refused(client.get("/v2/stocks/trades?symbols=XYZ&feed=otc"), 422, "feed")
    assert client.get("/v2/stocks/trades?symbols=XYZ&feed=sip").status_code == 200
    r = client.get("/v2/stocks/bars?symbols=XYZ&timeframe=1Min&feed=iex&adjustment=split")
    assert r.status_code == 200
    _refused(client.get("/v2/stocks/trades?symbols=XYZ&adjustment=raw"), 422, "adjustment")
    # a body on a route that reads none (close the position "with qty 1"): refused
    r = client.request("DELETE", "/v2/positions/XYZ", json={"qty": "1"}, headers=headers)
    _refused(r, 422, "body")
    r = client.post(
        "/v2/orders", content=b'{"symbol":"XYZ","side":"buy","side":"sell"}', headers=headers
    )
    _refused(r, 400, "twice")
    r = client.post(
        "/v2/orders",
        content=b"symbol=XYZ",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    _refused(r, 415, "JSON")


@pytest.fixture
def sdk(market: Any, serve_app: Serve) -> TradingClient:
    key_id, secret = market.auth.create_key(market.trader)
    url, _ = serve_app(create_app(market.platform, market.auth))
    return TradingClient(key_id, secret, url_override=url)


def test_close_a_quantity_or_a_percentage_of_a_position(sdk: TradingClient) -> None:
    sdk.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    closing: Any = sdk.close_position("XYZ", ClosePositionRequest(qty="3"))
    assert str(closing.qty) == "3" and closing.side == OrderSide.SELL
    pos: Any = sdk.get_open_position("XYZ")
    assert str(pos.qty) == "7"
    closing = sdk.close_position("XYZ", ClosePositionRequest(percentage="50"))
    assert str(closing.qty) == "3"  # half of 7, rounded down to the lot
    assert str(sdk.get_open_position("XYZ").qty) == "4"  # type: ignore[union-attr]
    for bad in (ClosePositionRequest(qty="5"), ClosePositionRequest(percentage="101")):
        with pytest.raises(APIError) as e:
            sdk.close_position("XYZ", bad)
        assert e.value.status_code in (403, 422)
    with pytest.raises(APIError) as e:
        sdk.close_position("XYZ", ClosePositionRequest(percentage="10"))  # 0.4: under a lot
    assert e.value.status_code == 422
    assert str(sdk.get_open_position("XYZ").qty) == "4"  # type: ignore[union-attr]
    closing = sdk.close_position("XYZ", ClosePositionRequest(percentage="100"))
    assert str(closing.qty) == "4"
    assert sdk.get_all_positions() == []


def test_list_orders_by_time_side_and_direction(sdk: TradingClient) -> None:
    def limit(side: OrderSide, price: float) -> Any:
        return sdk.submit_order(
            LimitOrderRequest(
                symbol="XYZ", qty=1, side=side, time_in_force=TimeInForce.GTC, limit_price=price
            )
        )

    bought: Any = sdk.submit_order(
        MarketOrderRequest(symbol="XYZ", qty=5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    first = limit(OrderSide.BUY, 95)
    middle = datetime.now(UTC)
    second, third = limit(OrderSide.BUY, 96), limit(OrderSide.SELL, 105)
    every: Any = sdk.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in every] == [third.id, second.id, first.id, bought.id]  # newest first
    asc: Any = sdk.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc"))
    assert [o.id for o in asc] == [bought.id, first.id, second.id, third.id]
    buys: Any = sdk.get_orders(GetOrdersRequest(side=OrderSide.BUY))
    assert {o.id for o in buys} == {first.id, second.id}
    later: Any = sdk.get_orders(GetOrdersRequest(after=middle))
    assert {o.id for o in later} == {second.id, third.id}
    earlier: Any = sdk.get_orders(GetOrdersRequest(until=middle))
    assert [o.id for o in earlier] == [first.id]
    nested: Any = sdk.get_orders(GetOrdersRequest(nested=True, limit=2))
    assert [o.id for o in nested] == [third.id, second.id]


_ODD: Any = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=30),
    st.sampled_from(["1" + "0" * 30, "1e400", str(2**64), "0.000000001", "simple", "bracket"]),
)


@pytest.fixture
def journaled(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """As ``http``, over a platform that journals to disk (a number it cannot encode
    would be a server error): XYZ quoted 99.00 / 101.00, a trader with 100,000.00."""
    platform = Platform(tmp_path / "node", fsync=False)
    auth = AuthStore(
        f"sqlite:///{tmp_path / 'users.sqlite'}",
        hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1),
    )
    for cmd in [
        AddInstrument(symbol="XYZ"),
        SetInstrumentRisk(symbol="XYZ", reference_price=10_000),
        CreateAccount(account=1, kind=AccountKind.MARGIN),
        Deposit(account=1, asset="USD", amount=10**10),
        CreateAccount(account=2),
        Deposit(account=2, asset="USD", amount=10_000_000),
        *(
            NewOrder(
                order_id=oid,
                account=1,
                symbol="XYZ",
                side=side,
                type=OrderType.LIMIT,
                qty=1_000,
                price=price,
            )
            for oid, side, price in [(1, Side.BUY, 9_900), (2, Side.SELL, 10_100)]
        ),
    ]:
        platform.core.process(cmd)
    user = auth.create_user("trader", "correct horse battery")
    auth.add_account(user, 2)
    key_id, secret = auth.create_key(user)
    with TestClient(create_app(platform, auth)) as client:
        yield client, {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
    auth.close()


@pytest.mark.parametrize("path", ["/v2/orders", "/v2/orders/{id}", "/v2/positions/XYZ"])
def test_odd_values_on_v2_never_make_a_server_error(
    journaled: tuple[TestClient, dict[str, str]], path: str
) -> None:
    """Huge, fractional, negative and non-numeric values in each field of an order, a
    replace and the close of a position: every answer below 500, in Alpaca's shape."""
    client, headers = journaled
    client.post("/v2/orders", json=_order(type="market", limit_price=None), headers=headers)
    resting = client.post("/v2/orders", json=_order(), headers=headers).json()
    path = path.format(id=resting["id"])
    fields = {
        "/v2/orders": sorted(_order(stop_price="1", client_order_id="c", time_in_force="gtc")),
        "/v2/orders/{id}": ["qty", "limit_price", "stop_price"],
        "/v2/positions/XYZ": ["qty", "percentage"],
    }[path if "positions" in path or path == "/v2/orders" else "/v2/orders/{id}"]

    @settings(
        max_examples=60,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(field=st.sampled_from(fields), value=_ODD)
    def run(field: str, value: Any) -> None:
        if path == "/v2/orders":
            r = client.post(path, json={**_order(), field: value}, headers=headers)
        elif "positions" in path:
            r = client.delete(path, params={field: str(value)}, headers=headers)
        else:
            r = client.patch(path, json={field: value}, headers=headers)
        assert r.status_code < 500, (field, value, r.status_code, r.text)
        if r.status_code >= 400:
            assert set(r.json()) == {"code", "message"}

    run()
