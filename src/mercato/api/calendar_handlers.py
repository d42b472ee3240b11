"""The market clock and the trading calendar, as the platform's calendar has them.

``GET /v1/clock``: the calendar's name and zone, whether it is open now, and the next open
and close (ns since the epoch). ``GET /v1/calendar?start=&end=``: the sessions whose dates
lie in ``start`` .. ``end`` (ISO dates, inclusive; default today and 30 days on; at most
3,660 days), each with its open and close. ``/v2/clock`` and ``/v2/calendar`` (in
``alpaca.py``) give the same in Alpaca's shapes, from ``sessions_between`` and
``clock_state``.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from mercato.api.base import ApiBase, ApiError, Ctx, json_response
from mercato.ports import TradingSession
from mercato.services.sessions import clock_state

__all__ = ["CalendarHandlers", "sessions_between"]

NS: Final = 1_000_000_000
DEFAULT_DAYS: Final = 30
MAX_DAYS: Final = 3_660


def sessions_between(api: ApiBase, request: Request, status: int) -> list[TradingSession]:
    """The sessions the ``start`` and ``end`` query parameters ask for."""
    today = dt.datetime.fromtimestamp(api.platform.now() // NS, dt.UTC).date()
    first = _date(request, "start", status) or today
    last = _date(request, "end", status) or first + dt.timedelta(days=DEFAULT_DAYS)
    if last < first:
        raise ApiError(status, "invalid_query", "end is before start")
    if (last - first).days > MAX_DAYS:
        raise ApiError(status, "invalid_query", f"at most {MAX_DAYS:,} days at a time")
    return api.platform.calendar.sessions(first.isoformat(), last.isoformat())


def _date(request: Request, name: str, status: int) -> dt.date | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ApiError(status, "invalid_query", f"{name} is a date: YYYY-MM-DD") from None


class CalendarHandlers(ApiBase):
    async def clock(self, c: Ctx) -> Response:
        cal = self.platform.calendar
        now = self.platform.now()
        is_open, next_open, next_close = clock_state(cal, now)
        return json_response(
            {
                "calendar": cal.name,
                "zone": cal.zone,
                "now": now,
                "is_open": is_open,
                "next_open": next_open or None,
                "next_close": next_close or None,
            }
        )

    async def calendar(self, c: Ctx) -> Response:
        got = sessions_between(self, c.request, 400)
        return json_response([{"date": s.date, "open": s.open, "close": s.close} for s in got])
