"""Analytics of an account over the native API (``docs/analytics.md``).

``GET /v1/analytics/performance?account=&interval=&start=&end=&benchmark=&periods_per_year=``:
the account's equity curve (``analytics/equity.py``: cash plus positions marked to the
last bar's close, at the end of each interval; ``interval`` 1m, 5m, 1h or 1d, default
1d; ``start`` and ``end`` in ns since the epoch, default the 30 intervals before now; at
most ``MAX_POINTS`` points) and its statistics (``analytics/portfolio.py``: time-weighted
returns without deposits and withdrawals, volatility, Sharpe, Sortino, maximum drawdown
with its dates; ``periods_per_year`` default: the intervals in 365 days), and with
``risk_free`` an annual rate as a fraction (default 0), and with
``benchmark=SYMBOL`` the same against that instrument's closes (correlation, beta, alpha,
excess return). It reads the SQL store's ledger and trades: without a store it is a 422
``no_history``.

``GET /v1/analytics/patterns?account=&symbol=&start=&end=``: the account's trading patterns from its
fills (``analytics/patterns.py``: FIFO round trips, win rate, averages, profit factor,
expectancy, holding time, activity by hour and weekday, the largest trades, streaks). The
whole fill history is read, memory then the SQL store; past ``MAX_FILLS`` fills the answer
is a 422 ``too_many_fills`` (narrow it with ``symbol``), never a sample that would start
part-way into a position. PnL is in the account's currency, each trade's notional
converted at its instrument's scales (rounded toward zero), money as decimal strings.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from starlette.responses import Response

from mercato.analytics.equity import Pricing, curve
from mercato.analytics.patterns import Fill, Trade, patterns
from mercato.analytics.portfolio import performance, versus
from mercato.api.base import ApiBase, ApiError, Ctx, int_param, json_response
from mercato.domain.instrument import format_decimal
from mercato.marketdata.bars import INTERVALS

__all__ = ["MAX_FILLS", "AnalyticsHandlers"]

MAX_FILLS: Final = 100_000
PAGE: Final = 5_000
MAX_POINTS: Final = 5_000
MAX_ENTRIES: Final = 2_000_000  # ledger entries read for one curve
DEFAULT_POINTS: Final = 30
YEAR_NS: Final = 365 * 86_400 * 1_000_000_000
CURVE_INTERVALS: Final = ("1m", "5m", "1h", "1d")


class AnalyticsHandlers(ApiBase):
    async def performance(self, c: Ctx) -> Response:
        account = self.own_account(c.user, int_param(c.request, "account"))
        q = c.request.query_params
        name = q.get("interval", "1d")
        if name not in CURVE_INTERVALS:
            raise ApiError(422, "invalid_interval", f"interval is {', '.join(CURVE_INTERVALS)}")
        interval = INTERVALS[name]
        end = int_param(c.request, "end", 422)
        if end is None:
            end = self.platform.now() // interval * interval
        start = int_param(c.request, "start", 422)
        if start is None:
            start = end - DEFAULT_POINTS * interval
        if end <= start:
            raise ApiError(422, "invalid_range", "end must be after start")
        if (end - start) // interval > MAX_POINTS:
            raise ApiError(422, "invalid_range", f"at most {MAX_POINTS:,} points: a wider interval")
        ppy = int_param(c.request, "periods_per_year", 422) or YEAR_NS // interval
        if not 1 <= ppy <= 10**7:
            raise ApiError(422, "invalid_query", "periods_per_year is 1..10,000,000")
        risk_free = _rate(q.get("risk_free", "0"))
        bench = q.get("benchmark")
        core = self.core
        if bench is not None and bench not in core.instruments:
            raise ApiError(404, "unknown_symbol", f"no instrument {bench[:32]!r}")
        cash_asset = core.accounts[account].currency
        points, closes, pricing = await self.equity_points(
            account, interval, start, end, extra=(bench,) if bench else ()
        )
        scale = core.currencies[cash_asset]
        stats = performance(
            [(t, v) for t, v, _ in points],
            periods_per_year=ppy,
            risk_free=risk_free,
            flows=[f for *_, f in points],
        )
        out: dict[str, Any] = {
            "account": account,
            "interval": name,
            "start": start,
            "end": end,
            "currency": cash_asset,
            "points": [
                {"t": t, "equity": format_decimal(v, scale), "flow": format_decimal(f, scale)}
                for t, v, f in points
            ],
            "stats": _stats(asdict(stats), scale),
            "benchmark": None,
        }
        if bench is not None:
            marks = curve(
                "",
                {bench: 1},
                [],
                {bench: closes[bench]},
                {bench: Pricing(1, 1, pricing[bench].reference)},
                start=start,
                end=end,
                interval=interval,
            )
            vs = versus(
                [(t, v) for t, v, _ in points], [(t, v) for t, v, _ in marks], periods_per_year=ppy
            )
            out["benchmark"] = {"symbol": bench, **asdict(vs)}
        return json_response(out)

    async def equity_points(
        self, account: int, interval: int, start: int, end: int, extra: tuple[str, ...] = ()
    ) -> tuple[list[tuple[int, int, int]], dict[str, list[tuple[int, int]]], dict[str, Pricing]]:
        """The account's (t, equity, flow) points (``analytics/equity.py``), and the closes
        and pricing read for them (with those of the ``extra`` instruments); 422s for no
        store and too much history."""
        core = self.core
        store = self.platform.queries.store
        if store is None:
            raise ApiError(422, "no_history", "performance needs the SQL store's history")
        folded, entries = await asyncio.to_thread(
            store.ledger_history, account, before_ts=end, limit=MAX_ENTRIES
        )
        if len(entries) > MAX_ENTRIES:
            raise ApiError(422, "too_much_history", "too many ledger entries: a shorter range")
        cash_asset = core.accounts[account].currency
        held = {a for a in (*folded, *(e[1] for e in entries)) if a in core.instruments}
        symbols = sorted(held | set(extra))
        closes = {s: await self._closes(s, interval, start, end) for s in symbols}
        pricing = {
            s: Pricing(
                core.instruments[s].mul, core.instruments[s].div, core.instruments[s].reference
            )
            for s in symbols
        }
        own = {s: p for s, p in pricing.items() if s in held}
        points = curve(
            cash_asset, folded, entries, closes, own, start=start, end=end, interval=interval
        )
        return points, closes, pricing

    async def _closes(
        self, symbol: str, interval: int, start: int, end: int
    ) -> list[tuple[int, int]]:
        """(bar end, close) of ``symbol``'s bars before ``end``, oldest first, from the
        last one before ``start`` (the mark carried into the range)."""
        store = self.platform.queries.store
        assert store is not None
        n = (end - start) // interval + 1
        bars = await asyncio.to_thread(store.bars, symbol, interval, n, None, end)
        if not bars or bars[0][0] > start:
            before = await asyncio.to_thread(store.bars, symbol, interval, 1, None, start)
            bars = [*before, *bars]
        return [(b[0] + interval, b[4]) for b in bars]

    async def patterns(self, c: Ctx) -> Response:
        account = self.own_account(c.user, int_param(c.request, "account"))
        symbol = c.request.query_params.get("symbol")
        if symbol is not None and symbol not in self.core.instruments:
            raise ApiError(404, "unknown_symbol", f"no instrument {symbol[:32]!r}")
        views = []
        before = None
        while True:
            page, token = await self.platform.queries.fills(
                [account], symbol=symbol, before=before, limit=PAGE
            )
            views += page
            if len(views) > MAX_FILLS:
                raise ApiError(
                    422,
                    "too_many_fills",
                    f"more than {MAX_FILLS:,} fills: ask for one symbol at a time",
                )
            if token is None:
                break
            before = int(token)
        views.reverse()  # oldest first (newest first as read)
        fills = [Fill(f.ts, f.symbol, f.side, f.price, f.qty, f.fee) for f in views]
        core = self.core

        def cash(sym: str, notional: int) -> int:
            inst = core.instruments[sym]
            units = abs(notional) * inst.mul // inst.div
            return units if notional >= 0 else -units

        since = int_param(c.request, "start")
        until = int_param(c.request, "end")
        if since is not None and until is not None and until <= since:
            raise ApiError(400, "invalid_range", "end must be after start")
        p = patterns(fills, cash=cash, since=since, until=until)
        scale = core.currencies[core.accounts[account].currency]

        def money(v: float | int | None) -> str | None:
            if v is None:
                return None
            return format_decimal(int(v), scale)  # averages: toward zero, in cash units

        def trade(t: Trade) -> dict[str, Any]:
            book = core.engine.books.get(t.symbol)
            ps, qs = (book.price_scale, book.qty_scale) if book is not None else (0, 0)
            return {
                "symbol": t.symbol,
                "direction": t.direction,
                "qty": format_decimal(t.qty, qs),
                "exit_price": format_decimal(t.exit_price, ps),
                "exit_at": t.exit_ts,
                "pnl": money(t.pnl),
                "holding_ns": t.holding_ns,
            }

        return json_response(
            {
                "account": account,
                "symbol": symbol,
                "fills": p.fills,
                "trades": p.trades,
                "wins": p.wins,
                "losses": p.losses,
                "win_rate": p.win_rate,
                "gross_profit": money(p.gross_profit),
                "gross_loss": money(p.gross_loss),
                "average_win": money(p.average_win),
                "average_loss": money(p.average_loss),
                "profit_factor": p.profit_factor,
                "expectancy": money(p.expectancy),
                "average_holding_ns": p.average_holding_ns,
                "fees": money(p.fees),
                "by_hour": p.by_hour,
                "by_weekday": p.by_weekday,
                "largest_wins": [trade(t) for t in p.largest_wins],
                "largest_losses": [trade(t) for t in p.largest_losses],
                "longest_win_streak": p.longest_win_streak,
                "longest_loss_streak": p.longest_loss_streak,
            }
        )


def _rate(text: str) -> float:
    """``risk_free``: an annual rate as a decimal fraction (0.04 for 4%), 0 to below 1."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not (value.is_finite() and 0 <= value < 1) or len(text) > 20:
        raise ApiError(422, "invalid_query", "risk_free: an annual rate, 0 <= rate < 1 (0.04)")
    return float(value)


def _stats(d: dict[str, Any], scale: int) -> dict[str, Any]:
    """``Performance`` as JSON: money at the currency's scale, ratios as numbers."""
    for k in ("start_value", "end_value"):
        d[k] = format_decimal(d[k], scale)
    d.pop("start_ts", None)
    d.pop("end_ts", None)
    return d
