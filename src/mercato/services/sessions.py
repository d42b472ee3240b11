"""The trading day: journals the calendars' phases, opens and closes as commands.

The core reads no clock, so the trading day reaches it as commands, journaled like any
other and replayed bit for bit: this service reads the wall clock and the calendars
(``ports.TradingCalendar``) and, when they say so, submits ``SetTradingStatus`` for each
of the engine's instruments not yet in the phase its schedule (``Schedule``) gives.
Each instrument follows its own calendar (``AddInstrument.calendar``, kept by the core)
or, without one, the platform's (``mercato serve --calendar``): crypto on 24/7 beside an
equity on XNYS, each opening and closing on its own. The same ``Phases`` apply to all.

- with ``Phases`` (``mercato serve --pre-open/--opening-auction/--closing-auction``):
  ``PRE_OPEN`` from ``pre_open + opening_auction`` before a session's open,
  ``OPENING_AUCTION`` for the ``opening_auction`` ending at the open, ``OPEN`` at the
  open, ``CLOSING_AUCTION`` for the ``closing_auction`` ending at the close (an early
  close moves it: the calendar's close is the early one), ``CLOSED`` at the close; each
  phase clamped to what the calendar leaves (a closing auction never starts before the
  open). Without (the default), only ``OPEN`` and ``CLOSED``;
- at a session's close, after the closes: at the platform calendar's, ``EndOfDay`` (the
  DAY orders of the instruments on it expire; client order ids and the daily loss limit
  start afresh, for the whole platform); at an instrument's own calendar's,
  ``EndOfDay(symbol=...)`` for each instrument on it (its DAY orders expire at its
  close). A continuous calendar (24/7) closes and opens in the same instant: no auction
  at such a boundary and no status change, only the end of day (DAY orders expire at
  00:00 UTC);
- a ``Clock`` when a GTD order's expiry has come and no other command is due (every
  command expires what is due by its own ``ts`` first; this one carries only the time).

A ``HALTED`` instrument is left alone (an administrator halted it and resumes it): the
schedule does not reopen it, and a halt that spans a phase change skips that phase for
it; once resumed it is brought into the schedule's current phase at the next check. The
``EndOfDay`` comes at the close whether or not an instrument is halted. An instrument
added outside ``OPEN`` is put in the current phase at the next check. On start, a live
DAY order placed before the latest close (the node was down across it) is expired at
once with an ``EndOfDay``.

``step(now)`` does one check and returns what it submitted; ``run`` checks every
``poll`` seconds and at each boundary. Failures to submit (a node that cannot take
commands) are retried at the next check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mercato.domain.commands import Clock, Command, EndOfDay, SetTradingStatus
from mercato.domain.types import TimeInForce, TradingStatus
from mercato.ports import TradingCalendar, TradingSession
from mercato.services.platform import Platform

__all__ = ["Phases", "Schedule", "SessionService", "clock_state", "transitions"]

_log = logging.getLogger(__name__)
NS = 1_000_000_000
OPEN, HALTED, CLOSED = TradingStatus.OPEN, TradingStatus.HALTED, TradingStatus.CLOSED
PRE_OPEN, OPENING, CLOSING = (
    TradingStatus.PRE_OPEN,
    TradingStatus.OPENING_AUCTION,
    TradingStatus.CLOSING_AUCTION,
)


@dataclass(frozen=True)
class Phases:
    """How long each call phase lasts, in ns (0: none)."""

    pre_open: int = 0
    opening_auction: int = 0
    closing_auction: int = 0

    def __post_init__(self) -> None:
        if min(self.pre_open, self.opening_auction, self.closing_auction) < 0:
            raise ValueError("a phase lasts 0 or more")


class Schedule:
    """A calendar's sessions cut into phases: a pure function of the time."""

    def __init__(self, calendar: TradingCalendar, phases: Phases = Phases()) -> None:
        self.calendar = calendar
        self.phases = phases

    def _closing_start(self, s: TradingSession) -> int:
        """When ``s``'s closing auction starts (its close: none)."""
        p = self.phases.closing_auction
        if not p:
            return s.close
        after = self.calendar.session_at_or_after(s.close)
        if after is not None and after.open <= s.close:  # continuous: no auction
            return s.close
        return max(s.open, s.close - p)

    def _starts(self, s: TradingSession) -> tuple[int, int]:
        """When ``s``'s pre-open and its opening auction start."""
        p = self.phases
        auction = s.open - p.opening_auction
        return auction - p.pre_open, auction

    def phase_at(self, now: int) -> tuple[TradingStatus, TradingSession | None]:
        """The phase at ``now`` and the session it belongs to (None: closed, no session)."""
        s = self.calendar.session_at_or_after(now)
        if s is None:
            return CLOSED, None
        if now >= s.open:
            return (CLOSING if now >= self._closing_start(s) else OPEN), s
        pre, auction = self._starts(s)
        if now >= auction:
            return OPENING, s
        if now >= pre:
            return PRE_OPEN, s
        return CLOSED, s

    def next_change(self, now: int) -> int | None:
        """The next instant after ``now`` at which the phase may change."""
        s = self.calendar.session_at_or_after(now)
        if s is None:
            return None
        pre, auction = self._starts(s)
        times = (pre, auction, s.open, self._closing_start(s), s.close)
        return min(t for t in times if t > now)


def transitions(
    statuses: Mapping[str, int],
    want: TradingStatus,
    ended: bool,
    ts: int,
    *,
    own_day: bool = False,
) -> list[Command]:
    """The commands that bring instruments (symbol -> status) to ``want``, halted ones
    left alone, with the end of the day after the closes when a session ``ended``: the
    platform's ``EndOfDay``, or with ``own_day`` (instruments on a calendar of their own)
    one ``EndOfDay`` per instrument, halted ones included. A market that opens at once
    (24/7) reopens after it."""
    out: list[Command] = [
        SetTradingStatus(ts=ts, symbol=symbol, status=want)
        for symbol in sorted(statuses)
        if statuses[symbol] != want and statuses[symbol] != HALTED
    ]
    if ended:
        closes = [c for c in out if isinstance(c, SetTradingStatus) and c.status == CLOSED]
        days: list[Command] = (
            [EndOfDay(ts=ts, symbol=s) for s in sorted(statuses)] if own_day else [EndOfDay(ts=ts)]
        )
        out = [*closes, *days, *(c for c in out if c not in closes)]
    return out


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
    """Each instrument's phases from its own calendar (``Platform.calendar_of``): the
    instruments are grouped by calendar spec, the platform's group ("") first and always
    there (its close ends the platform's trading day), each group with its own schedule,
    session and end of day."""

    def __init__(
        self,
        platform: Platform,
        calendar: TradingCalendar,
        *,
        phases: Phases = Phases(),
        clock: Callable[[], int] = time.time_ns,
        poll: float = 1.0,
    ) -> None:
        """``calendar``: the platform's (the instruments without one of their own)."""
        self.platform = platform
        self.calendar = calendar
        self.phases = phases
        self.schedule = Schedule(calendar, phases)
        self.clock = clock
        self.poll = poll
        self._schedules: dict[str, Schedule] = {"": self.schedule}  # by calendar spec
        # the session open at the last check, per calendar spec (None: none open)
        self._sessions: dict[str, TradingSession | None] = {}
        self._started = False

    def schedule_of(self, spec: str) -> Schedule:
        """The schedule of the calendar ``spec`` names ("": the platform's)."""
        s = self._schedules.get(spec)
        if s is None:
            try:
                cal = self.platform.calendar_for(spec)
            except ValueError as e:  # (CalendarError) not one the API let through
                _log.warning("sessions: calendar %r: %s; the platform's instead", spec, e)
                cal = self.calendar
            s = self._schedules[spec] = Schedule(cal, self.phases)
        return s

    def _groups(self) -> list[tuple[str, dict[str, int]]]:
        """(calendar spec, {symbol: status}) of every calendar in use, "" first."""
        books = self.platform.core.engine.books
        instruments = self.platform.core.instruments
        groups: dict[str, dict[str, int]] = {"": {}}
        for sym, b in books.items():
            inst = instruments.get(sym)
            spec = inst.calendar if inst is not None else ""
            groups.setdefault(spec, {})[sym] = b.status
        return sorted(groups.items())

    async def step(self, now: int) -> list[Command]:
        """Bring the core in line with each calendar's schedule at ``now``; what was
        submitted."""
        out: list[Command] = []
        sessions: dict[str, TradingSession | None] = {}
        for spec, statuses in self._groups():
            schedule = self.schedule_of(spec)
            want, s = schedule.phase_at(now)
            last = self._sessions.get(spec)
            ended = last is not None and now >= last.close
            if not self._started:
                ended = self._stale_day_orders(now, schedule.calendar, set(statuses))
            out += transitions(statuses, want, ended, now, own_day=bool(spec))
            sessions[spec] = s if s is not None and s.open <= now else None
        if not out and self._expiry_due(now):
            out = [Clock(ts=now)]  # GTD orders due, and no other command to carry the time
        if out:
            await self.platform.submit_many(out)  # raises, retried at the next check
        self._started = True
        self._sessions = sessions  # (only calendars in use: bounded by the instruments)
        return out

    def _expiry_due(self, now: int) -> bool:
        """Whether a GTD order (on either venue) is due to expire by ``now``."""
        core = self.platform.core
        for expiries in (core.engine.expiries, core.paper.expiries):
            t = expiries.next_ts()
            if t and t <= now:
                return True
        return False

    def _stale_day_orders(self, now: int, calendar: TradingCalendar, symbols: set[str]) -> bool:
        """Whether a live DAY order of one of ``symbols`` was placed before ``calendar``'s
        latest close at or before now (the node was down across it)."""
        last = self._last_close(now, calendar)
        if last is None:
            return False
        day = int(TimeInForce.DAY)
        return any(
            v.tif == day and v.created_ts < last and v.symbol in symbols
            for v in self.platform.history.open_orders()
        )

    def _last_close(self, now: int, calendar: TradingCalendar | None = None) -> int | None:
        cal = calendar or self.calendar
        today = dt.datetime.fromtimestamp(now // NS, dt.UTC).date()
        first = (today - dt.timedelta(days=14)).isoformat()
        last = (today + dt.timedelta(days=1)).isoformat()
        closes = [s.close for s in cal.sessions(first, last) if s.close <= now]
        return closes[-1] if closes else None

    def _next_check(self, now: int) -> float:
        """Seconds to sleep: ``poll``, or less when a phase changes sooner (any calendar)."""
        times = [s.next_change(now) for s in self._schedules.values()]
        due = [t for t in times if t is not None]
        if not due:
            return self.poll
        return max(0.0, min(self.poll, (min(due) - now) / NS))

    async def run(self) -> None:
        while True:
            now = self.clock()
            try:
                await self.step(now)
            except Exception as e:  # a node that is not ready: try again at the next check
                _log.warning("sessions: %s", e)
            await asyncio.sleep(self._next_check(self.clock()))
