"""A paper account over the API (issue 11): its market order fills at the market's price
as soon as the instrument has traded, with no paper order before it (found: refused
``no_reference_price`` until some paper order rested)."""

from __future__ import annotations

from pathlib import Path

from .test_rest import PASSWORD, World, buy


def test_a_paper_market_order_fills_at_the_last_trade(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        w.ok("POST", "/v1/orders", w.alice, json=buy("100.50", "3"))
        sell = {"symbol": "XYZ", "side": "sell", "type": "market", "qty": "3"}
        w.ok("POST", "/v1/orders", w.bob, json=sell)  # XYZ trades at 100.50
        user = w.ok(
            "POST", "/v1/admin/users", w.admin, json={"username": "pat", "password": PASSWORD}
        )
        body = {"user_id": user["user_id"], "venue": "paper"}
        acct = w.ok("POST", "/v1/admin/accounts", w.admin, json=body)["account"]
        w.ok(
            "POST",
            f"/v1/admin/accounts/{acct}/transfers",
            w.admin,
            json={"asset": "USD", "amount": "10000.00"},
        )
        order = {"symbol": "XYZ", "side": "buy", "type": "market", "qty": "2"}
        o = w.ok("POST", "/v1/orders", w.headers(user["user_id"]), json=order)
        assert (o["status"], o["filled_qty"], o["avg_fill_price"]) == ("filled", "2", "100.50")
    finally:
        w.client.__exit__(None, None, None)
