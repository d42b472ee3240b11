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
