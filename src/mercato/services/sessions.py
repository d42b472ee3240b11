"""The trading day: journals the calendar's opens and closes as commands.

The core reads no clock, so the trading day reaches it as commands, journaled like any
other and replayed bit for bit: this service reads the wall clock and the calendar
(``ports.TradingCalendar``) and, when they say so, submits

- at a session's open, ``SetTradingStatus(OPEN)`` for each of the engine's instruments
  that is ``CLOSED``;
- at its close, ``SetTradingStatus(CLOSED)`` for each that is ``OPEN``, then ``EndOfDay``
  (DAY orders expire; client order ids start afresh). A continuous calendar (24/7) closes
  and opens in the same instant: only the ``EndOfDay``.

A ``HALTED`` instrument is left alone (an administrator halted it and resumes it). An
instrument added while the market is closed is closed at the next check. On start, a
live DAY order placed before the latest close (the node was down across it) is expired
at once with an ``EndOfDay``.

``step(now)`` does one check and returns what it submitted; ``run`` checks every
``poll`` seconds and at each boundary. Failures to submit (a node that cannot take
commands) are retried at the next check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from mercato.domain.commands import Command, EndOfDay, SetTradingStatus
from mercato.domain.types import TimeInForce, TradingStatus
from mercato.ports import TradingCalendar, TradingSession
from mercato.services.platform import Platform

__all__ = ["SessionService", "clock_state"]

_log = logging.getLogger(__name__)
NS = 1_000_000_000
OPEN, HALTED, CLOSED = TradingStatus.OPEN, TradingStatus.HALTED, TradingStatus.CLOSED


def clock_state(calendar: TradingCalendar, now: int) -> tuple[bool, int, int]:
    """(open now, next open, next close) in ns; while open, the next open is the next
    session's (Alpaca's clock does the same). 0 where the calendar knows no more."""
    s = calendar.session_at_or_after(now)
    if s is None:
        return False, 0, 0
    if s.open <= now:
        after = calendar.session_at_or_after(s.close)
        return True, after.open if after is not None else 0, s.close
    return False, s.open, s.close


class SessionService:
    def __init__(
        self,
        platform: Platform,
        calendar: TradingCalendar,
        *,
        clock: Callable[[], int] = time.time_ns,
        poll: float = 1.0,
    ) -> None:
        self.platform = platform
        self.calendar = calendar
        self.clock = clock
        self.poll = poll
        self._session: TradingSession | None = None  # the session open at the last check
        self._started = False

    async def step(self, now: int) -> list[Command]:
        """Bring the core in line with the calendar at ``now``; what was submitted."""
        s = self.calendar.session_at_or_after(now)
        is_open = s is not None and s.open <= now
        out: list[Command] = []
        ended = self._session is not None and now >= self._session.close
        if not self._started:
            ended = self._stale_day_orders(now)
        want = OPEN if is_open else CLOSED
        books = self.platform.core.engine.books
        for symbol in sorted(books):
            status = books[symbol].status
            if status != want and status != HALTED:
                out.append(SetTradingStatus(ts=now, symbol=symbol, status=want))
        if ended:
            # the close's commands first: a market that opens at once (24/7) reopens after
            closes = [c for c in out if isinstance(c, SetTradingStatus) and c.status == CLOSED]
            out = [*closes, EndOfDay(ts=now), *(c for c in out if c not in closes)]
        if out:
            await self.platform.submit_many(out)  # raises, retried at the next check
        self._started = True
        self._session = s if is_open else None
        return out

    def _stale_day_orders(self, now: int) -> bool:
        """Whether a live DAY order was placed before the latest close at or before now."""
        last = self._last_close(now)
        if last is None:
            return False
        day = int(TimeInForce.DAY)
        return any(
            v.tif == day and v.created_ts < last for v in self.platform.history.open_orders()
        )

    def _last_close(self, now: int) -> int | None:
        today = dt.datetime.fromtimestamp(now // NS, dt.UTC).date()
        first = (today - dt.timedelta(days=14)).isoformat()
        last = (today + dt.timedelta(days=1)).isoformat()
        closes = [s.close for s in self.calendar.sessions(first, last) if s.close <= now]
        return closes[-1] if closes else None

    def _next_check(self, now: int) -> float:
        """Seconds to sleep: ``poll``, or less when a boundary comes sooner."""
        s = self.calendar.session_at_or_after(now)
        if s is None:
            return self.poll
        boundary = s.open if now < s.open else s.close
        return max(0.0, min(self.poll, (boundary - now) / NS))

    async def run(self) -> None:
        while True:
            now = self.clock()
            try:
                await self.step(now)
            except Exception as e:  # a node that is not ready: try again at the next check
                _log.warning("sessions: %s", e)
            await asyncio.sleep(self._next_check(self.clock()))
