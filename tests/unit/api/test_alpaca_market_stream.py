"""The Alpaca-compatible real-time stock data stream (``/v2/iex``), driven by Alpaca's own
``StockDataStream`` (msgpack) against a real server, and by a plain JSON client."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alpaca.data.live import StockDataStream
from alpaca.data.models import Quote
from alpaca.data.models import Trade as AlpacaTrade
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mercato.api.alpaca_market_stream import MarketHub
from mercato.api.app import create_app

Server = dict[str, Any]


Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[Server]:
    """A served in-memory platform: XYZ with a maker (account 1) quoting 99.00 / 101.00,
    each 1,000, and a trader (account 2, cash 100,000.00)."""
    platform, auth, user = market.platform, market.auth, market.trader
    app = create_app(platform, auth)
    hub = next(
        f.__self__  # type: ignore[attr-defined]
        for f in app.state.api.md._tick_listeners
        if isinstance(getattr(f, "__self__", None), MarketHub)
    )
    url, port = serve_app(app)
    yield {
        "url": url,
        "ws": f"ws://127.0.0.1:{port}/v2/iex",
        "key": auth.create_key(user),
        "hub": hub,
        "auth": auth,
    }


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_stock_data_stream_gets_trades_and_quotes(server: Server) -> None:
    key_id, secret = server["key"]
    stream = StockDataStream(key_id, secret, url_override=server["ws"])
    trades: list[AlpacaTrade] = []
    quotes: list[Quote] = []

    async def on_trade(t: AlpacaTrade | dict[Any, Any]) -> None:
        assert isinstance(t, AlpacaTrade)
        trades.append(t)

    async def on_quote(q: Quote | dict[Any, Any]) -> None:
        assert isinstance(q, Quote)
        quotes.append(q)

    stream.subscribe_trades(on_trade, "XYZ")
    stream.subscribe_quotes(on_quote, "XYZ")
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: any(c.quotes and c.trades for c in server["hub"].conns))
        c = TradingClient(key_id, secret, url_override=server["url"])
        before = datetime.now(UTC)
        c.submit_order(
            MarketOrderRequest(
                symbol="XYZ", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        wait_for(lambda: trades and quotes)
        # a bid below the best does not change the top: no quote; a better one does
        c.submit_order(
            LimitOrderRequest(
                symbol="XYZ",
                qty=3,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=95,
            )
        )
        c.submit_order(
            LimitOrderRequest(
                symbol="XYZ",
                qty=4,
                side=OrderSide.BUY,
                time_in_force=TimeInForce.GTC,
                limit_price=99.5,
            )
        )
        wait_for(lambda: len(quotes) >= 2)
    finally:

        async def stop() -> None:
            await stream.stop_ws()
            await stream.close()

        wait_for(lambda: stream._loop is not None)
        loop: Any = stream._loop
        asyncio.run_coroutine_threadsafe(stop(), loop).result(5)
        thread.join(5)
    assert not thread.is_alive()
    [trade] = trades
    assert (trade.symbol, trade.price, trade.size) == ("XYZ", 101.0, 10)
    assert trade.exchange == "MERCATO" and trade.id is not None
    assert trade.timestamp.tzinfo is not None
    assert abs((trade.timestamp - before).total_seconds()) < 5
    first, second = quotes
    assert (first.symbol, first.bid_price, first.bid_size) == ("XYZ", 99.0, 1000)
    assert (first.ask_price, first.ask_size) == (101.0, 990)
    assert first.timestamp.tzinfo is not None
    assert (second.bid_price, second.bid_size, second.ask_price) == (99.5, 4, 101.0)


def recv(ws: Any) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = json.loads(ws.recv(timeout=5))
    return msgs


def test_the_json_protocol(server: Server) -> None:
    key_id, secret = server["key"]
    with connect(server["ws"].replace("/v2/iex", "/v2/sip")) as ws:
        assert recv(ws) == [{"T": "success", "msg": "connected"}]
        ws.send(json.dumps({"action": "subscribe", "trades": ["XYZ"]}))
        assert recv(ws)[0] == {"T": "error", "code": 401, "msg": "not authenticated"}
        ws.send("not json")
        assert recv(ws)[0]["code"] == 400
        ws.send(json.dumps({"action": "auth", "key": key_id, "secret": secret}))
        assert recv(ws) == [{"T": "success", "msg": "authenticated"}]
        ws.send(json.dumps({"action": "auth", "key": key_id, "secret": secret}))
        assert recv(ws)[0]["code"] == 403
        ws.send(json.dumps({"action": "subscribe", "imbalances": ["XYZ"]}))
        assert recv(ws)[0]["code"] == 410  # (the native auction:XYZ carries the indicative)
        assert recv(ws)[0]["T"] == "subscription"
        ws.send(json.dumps({"action": "subscribe", "trades": ["*"], "bars": ["XYZ"]}))
        assert recv(ws)[0]["code"] == 410
        sub = recv(ws)[0]
        assert (sub["T"], sub["trades"], sub["quotes"], sub["bars"]) == (
            "subscription",
            ["*"],
            [],
            [],
        )
        c = TradingClient(key_id, secret, url_override=server["url"])
        c.submit_order(
            MarketOrderRequest(
                symbol="XYZ", qty=7, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )
        [t] = recv(ws)  # trades only: no quote
        assert (t["T"], t["S"], t["p"], t["s"], t["x"], t["z"]) == (
            "t",
            "XYZ",
            101.0,
            7,
            "MERCATO",
            "M",
        )
        assert t["t"].endswith("Z") and len(t["t"].split(".")[1]) == 10  # 9 digits + Z
        datetime.fromisoformat(t["t"][:26] + "+00:00")
        ws.send(json.dumps({"action": "unsubscribe", "trades": ["*"]}))
        assert recv(ws)[0]["trades"] == []
        # a connection's subscriptions are bounded (any string was kept, without end)
        many = [f"S{i}" for i in range(600)]
        ws.send(json.dumps({"action": "subscribe", "quotes": many}))
        assert len(recv(ws)[0]["quotes"]) == 600
        more = [f"T{i}" for i in range(401)]
        ws.send(json.dumps({"action": "subscribe", "quotes": more, "trades": ["XYZ"]}))
        assert recv(ws)[0] == {"T": "error", "code": 405, "msg": "symbol limit exceeded"}
        ws.send(json.dumps({"action": "subscribe", "quotes": more[:400]}))
        sub = recv(ws)[0]
        assert (len(sub["quotes"]), sub["trades"]) == (1_000, [])  # the refused one: nothing


def test_an_outside_feeds_trades_and_quotes_stream_too(server: Server) -> None:
    """The stream follows the market-data service: an outside feed's instrument (not the
    engine's) streams as the engine's do."""
    import httpx
    import msgspec

    from mercato.marketdata.events import BUY, SELL, MdLevel, MdTrade

    auth = server["auth"]
    admin_key = auth.create_key(auth.create_user("admin", "a long password", "admin"))
    admin = {"Authorization": "Bearer {}:{}".format(*admin_key)}
    r = httpx.post(server["url"] + "/v1/admin/feeds", headers=admin, json={"symbol": "EXT"})
    assert r.status_code == 201, r.text
    key_id, secret = server["key"]
    with connect(server["ws"]) as ws:
        assert recv(ws)[0]["msg"] == "connected"
        ws.send(json.dumps({"action": "auth", "key": key_id, "secret": secret}))
        assert recv(ws)[0]["msg"] == "authenticated"
        ws.send(json.dumps({"action": "subscribe", "trades": ["EXT"], "quotes": ["EXT"]}))
        assert recv(ws)[0]["T"] == "subscription"
        ts = time.time_ns()
        events = [
            MdLevel("EXT", ts, BUY, 4_990, 7),
            MdLevel("EXT", ts, SELL, 5_010, 3),
            MdTrade("EXT", ts, 41, 5_000, 2, BUY),
        ]
        r = httpx.post(
            server["url"] + "/v1/admin/feeds/EXT/events",
            headers={**admin, "Content-Type": "application/json"},
            content=msgspec.json.encode({"events": events}),
        )
        assert r.status_code == 200, r.text
        t, q = recv(ws)
        assert (t["T"], t["S"], t["i"], t["p"], t["s"]) == ("t", "EXT", 41, 50.0, 2)
        assert (q["T"], q["bp"], q["bs"], q["ap"], q["as"]) == ("q", 49.9, 7, 50.1, 3)


def test_a_wrong_key_is_refused_and_closed(server: Server) -> None:
    with connect(server["ws"]) as ws:
        assert recv(ws)[0]["msg"] == "connected"
        ws.send(json.dumps({"action": "auth", "key": "x", "secret": "y"}))
        assert recv(ws) == [{"T": "error", "code": 402, "msg": "auth failed"}]
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1008
