"""Currencies through the admin API, and instruments quoted in them: EUR (2 decimals) and
USDT (6 decimals) added, BTC-EUR (fractional to 8 decimals) and ETH/USDT listed, accounts in
each currency trading them, every balance, position and fee exact in the account's
currency on ``/v1`` and on the Alpaca ``/v2``; a USD account refused on a EUR instrument
and amounts beyond a currency's scale refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alpaca.trading.models import Position as AlpacaPosition
from alpaca.trading.models import TradeAccount

from .test_rest import PASSWORD, World


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def _account(w: World, name: str, currency: str, deposits: dict[str, str]) -> tuple[Any, int]:
    user = w.ok("POST", "/v1/admin/users", w.admin, json={"username": name, "password": PASSWORD})
    acct = w.ok(
        "POST",
        "/v1/admin/accounts",
        w.admin,
        json={"user_id": user["user_id"], "currency": currency},
    )["account"]
    for asset, amount in deposits.items():
        w.ok(
            "POST",
            f"/v1/admin/accounts/{acct}/transfers",
            w.admin,
            json={"asset": asset, "amount": amount},
        )
    key_id, secret = w.auth.create_key(user["user_id"])
    return {"Authorization": f"Bearer {key_id}:{secret}"}, acct


def _alpaca(headers: dict[str, str]) -> dict[str, str]:
    key_id, secret = headers["Authorization"].removeprefix("Bearer ").split(":", 1)
    return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}


def _listed(w: World) -> None:
    assert w.ok("POST", "/v1/admin/currencies", w.admin, json={"currency": "EUR", "scale": 2}) == {
        "currency": "EUR",
        "scale": 2,
    }
    w.ok("POST", "/v1/admin/currencies", w.admin, json={"currency": "USDT", "scale": 6})
    for symbol, currency, qty_scale, lot in (
        ("BTC-EUR", "EUR", 8, "0.00000001"),
        ("ETH/USDT", "USDT", 4, "0.0001"),
    ):
        w.ok(
            "POST",
            "/v1/admin/instruments",
            w.admin,
            json={
                "symbol": symbol,
                "tick_size": "0.01",
                "lot_size": lot,
                "qty_scale": qty_scale,
                "currency": currency,
                "reference_price": "100.00",
                "maker_fee_bps": 10,
                "taker_fee_bps": 20,
            },
        )


def test_currencies_listed_and_refused(w: World) -> None:
    assert w.ok("GET", "/v1/currencies") == [{"currency": "USD", "scale": 2}]
    _listed(w)
    assert w.ok("GET", "/v1/currencies") == [
        {"currency": "EUR", "scale": 2},
        {"currency": "USD", "scale": 2},
        {"currency": "USDT", "scale": 6},
    ]
    path = "/v1/admin/currencies"
    assert w.error(409, "POST", path, w.admin, json={"currency": "EUR", "scale": 2}) == (
        "duplicate_currency"
    )
    assert w.error(409, "POST", path, w.admin, json={"currency": "USD", "scale": 4}) == (
        "duplicate_currency"
    )
    for bad in (
        {"currency": "EU R", "scale": 2},  # not letters and digits
        {"currency": "E-UR", "scale": 2},
        {"currency": "ABCDEFGHIJKLM", "scale": 2},  # 13 characters
        {"currency": "XYZ", "scale": 2},  # an instrument's symbol
        {"currency": "GBP", "scale": -1},
        {"currency": "GBP", "scale": 10},  # beyond MAX_SCALE
    ):
        r = w.call("POST", path, w.admin, json=bad)
        assert r.status_code == 422, bad
        err = r.json()["error"]
        assert err["code"] == "invalid_currency"
        assert ("scale" if "GBP" in bad["currency"] else "currency") in err["message"]
    assert w.error(400, "POST", path, w.admin, json={"currency": "GBP"}) == "invalid_body"
    assert (
        w.error(400, "POST", path, w.admin, json={"currency": "GBP", "scale": 2, "x": 1})
        == "invalid_body"
    )
    assert w.error(403, "POST", path, w.alice, json={"currency": "GBP", "scale": 2}) == (
        "forbidden"
    )
    assert w.error(401, "POST", path, json={"currency": "GBP", "scale": 2}) == "unauthenticated"
    # an instrument may not take a currency's name, nor trade in an unknown currency
    body = {"symbol": "EUR"}
    assert w.error(422, "POST", "/v1/admin/instruments", w.admin, json=body) == (
        "invalid_instrument"
    )
    body = {"symbol": "ABC", "currency": "GBP"}
    assert w.error(422, "POST", "/v1/admin/instruments", w.admin, json=body) == ("unknown_currency")
    listed = {i["symbol"]: i["currency"] for i in w.ok("GET", "/v1/instruments")}
    assert listed == {"BTC-EUR": "EUR", "ETH/USDT": "USDT", "XYZ": "USD"}


def test_trading_in_eur_and_usdt(w: World) -> None:
    _listed(w)
    eur_buyer, eb = _account(w, "eur-buyer", "EUR", {"EUR": "10000.00"})
    eur_seller, _ = _account(w, "eur-seller", "EUR", {"BTC-EUR": "1"})
    usdt_buyer, ub = _account(w, "usdt-buyer", "USDT", {"USDT": "10000.123456"})
    usdt_seller, _ = _account(w, "usdt-seller", "USDT", {"ETH/USDT": "2.5"})

    # amounts beyond a currency's (or an instrument's) scale are refused, naming the field
    for acct, asset, amount in ((eb, "EUR", "1.001"), (ub, "USDT", "1.0000001")):
        r = w.call(
            "POST",
            f"/v1/admin/accounts/{acct}/transfers",
            w.admin,
            json={"asset": asset, "amount": amount},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_number"
        assert "amount" in r.json()["error"]["message"]
    over = {"symbol": "BTC-EUR", "side": "buy", "type": "limit", "price": "50000.00"}
    r = w.call("POST", "/v1/orders", eur_buyer, json={**over, "qty": "0.000000001"})
    assert r.status_code == 400 and "qty" in r.json()["error"]["message"]
    r = w.call("POST", "/v1/orders", eur_buyer, json={**over, "qty": "1", "price": "50000.001"})
    assert r.status_code == 400 and "price" in r.json()["error"]["message"]
    # a currency's cash cannot go to an account in another currency
    r = w.call(
        "POST",
        f"/v1/admin/accounts/{w.alice_acct}/transfers",
        w.admin,
        json={"asset": "EUR", "amount": "1.00"},
    )
    assert r.status_code == 422
    r = w.call(
        "POST",
        f"/v1/admin/accounts/{w.alice_acct}/transfers",
        w.admin,
        json={"asset": "BTC-EUR", "amount": "1"},
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_currency"

    # a USD account cannot trade an instrument quoted in EUR: /v1 and /v2 alike
    order = {**over, "qty": "0.1"}
    r = w.call("POST", "/v1/orders", w.alice, json=order)
    assert r.status_code == 422
    assert r.json()["error"] == {
        "code": "invalid_currency",
        "message": "the instrument trades in another currency",
    }
    alpaca_order = {
        "symbol": "BTC-EUR",
        "qty": "0.1",
        "side": "buy",
        "type": "limit",
        "limit_price": "50000.00",
        "time_in_force": "gtc",
    }
    r = w.call("POST", "/v2/orders", _alpaca(w.alice), json=alpaca_order)
    assert r.status_code == 403 and "another currency" in r.json()["message"]

    # BTC-EUR: 0.12345678 at 50,000.00 = 6,172.839 EUR, rounded down to 6,172.83;
    # the maker (buyer) pays 10 bps (6.17), the taker (seller) 20 bps (12.34)
    w.ok("POST", "/v1/orders", eur_buyer, json={**over, "qty": "0.12345678"})
    sell = {"symbol": "BTC-EUR", "side": "sell", "type": "limit", "price": "50000.00"}
    o = w.ok("POST", "/v1/orders", eur_seller, json={**sell, "qty": "0.12345678"})
    assert (o["status"], o["filled_qty"], o["avg_fill_price"]) == (
        "filled",
        "0.12345678",
        "50000.00",
    )
    (fill,) = w.ok("GET", "/v1/fills", eur_seller)
    assert (fill["qty"], fill["fee"], fill["liquidity"]) == ("0.12345678", "12.34", "taker")
    (fill,) = w.ok("GET", "/v1/fills", eur_buyer)
    assert (fill["fee"], fill["liquidity"]) == ("6.17", "maker")

    a = w.ok("GET", "/v1/account", eur_buyer)
    assert (a["currency"], a["cash"], a["equity"], a["buying_power"]) == (
        "EUR",
        "3821.00",  # 10,000.00 - 6,172.83 - 6.17
        "9993.83",  # and the position at its mark, 6,172.83
        "3821.00",
    )
    (p,) = w.ok("GET", "/v1/positions", eur_buyer)
    assert p == {
        "symbol": "BTC-EUR",
        "qty": "0.12345678",
        "cost_basis": "6172.83",
        "market_value": "6172.83",
        "unrealized_pnl": "0.00",
        "realized_pnl": "0.00",
        "mark": "50000.00",
        "currency": "EUR",
    }
    a = w.ok("GET", "/v1/account", eur_seller)
    assert (a["currency"], a["cash"]) == ("EUR", "6160.49")  # 6,172.83 - 12.34
    (p,) = w.ok("GET", "/v1/positions", eur_seller)
    assert (p["qty"], p["currency"]) == ("0.87654322", "EUR")

    # ETH/USDT: 1.5 at 3,000.25 = 4,500.375 USDT, exact at 6 decimals; fees 4.500375 (maker,
    # the seller) and 9.000750 (taker, the buyer)
    eth = {"symbol": "ETH/USDT", "type": "limit", "price": "3000.25", "qty": "1.5"}
    w.ok("POST", "/v1/orders", usdt_seller, json={**eth, "side": "sell"})
    w.ok("POST", "/v1/orders", usdt_buyer, json={**eth, "side": "buy"})
    (fill,) = w.ok("GET", "/v1/fills", usdt_buyer)
    assert (fill["price"], fill["qty"], fill["fee"]) == ("3000.25", "1.5000", "9.000750")
    a = w.ok("GET", "/v1/account", usdt_buyer)
    assert (a["currency"], a["cash"], a["equity"]) == (
        "USDT",
        "5490.747706",  # 10,000.123456 - 4,500.375 - 9.00075
        "9991.122706",
    )
    a = w.ok("GET", "/v1/account", usdt_seller)
    assert (a["cash"], a["realized"]) == ("4495.874625", "4500.375000")  # after 4.500375
    (p,) = w.ok("GET", "/v1/positions", usdt_seller)
    assert (p["qty"], p["cost_basis"], p["currency"]) == ("1.0000", "0.000000", "USDT")

    # the Alpaca surface: the same figures, in the account's currency, parsed by alpaca-py
    r = w.call("GET", "/v2/account", _alpaca(usdt_buyer))
    assert r.status_code == 200
    acct: Any = TradeAccount(**r.json())
    assert (acct.currency, acct.cash, acct.equity) == ("USDT", "5490.747706", "9991.122706")
    assert acct.long_market_value == "4500.375000"
    r = w.call("GET", "/v2/positions", _alpaca(eur_buyer))
    assert r.status_code == 200
    (raw,) = r.json()
    assert raw["currency"] == "EUR"
    pos: Any = AlpacaPosition(**raw)
    assert (pos.symbol, pos.qty, pos.avg_entry_price, pos.cost_basis, pos.market_value) == (
        "BTC-EUR",
        "0.12345678",
        "49999.92",  # 6,172.83 / 0.12345678 = 49,999.927..., rounded down to the tick's scale
        "6172.83",
        "6172.83",
    )
    r = w.call("GET", "/v2/account", _alpaca(eur_seller))
    assert (r.json()["currency"], r.json()["cash"]) == ("EUR", "6160.49")
