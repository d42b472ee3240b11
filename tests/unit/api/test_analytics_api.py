"""An account's trading patterns over /v1: real fills through the core, the statistics in
the account's currency, and nobody else's account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_rest import World, buy


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def sell(price: str, qty: str, **kw: Any) -> dict[str, Any]:
    return {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": qty, "price": price, **kw}


def test_patterns_from_real_fills(w: World) -> None:
    # alice buys 10 at 100.00 and 10 at 104.00, sells 15 at 110.00, then 5 at 101.00
    for price in ("100.00", "104.00"):
        w.ok("POST", "/v1/orders", w.bob, json=sell(price, "10"))
        w.ok("POST", "/v1/orders", w.alice, json=buy(price, "10"))
    w.ok("POST", "/v1/orders", w.bob, json=buy("110.00", "15"))
    w.ok("POST", "/v1/orders", w.alice, json=sell("110.00", "15"))
    w.ok("POST", "/v1/orders", w.bob, json=buy("101.00", "5"))
    w.ok("POST", "/v1/orders", w.alice, json=sell("101.00", "5"))
    p = w.ok("GET", "/v1/analytics/patterns", w.alice)
    assert (p["fills"], p["trades"], p["wins"], p["losses"]) == (4, 2, 1, 1)
    # FIFO: 10 x (110 - 100) + 5 x (110 - 104) = 130.00; then 5 x (101 - 104) = -15.00
    assert (p["gross_profit"], p["gross_loss"]) == ("130.00", "-15.00")
    assert p["profit_factor"] == pytest.approx(130 / 15) and p["win_rate"] == 0.5
    assert p["expectancy"] == "57.50"
    fills = w.ok("GET", "/v1/fills", w.alice)
    fees = sum(int(f["fee"].replace(".", "")) for f in fills)
    assert p["fees"] == f"{fees // 100}.{fees % 100:02d}"
    assert [t["pnl"] for t in p["largest_wins"]] == ["130.00"]
    assert p["largest_losses"][0]["direction"] == "long"
    assert sum(p["by_hour"]) == 4 and sum(p["by_weekday"]) == 4
    # bob's side: his own account only
    mine = w.ok("GET", f"/v1/analytics/patterns?account={w.bob_acct}", w.bob)
    assert mine["fills"] == 4
    assert w.call("GET", f"/v1/analytics/patterns?account={w.bob_acct}", w.alice).status_code == 404
    assert w.ok("GET", "/v1/analytics/patterns?symbol=XYZ", w.alice)["trades"] == 2
    last = max(int(f["ts"]) for f in fills)
    window = w.ok("GET", f"/v1/analytics/patterns?start={last}", w.alice)
    assert (window["fills"], window["trades"], window["gross_loss"]) == (1, 1, "-15.00")
    r = w.call("GET", f"/v1/analytics/patterns?start={last}&end={last}", w.alice)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_range"


def test_bad_requests_are_4xx(w: World) -> None:
    assert (
        w.call("GET", "/v1/analytics/patterns", w.alice, params={"symbol": "NOPE"}).status_code
        == 404
    )
    r = w.call("GET", "/v1/analytics/patterns", w.alice, params={"interval": "1d"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unknown_parameter"
    assert w.call("GET", "/v1/analytics/patterns").status_code == 401
    empty = w.ok("GET", "/v1/analytics/patterns", w.alice)
    assert empty["trades"] == 0 and empty["win_rate"] is None and empty["gross_profit"] == "0.00"


class _Clock:
    def __init__(self, start: int) -> None:
        self.now = start

    def __call__(self) -> int:
        return self.now


DAY_NS = 86_400 * 1_000_000_000
T0 = 1_764_547_200 * 1_000_000_000  # 2025-12-01 00:00 UTC


def test_performance_from_the_sql_store(tmp_path: Path) -> None:
    from mercato.services.platform import Platform

    clock = _Clock(T0 + 3_600 * 1_000_000_000)
    platform = Platform(
        tmp_path / "node",
        fsync=False,
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        clock=clock,
    )
    w = World(tmp_path, platform=platform)
    try:
        # day 1: alice (100,000.00 USD and 500 XYZ) buys 10 at 100.00 from bob
        w.ok("POST", "/v1/orders", w.bob, json=sell("100.00", "10"))
        w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "10"))
        clock.now += DAY_NS  # day 2: XYZ trades at 110.00 (bob to bob's... via carol)
        w.ok("POST", "/v1/orders", w.bob, json=sell("110.00", "1"))
        carol, _ = w.trader("carol")
        w.ok("POST", "/v1/orders", carol, json=buy("110.00", "1"))
        clock.now += DAY_NS  # day 3: a deposit of 1,000.00: not a return
        w.ok(
            "POST",
            f"/v1/admin/accounts/{w.alice_acct}/transfers",
            w.admin,
            json={"asset": "USD", "amount": "1000.00"},
        )
        clock.now += DAY_NS
        assert platform.persister is not None
        platform.persister.run_once()
        end = T0 + 4 * DAY_NS
        r = w.ok(
            "GET",
            f"/v1/analytics/performance?start={T0}&end={end}&benchmark=XYZ&periods_per_year=365",
            w.alice,
        )
        eq = [p["equity"] for p in r["points"]]
        # day 1: 99,000.00 cash + 510 XYZ at 100.00; day 2: 510 at 110.00; day 3: +1,000.00
        cash_now = int(w.ok("GET", "/v1/account", w.alice)["cash"].replace(".", ""))
        fees1 = 100_000_00 - cash_now  # -1,000.00 bought, +1,000.00 deposited: the fee
        assert eq[0] == f"{(99_000_00 - fees1 + 510 * 100_00) / 100:.2f}"
        assert eq[1] == f"{(99_000_00 - fees1 + 510 * 110_00) / 100:.2f}"
        assert eq[2] == f"{(100_000_00 - fees1 + 510 * 110_00) / 100:.2f}"
        assert [p["flow"] for p in r["points"]][2] == "1000.00"
        s = r["stats"]
        assert s["periods"] == 3 and s["worst_period"] == pytest.approx(0.0)
        assert s["best_period"] == pytest.approx(510 * 10_00 / (99_000_00 - fees1 + 510 * 100_00))
        assert r["benchmark"]["symbol"] == "XYZ" and r["benchmark"]["periods"] == 3
        rf = w.ok(
            "GET",
            f"/v1/analytics/performance?start={T0}&end={end}&periods_per_year=365&risk_free=0.05",
            w.alice,
        )
        assert rf["stats"]["sharpe"] < s["sharpe"]  # the same returns, less their excess
        # bad requests, and nobody else's account
        for q, code in (
            ("interval=2d", "invalid_interval"),
            (f"start={end}&end={T0}", "invalid_range"),
            (f"start=0&end={end}&interval=1m", "invalid_range"),
            ("benchmark=NOPE", "unknown_symbol"),
            ("risk_free=1.5", "invalid_query"),
            ("risk_free=abc", "invalid_query"),
        ):
            resp = w.call("GET", f"/v1/analytics/performance?{q}", w.alice)
            assert 400 <= resp.status_code < 500 and resp.json()["error"]["code"] == code, q
        other = w.call("GET", f"/v1/analytics/performance?account={w.bob_acct}", w.alice)
        assert other.status_code == 404
    finally:
        w.client.__exit__(None, None, None)


def test_performance_needs_a_store(w: World) -> None:
    r = w.call("GET", "/v1/analytics/performance", w.alice)
    assert r.status_code == 422 and r.json()["error"]["code"] == "no_history"


def test_alpaca_portfolio_history(tmp_path: Path, serve_app: Any) -> None:
    import datetime as dt

    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import GetPortfolioHistoryRequest

    from mercato.services.platform import Platform

    clock = _Clock(T0 + 3_600 * 1_000_000_000)
    platform = Platform(
        tmp_path / "node",
        fsync=False,
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        clock=clock,
    )
    w = World(tmp_path, platform=platform)
    try:
        w.ok("POST", "/v1/orders", w.bob, json=sell("100.00", "10"))
        w.ok("POST", "/v1/orders", w.alice, json=buy("100.00", "10"))
        clock.now += DAY_NS
        w.ok("POST", "/v1/orders", w.bob, json=sell("110.00", "1"))
        carol, _ = w.trader("carol")
        w.ok("POST", "/v1/orders", carol, json=buy("110.00", "1"))
        clock.now += DAY_NS
        w.ok(
            "POST",
            f"/v1/admin/accounts/{w.alice_acct}/transfers",
            w.admin,
            json={"asset": "USD", "amount": "1000.00"},
        )
        clock.now += DAY_NS
        assert platform.persister is not None
        platform.persister.run_once()
        url, _ = serve_app(w.client.app)
        key_id, secret = w.alice["Authorization"].removeprefix("Bearer ").split(":")
        sdk = TradingClient(key_id, secret, url_override=url)
        start = dt.datetime.fromtimestamp(T0 // 1_000_000_000, dt.UTC)
        h: Any = sdk.get_portfolio_history(
            GetPortfolioHistoryRequest(
                timeframe="1D", start=start, end=start + dt.timedelta(days=3)
            )
        )
        assert h.timeframe == "1D" and len(h.equity) == 3
        assert h.timestamp == [T0 // 1_000_000_000 + i * 86_400 for i in range(3)]
        assert h.equity[1] - h.equity[0] == pytest.approx(510 * 10.0)  # 510 XYZ up 10.00
        assert h.equity[2] - h.equity[1] == pytest.approx(1_000.0)  # the deposit...
        assert h.profit_loss[2] == pytest.approx(h.profit_loss[1])  # ...is no profit
        # the account was empty at the start: the base is 0, day 1's deposits no profit
        assert h.base_value == 0 and h.profit_loss_pct == [None, None, None]
        fee = 150_000.0 - h.equity[0]  # 100,000.00 and 500 XYZ at 100.00 came in
        assert 0 < fee < 1 and h.profit_loss[0] == pytest.approx(-fee)
        assert h.profit_loss[1] == pytest.approx(510 * 10.0 - fee)
        later: Any = sdk.get_portfolio_history(
            GetPortfolioHistoryRequest(
                timeframe="1D",
                start=start + dt.timedelta(days=1),
                end=start + dt.timedelta(days=3),
            )
        )
        assert later.base_value == pytest.approx(h.equity[0])
        assert later.profit_loss_pct[0] == pytest.approx(510 * 10.0 / h.equity[0])
        r = w.call("GET", "/v2/account/portfolio/history?pnl_reset=no_reset", w.alice)
        assert r.status_code == 422 and "pnl_reset" in r.text
        r = w.call("GET", "/v2/account/portfolio/history?period=3X", w.alice)
        assert r.status_code == 422 and "period" in r.text
        r = w.call("GET", "/v2/account/portfolio/history?extended_hours=true", w.alice)
        assert r.status_code == 422
    finally:
        w.client.__exit__(None, None, None)
