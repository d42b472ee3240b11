"""The clock and the calendar over /v1 and /v2 (alpaca-py's ``get_clock`` and
``get_calendar``), from the platform's calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetCalendarRequest

from mercato.adapters.calendars import calendar_from_spec
from mercato.api.app import create_app

NS = 1_000_000_000
# Friday 2024-11-29, 12:00 New York: the early close (13:00) after Thanksgiving
NOON = int(dt.datetime.fromisoformat("2024-11-29T12:00-05:00").timestamp()) * NS


@pytest.fixture
def served(market: Any, serve_app: Any) -> Iterator[tuple[str, TradingClient, dict[str, str]]]:
    market.platform.calendar = calendar_from_spec("XNYS")
    market.platform.clock = lambda: NOON
    url, _ = serve_app(create_app(market.platform, market.auth))
    key_id, secret = market.auth.create_key(market.trader)
    headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
    yield url, TradingClient(key_id, secret, url_override=url), headers


def test_alpaca_clock_and_calendar_come_from_the_exchange_calendar(
    served: tuple[str, TradingClient, dict[str, str]],
) -> None:
    url, trader, headers = served
    clock: Any = trader.get_clock()
    assert clock.is_open is True
    assert clock.next_close == dt.datetime.fromisoformat("2024-11-29T13:00-05:00")
    assert clock.next_open == dt.datetime.fromisoformat("2024-12-02T09:30-05:00")
    raw = httpx.get(f"{url}/v2/clock", headers=headers).json()
    assert raw["timestamp"] == "2024-11-29T12:00:00-05:00"  # market time, as Alpaca gives it
    days: Any = trader.get_calendar(
        GetCalendarRequest(start=dt.date(2024, 11, 27), end=dt.date(2024, 12, 2))
    )
    assert [
        (d.date.isoformat(), d.open.strftime("%H:%M"), d.close.strftime("%H:%M")) for d in days
    ] == [
        ("2024-11-27", "09:30", "16:00"),
        ("2024-11-29", "09:30", "13:00"),  # Thanksgiving is not there; the day after is short
        ("2024-12-02", "09:30", "16:00"),
    ]


@pytest.mark.parametrize(
    "query",
    [
        "start=2024-13-01",
        "start=29/11/2024",
        "start=2024-12-02&end=2024-11-29",
        "end=2099-01-01",
        "week=1",
    ],
)
def test_bad_calendar_queries_are_refused(
    served: tuple[str, TradingClient, dict[str, str]], query: str
) -> None:
    url, _, headers = served
    for path, status in (("/v2/calendar", 422), ("/v1/calendar", 400)):
        r = httpx.get(f"{url}{path}?{query}", headers=headers)
        assert r.status_code == status, (path, query, r.text)


def test_native_clock_and_calendar(served: tuple[str, TradingClient, dict[str, str]]) -> None:
    url, _, _ = served
    clock = httpx.get(f"{url}/v1/clock").json()
    assert (clock["calendar"], clock["zone"], clock["is_open"]) == (
        "XNYS",
        "America/New_York",
        True,
    )
    close = int(dt.datetime.fromisoformat("2024-11-29T13:00-05:00").timestamp()) * NS
    assert clock["next_close"] == close and clock["now"] >= NOON
    (day,) = httpx.get(f"{url}/v1/calendar?start=2024-11-28&end=2024-11-29").json()
    assert day == {"date": "2024-11-29", "open": close - 210 * 60 * NS, "close": close}


def test_a_server_with_sessions_closes_its_instruments_when_the_calendar_is_closed(
    market: Any,
) -> None:
    import time

    from starlette.testclient import TestClient

    market.platform.calendar = calendar_from_spec("XNYS")
    market.platform.clock = lambda: NOON + 2 * 3_600 * NS  # 14:00, after the early close
    app = create_app(market.platform, market.auth, manage_platform=False, sessions=True)
    with TestClient(app) as client:
        deadline = time.monotonic() + 30  # the first check is at once; a loaded CI is slow
        while True:
            (xyz,) = client.get("/v1/instruments").json()
            if xyz["status"] == "closed" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert xyz["status"] == "closed"
        assert client.get("/v1/clock").json()["is_open"] is False
