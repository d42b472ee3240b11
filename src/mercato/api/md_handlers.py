"""The native API's market-data handlers: REST snapshots (from ``MarketData``, never the
engine) and outside feeds (market data only; not persisted: a restart forgets them)."""

from __future__ import annotations

import asyncio

import msgspec
from starlette.responses import Response

from mercato.api import schemas as s
from mercato.api.base import (
    ApiBase,
    ApiError,
    Ctx,
    int_param,
    json_response,
    limit_param,
    page_token,
    paged_response,
    units,
)
from mercato.domain.instrument import Instrument
from mercato.marketdata.bars import INTERVALS, Bar
from mercato.marketdata.events import MdEvent, MdLevel, MdOrder, MdQuote, MdTrade
from mercato.marketdata.market import DEFAULT_BARS, Market
from mercato.services.history import StoreBehind, parse_seq_token
from mercato.services.marketdata import MarketData


class MarketDataHandlers(ApiBase):
    # -- market data snapshots (from MarketData, never the engine) -----------------------

    def market(self, symbol: str) -> Market:
        m = self.md.markets.get(symbol)
        if m is None:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol!r}")
        return m

    async def quote(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        seq = self.md.seq_of(m, m.names["quotes"])  # (the state as of that seq)
        q = m.quote_json()
        return json_response(
            {
                "symbol": symbol,
                "bid": q["bid"],
                "bid_size": q["bid_qty"] if q["bid"] else None,
                "ask": q["ask"],
                "ask_size": q["ask_qty"] if q["ask"] else None,
                "last": q["last"],
                "seq": seq,
            }
        )

    async def depth(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        levels = int_param(c.request, "levels")
        levels = 10 if levels is None else levels
        if not 1 <= levels <= 1_000:
            raise ApiError(400, "invalid_levels", "levels is 1..1000")
        seq = self.md.seq_of(m, m.names["book"])  # (the state as of that seq)
        bids, asks = m.book.depth(levels)
        return json_response(
            {
                "symbol": symbol,
                "bids": m.levels_json(bids),
                "asks": m.levels_json(asks),
                "seq": seq,
            }
        )

    async def recent_trades(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        limit = limit_param(c.request)
        before = page_token(c.request, parse_seq_token)
        kept = self.md.trades(symbol, self.md.max_trades)  # newest first, a whole suffix
        tape = [t for t in kept if before is None or t.trade_id < before][:limit]
        if len(tape) < limit and not m.external:  # older: the store's (the engine's trades)
            bounds = [b for b in (before, kept[-1].trade_id if kept else None) if b is not None]
            bound = min(bounds) if bounds else None
            held = kept[-1].trade_id if kept else None
            try:
                tape += await self.platform.queries.trades_before(
                    symbol, bound, limit - len(tape), held
                )
            except StoreBehind as e:  # a page with a hole in it would be a silent wrong
                raise ApiError(503, "store_behind", str(e)) from None
        token = str(tape[-1].trade_id) if len(tape) == limit else None
        return paged_response(
            [{k: v for k, v in m.trade_json(t).items() if k != "symbol"} for t in tape], token
        )

    async def bars(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        limit = limit_param(c.request)
        interval = c.request.query_params.get("interval", DEFAULT_BARS)
        if interval not in INTERVALS:
            raise ApiError(400, "invalid_interval", f"interval is one of {', '.join(INTERVALS)}")
        iv = INTERVALS[interval]
        before = page_token(c.request, parse_seq_token)  # a bar's start: older bars only
        if before is not None and before % iv:
            raise ApiError(400, "invalid_page_token", "not a page token of these bars")
        page = await self.newest_bars(symbol, interval, limit, before)
        token = str(page[0].start) if len(page) == limit else None
        return paged_response([m.bar_json(b) for b in page], token)

    async def newest_bars(
        self, symbol: str, interval: str, limit: int, before: int | None = None
    ) -> list[Bar]:
        """The newest ``limit`` bars of ``symbol`` starting before ``before`` (None: any),
        oldest first: memory's, then the store's older ones (the engine's trades)."""
        m = self.market(symbol)
        iv = INTERVALS[interval]
        kept = self.md.bars(symbol, self.md.max_bars, interval)  # oldest first, a suffix
        page = [b for b in kept if before is None or b.start < before][-limit:]
        if len(page) < limit and not m.external:
            bounds = [b for b in (before, kept[0].start if kept else None) if b is not None]
            bound = min(bounds) if bounds else None
            try:
                older = await self.platform.queries.bars_before(
                    symbol, iv, bound, limit - len(page)
                )
            except StoreBehind as e:
                raise ApiError(503, "store_behind", str(e)) from None
            page = older + page
        return page

    # -- outside feeds (market data only; not persisted: a restart forgets them) ----------

    async def add_feed(self, c: Ctx) -> Response:
        body = await c.body(s.FeedRequest)
        problem = Instrument(symbol=body.symbol).validate()
        if problem is not None:
            raise ApiError(400, "invalid_symbol", problem)
        tick = units("tick_size", body.tick_size, body.price_scale)
        lot = units("lot_size", body.lot_size, body.qty_scale)
        if tick <= 0 or lot <= 0:
            raise ApiError(400, "invalid_number", "tick_size and lot_size must be positive")
        if body.symbol in self.core.engine.books or body.symbol in self.md.markets:
            raise ApiError(409, "duplicate_symbol", f"{body.symbol!r} exists already")
        self.md.add_instrument(body.symbol, tick, lot, body.price_scale, body.qty_scale, True)
        return json_response({"symbol": body.symbol}, 201)

    async def feed_events(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        if symbol not in self.md.markets or symbol in self.core.engine.books:
            raise ApiError(404, "unknown_feed", f"no outside feed {symbol[:100]!r}")
        body = await c.body(s.FeedEvents)
        for i, e in enumerate(body.events):
            problem = feed_problem(e, symbol)
            if problem is not None:  # nothing applied: the whole batch is refused
                raise ApiError(400, "invalid_event", f"events[{i}]: {problem}")
        self.md.publish(body.events)
        return json_response({"symbol": symbol, "accepted": len(body.events)})

    async def stats(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        return json_response({"symbol": symbol, **m.stats_json(self.md.now)})


async def md_clock(md: MarketData, every: float = 1.0) -> None:
    """Move the market data's clock on once a second (bars close on it)."""
    while True:
        await asyncio.sleep(every)
        md.tick()


_LIMIT = 2**62


def feed_problem(e: MdEvent, symbol: str) -> str | None:
    """Why an outside feed's event cannot be applied, or None."""
    if e.symbol != symbol:
        return f"symbol {e.symbol[:100]!r} in the feed of {symbol!r}"
    if isinstance(e, MdTrade | MdLevel | MdOrder) and e.side not in (0, 1, 2):
        return "side is 0 (unknown), 1 (buy) or 2 (sell)"
    if isinstance(e, MdLevel | MdOrder) and e.side == 0:
        return "a level or an order has a side"
    values = [v for v in msgspec.structs.astuple(e) if isinstance(v, int)]
    if any(not -_LIMIT < v < _LIMIT for v in values):
        return "an integer out of range"
    if isinstance(e, MdTrade) and (e.price <= 0 or e.qty <= 0):
        return "a trade's price and quantity are positive"
    if isinstance(e, MdLevel | MdOrder) and (e.price < 0 or e.qty < 0):
        return "prices and quantities are not negative"
    if isinstance(e, MdQuote) and min(e.bid, e.bid_qty, e.ask, e.ask_qty) < 0:
        return "prices and quantities are not negative"
    return None
