"""Analytics of an account over the native API (``docs/analytics.md``).

``GET /v1/analytics/patterns?account=&symbol=``: the account's trading patterns from its
fills (``analytics/patterns.py``: FIFO round trips, win rate, averages, profit factor,
expectancy, holding time, activity by hour and weekday, the largest trades, streaks). The
whole fill history is read, memory then the SQL store; past ``MAX_FILLS`` fills the answer
is a 422 ``too_many_fills`` (narrow it with ``symbol``), never a sample that would start
part-way into a position. PnL is in the account's currency, each trade's notional
converted at its instrument's scales (rounded toward zero), money as decimal strings.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.responses import Response

from mercato.analytics.patterns import Fill, Trade, patterns
from mercato.api.base import ApiBase, ApiError, Ctx, int_param, json_response
from mercato.domain.instrument import format_decimal

__all__ = ["MAX_FILLS", "AnalyticsHandlers"]

MAX_FILLS: Final = 100_000
PAGE: Final = 5_000


class AnalyticsHandlers(ApiBase):
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

        p = patterns(fills, cash=cash)
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
