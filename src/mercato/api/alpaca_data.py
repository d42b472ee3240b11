"""The Alpaca-compatible historical market-data API (``/v2/stocks/...``): programs using
Alpaca's ``StockHistoricalDataClient`` (``alpaca-py``) read Mercato's tape with only
``url_override`` changed.

Served (every one takes ``symbols=A,B``; answers are keyed by symbol)::

    GET /v2/stocks/bars?symbols=..&timeframe=1Min    {"bars": {"XYZ": [{t,o,h,l,c,v,n,vw}]},
                                                      "next_page_token": null}
    GET /v2/stocks/trades?symbols=..                 {"trades": {"XYZ": [{t,x,p,s,c,i,z}]}, ..}
    GET /v2/stocks/quotes?symbols=..                 {"quotes": {"XYZ": [{t,ax,ap,as,..}]}, ..}
    GET /v2/stocks/bars/latest?symbols=..            {"bars": {"XYZ": {..}}}
    GET /v2/stocks/trades/latest?symbols=..          {"trades": {"XYZ": {..}}}
    GET /v2/stocks/quotes/latest?symbols=..          {"quotes": {"XYZ": {..}}}
    GET /v2/stocks/snapshots?symbols=..              {"XYZ": {latestTrade, latestQuote,
                                                      minuteBar, dailyBar, prevDailyBar}}
    GET /v2/stocks/{symbol}/snapshot                 {"symbol": "XYZ", latestTrade, ..}

The time-series endpoints honour ``start`` / ``end`` (RFC-3339), ``limit`` (1..10,000;
1,000 by default), ``sort`` (``asc`` / ``desc``) and ``page_token`` (the
``next_page_token`` of the previous page; pages run through the symbols in order, as
Alpaca's do). ``feed`` is ``iex`` or ``sip`` (the same data: Mercato's own tape);
``adjustment`` (bars) any of Alpaca's values, all the same data as Mercato has no
corporate actions. Any other parameter (``currency``, ``asof``, ...) is refused (422),
not ignored. Timestamps are RFC-3339 in UTC with nanoseconds; prices and sizes
are JSON numbers, as Alpaca sends them.

What there is to read is Mercato's market-data service (``services/marketdata.py``, never
the engine): the most recent trades and one-minute bars of every instrument it has, the
engine's and those of outside feeds (paper fills are not market data); and, for the
engine's instruments, the bars older than its memory of one-minute bars (a day) from the
SQL store, aggregated there from the trades at the timeframe asked (a bar that starts
before the first minute memory holds comes whole from the store). Bars of other
timeframes (``nMin``, ``nHour``, ``1Day``, UTC days, each aligned to the epoch) are
aggregated from the one-minute bars; weeks and months are refused (422). A bars page
token is ``SYMBOL:start`` (ns) of the page's first bar. ``vw`` (the volume-weighted
price) is given where every trade of the bar is still on the trade tape or the bar comes
from the store, else null. The exchange (``x``, ``ax``, ``bx``) is ``"MERCATO"``, the tape (``z``)
``"M"``, trade conditions ``["@"]``; trade ids (``i``) are the engine's event seqs (an
outside feed's own ids for its instruments).

Quotes: Mercato keeps no quote history yet. ``/v2/stocks/quotes`` answers one quote, the
market data's current top of book (stamped now; an empty side is price 0 and size 0), when
now is within the requested ``start`` .. ``end``; otherwise nothing.

Snapshots: the latest trade (null before the first), the current quote (as the latest
quote), the newest one-minute bar, the newest daily bar (a UTC day, as ``1Day`` bars are
here, not the exchange's session) and the one before it (the newest day with trades
before it: from memory, or the SQL store), each null when there is none. As on Alpaca, a
symbol of ``snapshots`` with no instrument is left out of the answer; the one-symbol
route answers it 404 (``unknown_symbol``), as ``/v2/assets/{symbol}`` does.

Market data is public here, as on ``/v1/marketdata``: a key is not needed, but a wrong
one is refused (401). Errors take Alpaca's shape (``alpaca.alpaca_error``); a symbol with
no instrument simply has no data, as on Alpaca. The answers are the structs below, and
``ROUTES`` describes the routes for the OpenAPI document (``GET /v2/openapi.json``).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Final, TypeVar

import msgspec
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from mercato.api.alpaca import AlpacaRoute, Param, alpaca_error
from mercato.api.alpaca_models import EXCHANGE, TAPE, number, parse_time
from mercato.api.app import PUBLIC, Api, ApiError, Ctx, endpoint_for, json_response
from mercato.marketdata.bars import Bar as MinuteBar
from mercato.marketdata.events import MdTrade
from mercato.marketdata.market import DAY_NS, MINUTE_NS, Market
from mercato.services.history import StoreBehind

DEFAULT_LIMIT: Final = 1_000
MAX_LIMIT: Final = 10_000
MAX_SYMBOLS: Final = 100
FEEDS: Final = ("iex", "sip")
ADJUSTMENTS: Final = ("raw", "split", "dividend", "spin-off", "all")
_UNITS: Final = {
    "Min": MINUTE_NS,
    "T": MINUTE_NS,
    "Hour": 60 * MINUTE_NS,
    "H": 60 * MINUTE_NS,
    "Day": 1_440 * MINUTE_NS,
    "D": 1_440 * MINUTE_NS,
}
_TIMEFRAME = re.compile(r"^(\d{1,4})([A-Za-z]+)$")
_I = TypeVar("_I")


class Bar(msgspec.Struct, kw_only=True):
    t: str  # the bar's start
    o: float
    h: float
    l: float  # noqa: E741 (Alpaca's name)
    c: float
    v: float
    n: int  # trades
    vw: float | None  # volume-weighted price, when every trade is still on the tape


class Trade(msgspec.Struct, kw_only=True):
    t: str
    x: str  # exchange
    p: float
    s: float
    c: list[str]  # conditions
    i: int  # the engine's event seq
    z: str  # tape


class Quote(msgspec.Struct, kw_only=True, rename={"as_": "as"}):
    t: str
    ax: str
    ap: float
    as_: float
    bx: str
    bp: float
    bs: float
    c: list[str]
    z: str


class Bars(msgspec.Struct):
    bars: dict[str, list[Bar]]
    next_page_token: str | None


class Trades(msgspec.Struct):
    trades: dict[str, list[Trade]]
    next_page_token: str | None


class Quotes(msgspec.Struct):
    quotes: dict[str, list[Quote]]
    next_page_token: str | None


class LatestBars(msgspec.Struct):
    bars: dict[str, Bar]


class LatestTrades(msgspec.Struct):
    trades: dict[str, Trade]


class LatestQuotes(msgspec.Struct):
    quotes: dict[str, Quote]


class Snapshot(msgspec.Struct, kw_only=True, rename="camel"):
    """One symbol's latest of everything (``latestTrade``, ...: Alpaca's names)."""

    latest_trade: Trade | None
    latest_quote: Quote
    minute_bar: Bar | None
    daily_bar: Bar | None
    prev_daily_bar: Bar | None


class SymbolSnapshot(Snapshot, kw_only=True, rename="camel"):
    """The one-symbol route's answer: the snapshot with its symbol."""

    symbol: str


Snapshots = dict[str, Snapshot]


def rfc3339(ns: int) -> str:
    """``ns`` since the epoch as RFC-3339 in UTC, with the nanoseconds (trailing zeros
    dropped), as Alpaca writes its timestamps."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def timeframe_ns(text: str) -> int:
    m = _TIMEFRAME.match(text or "")
    unit = _UNITS.get(m.group(2)) if m is not None else None
    if m is None or unit is None or int(m.group(1)) < 1:
        raise ApiError(
            422, "invalid_timeframe", "timeframe is nMin, nHour or 1Day (no weeks or months)"
        )
    amount = int(m.group(1))
    if unit == _UNITS["Day"] and amount != 1:
        raise ApiError(422, "invalid_timeframe", "only 1Day bars are served")
    return amount * unit


class AlpacaData:
    """The ``/v2/stocks`` handlers, over the native ``Api``'s market data."""

    def __init__(self, api: Api) -> None:
        self.api = api

    # -- parameters ----------------------------------------------------------------------

    def _symbols(self, c: Ctx) -> list[str]:
        q = c.request.query_params
        raw = ",".join(q.getlist("symbols"))
        symbols = list(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
        if not symbols:
            raise ApiError(422, "missing_symbols", "symbols is required")
        if len(symbols) > MAX_SYMBOLS:
            raise ApiError(422, "too_many_symbols", f"at most {MAX_SYMBOLS} symbols")
        return symbols

    @staticmethod
    def _feed(c: Ctx) -> None:
        if c.request.query_params.get("feed", "iex") not in FEEDS:
            raise ApiError(422, "invalid_feed", "feed is iex or sip (the same data here)")

    def _markets(self, c: Ctx) -> list[tuple[str, Market]]:
        self._feed(c)
        markets = self.api.md.markets
        return [(s, markets[s]) for s in self._symbols(c) if s in markets]

    @staticmethod
    def _range(c: Ctx) -> tuple[int | None, int | None]:
        q = c.request.query_params
        start = parse_time(q["start"], "start") if q.get("start") else None
        end = parse_time(q["end"], "end") if q.get("end") else None
        return start, end

    @staticmethod
    def _limit(c: Ctx) -> int:
        raw = c.request.query_params.get("limit")
        if not raw:
            return DEFAULT_LIMIT
        if not raw.isdecimal() or not 1 <= int(raw) <= MAX_LIMIT:
            raise ApiError(422, "invalid_limit", f"limit is 1..{MAX_LIMIT}")
        return int(raw)

    @staticmethod
    def _desc(c: Ctx) -> bool:
        sort = c.request.query_params.get("sort", "asc") or "asc"
        if sort not in ("asc", "desc"):
            raise ApiError(422, "invalid_sort", "sort is asc or desc")
        return sort == "desc"

    def _page(
        self, c: Ctx, series: list[tuple[str, list[tuple[int, _I]]]]
    ) -> tuple[dict[str, list[_I]], str | None]:
        """One page of ``series`` (per symbol, in order: (ts, item) oldest first): filtered
        by start / end, sorted, cut at ``page_token`` and ``limit``; and the next page's
        token."""
        start, end = self._range(c)
        limit, desc = self._limit(c), self._desc(c)
        token = c.request.query_params.get("page_token") or ""
        flat: list[tuple[str, int, int, _I]] = []  # symbol, ts, n, item
        for symbol, items in series:
            picked = [
                (ts, item)
                for ts, item in items
                if (start is None or ts >= start) and (end is None or ts <= end)
            ]
            if desc:
                picked.reverse()
            flat.extend((symbol, ts, n, item) for n, (ts, item) in enumerate(picked))
        begin = 0
        if token:
            # the token names the first item of the page: symbol, then its position key
            keys = [f"{s}:{ts}:{n}" for s, ts, n, _ in flat]
            try:
                begin = keys.index(token)
            except ValueError:
                raise ApiError(422, "invalid_page_token", "unknown page_token") from None
        page = flat[begin : begin + limit]
        rest = flat[begin + limit : begin + limit + 1]
        out: dict[str, list[_I]] = {}
        for symbol, _, _, item in page:
            out.setdefault(symbol, []).append(item)
        return out, f"{rest[0][0]}:{rest[0][1]}:{rest[0][2]}" if rest else None

    # -- items ---------------------------------------------------------------------------

    @staticmethod
    def _trade(m: Market, t: MdTrade) -> Trade:
        return Trade(
            t=rfc3339(t.ts),
            x=EXCHANGE,
            p=number(t.price, m.price_scale),
            s=number(t.qty, m.qty_scale),
            c=["@"],
            i=t.trade_id,
            z=TAPE,
        )

    def _quote(self, m: Market) -> Quote:
        ps, qs, q = m.price_scale, m.qty_scale, m.quote
        return Quote(
            t=rfc3339(self.api.platform.now()),
            ax=EXCHANGE,
            ap=number(q.ask, ps),
            as_=number(q.ask_qty, qs),
            bx=EXCHANGE,
            bp=number(q.bid, ps),
            bs=number(q.bid_qty, qs),
            c=["R"],
            z=TAPE,
        )

    def _bars(self, symbol: str, m: Market, span: int) -> list[tuple[int, Bar]]:
        """The symbol's bars of ``span`` ns, oldest first: (start ns, Alpaca bar)."""
        tape = self.api.md
        minutes = tape.bars(symbol, tape.max_bars)
        # exact notional per minute, from the trades still on the tape: (notional, qty, n)
        flows: dict[int, list[int]] = {}
        for t in tape.trades(symbol, tape.max_trades):
            f = flows.setdefault(t.ts - t.ts % MINUTE_NS, [0, 0, 0])
            f[0] += t.price * t.qty
            f[1] += t.qty
            f[2] += 1
        groups: list[tuple[int, list[MinuteBar]]] = []
        for b in minutes:
            start = b.start - b.start % span
            if groups and groups[-1][0] == start:
                groups[-1][1].append(b)
            else:
                groups.append((start, [b]))
        out = []
        for start, bars in groups:
            notional = 0
            complete = True
            for b in bars:
                flow = flows.get(b.start)
                if flow is None or flow[2] != b.trades:
                    complete = False
                    break
                notional += flow[0]
            bucket = (
                start,
                bars[0].open,
                max(b.high for b in bars),
                min(b.low for b in bars),
                bars[-1].close,
                sum(b.volume for b in bars),
                sum(b.trades for b in bars),
            )
            out.append((start, self._bar(m, bucket, notional if complete else None)))
        return out

    @staticmethod
    def _bar(m: Market, bucket: tuple[int, ...], notional: int | None) -> Bar:
        """An Alpaca bar of (start, open, high, low, close, volume, trades): ``vw`` from
        its ``notional`` (sum of price x qty; None: not known)."""
        start, o, h, lo, c, volume, n = bucket[:7]
        ps, qs = m.price_scale, m.qty_scale
        vwap = notional / volume / 10**ps if notional is not None and volume else None
        return Bar(
            t=rfc3339(start),
            o=number(o, ps),
            h=number(h, ps),
            l=number(lo, ps),
            c=number(c, ps),
            v=number(volume, qs),
            n=n,
            vw=round(vwap, ps + 4) if vwap is not None else None,
        )

    async def _bar_series(
        self,
        symbol: str,
        m: Market,
        span: int,
        lo: int | None,
        hi: int | None,
        desc: bool,
        n: int,
    ) -> list[tuple[int, Bar]]:
        """At most ``n`` of the symbol's bars of ``span`` ns that start from ``lo`` to
        ``hi`` (inclusive; None: unbounded), in the order asked: memory's, and the
        store's for those that start before the first minute memory holds (when the
        store has older trades), aggregated there from the trades."""
        minutes = self.api.md.bars(symbol, self.api.md.max_bars)
        queries = self.api.platform.queries
        boundary = None  # bars that start before it: the store's
        if minutes and not m.external and queries.store is not None:
            first = await asyncio.to_thread(queries.store.first_ts, symbol)
            if first is not None and first < minutes[0].start:
                boundary = minutes[0].start
        memory = [
            (g, b)
            for g, b in self._bars(symbol, m, span)
            if (lo is None or g >= lo)
            and (hi is None or g <= hi)
            and (boundary is None or g >= boundary)
        ]
        if desc:
            memory.reverse()
        stored: list[tuple[int, Bar]] = []
        top = boundary - 1 if boundary is not None else None
        if top is not None and hi is not None:
            top = min(top, hi)
        want = n if not desc else n - len(memory)
        if top is not None and (lo is None or lo <= top) and want > 0:
            since = None if lo is None else lo + (-lo) % span  # the first bar start >= lo
            upper = top - top % span + span  # trades before the end of the last bar
            newest = minutes[-1].start + MINUTE_NS - 1  # (no trade of memory is later)
            last = self.api.md.trades(symbol, 1)
            if last:
                newest = last[0].ts
            buckets = await queries.bar_buckets(symbol, span, want, since, upper, not desc, newest)
            stored = [(b[0], self._bar(m, b, b[7])) for b in buckets]
            if desc:
                stored.reverse()
        return (memory + stored if desc else stored + memory)[:n]

    async def _bar_page(self, c: Ctx, span: int) -> tuple[dict[str, list[Bar]], str | None]:
        """One page of bars: symbol after symbol, each within ``start`` / ``end``, from
        the ``page_token`` (``SYMBOL:start``, the first bar of the page) on, ``limit`` of
        them; and the next page's token."""
        start, end = self._range(c)
        limit, desc = self._limit(c), self._desc(c)
        markets = self._markets(c)
        token = c.request.query_params.get("page_token") or ""
        at: tuple[str, int] | None = None
        if token:
            symbol, _, ts = token.rpartition(":")
            if not (ts.isdigit() and len(ts) <= 20 and any(symbol == s for s, _ in markets)):
                raise ApiError(422, "invalid_page_token", "unknown page_token")
            at = (symbol, int(ts))
        got: list[tuple[str, int, Bar]] = []
        for symbol, m in markets:
            lo, hi = start, end
            if at is not None:  # the symbols before the token's are done
                if symbol != at[0]:
                    continue
                if desc:
                    hi = at[1] if hi is None else min(hi, at[1])
                else:
                    lo = at[1] if lo is None else max(lo, at[1])
                at = None
            try:
                series = await self._bar_series(symbol, m, span, lo, hi, desc, limit + 1 - len(got))
            except StoreBehind as e:
                raise ApiError(503, "store_behind", str(e)) from None
            got.extend((symbol, g, b) for g, b in series)
            if len(got) > limit:
                break
        out: dict[str, list[Bar]] = {}
        for symbol, _, bar in got[:limit]:
            out.setdefault(symbol, []).append(bar)
        rest = got[limit:]
        return out, f"{rest[0][0]}:{rest[0][1]}" if rest else None

    # -- handlers ------------------------------------------------------------------------

    async def bars(self, c: Ctx) -> Response:
        q = c.request.query_params
        if q.get("adjustment", "raw") not in ADJUSTMENTS:  # all the same: no corporate actions
            choices = ", ".join(ADJUSTMENTS)
            raise ApiError(422, "invalid_adjustment", f"adjustment is one of {choices}")
        span = timeframe_ns(q.get("timeframe", ""))
        return json_response(Bars(*await self._bar_page(c, span)))

    async def trades(self, c: Ctx) -> Response:
        tape = self.api.md
        series = []
        for symbol, m in self._markets(c):
            prints = list(reversed(tape.trades(symbol, tape.max_trades)))  # oldest first
            series.append((symbol, [(t.ts, self._trade(m, t)) for t in prints]))
        return json_response(Trades(*self._page(c, series)))

    async def quotes(self, c: Ctx) -> Response:
        now = self.api.platform.now()
        series = []
        for symbol, m in self._markets(c):
            series.append((symbol, [(now, self._quote(m))]))
        return json_response(Quotes(*self._page(c, series)))

    async def latest_trades(self, c: Ctx) -> Response:
        out = {}
        for symbol, m in self._markets(c):
            last = self.api.md.trades(symbol, 1)
            if last:
                out[symbol] = self._trade(m, last[0])
        return json_response(LatestTrades(out))

    async def latest_quotes(self, c: Ctx) -> Response:
        return json_response(LatestQuotes({s: self._quote(m) for s, m in self._markets(c)}))

    async def latest_bars(self, c: Ctx) -> Response:
        out = {}
        for symbol, m in self._markets(c):
            bars = self._bars(symbol, m, MINUTE_NS)
            if bars:
                out[symbol] = bars[-1][1]
        return json_response(LatestBars(out))

    async def _snapshot(self, symbol: str, m: Market) -> Snapshot:
        last = self.api.md.trades(symbol, 1)
        minutes = self._bars(symbol, m, MINUTE_NS)
        try:  # the two newest daily bars, newest first
            days = await self._bar_series(symbol, m, DAY_NS, None, None, True, 2)
        except StoreBehind as e:
            raise ApiError(503, "store_behind", str(e)) from None
        return Snapshot(
            latest_trade=self._trade(m, last[0]) if last else None,
            latest_quote=self._quote(m),
            minute_bar=minutes[-1][1] if minutes else None,
            daily_bar=days[0][1] if days else None,
            prev_daily_bar=days[1][1] if len(days) > 1 else None,
        )

    async def snapshots(self, c: Ctx) -> Response:
        out: Snapshots = {}
        for symbol, m in self._markets(c):
            out[symbol] = await self._snapshot(symbol, m)
        return json_response(out)

    async def snapshot(self, c: Ctx) -> Response:
        self._feed(c)
        symbol = c.request.path_params["symbol"]
        m = self.api.md.markets.get(symbol)
        if m is None:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol[:100]!r}")
        s = msgspec.structs.asdict(await self._snapshot(symbol, m))
        return json_response(SymbolSnapshot(symbol=symbol, **s))


_SYMBOLS: Final = (
    Param("symbols", {"type": "string", "description": "A,B,..."}, True),
    Param("feed", {"enum": list(FEEDS), "default": "iex"}),
)
_SERIES: Final = (
    *_SYMBOLS,
    Param("start", {"type": "string", "description": "RFC-3339, or a date"}),
    Param("end", {"type": "string", "description": "RFC-3339, or a date"}),
    Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 1000}),
    Param("sort", {"enum": ["asc", "desc"], "default": "asc"}),
    Param("page_token", {"type": "string", "description": "a next_page_token"}),
)
_FEED: Final = _SYMBOLS[1]
_TIMEFRAME_PARAM: Final = Param(
    "timeframe", {"type": "string", "pattern": "^[0-9]+(Min|T|Hour|H|Day|D)$"}, True
)
_ADJUSTMENT: Final = Param("adjustment", {"enum": list(ADJUSTMENTS), "default": "raw"})


def _route(path: str, handler: str, response: type, query: tuple[Param, ...]) -> AlpacaRoute:
    """Public, as ``/v1/marketdata`` (Alpaca's key headers are checked when sent); a 422
    for a bad parameter."""
    return AlpacaRoute(
        "GET", path, PUBLIC, handler, response, query=query, errors=frozenset({422}), tag="data"
    )


ROUTES: Final = (
    _route("/v2/stocks/bars/latest", "latest_bars", LatestBars, _SYMBOLS),
    _route("/v2/stocks/trades/latest", "latest_trades", LatestTrades, _SYMBOLS),
    _route("/v2/stocks/quotes/latest", "latest_quotes", LatestQuotes, _SYMBOLS),
    _route("/v2/stocks/bars", "bars", Bars, (*_SERIES, _TIMEFRAME_PARAM, _ADJUSTMENT)),
    _route("/v2/stocks/trades", "trades", Trades, _SERIES),
    _route("/v2/stocks/quotes", "quotes", Quotes, _SERIES),
    _route("/v2/stocks/snapshots", "snapshots", Snapshots, _SYMBOLS),
    _route("/v2/stocks/{symbol}/snapshot", "snapshot", SymbolSnapshot, (_FEED,)),
)
"""The market-data routes, for ``alpaca_data_routes`` and the OpenAPI document."""


def alpaca_data_routes(api: Api) -> list[BaseRoute]:
    """The ``/v2/stocks`` market-data routes."""
    d = AlpacaData(api)
    return [
        Route(
            spec.path,
            endpoint_for(
                api,
                spec.access,
                getattr(d, spec.handler),
                alpaca_error,
                query=frozenset(p.name for p in spec.query),
                invalid=422,
            ),
            methods=[spec.method],
        )
        for spec in ROUTES
    ]
