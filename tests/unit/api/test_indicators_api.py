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
