"""Market data answers over restarts and beyond its memory (issue 11).

Bars older than market data's memory window are served from the SQL store, paged as the
trade tape is: ``GET /v1/marketdata/SYM/bars`` answered only the bars in memory (1,440 per
interval), so a bar it had answered was lost once it left the window, and after a restart
whatever the restored window did not cover. The window is made small here (5 closed bars)
so that a few trades, one a second, overflow it. And the quote after a restart has the
time its top last changed (it had 0)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

import mercato.marketdata.market as market_module
from mercato.api.app import create_app
from mercato.api.base import NEXT_PAGE
from mercato.services.auth import AuthStore
from mercato.services.marketdata import MarketData
from mercato.services.platform import Platform

SEC = 1_000_000_000
T0 = 1_764_000_000 * SEC
TRADES = 14  # one a second: 14 one-second bars, 5 closed ones and the open one in memory


@pytest.fixture
def small_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(market_module, "BAR_HISTORY", 5)
    monkeypatch.setattr(MarketData, "max_bars", 6)


@pytest.fixture
def auth(tmp_path: Path) -> Iterator[tuple[AuthStore, dict[str, str], int]]:
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    store = AuthStore(f"sqlite:///{tmp_path / 'users.sqlite'}", hasher=hasher)
    admin = store.create_user("admin", "correct horse battery", "admin")
    key_id, secret = store.create_key(admin)
    yield store, {"Authorization": f"Bearer {key_id}:{secret}"}, admin
    store.close()


class Clock:
    """Each reading ``step`` after the one before (an order reads it twice)."""

    def __init__(self, step: int = SEC) -> None:
        self.now = T0
        self.step = step

    def __call__(self) -> int:
        self.now += self.step
        return self.now


def pages(c: TestClient, path: str) -> list[list[dict[str, Any]]]:
    """Every page of ``path``, newest page first, following the page tokens."""
    out, token = [], ""
    while True:
        r = c.get(path + (f"&page_token={token}" if token else ""))
        assert r.status_code == 200, r.text
        out.append(r.json())
        token = r.headers.get(NEXT_PAGE, "")
        if not token:
            return out
        assert len(out) < 50


def v2_pages(c: TestClient, path: str) -> list[list[dict[str, Any]]]:
    """Every page of the Alpaca bars at ``path`` (of XYZ, following next_page_token)."""
    out, token = [], ""
    while True:
        r = c.get(path + (f"&page_token={token}" if token else ""))
        assert r.status_code == 200, r.text
        body = r.json()
        out.append(body["bars"].get("XYZ", []))
        token = body["next_page_token"] or ""
        if not token:
            return out
        assert len(out) < 50


def test_bars_beyond_the_window_and_after_a_restart(
    tmp_path: Path,
    small_window: None,
    auth: tuple[AuthStore, dict[str, str], int],
    funded_accounts: Callable[..., list[int]],
) -> None:
    users, h, admin = auth

    def app() -> TestClient:
        return TestClient(
            create_app(Platform(tmp_path / "node", fsync=False, clock=Clock(40 * SEC)), users)
        )

    paths = [
        f"/v1/marketdata/XYZ/bars?interval={iv}&limit={n}" for iv in ("1s", "1d") for n in (1000, 4)
    ]
    v2 = [  # trades 80 s apart: a minute bar each, 5-minute bars across memory's edge
        f"/v2/stocks/bars?symbols=XYZ,ABC&timeframe={tf}&limit={n}&sort={o}"
        for tf in ("1Min", "5Min", "1Day")
        for n in (1000, 3)
        for o in ("asc", "desc")
    ]
    with app() as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ", "reference_price": "10"})
        accts = funded_accounts(c, h, admin, {"USD": "100000.00", "XYZ": "1000"})
        rest = {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": "100", "price": "10.00"}
        assert (
            c.post("/v1/orders", headers=h, json={**rest, "account": accts[1]}).status_code == 201
        )
        for i in range(TRADES):
            take = {"symbol": "XYZ", "side": "buy", "type": "market", "qty": str(1 + i % 3)}
            assert (
                c.post("/v1/orders", headers=h, json={**take, "account": accts[0]}).status_code
                == 201
            )
        before = {p: pages(c, p) for p in paths}
        before_v2 = {p: v2_pages(c, p) for p in v2}
        seconds = before[paths[0]]
        assert len(seconds) == 1 and len(seconds[0]) == TRADES  # the window holds 6
        whole = seconds[0]
        assert [b["start"] for b in whole] == sorted(b["start"] for b in whole)
        assert [b["volume"] for b in whole] == [str(1 + i % 3) for i in range(TRADES)]
        paged = before[paths[1]]  # pages of 4, newest first: they join into the whole
        assert [len(p) for p in paged] == [4, 4, 4, 2]
        assert [b for p in reversed(paged) for b in p] == whole
        assert len(before[paths[2]][0]) == 1 and before[paths[2]][0][0]["trades"] == TRADES
        for bad in ("abc", "-1", str(whole[3]["start"] + 1)):  # not a bar start: refused
            r = c.get(f"/v1/marketdata/XYZ/bars?interval=1s&page_token={bad}")
            assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_page_token"
        assert c.get("/v1/marketdata/XYZ/bars?interval=1s&limit=0").status_code == 400

        minutes = before_v2[v2[0]][0]  # /v2 1Min: the same bars as /v1 1m, all of them
        v1 = c.get("/v1/marketdata/XYZ/bars?interval=1m&limit=1000").json()
        assert [(b["o"], b["v"], b["n"]) for b in minutes] == [
            (float(b["open"]), float(b["volume"]), b["trades"]) for b in v1
        ]
        assert len(minutes) == TRADES and all(b["vw"] == 10.0 for b in minutes)
        for p in v2:  # pages of 3 join into the whole, in either order
            whole = before_v2[p.replace("limit=3", "limit=1000")]
            assert len(whole) == 1 and [b for page in before_v2[p] for b in page] == whole[0]
        fives = before_v2[v2[4]][0]
        assert sum(b["n"] for b in fives) == TRADES and len(fives) >= 4
        assert [b["n"] for b in before_v2[v2[8]][0]] == [TRADES]  # 1Day: one, whole
        for bad in ("XYZ:abc", "ABC:1", "XYZ"):
            r = c.get(f"/v2/stocks/bars?symbols=XYZ&timeframe=1Min&page_token={bad}")
            assert r.status_code == 422, (bad, r.text)
        r = c.get("/v2/stocks/bars?symbols=XYZ&timeframe=1Min&asof=2025-01-01")
        assert r.status_code == 422

    with app() as c:  # restarted: the memory holds the newest 6 again, the rest is stored
        after = {p: pages(c, p) for p in paths}
        after_v2 = {p: v2_pages(c, p) for p in v2}
    assert after == before
    assert after_v2 == before_v2


def test_bars_are_refused_not_holed_while_the_store_lags(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bars older than memory that the store does not hold yet (its newest trade is older
    than the bound): ``StoreBehind`` after a short wait (a 503 on the API), never a page
    that silently skips them; once a trade at or after the bound is stored, the bars."""
    import asyncio

    from mercato.services import history as history_module
    from mercato.services.history import History, StoreBehind

    class Store:
        newest = 5 * SEC

        def first_ts(self, symbol: str) -> int:
            return 1 * SEC

        def trades_page(self, symbol: str, *, before: int | None, limit: int) -> list[Any]:
            return [{"ts": self.newest}]

        def bars(self, symbol: str, interval: int, limit: int, **bounds: Any) -> list[Any]:
            return [(SEC, 10, 10, 10, 10, 1, 1)]

    monkeypatch.setattr(history_module, "CATCH_UP", 0.05)
    store = Store()
    queries = History(None, store)  # type: ignore[arg-type]
    with pytest.raises(StoreBehind):
        asyncio.run(queries.bars_before("XYZ", SEC, 10 * SEC, 5))
    store.newest = 10 * SEC
    (bar,) = asyncio.run(queries.bars_before("XYZ", SEC, 10 * SEC, 5))
    assert (bar.start, bar.trades) == (SEC, 1)


def test_the_tape_is_refused_not_holed_while_the_store_lags(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The trades older than memory's tape, asked of a store that has not stored the
    oldest trade memory holds: ``StoreBehind`` (a 503), never a page missing the trades
    the persister has not written yet; once it has, the page."""
    import asyncio

    from mercato.services import history as history_module
    from mercato.services.history import History, StoreBehind

    class Store:
        newest = 7  # the seq of the newest trade stored

        def trades_page(self, symbol: str, *, before: int | None, limit: int) -> list[Any]:
            rows = [
                {"symbol": symbol, "ts": s * SEC, "seq": s, "price": 10, "qty": 1, "taker_side": 1}
                for s in range(self.newest, 0, -1)
                if before is None or s < before
            ]
            return rows[:limit]

    monkeypatch.setattr(history_module, "CATCH_UP", 0.05)
    store = Store()
    queries = History(None, store)  # type: ignore[arg-type]
    with pytest.raises(StoreBehind):  # memory's oldest is seq 9: 8 may not be stored yet
        asyncio.run(queries.trades_before("XYZ", 9, 3, held=9))
    store.newest = 9
    got = asyncio.run(queries.trades_before("XYZ", 9, 3, held=9))
    assert [t.trade_id for t in got] == [8, 7, 6]


def test_the_quote_keeps_its_time_over_a_restart(
    tmp_path: Path,
    auth: tuple[AuthStore, dict[str, str], int],
    funded_accounts: Callable[..., list[int]],
) -> None:
    """The quote after a restart was stamped 0 (seeded from the book, which has no time);
    it has the time its top last changed again: the last change here is a cancel at the
    top, then a trade, each followed by changes deeper in the book that leave it alone."""
    users, h, admin = auth
    clock = Clock()  # (time goes on over the restarts)

    def app() -> TestClient:
        platform = Platform(tmp_path / "node", fsync=False, clock=clock)
        return TestClient(create_app(platform, users))

    def limit(side: str, price: str, account: int) -> dict[str, Any]:
        body = {"symbol": "XYZ", "side": side, "type": "limit", "qty": "5", "price": price}
        return {**body, "account": account}

    def quote(c: TestClient) -> dict[str, Any]:
        q: dict[str, Any] = c.app.state.api.md.snapshot("quotes:XYZ")["quote"]  # type: ignore[attr-defined]
        return q

    seen = []
    with app() as c:
        c.post("/v1/admin/instruments", headers=h, json={"symbol": "XYZ", "reference_price": "10"})
        buyer, seller = funded_accounts(c, h, admin, {"USD": "100000.00", "XYZ": "1000"})
        for body in (limit("buy", "9.00", buyer), limit("sell", "11.00", seller)):
            assert c.post("/v1/orders", headers=h, json=body).status_code == 201
        better = c.post("/v1/orders", headers=h, json=limit("buy", "9.50", buyer)).json()["id"]
        assert c.delete(f"/v1/orders/{better}", headers=h).status_code == 200
        deep = c.post("/v1/orders", headers=h, json=limit("buy", "8.00", buyer)).json()["id"]
        seen.append(quote(c))
    with app() as c:
        assert quote(c) == seen[0]
        take = {**limit("buy", "11.00", buyer), "qty": "1"}
        assert c.post("/v1/orders", headers=h, json=take).json()["status"] == "filled"
        assert c.delete(f"/v1/orders/{deep}", headers=h).status_code == 200
        seen.append(quote(c))
        assert seen[0]["ts"] > 0 and seen[1]["ts"] > seen[0]["ts"]
        assert (seen[1]["bid"], seen[1]["ask"], seen[1]["ask_qty"]) == ("9.00", "11.00", "4")
    with app() as c:
        assert quote(c) == seen[1]
