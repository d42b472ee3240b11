"""The WebSocket API over an in-memory platform: public trades and books, private orders
and fills for their owner only, order entry and cancels over the socket, authentication,
limits, malformed messages, heartbeats and the slow-consumer policy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

from mercato.api.outbox import SLOW_CONSUMER, Conn, Outbox
from mercato.api.ws import websocket_route
from mercato.services.platform import Platform

from .test_rest import World, buy


class WsWorld(World):
    def __init__(self, tmp: Path, platform: Platform | None = None, **ws: Any) -> None:
        super().__init__(tmp, platform=platform)
        app = self.client.app
        # ahead of the app's own /v1/ws, with this test's limits
        app.router.routes.insert(0, websocket_route(app.state.api, **ws))  # type: ignore[attr-defined]

    def connect(self, headers: dict[str, str] | None = None) -> Any:
        return self.client.websocket_connect("/v1/ws", headers=headers or {})


def sell(price: str | None = None, qty: str = "4") -> dict[str, Any]:
    if price is None:
        return {"symbol": "XYZ", "side": "sell", "type": "market", "qty": qty}
    return {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": qty, "price": price}


@pytest.fixture
def w(tmp_path: Path) -> Iterator[WsWorld]:
    world = WsWorld(tmp_path, heartbeat=0)
    yield world
    world.client.__exit__(None, None, None)


def ask(ws: Any, msg: dict[str, Any]) -> Any:
    ws.send_json(msg)
    return ws.receive_json()


def subscribe(ws: Any, *channels: str) -> Any:
    r = ask(ws, {"op": "subscribe", "channels": list(channels)})
    assert r.get("status") == 200, r
    return r


def test_public_trades_and_book_snapshot_then_deltas(w: WsWorld) -> None:
    w.ok("POST", "/v1/orders", w.alice, json=buy("99.00", "5"))
    with w.connect() as ws:  # anonymous
        subscribe(ws, "trades:XYZ", "book:XYZ")
        snaps = {m["channel"]: m for m in (ws.receive_json(), ws.receive_json())}
        assert snaps["book:XYZ"] == {  # seq 1: the book changed once before (alice's bid)
            "channel": "book:XYZ",
            "seq": 1,
            "type": "snapshot",
            "bids": [["99.00", "5"]],
            "asks": [],
        }
        assert snaps["trades:XYZ"] == {
            "channel": "trades:XYZ",
            "seq": 0,
            "type": "snapshot",
            "trades": [],
        }
        w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "10"))
        d = ws.receive_json()
        assert (d["channel"], d["seq"], d["type"]) == ("book:XYZ", 2, "update")
        assert (d["bids"], d["asks"]) == ([["100.00", "10"]], [])
        w.ok("POST", "/v1/orders", w.bob, json=sell())  # one command: a trade, a level
        got = {m["channel"]: m for m in (ws.receive_json(), ws.receive_json())}
        t = got["trades:XYZ"]
        assert (t["seq"], t["type"]) == (1, "update")
        assert [{k: x[k] for k in ("symbol", "price", "qty", "side")} for x in t["trades"]] == [
            {"symbol": "XYZ", "price": "100.00", "qty": "4", "side": "sell"}
        ]
        assert (got["book:XYZ"]["seq"], got["book:XYZ"]["bids"]) == (3, [["100.00", "6"]])
        # re-subscribing gives a fresh snapshot (how a client recovers from a gap)
        subscribe(ws, "book:XYZ")
        snap = ws.receive_json()
        assert (snap["seq"], snap["type"]) == (3, "snapshot")
        assert snap["bids"] == [["100.00", "6"], ["99.00", "5"]]
        # unsubscribed: nothing more on it
        r = ask(ws, {"op": "unsubscribe", "channels": ["book:XYZ", "trades:XYZ"]})
        assert r == {"op": "unsubscribe", "status": 200, "channels": []}
        w.ok("POST", "/v1/orders", w.bob, json=sell())
        assert ask(ws, {"op": "ping"}) == {"op": "pong"}


def test_market_data_channels_are_sequenced_per_instrument_not_per_connection(
    w: WsWorld,
) -> None:
    with w.connect() as a:
        subscribe(a, "trades:XYZ")
        assert a.receive_json()["seq"] == 0
        w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "10"))
        w.ok("POST", "/v1/orders", w.bob, json=sell(qty="1"))
        w.ok("POST", "/v1/orders", w.bob, json=sell(qty="2"))
        assert [a.receive_json()["seq"] for _ in range(2)] == [1, 2]
        with w.connect() as b:  # joins later: its snapshot is at seq 2, the next is 3
            subscribe(b, "trades:XYZ")
            snap = b.receive_json()
            assert (snap["seq"], [t["qty"] for t in snap["trades"]]) == (2, ["1", "2"])
            w.ok("POST", "/v1/orders", w.bob, json=sell(qty="3"))
            assert a.receive_json() == b.receive_json()  # the same bytes for everyone


def test_quotes_bars_stats_and_l3_channels(w: WsWorld) -> None:
    with w.connect() as ws:
        subscribe(ws, "quotes:XYZ", "bars:XYZ", "stats:XYZ", "l3:XYZ")
        snaps = {m["channel"]: m for m in (ws.receive_json() for _ in range(4))}
        assert set(snaps) == {"quotes:XYZ", "bars:XYZ:1m", "stats:XYZ", "l3:XYZ"}
        assert snaps["quotes:XYZ"]["quote"]["bid"] is None
        o = w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "10"))
        got = {m["channel"]: m for m in (ws.receive_json() for _ in range(2))}
        assert got["quotes:XYZ"]["quote"] | {"ts": 0} == {
            "bid": "100.00", "bid_qty": "10", "ask": None, "ask_qty": "0", "last": None,
            "ts": 0,
        }  # fmt: skip
        assert got["l3:XYZ"]["orders"] == [
            {"id": o["id"], "side": "buy", "price": "100.00", "qty": "10"}
        ]
        w.ok("POST", "/v1/orders", w.bob, json=sell(qty="4"))
        got = {m["channel"]: m for m in (ws.receive_json() for _ in range(4))}
        assert got["l3:XYZ"]["orders"] == [
            {"id": o["id"], "side": "buy", "price": "100.00", "qty": "6"}
        ]
        assert got["quotes:XYZ"]["quote"]["bid_qty"] == "6"
        assert got["quotes:XYZ"]["quote"]["last"] == "100.00"
        (bar,) = got["bars:XYZ:1m"]["bars"]
        assert (bar["open"], bar["close"], bar["volume"], bar["trades"]) == (
            "100.00", "100.00", "4", 1,
        )  # fmt: skip
        stats = got["stats:XYZ"]["stats"]
        assert (stats["last"], stats["volume"], stats["trades"], stats["change"]) == (
            "100.00", "4", 1, "0.00",
        )  # fmt: skip
        r = ask(ws, {"op": "subscribe", "channels": ["bars:XYZ:7m"]})
        assert r["error"]["code"] == "unknown_channel"


def test_binary_market_data_decodes_with_the_client_decoder(w: WsWorld) -> None:
    from mercato.client.ticks import Decoder, split_channel
    from mercato.marketdata.events import MdLevel, MdTrade

    w.ok("POST", "/v1/orders", w.alice, json=buy("99.00", "5"))
    with w.client.websocket_connect("/v1/ws?encoding=binary") as ws:
        r = ask(ws, {"op": "subscribe", "channels": ["trades:XYZ", "book:XYZ"]})
        ids = {v: k for k, v in r["ids"].items()}
        assert set(ids.values()) == {"trades:XYZ", "book:XYZ"}
        decoders = {c: Decoder("XYZ", tick_size=1, lot_size=1) for c in ids.values()}
        book: dict[int, int] = {}

        def take(n: int) -> list[Any]:
            events = []
            for _ in range(n):
                cid, frame = split_channel(ws.receive_bytes())
                channel = ids[cid]
                events += decoders[channel].decode(frame)
            return events

        # book: the levels as a key frame of their own, then the stream's sync frame;
        # trades: the sync frame only
        first = take(3)
        for e in first:
            if isinstance(e, MdLevel):
                book[e.price] = e.qty
        assert book == {9900: 5}
        w.ok("POST", "/v1/orders", w.bob, json=sell("99.00", "2"))
        events = take(2)
        trades = [e for e in events if isinstance(e, MdTrade)]
        assert [(t.price, t.qty, t.side) for t in trades] == [(9900, 2, 2)]
        levels = [e for e in events if isinstance(e, MdLevel)]
        assert [(lv.price, lv.qty) for lv in levels] == [(9900, 3)]


def test_an_unknown_encoding_is_refused(w: WsWorld) -> None:
    with pytest.raises(WebSocketDisconnect) as e, w.client.websocket_connect("/v1/ws?encoding=xml"):
        pass
    assert e.value.code == 1008


def test_private_orders_and_fills_for_their_owner_only(w: WsWorld) -> None:
    with w.connect(w.alice) as a, w.connect() as b:
        subscribe(a, "orders", "fills")
        assert ask(b, {"op": "auth", **_key(w.bob)})["status"] == 200
        subscribe(b, "orders")
        o = w.ok("POST", "/v1/orders", w.alice, json=buy())
        m = a.receive_json()
        assert (m["channel"], m["seq"], m["order"]["id"], m["order"]["status"]) == (
            "orders",
            1,
            o["id"],
            "accepted",
        )
        w.ok("POST", "/v1/orders", w.bob, json=sell())
        # bob sees only his own order; alice her order's fill
        m = b.receive_json()
        assert m["order"]["account"] == w.bob_acct and m["order"]["status"] == "filled"
        assert ask(b, {"op": "ping"}) == {"op": "pong"}  # and nothing of alice's
        got = [a.receive_json(), a.receive_json()]
        by = {x["channel"]: x for x in got}
        assert by["orders"]["seq"] == 2 and by["orders"]["order"]["status"] == "partially_filled"
        fill = by["fills"]
        assert fill["seq"] == 1
        assert (fill["fill"]["order_id"], fill["fill"]["qty"], fill["fill"]["fee"]) == (
            o["id"],
            "4",
            "0.04",
        )
        assert fill["fill"]["liquidity"] == "maker"
        assert ask(a, {"op": "ping"}) == {"op": "pong"}  # nothing of bob's


def _key(headers: dict[str, str]) -> dict[str, str]:
    key_id, _, secret = headers["Authorization"][7:].partition(":")
    return {"key_id": key_id, "secret": secret}


def test_private_channels_need_auth(w: WsWorld) -> None:
    with w.connect() as ws:
        r = ask(ws, {"op": "subscribe", "channels": ["trades:XYZ", "orders"]})
        assert (r["status"], r["error"]["code"]) == (401, "unauthenticated")
        r = ask(ws, {"op": "order", **buy()})
        assert (r["op"], r["status"], r["error"]["code"]) == ("order", 401, "unauthenticated")
        # nothing was subscribed: the request is all or nothing
        assert ask(ws, {"op": "unsubscribe", "channels": []})["channels"] == []


def test_auth_failures(w: WsWorld) -> None:
    with w.connect() as ws:
        bad = {"key_id": _key(w.alice)["key_id"], "secret": "x" * 40}
        r = ask(ws, {"op": "auth", **bad})
        assert (r["status"], r["error"]["code"]) == (401, "bad_key")
        assert ask(ws, {"op": "ping"}) == {"op": "pong"}  # still connected, anonymous
        assert ask(ws, {"op": "auth", **_key(w.alice)})["accounts"] == [w.alice_acct]
        r = ask(ws, {"op": "auth", **_key(w.alice)})
        assert r["error"]["code"] == "already_authenticated"
    key_id = _key(w.alice)["key_id"]
    with w.connect({"Authorization": f"Bearer {key_id}:nope"}) as ws:
        assert ws.receive_json()["error"]["code"] == "bad_key"
        with pytest.raises(WebSocketDisconnect) as e:
            ws.receive_json()
        assert e.value.code == 1008


def test_order_entry_and_cancel_over_the_socket(w: WsWorld) -> None:
    apca = {
        "APCA-API-KEY-ID": _key(w.alice)["key_id"],
        "APCA-API-SECRET-KEY": _key(w.alice)["secret"],
    }
    with w.connect(apca) as ws:
        r = ask(ws, {"op": "order", "id": 7, **buy(client_order_id="c1")})
        assert (r["op"], r["id"], r["status"]) == ("order", 7, 201)
        o = r["order"]
        assert (o["status"], o["remaining_qty"], o["client_order_id"]) == ("accepted", "10", "c1")
        assert w.ok("GET", f"/v1/orders/{o['id']}", w.alice)["status"] == "accepted"
        r = ask(ws, {"op": "order", **buy(client_order_id="c1")})  # idempotent
        assert (r["status"], r["order"]["id"]) == (200, o["id"])
        r = ask(ws, {"op": "order", **buy(qty="100000")})
        assert (r["status"], r["error"]["code"]) == (422, "insufficient_buying_power")
        r = ask(ws, {"op": "order", **buy(price="abc")})
        assert (r["status"], r["error"]["code"]) == (400, "invalid_number")
        r = ask(ws, {"op": "cancel", "order_id": o["id"]})
        assert (r["status"], r["order"]["status"]) == (200, "cancelled")
        r = ask(ws, {"op": "cancel", "order_id": o["id"]})
        assert (r["status"], r["error"]["code"]) == (409, "not_cancellable")
        # bob's order is not alice's to cancel
        theirs = w.ok("POST", "/v1/orders", w.bob, json=buy())
        r = ask(ws, {"op": "cancel", "order_id": theirs["id"]})
        assert (r["status"], r["error"]["code"]) == (404, "unknown_order")
        r = ask(ws, {"op": "cancel", "order_id": "x"})
        assert r["error"]["code"] == "unknown_order"


def test_a_journaled_platform_takes_pipelined_orders_in_order_and_groups_their_commits(
    tmp_path: Path,
) -> None:
    platform = Platform(tmp_path / "node", fsync=False)
    w = WsWorld(tmp_path, platform=platform, heartbeat=0)
    groups: list[int] = []
    node = platform._async.node  # type: ignore[union-attr]
    submit_async = node.submit_async

    async def counting(batch: Any) -> Any:  # a slow disk: 10 ms per group commit
        groups.append(len(batch))
        await asyncio.sleep(0.01)
        return await submit_async(batch)

    node.submit_async = counting  # type: ignore[method-assign]
    prices = [f"{90 + i / 100:.2f}" for i in range(200)]
    try:
        with w.connect(w.alice) as ws:
            for i, price in enumerate(prices):  # all sent before any answer is read
                ws.send_json({"op": "order", "id": i, **buy(price, "1")})
            replies = [ws.receive_json() for _ in prices]
        assert sorted(r["id"] for r in replies) == list(range(200))
        assert {r["status"] for r in replies} == {201}
        by_id = {r["id"]: r["order"] for r in replies}
        # journaled in the order sent: order ids and acceptance times increase with it
        ids = [int(by_id[i]["id"]) for i in range(200)]
        assert ids == sorted(ids)
        assert [by_id[i]["price"] for i in range(200)] == prices
        assert sum(groups) >= 200 and max(groups) > 1  # not one fsync per order
    finally:
        w.client.__exit__(None, None, None)


def test_too_many_subscriptions(tmp_path: Path) -> None:
    w = WsWorld(tmp_path, heartbeat=0, max_subscriptions=3)
    try:
        with w.connect() as ws:
            subscribe(ws, "trades:XYZ", "book:XYZ")
            ws.receive_json(), ws.receive_json()  # the snapshots
            r = ask(ws, {"op": "subscribe", "channels": ["trades:XYZ"]})  # again: no new one
            assert r["status"] == 200
            assert ws.receive_json()["type"] == "snapshot"  # but a fresh snapshot
            w.ok(
                "POST",
                "/v1/admin/instruments",
                w.admin,
                json={"symbol": "ABC", "tick_size": "0.01", "reference_price": "1.00"},
            )
            r = ask(ws, {"op": "subscribe", "channels": ["trades:ABC", "book:ABC"]})
            assert (r["status"], r["error"]["code"]) == (400, "too_many_subscriptions")
            assert ask(ws, {"op": "ping"}) == {"op": "pong"}
    finally:
        w.client.__exit__(None, None, None)


def test_the_default_limit_is_100(w: WsWorld) -> None:
    with w.connect() as ws:
        r = ask(ws, {"op": "subscribe", "channels": [f"trades:S{i}" for i in range(101)]})
        assert r["error"]["code"] == "unknown_symbol"  # validated first
        for i in range(99):
            instrument = {"symbol": f"S{i}", "tick_size": "0.01", "reference_price": "1.00"}
            w.ok("POST", "/v1/admin/instruments", w.admin, json=instrument)
        subscribe(ws, "trades:XYZ", *[f"trades:S{i}" for i in range(99)])
        assert {ws.receive_json()["type"] for _ in range(100)} == {"snapshot"}
        r = ask(ws, {"op": "subscribe", "channels": ["book:XYZ"]})
        assert r["error"]["code"] == "too_many_subscriptions"


def test_bad_messages_get_an_error_not_a_disconnect(w: WsWorld) -> None:
    with w.connect() as ws:
        ws.send_text("{not json")
        assert ws.receive_json()["error"]["code"] == "invalid_json"
        ws.send_text("[1, 2]")
        assert ws.receive_json()["error"]["code"] == "invalid_message"
        r = ask(ws, {"op": "dance"})
        assert (r["op"], r["status"], r["error"]["code"]) == ("dance", 400, "unknown_op")
        assert ask(ws, {})["error"]["code"] == "unknown_op"
        r = ask(ws, {"op": "ping", "extra": 1})
        assert (r["status"], r["error"]["code"]) == (400, "invalid_message")
        assert "extra" in r["error"]["message"]
        r = ask(ws, {"op": "subscribe", "channels": ["weather:XYZ"]})
        assert r["error"]["code"] == "unknown_channel"
        r = ask(ws, {"op": "subscribe", "channels": ["book:NOPE"]})
        assert (r["status"], r["error"]["code"]) == (404, "unknown_symbol")
        ws.send_text(json.dumps({"op": "ping", "pad": "x" * 70_000}))
        assert ws.receive_json()["error"]["code"] == "message_too_large"
        assert ask(ws, {"op": "ping", "id": "p1"}) == {"op": "pong", "id": "p1"}


def test_heartbeats(tmp_path: Path) -> None:
    w = WsWorld(tmp_path, heartbeat=0.02)
    try:
        with w.connect() as ws:
            assert ws.receive_json() == {"op": "heartbeat"}
            assert ws.receive_json() == {"op": "heartbeat"}
    finally:
        w.client.__exit__(None, None, None)


def test_a_slow_consumer_is_disconnected(tmp_path: Path) -> None:
    w = WsWorld(tmp_path, heartbeat=0, queue_size=3)
    try:
        w.ok("POST", "/v1/orders", w.alice, json=sell("100.00", "5"))
        with w.connect() as ws, w.connect() as calm:
            for channel in ("trades:XYZ", "book:XYZ", "l3:XYZ", "bars:XYZ"):
                subscribe(ws, channel)  # a reply and a snapshot: within the queue
                assert ws.receive_json()["type"] == "snapshot"
            # one command, a message on each of the four channels: more than the queue
            # holds, with no chance to drain
            w.ok("POST", "/v1/orders", w.bob, json=buy("100.00", "1"))
            with pytest.raises(WebSocketDisconnect) as e:
                while True:
                    ws.receive_json()
            assert (e.value.code, e.value.reason) == SLOW_CONSUMER
            assert ask(calm, {"op": "ping"}) == {"op": "pong"}  # others are not affected
        assert w.ok("GET", "/v1/orders", w.bob) == []  # and the platform went on
    finally:
        w.client.__exit__(None, None, None)


def test_outbox_policy() -> None:
    async def run() -> None:
        box = Outbox(2)
        assert box.offer("a") and box.offer("b")
        assert box.closed is None and len(box) == 2
        assert not box.offer("c")  # full: condemned, never waits
        assert box.closed == (1013, "slow consumer")
        assert await box.next() is None  # the backlog is dropped: the close comes next
        assert not box.offer("d")
        box.close(1000, "bye")  # the first close wins
        assert box.closed == (1013, "slow consumer")

    asyncio.run(run())


def test_a_fan_out_failure_never_breaks_the_platform(
    w: WsWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Conn, msg: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(Conn, "deliver", broken)
    with w.connect() as ws:
        subscribe(ws, "trades:XYZ")
        assert ws.receive_json()["type"] == "snapshot"
        w.ok("POST", "/v1/orders", w.alice, json=buy())
        w.ok("POST", "/v1/orders", w.bob, json=sell())  # the trade: the fan-out fails
        assert "websocket market-data fan-out failed" in caplog.text
        assert w.ok("GET", "/v1/orders", w.alice)[0]["status"] == "partially_filled"
        assert ask(ws, {"op": "ping"}) == {"op": "pong"}


def test_l3_starts_from_the_book_as_it_is_when_first_asked_for(w: WsWorld) -> None:
    first = w.ok("POST", "/v1/orders", w.alice, json=buy("99.00", "5"))
    second = w.ok("POST", "/v1/orders", w.alice, json=buy("99.00", "3"))
    with w.connect() as ws:
        subscribe(ws, "l3:XYZ")
        snap = ws.receive_json()
        assert [(o["id"], o["qty"]) for o in snap["orders"]] == [
            (first["id"], "5"),
            (second["id"], "3"),
        ]
        w.ok("POST", "/v1/orders", w.bob, json=sell("99.00", "6"))  # all of one, 1 of two
        update = ws.receive_json()
        assert [(o["id"], o["qty"]) for o in update["orders"]] == [
            (first["id"], "0"),
            (second["id"], "2"),
        ]
