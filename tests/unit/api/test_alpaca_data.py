"""The Alpaca-compatible historical market data (``/v2/stocks``), read by Alpaca's own
``StockHistoricalDataClient`` against a real server: only the base URL changes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alpaca.common.enums import SupportedCurrencies
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockQuotesRequest,
    StockSnapshotRequest,
    StockTradesRequest,
)
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from mercato.api.alpaca_data import parse_time, rfc3339
from mercato.api.app import create_app
from mercato.domain.commands import (
    AddInstrument,
)
from mercato.marketdata.events import BUY, SELL, MdLevel, MdTrade

Serve = Callable[[Any], tuple[str, int]]  # the serve_app fixture (tests/conftest.py)


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[tuple[str, str, str]]:
    """A served in-memory platform: XYZ with a maker (account 1) quoting 99.00 / 101.00,
    and a trader (account 2, cash 100,000.00) whose key is returned."""
    platform, auth, user = market.platform, market.auth, market.trader
    platform.core.process(AddInstrument(symbol="ABC"))
    key_id, secret = auth.create_key(user)
    app = create_app(platform, auth)
    url, _ = serve_app(app)
    yield url, key_id, secret


def trade(server: tuple[str, str, str], *buys: int) -> None:
    url, key_id, secret = server
    c = TradingClient(key_id, secret, url_override=url)
    for qty in buys:
        c.submit_order(
            MarketOrderRequest(
                symbol="XYZ", qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        )


def data(server: tuple[str, str, str]) -> StockHistoricalDataClient:
    url, key_id, secret = server
    return StockHistoricalDataClient(key_id, secret, url_override=url)


def test_bars_trades_and_quotes_after_some_trades(server: tuple[str, str, str]) -> None:
    trade(server, 10, 5, 2)
    d = data(server)
    bars: Any = d.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="XYZ", timeframe=TimeFrame.Minute)
    )
    bar = bars["XYZ"][0]  # (one bar, unless the trades straddled a minute)
    assert (bar.open, bar.high, bar.low, bar.close, bar.vwap) == (101.0,) * 5
    assert sum(b.volume for b in bars["XYZ"]) == 17
    assert sum(b.trade_count for b in bars["XYZ"]) == 3
    assert bar.timestamp.tzinfo is not None and bar.timestamp.second == 0
    hourly: Any = d.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="XYZ", timeframe=TimeFrame(1, TimeFrameUnit.Hour))
    )
    assert sum(b.volume for b in hourly["XYZ"]) == 17
    assert hourly["XYZ"][0].timestamp.minute == 0

    trades: Any = d.get_stock_trades(StockTradesRequest(symbol_or_symbols="XYZ"))
    assert [(t.price, t.size) for t in trades["XYZ"]] == [(101.0, 10), (101.0, 5), (101.0, 2)]
    ids = [t.id for t in trades["XYZ"]]
    assert ids == sorted(ids)
    assert abs(trades["XYZ"][0].timestamp - datetime.now(UTC)) < timedelta(minutes=1)

    quotes: Any = d.get_stock_quotes(StockQuotesRequest(symbol_or_symbols="XYZ"))
    (q,) = quotes["XYZ"]
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (99.0, 1000, 101.0, 983)

    latest_trade: Any = d.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="XYZ"))
    assert latest_trade["XYZ"].size == 2
    latest_quote: Any = d.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="XYZ"))
    assert latest_quote["XYZ"].ask_price == 101.0


def test_an_outside_feeds_instrument_is_served_from_market_data(
    market: Any, serve_app: Serve
) -> None:
    """Not the engine's: the answers come from the market-data service alone."""
    app = create_app(market.platform, market.auth)
    md = app.state.api.md
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0, external=True)
    now = int(datetime.now(UTC).timestamp() * 1e9)
    md.publish(
        [
            MdLevel("EXT", now, BUY, 4_990, 7),
            MdLevel("EXT", now, SELL, 5_010, 3),
            MdTrade("EXT", now, 41, 5_000, 2, BUY),
        ]
    )
    url, _ = serve_app(app)
    d = StockHistoricalDataClient(*market.auth.create_key(market.trader), url_override=url)
    assert "EXT" not in market.platform.core.engine.books
    quote: Any = d.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="EXT"))
    q = quote["EXT"]
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (49.9, 7, 50.1, 3)
    trades: Any = d.get_stock_trades(StockTradesRequest(symbol_or_symbols="EXT"))
    assert [(t.price, t.size, t.id) for t in trades["EXT"]] == [(50.0, 2, 41)]
    bars: Any = d.get_stock_bars(
        StockBarsRequest(symbol_or_symbols="EXT", timeframe=TimeFrame.Minute)
    )
    assert [(b.open, b.volume, b.trade_count) for b in bars["EXT"]] == [(50.0, 2, 1)]


def test_multiple_symbols_range_sort_and_pages(server: tuple[str, str, str]) -> None:
    trade(server, 1, 2, 3, 4)
    d = data(server)
    # alpaca-py follows next_page_token until it has `limit` items
    some: Any = d.get_stock_trades(StockTradesRequest(symbol_or_symbols=["XYZ", "ABC"], limit=3))
    assert [t.size for t in some["XYZ"]] == [1, 2, 3]
    url, key_id, secret = server
    headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
    page = httpx.get(
        url + "/v2/stocks/trades",
        params={"symbols": "XYZ,ABC,NOPE", "limit": 3, "sort": "desc"},
        headers=headers,
    ).json()
    assert [t["s"] for t in page["trades"]["XYZ"]] == [4, 3, 2]
    rest = httpx.get(
        url + "/v2/stocks/trades",
        params={
            "symbols": "XYZ,ABC",
            "limit": 3,
            "sort": "desc",
            "page_token": page["next_page_token"],
        },
        headers=headers,
    ).json()
    assert [t["s"] for t in rest["trades"]["XYZ"]] == [1] and rest["next_page_token"] is None
    assert rest["trades"]["XYZ"][0]["t"].endswith("Z")
    future = datetime.now(UTC) + timedelta(hours=1)
    none: Any = d.get_stock_trades(StockTradesRequest(symbol_or_symbols="XYZ", start=future))
    assert none.data.get("XYZ", []) == []
    past: Any = d.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="XYZ",
            timeframe=TimeFrame.Minute,
            end=datetime.now(UTC) - timedelta(hours=1),
        )
    )
    assert past.data.get("XYZ", []) == []


def test_errors_take_alpacas_shape(server: tuple[str, str, str]) -> None:
    url = server[0]
    with pytest.raises(APIError) as e:
        data(server).get_stock_bars(
            StockBarsRequest(symbol_or_symbols="XYZ", timeframe=TimeFrame.Week)
        )
    assert e.value.status_code == 422
    r = httpx.get(
        url + "/v2/stocks/trades",
        params={"symbols": "XYZ"},
        headers={"APCA-API-KEY-ID": "nope", "APCA-API-SECRET-KEY": "nope"},
    )
    assert r.status_code == 401 and set(r.json()) == {"code", "message"}
    r = httpx.get(url + "/v2/stocks/trades")
    assert r.status_code == 422


def test_snapshots_after_real_trades(server: tuple[str, str, str]) -> None:
    """alpaca-py's ``get_stock_snapshot``: the latest trade, the quote, the minute and
    daily bars; ABC (no trades yet) has a quote and nulls; an unknown symbol is left out."""
    trade(server, 10, 5)
    d = data(server)
    snaps: Any = d.get_stock_snapshot(
        StockSnapshotRequest(symbol_or_symbols=["XYZ", "ABC", "NOPE"], feed="sip")
    )
    assert set(snaps) == {"XYZ", "ABC"}
    s = snaps["XYZ"]
    assert s.symbol == "XYZ"
    assert (s.latest_trade.price, s.latest_trade.size) == (101.0, 5)
    q = s.latest_quote
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (99.0, 1000, 101.0, 985)
    bar = s.minute_bar  # both trades, unless a minute turned between them
    assert (bar.volume, bar.trade_count) in ((15, 2), (5, 1)) and bar.close == 101.0
    day = s.daily_bar
    assert (day.open, day.high, day.low, day.close, day.volume, day.trade_count) == (
        101.0,
        101.0,
        101.0,
        101.0,
        15,
        2,
    )
    assert day.vwap == 101.0 and day.timestamp.hour == day.timestamp.minute == 0
    assert s.previous_daily_bar is None  # no trades before today
    abc = snaps["ABC"]
    assert abc.latest_trade is None and abc.minute_bar is None and abc.daily_bar is None
    assert (abc.latest_quote.bid_price, abc.latest_quote.ask_size) == (0.0, 0.0)

    url = server[0]
    one = httpx.get(url + "/v2/stocks/XYZ/snapshot", params={"feed": "iex"}).json()
    assert one["symbol"] == "XYZ"
    assert set(one) == {
        "symbol",
        "latestTrade",
        "latestQuote",
        "minuteBar",
        "dailyBar",
        "prevDailyBar",
    }
    last = one["latestTrade"]
    assert (last["p"], last["s"], last["i"], last["x"]) == (101, 5, s.latest_trade.id, "MERCATO")
    assert one["dailyBar"]["v"] == 15 and one["prevDailyBar"] is None


def test_snapshot_of_an_outside_feed_with_a_previous_day(market: Any, serve_app: Serve) -> None:
    """Trades on two UTC days: the daily bar is today's, the previous one yesterday's; the
    minute bar the newest minute's."""
    app = create_app(market.platform, market.auth)
    md = app.state.api.md
    md.add_instrument("EXT", tick_size=1, lot_size=1, price_scale=2, qty_scale=0, external=True)
    now = int(datetime.now(UTC).timestamp() * 1e9)
    day = 86_400 * 10**9
    md.publish(
        [
            MdTrade("EXT", now - day, 1, 4_000, 3, BUY),
            MdTrade("EXT", now - day + 1, 2, 4_200, 1, SELL),
            MdTrade("EXT", now, 3, 5_000, 2, BUY),
        ]
    )
    url, _ = serve_app(app)
    d = StockHistoricalDataClient(*market.auth.create_key(market.trader), url_override=url)
    s: Any = d.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="EXT"))["EXT"]
    assert (s.latest_trade.price, s.latest_trade.id) == (50.0, 3)
    assert (s.daily_bar.open, s.daily_bar.volume, s.daily_bar.trade_count) == (50.0, 2, 1)
    prev = s.previous_daily_bar
    assert (prev.open, prev.high, prev.low, prev.close, prev.volume) == (40.0, 42.0, 40.0, 42.0, 4)
    assert prev.vwap == 40.5  # (3 x 40 + 1 x 42) / 4
    assert prev.timestamp.date() == (datetime.now(UTC) - timedelta(days=1)).date()
    assert (s.minute_bar.open, s.minute_bar.volume) == (50.0, 2)


def test_snapshot_refusals(server: tuple[str, str, str]) -> None:
    url = server[0]
    r = httpx.get(url + "/v2/stocks/NOPE/snapshot")
    assert r.status_code == 404 and r.json() == {
        "code": 40400001,
        "message": "no instrument 'NOPE'",
    }
    for path, params, word in [
        ("/v2/stocks/XYZ/snapshot", {"feed": "otc"}, "feed"),
        ("/v2/stocks/XYZ/snapshot", {"currency": "EUR"}, "currency"),
        ("/v2/stocks/XYZ/snapshot", {"symbols": "XYZ"}, "symbols"),
        ("/v2/stocks/snapshots", {"symbols": "XYZ", "currency": "USD"}, "currency"),
        ("/v2/stocks/snapshots", {"symbols": "XYZ", "limit": "2"}, "limit"),
        ("/v2/stocks/snapshots", {}, "symbols"),
    ]:
        r = httpx.get(url + path, params=params)
        assert r.status_code == 422 and word in r.json()["message"], (path, params, r.text)
    with pytest.raises(APIError) as e:
        data(server).get_stock_snapshot(
            StockSnapshotRequest(symbol_or_symbols="XYZ", currency=SupportedCurrencies.EUR)
        )
    assert e.value.status_code == 422


def test_time_formats_round_trip() -> None:
    ns = 1_700_000_000_123_456_789
    assert rfc3339(ns) == "2023-11-14T22:13:20.123456789Z"
    assert parse_time(rfc3339(ns), "t") == ns
    assert parse_time("2023-11-14T22:13:20+00:00", "t") == 1_700_000_000 * 10**9
    assert parse_time("2023-11-14", "t") == 1_699_920_000 * 10**9
    assert rfc3339(1_700_000_000 * 10**9) == "2023-11-14T22:13:20Z"
