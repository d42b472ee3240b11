"""Trading calendars (``ports.TradingCalendar``): when each trading day opens and closes.

- ``ExchangeCalendar("XNYS")``: an exchange's calendar from ``exchange_calendars`` (its
  holidays and early closes, maintained there rather than by hand); any code that
  library knows (XNYS, XNAS, XLON, XTKS, ...), over the range it covers (about twenty
  years back, one year ahead).
- ``ContinuousCalendar``: a market that never closes (crypto): each UTC day is a session
  from midnight to midnight, so DAY orders expire at 00:00 UTC.
- ``WeeklyCalendar``: fixed local hours on chosen weekdays in an IANA zone (a custom
  venue, a test, a demo), daylight saving time included; no holidays.

``calendar_from_spec`` reads the command line's ``--calendar``: ``24/7``, an exchange code,
or ``hours:ZONE,HH:MM-HH:MM[,mon-fri]``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import warnings
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mercato.ports import TradingCalendar, TradingSession

__all__ = [
    "CalendarError",
    "ContinuousCalendar",
    "ExchangeCalendar",
    "WeeklyCalendar",
    "calendar_from_spec",
]

NS = 1_000_000_000
DAY_NS = 86_400 * NS
_EPOCH = dt.date(1970, 1, 1)
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"hours:([^,]+),(\d\d):(\d\d)-(\d\d):(\d\d)(?:,(\w{3})-(\w{3}))?")


class CalendarError(ValueError):
    """A calendar that cannot be built from what was asked (one line, for the CLI)."""


class _Table:
    """Sessions held as three parallel lists, found by bisection."""

    def __init__(self, sessions: list[TradingSession]) -> None:
        self.dates = [s.date for s in sessions]
        self.closes = [s.close for s in sessions]
        self.all = sessions

    def at_or_after(self, ts: int) -> TradingSession | None:
        i = bisect.bisect_right(self.closes, ts)
        return self.all[i] if i < len(self.all) else None

    def between(self, first: str, last: str) -> list[TradingSession]:
        return self.all[
            bisect.bisect_left(self.dates, first) : bisect.bisect_right(self.dates, last)
        ]


class ExchangeCalendar:
    """An exchange's sessions from ``exchange_calendars`` (loaded once, on construction)."""

    def __init__(self, code: str) -> None:
        try:
            import exchange_calendars as xc  # a second to import: only when asked for
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise CalendarError("exchange calendars need the exchange_calendars package") from e
        try:
            with warnings.catch_warnings():  # the library's own use of pandas 3.1's deprecated
                warnings.simplefilter("ignore", FutureWarning)  # Series.values: not ours to fix
                warnings.simplefilter("ignore", DeprecationWarning)
                cal: Any = xc.get_calendar(code)
        except xc.errors.InvalidCalendarName:
            raise CalendarError(f"unknown exchange calendar {code!r}") from None
        self.name = code
        self.zone = str(cal.tz)
        s = cal.schedule
        opens = s["open"].astype("int64").tolist()
        closes = s["close"].astype("int64").tolist()
        dates = [d.strftime("%Y-%m-%d") for d in s.index]
        self._table = _Table([TradingSession(*x) for x in zip(dates, opens, closes, strict=True)])

    def session_at_or_after(self, ts: int) -> TradingSession | None:
        return self._table.at_or_after(ts)

    def sessions(self, first: str, last: str) -> list[TradingSession]:
        return self._table.between(first, last)


class ContinuousCalendar:
    """Always open; the trading day is the UTC day."""

    name = "24/7"
    zone = "UTC"

    def session_at_or_after(self, ts: int) -> TradingSession | None:
        start = ts - ts % DAY_NS
        return TradingSession(_iso(start // DAY_NS), start, start + DAY_NS)

    def sessions(self, first: str, last: str) -> list[TradingSession]:
        a, b = _day_number(first), _day_number(last)
        if b - a > 100_000:
            raise CalendarError("at most 100,000 days at a time")
        return [TradingSession(_iso(d), d * DAY_NS, (d + 1) * DAY_NS) for d in range(a, b + 1)]


class WeeklyCalendar:
    """``open``-``close`` local time (HH:MM, close after open) in ``zone`` on ``days``
    (0 Monday .. 6 Sunday)."""

    def __init__(self, zone: str, open: str, close: str, days: tuple[int, ...]) -> None:
        try:
            self._tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CalendarError(f"unknown time zone {zone!r}") from None
        self._open, self._close = _clock_time(open), _clock_time(close)
        if self._close <= self._open:
            raise CalendarError("a session closes after it opens, on the same day")
        if not days:
            raise CalendarError("a calendar with no trading day")
        self.zone = zone
        self.days = days
        self.name = f"hours:{zone},{open}-{close},{_DAYS[days[0]]}-{_DAYS[days[-1]]}"

    def _on(self, day: dt.date) -> TradingSession:
        def ns(t: dt.time) -> int:
            local = dt.datetime.combine(day, t, self._tz)
            return int(local.timestamp()) * NS

        return TradingSession(day.isoformat(), ns(self._open), ns(self._close))

    def session_at_or_after(self, ts: int) -> TradingSession | None:
        day = dt.datetime.fromtimestamp(ts // NS, self._tz).date()
        for _ in range(8):  # some day of the next week trades
            if day.weekday() in self.days:
                s = self._on(day)
                if ts < s.close:
                    return s
            day += dt.timedelta(days=1)
        raise AssertionError("no session within a week")  # days is never empty

    def sessions(self, first: str, last: str) -> list[TradingSession]:
        a, b = _day_number(first), _day_number(last)
        if b - a > 100_000:
            raise CalendarError("at most 100,000 days at a time")
        days = (_EPOCH + dt.timedelta(days=d) for d in range(a, b + 1))
        return [self._on(d) for d in days if d.weekday() in self.days]


def calendar_from_spec(spec: str) -> TradingCalendar:
    """The calendar ``spec`` names: ``24/7``, an exchange code (``XNYS``), or
    ``hours:ZONE,HH:MM-HH:MM[,DAY-DAY]`` (days ``mon``..``sun``; default mon-fri)."""
    if spec == "24/7":
        return ContinuousCalendar()
    m = _HOURS.fullmatch(spec)
    if m is not None:
        zone, oh, om, ch, cm, d0, d1 = m.groups()
        first, last = (d0 or "mon").lower(), (d1 or "fri").lower()
        if first not in _DAYS or last not in _DAYS or _DAYS.index(first) > _DAYS.index(last):
            raise CalendarError(f"days are a range of {'/'.join(_DAYS)}, first to last")
        days = tuple(range(_DAYS.index(first), _DAYS.index(last) + 1))
        return WeeklyCalendar(zone, f"{oh}:{om}", f"{ch}:{cm}", days)
    if spec.startswith("hours:"):
        raise CalendarError(
            "hours:ZONE,HH:MM-HH:MM[,mon-fri], e.g. hours:Europe/London,08:00-16:30"
        )
    if not re.fullmatch(r"[A-Z0-9_]{2,12}", spec):
        raise CalendarError(
            f"a calendar is 24/7, an exchange code (XNYS) or hours:..., not {spec!r}"
        )
    return ExchangeCalendar(spec)


def _iso(day_number: int) -> str:
    return (_EPOCH + dt.timedelta(days=day_number)).isoformat()


def _day_number(iso: str) -> int:
    try:
        return (dt.date.fromisoformat(iso) - _EPOCH).days
    except ValueError:
        raise CalendarError(f"not a date (YYYY-MM-DD): {iso[:40]!r}") from None


def _clock_time(hhmm: str) -> dt.time:
    try:
        return dt.time.fromisoformat(hhmm)
    except ValueError:
        raise CalendarError(f"not a time of day (HH:MM): {hhmm!r}") from None
