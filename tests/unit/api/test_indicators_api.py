"""Indicators over a symbol's bars through /v1, checked against TA-Lib on the same bars."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import talib

from .test_rest import World, buy


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    world = World(tmp_path)
    yield world
    world.client.__exit__(None, None, None)


def test_sma_and_rsi_over_live_bars_agree_with_talib(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 one-second bars: a trade each second at a wandering price
    t0 = (time.time_ns() // 10**9 + 5) * 10**9  # after the set-up's wall-clock times
    clock = {"now": t0}
    monkeypatch.setattr(w.platform, "clock", lambda: clock["now"])
    prices = [10_000 + int(300 * np.sin(i / 3)) + i * 7 for i in range(40)]
    for p in prices:
        px = f"{p // 100}.{p % 100:02d}"
        w.ok(
            "POST",
            "/v1/orders",
            w.bob,
            json={"symbol": "XYZ", "side": "sell", "type": "limit", "qty": "1", "price": px},
        )
        w.ok("POST", "/v1/orders", w.alice, json=buy(px, "1"))
        clock["now"] += 10**9
    r = w.ok("GET", "/v1/marketdata/XYZ/indicators?interval=1s&limit=30&indicators=sma:5|rsi:14")
    assert r["indicators"] == ["sma:5", "rsi:14"] and r["units"] == {
        "sma_5": "price",
        "rsi_14": "percent",
    }
    rows = r["bars"]
    assert 25 <= len(rows) <= 30
    # the bars' closes are the trade prices, bar i at second i (the newest may be open)
    starts = [row["start"] for row in rows]
    first = (starts[0] - t0) // 10**9
    assert starts == [t0 + (first + i) * 10**9 for i in range(len(rows))]
    upto = np.array(prices[: first + len(rows)], dtype=float)
    sma = talib.SMA(upto, 5)[first:]
    rsi = talib.RSI(upto, 14)[first:]
    for row, s, x in zip(rows, sma, rsi, strict=True):
        assert abs(Decimal(row["sma_5"]) * 100 - Decimal(float(s))) <= Decimal("0.5")
        if np.isnan(x):
            assert row["rsi_14"] is None
        else:
            assert row["rsi_14"] == pytest.approx(x, rel=1e-9)
    assert any(row["rsi_14"] is not None for row in rows)


def test_bad_indicator_requests(w: World) -> None:
    for q, code in (
        ("indicators=nope:3", "invalid_indicator"),
        ("indicators=sma:0", "invalid_indicator"),
        ("", "invalid_indicator"),
        ("indicators=sma:5&interval=2s", "invalid_interval"),
    ):
        r = w.call("GET", f"/v1/marketdata/XYZ/indicators?{q}")
        assert r.status_code == 400 and r.json()["error"]["code"] == code, (q, r.text)
    assert w.call("GET", "/v1/marketdata/NOPE/indicators?indicators=sma:5").status_code == 404
    empty = w.ok("GET", "/v1/marketdata/XYZ/indicators?indicators=sma:5")
    assert empty["bars"] == []


def test_movers_and_correlation(w: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w.ok(
        "POST",
        "/v1/admin/instruments",
        w.admin,
        json={"symbol": "ABC", "tick_size": "0.01", "reference_price": "50.00"},
    )
    for who in (w.alice_acct, w.bob_acct):
        w.ok(
            "POST",
            f"/v1/admin/accounts/{who}/transfers",
            w.admin,
            json={"asset": "ABC", "amount": "500"},
        )
    t0 = (time.time_ns() // 10**9 + 5) * 10**9
    clock = {"now": t0}
    monkeypatch.setattr(w.platform, "clock", lambda: clock["now"])
    xyz = [10_000 + 50 * i for i in range(12)]  # steady up: +5.5%
    abc = [5_000 + (100 if i % 2 else -100) + 10 * i for i in range(12)]  # choppy, +2.2%
    for px, py in zip(xyz, abc, strict=True):
        for sym, p in (("XYZ", px), ("ABC", py)):
            price = f"{p // 100}.{p % 100:02d}"
            w.ok(
                "POST",
                "/v1/orders",
                w.bob,
                json={"symbol": sym, "side": "sell", "type": "limit", "qty": "2", "price": price},
            )
            w.ok("POST", "/v1/orders", w.alice, json={**buy(price, "2"), "symbol": sym})
        clock["now"] += 10**9
    clock["now"] += 10**9  # the last bar closes
    r = w.ok("GET", "/v1/analytics/movers?interval=1s&bars=10&by=change")
    got = {m["symbol"]: m for m in r["movers"]}
    x, a = xyz[-10:], abc[-10:]
    want = sorted(
        ("XYZ", "ABC"),
        key=lambda s: -abs((x if s == "XYZ" else a)[-1] / (x if s == "XYZ" else a)[0] - 1),
    )
    assert [m["symbol"] for m in r["movers"]] == want
    assert got["XYZ"]["change"] == pytest.approx(x[-1] / x[0] - 1) and got["XYZ"]["volume"] == "20"
    rets = np.diff(np.log(np.array(a, dtype=float)))
    assert got["ABC"]["volatility"] == pytest.approx(float(np.std(rets, ddof=1)), rel=1e-9)
    v = w.ok("GET", "/v1/analytics/movers?interval=1s&bars=10&by=volatility")
    assert v["movers"][0]["symbol"] == "ABC"
    c = w.ok("GET", "/v1/analytics/correlation?symbols=XYZ,ABC&interval=1s&bars=10")
    rx = np.diff(np.log(np.array(xyz[-11:], dtype=float)))
    ra = np.diff(np.log(np.array(abc[-11:], dtype=float)))
    assert c["correlation"][0][0] == pytest.approx(1.0)
    assert c["correlation"][0][1] == pytest.approx(float(np.corrcoef(rx, ra)[0, 1]), rel=1e-9)
    assert c["correlation"][1][0] == c["correlation"][0][1]
    for q in ("symbols=XYZ", "symbols=XYZ,XYZ", "symbols=XYZ,ABC&bars=1", "by=size"):
        path = "/v1/analytics/correlation" if "symbols" in q else "/v1/analytics/movers"
        assert w.call("GET", f"{path}?{q}").status_code == 400, q
    assert w.call("GET", "/v1/analytics/correlation?symbols=XYZ,NOPE").status_code == 404
