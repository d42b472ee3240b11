"""The native REST API over an in-memory platform: trading end to end, validation at the
edge, object-level authorization, idempotency, rate limits, and an authorization matrix
generated from the route table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from mercato.api.app import ADMIN, PUBLIC, ROUTES, TRADER, create_app
from mercato.services.auth import AuthStore
from mercato.services.platform import Platform

PASSWORD = "correct horse battery"


class World:
    def __init__(
        self,
        tmp: Path,
        rate: float = 1_000.0,
        burst: int = 1_000,
        platform: Platform | None = None,
    ) -> None:
        self.platform = platform or Platform()
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        self.auth = AuthStore(f"sqlite:///{tmp / 'users.sqlite'}", hasher=hasher)
        admin = self.auth.create_user("admin", PASSWORD, "admin")
        self.admin = self.headers(admin)
        self.client = TestClient(create_app(self.platform, self.auth, rate=rate, burst=burst))
        self.client.__enter__()
        self.ok(
            "POST",
            "/v1/admin/instruments",
            self.admin,
            json={
                "symbol": "XYZ",
                "tick_size": "0.01",
                "reference_price": "100.00",
                "maker_fee_bps": 1,
                "taker_fee_bps": 2,
            },
        )
        self.alice, self.alice_acct = self.trader("alice")
        self.bob, self.bob_acct = self.trader("bob")

    def headers(self, user_id: int) -> dict[str, str]:
        key_id, secret = self.auth.create_key(user_id)
        return {"Authorization": f"Bearer {key_id}:{secret}"}

    def trader(self, name: str) -> tuple[dict[str, str], int]:
        user = self.ok(
            "POST", "/v1/admin/users", self.admin, json={"username": name, "password": PASSWORD}
        )
        acct = self.ok("POST", "/v1/admin/accounts", self.admin, json={"user_id": user["user_id"]})
        self.ok(
            "POST",
            f"/v1/admin/accounts/{acct['account']}/transfers",
            self.admin,
            json={"asset": "USD", "amount": "100000.00"},
        )
        self.ok(
            "POST",
            f"/v1/admin/accounts/{acct['account']}/transfers",
            self.admin,
            json={"asset": "XYZ", "amount": "500"},
        )
        return self.headers(user["user_id"]), acct["account"]

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return self.client.request(method, path, headers=headers or {}, **kw)

    def ok(self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        r = self.call(method, path, headers, **kw)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    def error(
        self, status: int, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> str:
        r = self.call(method, path, headers, **kw)
        assert r.status_code == status, (method, path, r.status_code, r.text)
        return str(r.json()["error"]["code"])


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def buy(price: str = "100.00", qty: str = "10", **kw: Any) -> dict[str, Any]:
    return {"symbol": "XYZ", "side": "buy", "type": "limit", "qty": qty, "price": price, **kw}


def test_place_fill_and_read_back(w: World) -> None:
    o = w.ok("POST", "/v1/orders", w.alice, json=buy())
    assert o["status"] == "accepted" and o["remaining_qty"] == "10"
    sell = {"symbol": "XYZ", "side": "sell", "type": "market", "qty": "4"}
    w.ok("POST", "/v1/orders", w.bob, json=sell)
    got = w.ok("GET", f"/v1/orders/{o['id']}", w.alice)
    assert (got["status"], got["filled_qty"], got["avg_fill_price"]) == (
        "partially_filled",
        "4",
        "100.00",
    )
    assert [h["what"] for h in got["history"]] == ["accepted", "partially_filled"]
    (fill,) = w.ok("GET", "/v1/fills", w.alice)
    assert (fill["price"], fill["qty"], fill["liquidity"], fill["fee"]) == (
        "100.00",
        "4",
        "maker",
        "0.04",
    )
    pos = w.ok("GET", "/v1/positions", w.alice)
    assert pos[0]["qty"] == "504"
    acct = w.ok("GET", "/v1/account", w.alice)
    assert acct["cash"] == "99599.96"  # 100,000 - 400.00 - 0.04 fee
    assert acct["reserved"] == "600.16"  # 1,000.20 held, less the fill's 400.00 and 0.04 fee
    assert [x["id"] for x in w.ok("GET", "/v1/orders", w.alice)] == [o["id"]]
    w.ok("DELETE", f"/v1/orders/{o['id']}", w.alice)
    assert w.ok("GET", "/v1/orders", w.alice) == []
    assert w.ok("GET", "/v1/orders?status=closed", w.alice)[0]["status"] == "cancelled"
    assert w.ok("GET", "/v1/account", w.alice)["reserved"] == "0.00"


def test_a_trailing_stop_shows_its_trail_while_it_waits_and_after_it_fires(w: World) -> None:
    w.ok("POST", "/v1/orders", w.bob, json=buy("101.00", qty="1") | {"side": "sell"})
    w.ok("POST", "/v1/orders", w.alice, json=buy("101.00", qty="1"))  # last trade 101.00
    trail = {"type": "stop", "stop_price": "99.00", "trail_amount": "2.00", "price": None}
    o = w.ok("POST", "/v1/orders", w.alice, json=buy(qty="5") | trail | {"side": "sell"})
    assert (o["type"], o["trail_amount"], o["trail_bps"]) == ("stop", "2.00", None)
    w.ok("POST", "/v1/orders", w.bob, json=buy("98.00", qty="10"))
    w.ok("POST", "/v1/orders", w.alice, json=buy("98.00", qty="1") | {"side": "sell"})
    got = w.ok("GET", f"/v1/orders/{o['id']}", w.alice)
    assert (got["status"], got["trail_amount"], got["avg_fill_price"]) == (
        "filled",
        "2.00",
        "98.00",
    )
    assert [h["what"] for h in got["history"]][:2] == ["accepted", "trailing"]


def test_replace_and_cancel_all(w: World) -> None:
    o = w.ok("POST", "/v1/orders", w.alice, json=buy())
    w.ok("POST", "/v1/orders", w.alice, json=buy("99.00"))
    r = w.ok("PATCH", f"/v1/orders/{o['id']}", w.alice, json={"qty": "3", "price": "99.50"})
    assert (r["status"], r["price"], r["remaining_qty"]) == ("replaced", "99.50", "3")
    assert len(w.ok("DELETE", "/v1/orders", w.alice)["cancelled"]) == 2


def test_risk_rejects_are_machine_readable(w: World) -> None:
    assert (
        w.error(422, "POST", "/v1/orders", w.alice, json=buy(qty="100000"))
        == "insufficient_buying_power"
    )
    assert w.error(422, "POST", "/v1/orders", w.alice, json=buy(qty="-1")) == "invalid_qty"
    sell = {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": "501", "price": "101.00"}
    assert w.error(422, "POST", "/v1/orders", w.alice, json=sell) == "short_sale_not_allowed"


def test_bad_input_gets_a_clear_4xx(w: World) -> None:
    assert (
        w.error(400, "POST", "/v1/orders", w.alice, json={**buy(), "colour": "red"})
        == "invalid_body"
    )
    assert w.error(400, "POST", "/v1/orders", w.alice, json={**buy(), "qty": 10}) == "invalid_body"
    assert w.error(400, "POST", "/v1/orders", w.alice, json=buy(price="nan")) == "invalid_number"
    assert w.error(400, "POST", "/v1/orders", w.alice, json=buy(price="1e3")) == "invalid_number"
    assert w.error(400, "POST", "/v1/orders", w.alice, content=b"{not json") == "invalid_json"
    assert w.error(413, "POST", "/v1/orders", w.alice, content=b" " * 70_000) == "body_too_large"
    assert (
        w.error(404, "POST", "/v1/orders", w.alice, json={**buy(), "symbol": "NOPE"})
        == "unknown_symbol"
    )
    assert w.error(400, "GET", "/v1/orders?limit=x", w.alice) == "invalid_query"


def test_no_one_sees_or_touches_anothers_orders(w: World) -> None:
    o = w.ok("POST", "/v1/orders", w.alice, json=buy())
    assert w.error(404, "GET", f"/v1/orders/{o['id']}", w.bob) == "unknown_order"
    assert w.error(404, "DELETE", f"/v1/orders/{o['id']}", w.bob) == "unknown_order"
    assert (
        w.error(404, "PATCH", f"/v1/orders/{o['id']}", w.bob, json={"qty": "1", "price": "1.00"})
        == "unknown_order"
    )
    assert w.error(404, "GET", f"/v1/account?account={w.alice_acct}", w.bob) == "unknown_account"
    assert (
        w.error(404, "POST", "/v1/orders", w.bob, json={**buy(), "account": w.alice_acct})
        == "unknown_account"
    )
    assert w.ok("GET", "/v1/orders", w.bob) == []
    assert w.ok("DELETE", "/v1/orders", w.bob)["cancelled"] == []
    assert w.ok("GET", f"/v1/orders/{o['id']}", w.alice)["status"] == "accepted"


def test_client_order_id_makes_placing_idempotent(w: World) -> None:
    first = w.call("POST", "/v1/orders", w.alice, json=buy(client_order_id="abc"))
    again = w.call("POST", "/v1/orders", w.alice, json=buy(client_order_id="abc"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len(w.ok("GET", "/v1/orders", w.alice)) == 1


def test_bad_keys_and_sessions(w: World) -> None:
    assert w.error(401, "GET", "/v1/account", {"Authorization": "Bearer nope:nope"}) == "bad_key"
    assert w.error(401, "GET", "/v1/account") == "unauthenticated"
    w.ok("POST", "/v1/auth/signup", json={"username": "carol", "password": PASSWORD})
    assert (
        w.error(409, "POST", "/v1/auth/signup", json={"username": "carol", "password": PASSWORD})
        == "user_exists"
    )
    assert (
        w.error(
            401, "POST", "/v1/auth/login", json={"username": "carol", "password": "wrong password"}
        )
        == "bad_credentials"
    )
    w.ok("POST", "/v1/auth/login", json={"username": "carol", "password": PASSWORD})
    me = w.ok("GET", "/v1/me")  # the session cookie
    assert me["username"] == "carol" and me["accounts"] == []
    key = w.ok("POST", "/v1/keys")
    assert (
        w.ok(
            "GET",
            "/v1/me",
            {"APCA-API-KEY-ID": key["key_id"], "APCA-API-SECRET-KEY": key["secret"]},
        )["username"]
        == "carol"
    )
    w.ok("POST", "/v1/auth/logout")
    assert w.error(401, "GET", "/v1/me") == "unauthenticated"


def test_rate_limit_answers_429(tmp_path: Path) -> None:
    w = World(tmp_path, rate=0.001, burst=40)
    try:
        codes = [w.call("GET", "/v1/account", w.alice).status_code for _ in range(60)]
        assert 429 in codes and codes[0] == 200
    finally:
        w.client.__exit__(None, None, None)


def _sample(path: str, w: World, order_id: str) -> str:
    return (
        path.replace("{order_id}", order_id)
        .replace("{account}", str(w.alice_acct))
        .replace("{symbol}", "XYZ")
    )


@pytest.mark.parametrize("spec", ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_authorization_matrix(w: World, spec: Any) -> None:
    """Every route x (anonymous, another trader, the owner, an admin): who gets in, and
    nothing ever answers 5xx."""
    order = w.ok("POST", "/v1/orders", w.alice, json=buy("90.00", "1"))
    path = _sample(spec.path, w, order["id"])
    bodies: dict[str, Any] = {"PATCH": {"qty": "1", "price": "90.00"}}
    body = bodies.get(spec.method)
    callers = {"anonymous": None, "other": w.bob, "owner": w.alice, "admin": w.admin}
    for who, headers in callers.items():
        r = (
            w.call(spec.method, path, headers, json=body)
            if body
            else w.call(spec.method, path, headers)
        )
        assert r.status_code < 500, (who, r.status_code, r.text)
        if spec.access == PUBLIC:
            continue
        if who == "anonymous":
            assert r.status_code == 401, (who, r.text)
        elif spec.access == ADMIN:
            assert (r.status_code == 403) == (who != "admin"), (who, r.text)
        elif spec.access == TRADER and "{order_id}" in spec.path and who == "other":
            assert r.status_code == 404, (who, r.text)


def test_a_journaled_platform_keeps_orders_across_a_restart(tmp_path: Path) -> None:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = auth.create_user("admin", PASSWORD, "admin")
    key_id, secret = auth.create_key(admin)
    h = {"Authorization": f"Bearer {key_id}:{secret}"}

    def app() -> TestClient:
        return TestClient(create_app(Platform(tmp_path / "node", fsync=False), auth))

    with app() as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ"})
        acct = c.post("/v1/admin/accounts", headers=h, json={"user_id": admin}).json()["account"]
        c.post(
            f"/v1/admin/accounts/{acct}/transfers",
            headers=h,
            json={"asset": "USD", "amount": "1000.00"},
        )
        o = c.post("/v1/orders", headers=h, json=buy("10.00", "5")).json()
    with app() as c:  # recovered from the snapshot taken on the way out
        assert [x["id"] for x in c.get("/v1/orders", headers=h).json()] == [o["id"]]
        assert c.get("/v1/account", headers=h).json()["reserved"] == "50.00"
        assert c.delete(f"/v1/orders/{o['id']}", headers=h).status_code == 200
    with app() as c:
        assert c.get("/v1/orders", headers=h).json() == []
        assert c.get("/v1/account", headers=h).json()["reserved"] == "0.00"


def test_ids_beyond_range_are_a_400_not_a_500(w: World) -> None:
    body = {"user_id": 2**63}
    assert w.error(400, "POST", "/v1/admin/accounts", w.admin, json=body) == "invalid_body"


def test_market_data_snapshots(w: World) -> None:
    w.ok("POST", "/v1/orders", w.alice, json=buy("99.00", "10"))
    w.ok("POST", "/v1/orders", w.alice, json=buy("99.50", "5"))
    sell = {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": "7", "price": "101.00"}
    w.ok("POST", "/v1/orders", w.bob, json=sell)
    q = w.ok("GET", "/v1/marketdata/XYZ/quote")
    assert (q["bid"], q["bid_size"], q["ask"], q["ask_size"], q["last"]) == (
        "99.50",
        "5",
        "101.00",
        "7",
        None,
    )
    d = w.ok("GET", "/v1/marketdata/XYZ/depth?levels=1")
    assert d["bids"] == [["99.50", "5"]] and d["asks"] == [["101.00", "7"]]
    assert len(w.ok("GET", "/v1/marketdata/XYZ/depth")["bids"]) == 2
    w.ok(
        "POST",
        "/v1/orders",
        w.bob,
        json={"symbol": "XYZ", "side": "sell", "type": "market", "qty": "8"},
    )
    trades = w.ok("GET", "/v1/marketdata/XYZ/trades")
    assert [(t["price"], t["qty"], t["side"]) for t in trades] == [
        ("99.00", "3", "sell"),
        ("99.50", "5", "sell"),
    ]
    (bar,) = w.ok("GET", "/v1/marketdata/XYZ/bars")
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"], bar["trades"]) == (
        "99.50",
        "99.50",
        "99.00",
        "99.00",
        "8",
        2,
    )
    assert w.ok("GET", "/v1/marketdata/XYZ/quote")["last"] == "99.00"
    assert w.error(404, "GET", "/v1/marketdata/NOPE/quote") == "unknown_symbol"
    assert w.error(400, "GET", "/v1/marketdata/XYZ/depth?levels=0") == "invalid_levels"
