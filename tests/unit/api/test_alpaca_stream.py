"""The Alpaca-compatible trading stream (``/stream``, ``trade_updates``), driven by
Alpaca's own ``TradingStream`` against a real server: only the URL changes."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mercato.api.alpaca_stream import StreamConn, TradeUpdates
from mercato.api.app import create_app

Server = dict[str, Any]


Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[Server]:
    """A served in-memory platform: XYZ with a maker (account 1, owned by "maker") quoting
    99.00 / 101.00, and a trader (account 2, cash 100,000.00)."""
    platform, auth, user = market.platform, market.auth, market.trader
    maker = auth.create_user("maker", "correct horse battery")
    auth.add_account(maker, 1)
    app = create_app(platform, auth)  # mounts /stream (one hub, listening to the platform)
    hub = next(
        f.__self__  # type: ignore[attr-defined]
        for f in platform._listeners
        if isinstance(getattr(f, "__self__", None), TradeUpdates)
    )
    url, port = serve_app(app)
    yield {
        "url": url,
        "ws": f"ws://127.0.0.1:{port}/stream",
        "key": auth.create_key(user),
        "maker_key": auth.create_key(maker),
        "hub": hub,
    }


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_trading_stream_gets_new_then_fill(server: Server) -> None:
    key_id, secret = server["key"]
    stream = TradingStream(key_id, secret, url_override=server["ws"])
    updates: list[TradeUpdate] = []

    async def on_update(u: TradeUpdate) -> None:
        updates.append(u)

    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server["hub"].by_account)  # listening
        c = TradingClient(key_id, secret, url_override=server["url"])
        order: Any = c.submit_order(
            MarketOrderRequest(
                symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        resting: Any = c.submit_order(
            LimitOrderRequest(
                symbol="XYZ",
                qty=3,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=95,
            )
        )
        c.cancel_order_by_id(resting.id)
        with pytest.raises(APIError):  # more than the trader can pay for
            c.submit_order(
                MarketOrderRequest(
                    symbol="XYZ", qty=990, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                )
            )
        wait_for(lambda: len(updates) >= 5)
    finally:

        async def stop() -> None:
            await stream.stop_ws()
            await stream.close()

        wait_for(lambda: stream._loop is not None)
        loop: Any = stream._loop
        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        thread.join(5)
    assert not thread.is_alive()
    new, fill, _, canceled, rejected = updates
    assert [u.event for u in updates] == ["new", "fill", "new", "canceled", "rejected"]
    assert rejected.order.status == OrderStatus.REJECTED
    assert new.order.id == order.id and new.order.status == OrderStatus.NEW
    assert fill.order.id == order.id and fill.order.status == OrderStatus.FILLED
    assert (fill.price, fill.qty, fill.position_qty) == (101.0, 10, 10)
    assert fill.execution_id is not None and fill.timestamp.tzinfo is not None
    assert canceled.order.id == resting.id and canceled.order.status == OrderStatus.CANCELED


def recv(ws: Any) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return msg


def test_only_own_orders_and_the_protocol(server: Server) -> None:
    key_id, secret = server["key"]
    maker_id, maker_secret = server["maker_key"]
    with connect(server["ws"]) as ws:
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert recv(ws)["stream"] == "error"  # not signed in yet
        ws.send(json.dumps({"action": "auth", "key": maker_id, "secret": maker_secret}))
        assert recv(ws) == {
            "stream": "authorization",
            "data": {"action": "authenticate", "status": "authorized"},
        }
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["nope"]}}))
        assert recv(ws)["stream"] == "error"
        ws.send("not json")
        assert recv(ws)["stream"] == "error"
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        assert recv(ws) == {"stream": "listening", "data": {"streams": ["trade_updates"]}}
        maker = TradingClient(maker_id, maker_secret, url_override=server["url"])
        offer: Any = maker.submit_order(
            LimitOrderRequest(
                symbol="XYZ",
                qty=5,
                side=OrderSide.SELL,
                time_in_force=TimeInForce.GTC,
                limit_price=100.5,
            )
        )
        msg = recv(ws)
        assert (msg["data"]["event"], msg["data"]["order"]["id"]) == ("new", str(offer.id))
        c = TradingClient(key_id, secret, url_override=server["url"])
        c.submit_order(
            MarketOrderRequest(
                symbol="XYZ", qty=4, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        msg = recv(ws)  # the maker's side of the trade only: no "new" of the trader's order
        assert msg["stream"] == "trade_updates"
        data = msg["data"]
        assert (data["event"], data["qty"], data["price"]) == ("partial_fill", "4", "100.50")
        assert data["order"]["side"] == "sell" and data["order"]["filled_qty"] == "4"
        assert data["order"]["status"] == "partially_filled"
        assert data["position_qty"] == "-4"


def test_a_wrong_key_is_refused_and_closed(server: Server) -> None:
    with connect(server["ws"]) as ws:
        ws.send(json.dumps({"action": "authenticate", "data": {"key_id": "x", "secret_key": "y"}}))
        assert recv(ws)["data"]["status"] == "unauthorized"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1008


def test_a_slow_consumer_is_dropped() -> None:
    class FakeApi:
        pass

    hub = TradeUpdates(FakeApi())  # type: ignore[arg-type]
    slow, fine = StreamConn(queue_size=2), StreamConn(queue_size=10)
    hub.by_account[7] = {slow, fine}
    for i in range(3):
        hub._send(7, {"event": "new", "n": i})
    assert slow.outbox.closed == (1013, "slow consumer")
    assert hub.by_account[7] == {fine} and len(fine.outbox) == 3
