"""An instrument's own trading calendar through the admin API: given when it is listed
(checked: a bad one is a 422 naming it), reported by ``/v1/instruments`` with its next
open and close, kept by the core; ``/v1/clock`` and ``/v2/clock`` stay on the platform's
calendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from mercato.adapters.calendars import calendar_from_spec
from mercato.services.platform import Platform

from .test_rest import World

NS = 1_000_000_000
# Thursday 3 December 2026, 12:00 UTC: New York opens at 14:30 UTC, closes at 21:00
NOON = int(dt.datetime.fromisoformat("2026-12-03T12:00+00:00").timestamp()) * NS
HOUR = 3_600 * NS


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    platform = Platform(calendar=calendar_from_spec("hours:UTC,10:00-11:00,mon-sun"))
    platform.clock = lambda: NOON
    world = World(tmp_path, platform=platform)
    yield world
    world.client.__exit__(None, None, None)


def test_instruments_on_their_own_calendars(w: World) -> None:
    for symbol, spec in (("NY", "XNYS"), ("BTC-USD", "24/7")):
        body = {"symbol": symbol, "calendar": spec}
        assert w.ok("POST", "/v1/admin/instruments", w.admin, json=body) == {"symbol": symbol}
    listed = {i["symbol"]: i for i in w.ok("GET", "/v1/instruments")}
    day = NOON - NOON % (24 * HOUR)
    assert {s: (i["calendar"], i["next_open"], i["next_close"]) for s, i in listed.items()} == {
        "NY": ("XNYS", day + 14 * HOUR + HOUR // 2, day + 21 * HOUR),
        # open now: the next open is the next session's (as the clock has it)
        "BTC-USD": ("24/7", day + 24 * HOUR, day + 24 * HOUR),
        # XYZ has none of its own: the platform's (closed since 11:00, opens tomorrow)
        "XYZ": ("hours:UTC,10:00-11:00,mon-sun", day + 34 * HOUR, day + 35 * HOUR),
    }
    assert w.platform.core.instruments["NY"].calendar == "XNYS"
    assert w.platform.core.instruments["XYZ"].calendar == ""
    # the clock stays the platform's
    clock = w.ok("GET", "/v1/clock")
    assert (clock["calendar"], clock["is_open"], clock["next_open"]) == (
        "hours:UTC,10:00-11:00,mon-sun",
        False,
        day + 34 * HOUR,
    )
    key_id, secret = w.admin["Authorization"].removeprefix("Bearer ").split(":", 1)
    apca = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
    r = w.call("GET", "/v2/clock", apca)
    assert r.status_code == 200 and r.json()["next_open"].startswith("2026-12-04T10:00")


def test_a_bad_calendar_is_refused_naming_it(w: World) -> None:
    for spec in ("NOPE", "hours:Nowhere/Else,10:00-11:00", "hours:UTC,11:00-10:00", "x y"):
        r = w.call(
            "POST", "/v1/admin/instruments", w.admin, json={"symbol": "ABC", "calendar": spec}
        )
        assert r.status_code == 422, spec
        err = r.json()["error"]
        assert err["code"] == "invalid_calendar" and err["message"].startswith("calendar: ")
    body = {"symbol": "ABC", "calendar": ""}
    assert w.error(400, "POST", "/v1/admin/instruments", w.admin, json=body) == "invalid_body"
    body = {"symbol": "ABC", "calendar": "X" * 65}
    assert w.error(400, "POST", "/v1/admin/instruments", w.admin, json=body) == "invalid_body"
    assert "ABC" not in w.platform.core.instruments  # nothing was listed
