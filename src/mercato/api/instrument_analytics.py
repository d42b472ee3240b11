"""Instrument analytics over the bars of market data (``docs/analytics.md``):

- ``GET /v1/marketdata/{symbol}/indicators``: the indicators of ``docs/indicators.md``.
- ``GET /v1/analytics/candles/{symbol}?interval=&start=&end=&limit=``: candles from the
  historical store's trades (``analytics/candles.py``: any interval from 1s to 4w, or
  1mo; ``start`` / ``end`` in ns, candles whose start lies in [start, end); default the
  last day), the newest ``limit`` (default 500, at most 5,000), oldest first; prices and
  volume exact at the instrument's scales. The store holds Mercato's trades (exported
  from the SQL store every few seconds: ``services/history_export.py``) and imported
  recordings (``mercato history import``). 422 ``no_history`` without a store.
- ``GET /v1/analytics/movers?interval=&bars=&by=change|volume|volatility&limit=``: the
  instruments ranked over their newest ``bars`` bars (default 24): ``change`` is the last
  close over the first bar's open less 1, ``volume`` the sum of the bars' volume (in the
  instrument's quantity units, written at its scale), ``volatility`` the sample standard
  deviation of the log returns of consecutive closes (not annualized). Largest first
  (``change``: by its absolute value, the sign kept); instruments with no bar are left
  out.
- ``GET /v1/analytics/correlation?symbols=A,B&interval=&bars=``: Pearson correlations of
  the log returns of the closes of bars both instruments have (matched by bar start),
  over the newest ``bars`` bars (default 100): a matrix in the order of ``symbols``; null
  where fewer than three common returns exist or one series is flat.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any, Final

import polars as pl
from starlette.responses import Response

from mercato.analytics.candles import candles, parse_interval
from mercato.analytics.indicator_specs import SpecError, compute, parse_spec
from mercato.analytics.indicators import render
from mercato.api.base import ApiError, Ctx, int_param, json_response, limit_param
from mercato.api.md_handlers import MarketDataHandlers
from mercato.domain.instrument import format_decimal
from mercato.marketdata.bars import INTERVALS, Bar
from mercato.marketdata.market import DEFAULT_BARS

__all__ = ["InstrumentAnalytics"]

MAX_SPECS: Final = 10
WARMUP: Final = 500  # bars read before the page, for the indicators' lookbacks
MAX_WINDOW: Final = 1_000
MAX_SYMBOLS: Final = 20
DAY_NS: Final = 86_400 * 1_000_000_000
_COLUMNS: Final = ("start", "open", "high", "low", "close", "volume", "trades")


def _interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise ApiError(400, "invalid_interval", f"interval is one of {', '.join(INTERVALS)}")
    return interval


def _window(n: int | None, default: int) -> int:
    if n is None:
        return default
    if not 2 <= n <= MAX_WINDOW:
        raise ApiError(400, "invalid_query", f"bars is 2..{MAX_WINDOW}")
    return n


def _frame(page: list[Bar]) -> pl.DataFrame:
    return pl.DataFrame(
        {k: [getattr(b, k) for b in page] for k in _COLUMNS},
        schema=dict.fromkeys(_COLUMNS, pl.Int64),
    )


def _log_returns(closes: list[int]) -> list[float]:
    return [math.log(b / a) for a, b in itertools.pairwise(closes) if a > 0 and b > 0]


def _stdev(xs: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    m = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _corr(a: list[float], b: list[float]) -> float | None:
    n = len(a)
    if n < 3:
        return None
    ma, mb = math.fsum(a) / n, math.fsum(b) / n
    sab = math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True))
    saa = math.fsum((x - ma) ** 2 for x in a)
    sbb = math.fsum((y - mb) ** 2 for y in b)
    if saa <= 0 or sbb <= 0:
        return None
    return max(-1.0, min(1.0, sab / math.sqrt(saa * sbb)))


class InstrumentAnalytics(MarketDataHandlers):
    async def history_candles(self, c: Ctx) -> Response:
        symbol = c.request.path_params["symbol"]
        store = self.platform.history_store
        if store is None:
            raise ApiError(422, "no_history", "candles over history need the historical store")
        try:
            iv = parse_interval(c.request.query_params.get("interval", "1m"))
        except ValueError as e:
            raise ApiError(400, "invalid_interval", str(e)) from None
        end = int_param(c.request, "end")
        start = int_param(c.request, "start")
        if end is None:
            end = self.platform.now() + 1
        if start is None:
            start = end - DAY_NS
        if end <= start:
            raise ApiError(400, "invalid_range", "end must be after start")
        limit = limit_param(c.request, 500, 5_000)
        scales = await asyncio.to_thread(store.scales, symbol)
        if scales is None:
            if symbol not in self.md.markets:
                raise ApiError(404, "unknown_symbol", f"no instrument {symbol[:32]!r}")
            scales = (self.md.markets[symbol].price_scale, self.md.markets[symbol].qty_scale)
        lo, hi = iv.floor(start), iv.ceil(end)  # whole candles: their trades all count

        def read() -> pl.DataFrame:
            frame = candles(store.scan_trades(symbol, lo, hi), iv)
            return frame.filter((pl.col("start") >= start) & (pl.col("start") < end)).tail(limit)

        frame = await asyncio.to_thread(read)
        ps, qs = scales
        rows = [
            {
                "start": r["start"],
                "open": format_decimal(r["open"], ps),
                "high": format_decimal(r["high"], ps),
                "low": format_decimal(r["low"], ps),
                "close": format_decimal(r["close"], ps),
                "volume": format_decimal(r["volume"], qs),
                "trades": r["trades"],
            }
            for r in frame.iter_rows(named=True)
        ]
        return json_response({"symbol": symbol, "interval": iv.text, "candles": rows})

    async def indicators(self, c: Ctx) -> Response:
        """The indicators over the newest ``limit`` bars, each computed with up to
        ``WARMUP`` bars before them; price-like values at the instrument's decimals, the
        rest numbers; null where an indicator is not defined yet."""
        symbol = c.request.path_params["symbol"]
        m = self.market(symbol)
        limit = limit_param(c.request, 100, 1_000)
        interval = _interval(c.request.query_params.get("interval", DEFAULT_BARS))
        raw = c.request.query_params.get("indicators", "")
        texts = [t for t in (x.strip() for x in raw.split("|")) if t]
        if not texts:
            raise ApiError(400, "invalid_indicator", "indicators: e.g. sma:20|rsi:14|macd:12,26,9")
        if len(texts) > MAX_SPECS:
            raise ApiError(400, "invalid_indicator", f"at most {MAX_SPECS} indicators at a time")
        try:
            specs = [parse_spec(t) for t in texts]
        except SpecError as e:
            raise ApiError(400, "invalid_indicator", str(e)) from None
        page = await self.newest_bars(symbol, interval, limit + WARMUP)
        try:
            out = compute(_frame(page), specs).tail(limit)
        except ValueError as e:  # e.g. a close of 0 for an indicator that divides by it
            raise ApiError(422, "invalid_bars", str(e)) from None
        units = {o.name: o.unit for s in specs for o in s.outputs()}
        ps = m.price_scale
        rows = [
            {
                "start": row["start"],
                **{
                    k: (render(v, ps) if units[k] == "price" else v)
                    for k, v in row.items()
                    if k != "start"
                },
            }
            for row in out.iter_rows(named=True)
        ]
        return json_response(
            {
                "symbol": symbol,
                "interval": interval,
                "indicators": [s.text for s in specs],
                "units": units,
                "bars": rows,
            }
        )

    async def movers(self, c: Ctx) -> Response:
        interval = _interval(c.request.query_params.get("interval", DEFAULT_BARS))
        window = _window(int_param(c.request, "bars"), 24)
        by = c.request.query_params.get("by", "change")
        if by not in ("change", "volume", "volatility"):
            raise ApiError(400, "invalid_query", "by is change, volume or volatility")
        limit = limit_param(c.request, 10, 100)
        ranked: list[tuple[float, dict[str, Any]]] = []
        for symbol, m in sorted(self.md.markets.items()):
            page = await self.newest_bars(symbol, interval, window)
            if not page:
                continue
            first_open, last_close = page[0].open, page[-1].close
            change = last_close / first_open - 1.0 if first_open > 0 else None
            volume = sum(b.volume for b in page)
            vol = _stdev(_log_returns([b.close for b in page]))
            key = {"change": abs(change or 0.0), "volume": float(volume), "volatility": vol or 0.0}
            ranked.append(
                (
                    key[by],
                    {
                        "symbol": symbol,
                        "bars": len(page),
                        "open": format_decimal(first_open, m.price_scale),
                        "close": format_decimal(last_close, m.price_scale),
                        "change": change,
                        "volume": format_decimal(volume, m.qty_scale),
                        "volatility": vol,
                    },
                )
            )
        ranked.sort(key=lambda r: (-r[0], r[1]["symbol"]))
        return json_response(
            {
                "interval": interval,
                "bars": window,
                "by": by,
                "movers": [r for _, r in ranked[:limit]],
            }
        )

    async def correlation(self, c: Ctx) -> Response:
        interval = _interval(c.request.query_params.get("interval", DEFAULT_BARS))
        window = _window(int_param(c.request, "bars"), 100)
        raw = c.request.query_params.get("symbols", "")
        symbols = [s for s in (x.strip() for x in raw.split(",")) if s]
        if not 2 <= len(symbols) <= MAX_SYMBOLS or len(set(symbols)) != len(symbols):
            raise ApiError(400, "invalid_query", f"symbols: 2..{MAX_SYMBOLS} distinct, A,B")
        closes: dict[str, dict[int, int]] = {}
        for s in symbols:
            self.market(s)  # 404 for an unknown one
            closes[s] = {b.start: b.close for b in await self.newest_bars(s, interval, window + 1)}
        matrix: list[list[float | None]] = []
        for a in symbols:
            row: list[float | None] = []
            for b in symbols:
                common = sorted(closes[a].keys() & closes[b].keys())
                ra = _log_returns([closes[a][t] for t in common])
                rb = _log_returns([closes[b][t] for t in common])
                if len(ra) != len(rb):  # (a close of 0 on one side: no pairing)
                    row.append(None)
                    continue
                row.append(_corr(ra, rb))
            matrix.append(row)
        return json_response(
            {"interval": interval, "bars": window, "symbols": symbols, "correlation": matrix}
        )
