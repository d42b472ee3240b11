"""Trading calendars: an exchange's (holidays, early closes, daylight saving), 24/7, and
fixed weekly hours."""

from __future__ import annotations

import datetime as dt

import pytest

from mercato.adapters.calendars import (
    CalendarError,
    ContinuousCalendar,
    WeeklyCalendar,
    calendar_from_spec,
)
from mercato.ports import TradingSession

NS = 1_000_000_000


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * NS


@pytest.fixture(scope="module")
def nyse() -> object:
    return calendar_from_spec("XNYS")


def test_nyse_sessions_know_holidays_early_closes_and_daylight_saving(nyse: object) -> None:
    got = nyse.sessions("2024-11-27", "2024-12-02")  # type: ignore[attr-defined]
    assert [(s.date, s.open, s.close) for s in got] == [
        ("2024-11-27", ns("2024-11-27T09:30-05:00"), ns("2024-11-27T16:00-05:00")),
        # Thanksgiving (the 28th) is a holiday; the day after closes at 13:00
        ("2024-11-29", ns("2024-11-29T09:30-05:00"), ns("2024-11-29T13:00-05:00")),
        ("2024-12-02", ns("2024-12-02T09:30-05:00"), ns("2024-12-02T16:00-05:00")),
    ]
    (summer,) = nyse.sessions("2024-07-01", "2024-07-01")  # type: ignore[attr-defined]
    assert summer.open == ns("2024-07-01T13:30+00:00")  # 09:30 EDT
    assert nyse.zone == "America/New_York"  # type: ignore[attr-defined]


def test_nyse_session_at_or_after(nyse: object) -> None:
    at = nyse.session_at_or_after  # type: ignore[attr-defined]
    assert at(ns("2024-11-29T12:00-05:00")).date == "2024-11-29"  # open now
    assert at(ns("2024-11-29T13:00-05:00")).date == "2024-12-02"  # closed: the next (Monday)
    assert at(ns("2024-11-28T10:00-05:00")).date == "2024-11-29"  # a holiday: the next
    assert at(ns("2099-01-01T00:00+00:00")) is None  # beyond what the library covers


def test_continuous_calendar_days_are_utc_days() -> None:
    c = ContinuousCalendar()
    day = ns("2026-12-03T00:00+00:00")
    assert c.session_at_or_after(day + 5 * NS) == TradingSession(
        "2026-12-03", day, day + 86_400 * NS
    )
    assert [s.date for s in c.sessions("2026-12-30", "2027-01-02")] == [
        "2026-12-30",
        "2026-12-31",
        "2027-01-01",
        "2027-01-02",
    ]


def test_weekly_hours_follow_the_zone_and_skip_other_days() -> None:
    c = calendar_from_spec("hours:Europe/London,08:00-16:30")
    assert isinstance(c, WeeklyCalendar) and c.zone == "Europe/London"
    # the clocks went back on 2026-10-25: 08:00 is 07:00 UTC in summer, 08:00 after
    (fri, mon) = c.sessions("2026-10-23", "2026-10-26")
    assert (fri.date, fri.open) == ("2026-10-23", ns("2026-10-23T07:00+00:00"))
    assert (mon.date, mon.open, mon.close) == (
        "2026-10-26",
        ns("2026-10-26T08:00+00:00"),
        ns("2026-10-26T16:30+00:00"),
    )
    assert c.session_at_or_after(ns("2026-10-24T12:00+00:00")) == mon  # a Saturday
    weekend = calendar_from_spec("hours:UTC,10:00-11:00,sat-sun")
    assert [s.date for s in weekend.sessions("2026-10-23", "2026-10-26")] == [
        "2026-10-24",
        "2026-10-25",
    ]


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("NOPE", "unknown exchange calendar"),
        ("hours:Mars/Olympus,08:00-16:30", "unknown time zone"),
        ("hours:UTC,16:00-08:00", "closes after it opens"),
        ("hours:UTC,08:00-16:00,fri-mon", "days are a range"),
        ("hours:UTC", "hours:ZONE"),
        ("xnys; rm -rf", "a calendar is 24/7"),
    ],
)
def test_a_bad_calendar_is_one_clear_error(spec: str, says: str) -> None:
    with pytest.raises(CalendarError, match=says):
        calendar_from_spec(spec)


def test_bad_dates_are_refused() -> None:
    with pytest.raises(CalendarError, match="not a date"):
        ContinuousCalendar().sessions("2026-13-01", "2026-12-31")
    with pytest.raises(CalendarError, match="at most"):
        ContinuousCalendar().sessions("1970-01-01", "2999-12-31")
