"""``/v2/account/activities`` through alpaca-py against a real server: fills and
transfers after real orders and deposits, filtered by type, category, time and day,
paged both ways by ``page_token``; what Mercato does not have is a 422 naming it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide
from alpaca.trading.models import NonTradeActivity, TradeActivity
from alpaca.trading.requests import MarketOrderRequest

from mercato.api.app import create_app
from mercato.domain.commands import CreateAccount

Serve = Callable[[Any], tuple[str, int]]


@pytest.fixture
def server(market: Any, serve_app: Serve) -> Iterator[tuple[str, TradingClient, list[str]]]:
    """The trader: +500.00, buys 10 XYZ, -200.00, buys 3 XYZ (in that order); another
    account is given money too. Yields the url, the trader's client and the times
    (RFC 3339) between the steps."""
    market.platform.core.process(CreateAccount(account=3))
    boss = market.auth.create_user("boss", "correct horse battery", "admin")
    admin = market.auth.create_key(boss)
    url, _ = serve_app(create_app(market.platform, market.auth))
    key = market.auth.create_key(market.trader)
    c = TradingClient(key[0], key[1], url_override=url)
    native = {"Authorization": f"Bearer {admin[0]}:{admin[1]}"}

    def transfer(account: int, amount: str, withdraw: bool = False) -> None:
        body = {"asset": "USD", "amount": amount, "withdraw": withdraw}
        r = httpx.post(f"{url}/v1/admin/accounts/{account}/transfers", headers=native, json=body)
        assert r.status_code == 200, r.text

    def buy(qty: int) -> None:
        c.submit_order(
            MarketOrderRequest(symbol="XYZ", qty=qty, side=OrderSide.BUY, time_in_force="day")
        )

    marks = []
    for step in (
        lambda: transfer(2, "500.00"),
        lambda: buy(10),
        lambda: transfer(2, "200.00", withdraw=True),
        lambda: buy(3),
    ):
        step()
        time.sleep(0.002)
        marks.append(datetime.now(UTC).isoformat())
    transfer(3, "999.00")
    yield url, c, marks


def activities(c: TradingClient, path: str = "", **params: Any) -> list[Any]:
    raw: Any = c.get(f"/account/activities{path}", params or None)
    return [
        TradeActivity(**a) if a["activity_type"] == "FILL" else NonTradeActivity(**a) for a in raw
    ]


def test_fills_and_transfers_newest_first(server: tuple[str, TradingClient, list[str]]) -> None:
    _, c, _ = server
    got = activities(c)
    assert [a.activity_type.value for a in got] == ["FILL", "CSW", "FILL", "CSD"]
    last, csw, first, csd = got
    assert (last.qty, first.qty, first.price, first.side.value) == (3, 10, 101, "buy")
    assert first.type.value == "fill" and first.cum_qty == 10 and first.leaves_qty == 0
    assert first.order_status.value == "filled" and first.symbol == "XYZ"
    assert csd.net_amount == 500 and csw.net_amount == -200
    account: Any = c.get_account()
    assert {str(a.account_id) for a in got} == {str(account.id)}
    raw: Any = c.get("/account/activities")
    assert raw[3]["net_amount"] == "500.00" and raw[1]["net_amount"] == "-200.00"
    assert raw[0]["price"] == "101.00" and raw[0]["qty"] == "3"  # decimal strings
    ten: Any = c.get_order_by_id(first.order_id)
    assert ten.filled_qty == "10" and str(ten.id) == str(first.order_id)


def test_filters_by_type_category_time_and_day(
    server: tuple[str, TradingClient, list[str]],
) -> None:
    _, c, marks = server
    assert [a.qty for a in activities(c, activity_types="FILL")] == [3, 10]
    assert [a.net_amount for a in activities(c, "/CSD")] == [500]
    assert [a.net_amount for a in activities(c, activity_types="TRANS")] == [-200, 500]
    assert [a.net_amount for a in activities(c, activity_types="CSW,CSD")] == [-200, 500]
    assert len(activities(c, category="trade_activity")) == 2
    assert len(activities(c, category="non_trade_activity")) == 2
    kinds = [a.activity_type.value for a in activities(c, after=marks[0], until=marks[2])]
    assert kinds == ["CSW", "FILL"]
    assert [a.activity_type.value for a in activities(c, after=marks[2])] == ["FILL"]
    today = datetime.now(UTC).date()
    assert len(activities(c, date=today.isoformat())) == 4
    assert activities(c, date=(today - timedelta(days=1)).isoformat()) == []


def test_pages_both_ways(server: tuple[str, TradingClient, list[str]]) -> None:
    _, c, _ = server
    every = [a.id for a in activities(c)]
    for direction, want in (("desc", every), ("asc", every[::-1])):
        seen: list[str] = []
        token = None
        while True:
            params: dict[str, Any] = {"page_size": 1, "direction": direction}
            if token is not None:
                params["page_token"] = token
            page = activities(c, **params)
            if not page:
                break
            assert len(page) == 1
            seen.append(page[0].id)
            token = page[0].id
        assert seen == want, direction
    two = activities(c, page_size=2, direction="asc")
    assert [a.activity_type.value for a in two] == ["CSD", "FILL"]


def test_what_mercato_does_not_have_is_refused(
    server: tuple[str, TradingClient, list[str]],
) -> None:
    _, c, marks = server
    for path, params, word in (
        ("", {"activity_types": "FILL,DIV"}, "DIV"),
        ("/FEE", None, "FEE"),
        ("", {"page_size": 0}, "page_size"),
        ("", {"page_size": 101}, "page_size"),
        ("", {"direction": "up"}, "direction"),
        ("", {"date": "2026-01-01", "after": marks[0]}, "date"),
        ("", {"page_token": "nope"}, "page_token"),
        ("", {"after": "yesterday"}, "after"),
        ("", {"category": "fees"}, "category"),
        ("", {"activity_types": "FILL", "category": "trade_activity"}, "category"),
        ("", {"account_id": "x"}, "account_id"),
        ("/FILL", {"activity_types": "FILL"}, "activity_types"),
    ):
        with pytest.raises(APIError) as e:
            c.get(f"/account/activities{path}", params)
        assert e.value.status_code == 422, (path, params, str(e.value))
        assert word in str(e.value), (path, params, str(e.value))
