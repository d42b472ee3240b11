"""Alpaca's ``GET /v2/account/portfolio/history`` (alpaca-py's ``get_portfolio_history``),
from the same equity curve as ``/v1/analytics/performance`` (``analytics/equity.py``).

- ``timeframe``: 1Min, 5Min, 15Min, 1H or 1D; without it, 1Min for a period under 7
  days, 15Min under 30 days, else 1D (as Alpaca does).
- ``period``: a number and a unit, D (days), W (weeks), M (30 days) or A (365 days);
  default 1M. ``start`` / ``end`` (RFC 3339) or ``date_end`` (a UTC day: its end) pick
  the window instead; without them it ends at the last whole timeframe before now.
- ``extended_hours`` may only be false (Mercato has no extended session);
  ``intraday_reporting``, ``pnl_reset`` and ``cashflow_types`` are refused (422 naming
  them), not ignored.
- The answer: ``timestamp`` (Unix seconds, each window's start), ``equity`` at each
  window's end, ``profit_loss`` (equity less the base value and less the deposits and
  withdrawals since it), ``profit_loss_pct`` (that over the base value; null with a base
  of 0), ``base_value`` (the equity at the start of the window), ``timeframe``; ``cashflow``
  empty.
  Amounts are computed in integers and written as JSON numbers exact to the currency.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

import msgspec
from starlette.responses import Response

from mercato.api.alpaca_models import parse_time
from mercato.api.analytics_handlers import MAX_POINTS
from mercato.api.base import ApiError, Ctx
from mercato.domain.instrument import format_decimal

NS: Final = 1_000_000_000
DAY: Final = 86_400 * NS
TIMEFRAMES: Final = {
    "1Min": 60 * NS,
    "5Min": 300 * NS,
    "15Min": 900 * NS,
    "1H": 3_600 * NS,
    "1D": DAY,
}
UNITS: Final = {"D": DAY, "W": 7 * DAY, "M": 30 * DAY, "A": 365 * DAY}
_PERIOD: Final = re.compile(r"([1-9][0-9]{0,3})([DWMA])")
_numbers: Final = msgspec.json.Encoder(decimal_format="number")  # Alpaca's amounts: numbers


class AlpacaPortfolio:
    def __init__(self, api: Any, account: Callable[[Ctx], int]) -> None:
        self.api = api
        self._account = account

    async def portfolio_history(self, c: Ctx) -> Response:
        q = c.request.query_params
        if "intraday_reporting" in q or "pnl_reset" in q or "cashflow_types" in q:
            name = next(n for n in ("intraday_reporting", "pnl_reset", "cashflow_types") if n in q)
            raise ApiError(422, "unsupported_parameter", f"{name}: not supported by Mercato")
        if q.get("extended_hours", "false").lower() not in ("false", "0"):
            raise ApiError(422, "unsupported_parameter", "extended_hours: no extended session")
        account = self._account(c)
        period = UNITS["M"]
        if "period" in q:
            m = _PERIOD.fullmatch(q["period"])
            if m is None:
                raise ApiError(422, "invalid_period", "period: a number and D, W, M or A (1M)")
            period = int(m.group(1)) * UNITS[m.group(2)]
        frame = q.get("timeframe")
        if frame is None:
            frame = "1Min" if period < 7 * DAY else "15Min" if period < 30 * DAY else "1D"
        if frame not in TIMEFRAMES:
            raise ApiError(422, "invalid_timeframe", f"timeframe is {', '.join(TIMEFRAMES)}")
        interval = TIMEFRAMES[frame]
        if "end" in q:
            end = parse_time(q["end"], "end")
        elif "date_end" in q:
            end = parse_time(q["date_end"], "date_end") + DAY
        else:
            end = self.api.platform.now()
        end = end // interval * interval
        start = parse_time(q["start"], "start") if "start" in q else end - period
        start = start // interval * interval
        if end <= start:
            raise ApiError(422, "invalid_range", "end must be after start")
        if (end - start) // interval > MAX_POINTS:
            raise ApiError(
                422, "invalid_range", f"at most {MAX_POINTS:,} points: a wider timeframe"
            )
        # one point more, at the start itself: the base value
        points, _, _ = await self.api.equity_points(account, interval, start - interval, end)
        core = self.api.core
        scale = core.currencies[core.accounts[account].currency]

        def number(v: int) -> Decimal:
            return Decimal(format_decimal(v, scale))

        base = points[0][1]  # the value at the start
        points = points[1:]
        flows = 0
        pnl: list[Decimal] = []
        pct: list[float | None] = []
        for _, v, f in points:
            flows += f
            gain = v - base - flows
            pnl.append(number(gain))
            pct.append(gain / base if base > 0 else None)
        body = {
            "timestamp": [(t - interval) // NS for t, _, _ in points],
            "equity": [number(v) for _, v, _ in points],
            "profit_loss": pnl,
            "profit_loss_pct": pct,
            "base_value": number(base),
            "base_value_asof": datetime.fromtimestamp(start // NS, UTC).date().isoformat(),
            "timeframe": frame,
            "cashflow": {},
        }
        return Response(_numbers.encode(body), media_type="application/json")
