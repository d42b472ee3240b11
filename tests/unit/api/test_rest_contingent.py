"""Bracket, OTO and OCO orders over /v1 (REST and the WebSocket): the legs are reported
with the first order, placed as the entry fills, one exit cancels the other, cancelling
one leg of a pair cancels the other, and every field that does not belong is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_rest import World, buy


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def bracket(**kw: Any) -> dict[str, Any]:
    exits = {"take_profit": {"price": "110.00"}, "stop_loss": {"stop_price": "95.00"}}
    return buy("100.00", "10", order_class="bracket", **{**exits, **kw})


def sell(price: str, qty: str) -> dict[str, Any]:
    return {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": qty, "price": price}


def test_a_bracket_is_held_until_its_entry_fills_then_one_exit_cancels_the_other(
    w: World,
) -> None:
    o = w.ok("POST", "/v1/orders", w.alice, json=bracket())
    assert o["order_class"] == "bracket" and o["status"] == "accepted"
    assert [(leg["role"], leg["status"], leg["type"]) for leg in o["legs"]] == [
        ("take_profit", "held", "limit"),
        ("stop_loss", "held", "stop"),
    ]
    assert (o["legs"][0]["price"], o["legs"][1]["stop_price"]) == ("110.00", "95.00")
    w.ok("POST", "/v1/orders", w.bob, json=sell("100.00", "10"))  # the entry fills
    o = w.ok("GET", f"/v1/orders/{o['id']}", w.alice)
    assert o["status"] == "filled"
    tp, sl = o["legs"]
    assert (tp["status"], sl["status"]) == ("accepted", "accepted")
    leg = w.ok("GET", f"/v1/orders/{tp['id']}", w.alice)
    assert (leg["side"], leg["price"], leg["order_class"], leg["legs"]) == (
        "sell",
        "110.00",
        "bracket",
        None,  # a leg lists no legs: its first order does
    )
    # the take-profit fills: the stop-loss is cancelled
    w.ok("POST", "/v1/orders", w.bob, json=buy("110.00", "10"))
    o = w.ok("GET", f"/v1/orders/{o['id']}", w.alice)
    assert [leg["status"] for leg in o["legs"]] == ["filled", "cancelled"]


def test_an_oto_has_one_exit_and_a_cancelled_entry_cancels_it(w: World) -> None:
    body = buy(
        "100.00", "5", order_class="oto", stop_loss={"stop_price": "90.00", "limit_price": "89.00"}
    )
    o = w.ok("POST", "/v1/orders", w.alice, json=body)
    assert o["order_class"] == "oto"
    assert [(leg["role"], leg["type"], leg["price"], leg["stop_price"]) for leg in o["legs"]] == [
        ("stop_loss", "stop_limit", "89.00", "90.00")
    ]
    w.ok("DELETE", f"/v1/orders/{o['id']}", w.alice)
    o = w.ok("GET", f"/v1/orders/{o['id']}", w.alice)
    assert o["status"] == "cancelled" and o["legs"][0]["status"] == "cancelled"


def test_an_oco_pair_and_cancelling_one_leg_cancels_the_other(w: World) -> None:
    body = {
        "symbol": "XYZ",
        "side": "sell",
        "type": "limit",
        "qty": "5",
        "order_class": "oco",
        "take_profit": {"price": "120.00"},
        "stop_loss": {"stop_price": "90.00"},
    }
    o = w.ok("POST", "/v1/orders", w.alice, json=body)
    assert o["order_class"] == "oco" and o["price"] == "120.00"
    (stop,) = o["legs"]
    assert (stop["role"], stop["status"], stop["stop_price"]) == ("stop_loss", "accepted", "90.00")
    w.ok("DELETE", f"/v1/orders/{stop['id']}", w.alice)
    assert w.ok("GET", f"/v1/orders/{o['id']}", w.alice)["status"] == "cancelled"


def test_fields_that_do_not_belong_are_refused(w: World) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (buy(take_profit={"price": "110.00"}), "needs order_class"),
        (buy(order_class="bracket", take_profit={"price": "110.00"}), "take_profit and stop_loss"),
        (buy(order_class="oto"), "one of take_profit"),
        (bracket(tif="ioc"), "gtc or day"),
        (bracket(post_only=True), "post_only"),
        (bracket(tif="gtd", expire_at="2030-01-01T00:00:00Z"), "expire_at"),
        ({**bracket(), "type": "stop", "stop_price": "99.00", "price": None}, "stop_price"),
        (bracket(trail_bps=50), "trail"),
        ({**bracket(), "take_profit": {"price": "110.00", "x": 1}}, "x"),
        ({**bracket(), "take_profit": {"price": "-1"}}, "take_profit.price"),
        (
            {**bracket(), "order_class": "oco", "type": "market", "price": None},
            "oco order is limit",
        ),
        ({**bracket(), "order_class": "oco", "price": "101.00"}, "differs"),
    ]
    for body, words in cases:
        r = w.call("POST", "/v1/orders", w.alice, json=body)
        assert 400 <= r.status_code < 500, (body, r.text)
        assert words in r.text, (body, r.text)
    # a take-profit below the stop-loss of a buy: the core refuses the bracket
    r = w.call("POST", "/v1/orders", w.alice, json=bracket(take_profit={"price": "90.00"}))
    assert r.status_code == 422, r.text
    assert w.ok("GET", "/v1/orders", w.alice) == []  # nothing was placed


def test_a_bracket_over_the_websocket(w: World) -> None:
    with w.client.websocket_connect("/v1/ws", headers=w.alice) as ws:
        ws.send_json({"op": "order", "id": 7, **bracket()})
        reply = ws.receive_json()
        while reply.get("id") != 7:
            reply = ws.receive_json()
        assert reply["order"]["order_class"] == "bracket", reply
        assert [leg["status"] for leg in reply["order"]["legs"]] == ["held", "held"]


def test_the_client_places_a_bracket_and_reads_its_legs(w: World) -> None:
    from mercato.client import Client

    key = w.alice["Authorization"].removeprefix("Bearer ").split(":")
    alice = Client("http://testserver", key[0], key[1], http=w.client)
    o = alice.place_order(
        "XYZ",
        "buy",
        "limit",
        3,
        price="100.00",
        order_class="bracket",
        take_profit="111.00",
        stop_loss="94.00",
        stop_loss_limit="93.50",
    )
    assert o.order_class == "bracket" and o.legs is not None
    assert [(leg.role, leg.status, leg.type) for leg in o.legs] == [
        ("take_profit", "held", "limit"),
        ("stop_loss", "held", "stop_limit"),
    ]
    assert str(o.legs[1].price) == "93.50" and str(o.legs[1].stop_price) == "94.00"
    assert alice.get_order(o.id).legs == o.legs


def test_self_trade_prevention_per_order_and_per_account(w: World) -> None:
    ask = w.ok("POST", "/v1/orders", w.alice, json=sell("100.00", "5"))
    # the order's own mode: cancel incoming, so the own ask stays
    o = w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "5", self_trade="cancel_incoming"))
    assert (o["status"], o["reason"], o["self_trade"]) == (
        "cancelled",
        "self_trade",
        "cancel_incoming",
    )
    assert w.ok("GET", f"/v1/orders/{ask['id']}", w.alice)["status"] == "accepted"
    # the account's mode, set by an administrator, for orders that name none
    assert w.ok("GET", "/v1/account", w.alice)["self_trade"] == "cancel_resting"
    path = f"/v1/admin/accounts/{w.alice_acct}/self_trade"
    assert w.ok("PUT", path, w.admin, json={"mode": "cancel_both"})["self_trade"] == "cancel_both"
    assert w.ok("GET", "/v1/account", w.alice)["self_trade"] == "cancel_both"
    o = w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "5"))
    assert o["status"] == "cancelled" and o["self_trade"] == "cancel_both"
    assert w.ok("GET", f"/v1/orders/{ask['id']}", w.alice)["reason"] == "self_trade"
    # refused: an unknown mode, a trader setting it, an unknown account
    assert w.call("PUT", path, w.admin, json={"mode": "cancel_newest"}).status_code == 400
    assert w.call("PUT", path, w.alice, json={"mode": "cancel_both"}).status_code == 403
    r = w.call("PUT", "/v1/admin/accounts/999/self_trade", w.admin, json={"mode": "cancel_both"})
    assert r.status_code == 404
    r = w.call("POST", "/v1/orders", w.alice, json=buy(self_trade="cancel_oldest"))
    assert r.status_code in (400, 422) and "self_trade" in r.text
