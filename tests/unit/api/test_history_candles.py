"""Mercato's own trades follow the SQL store into the historical store (Parquet), once each
across restarts, and come back as candles over /v1 at any interval."""

from __future__ import annotations

import time
from pathlib import Path

from mercato.services.history_export import HistoryExporter
from mercato.services.platform import Platform

from .test_rest import World, buy

MIN = 60 * 10**9


def sell(price: str, qty: str) -> dict[str, str]:
    return {"symbol": "XYZ", "side": "sell", "type": "limit", "qty": qty, "price": price}


def test_trades_are_exported_once_and_served_as_candles(tmp_path: Path) -> None:
    t0 = (time.time_ns() // (60 * MIN) + 1) * 60 * MIN  # the next hour: after the set-up
    clock = {"now": t0}
    store = f"sqlite:///{tmp_path / 'store.sqlite'}"
    platform = Platform(tmp_path / "node", fsync=False, store_url=store, clock=lambda: clock["now"])
    w = World(tmp_path, platform=platform)
    try:
        trades = [
            (0, "100.00", "3"),
            (10, "101.50", "2"),
            (MIN + 5, "99.00", "4"),
            (3 * MIN, "102.00", "1"),
        ]
        for at, price, qty in trades:
            clock["now"] = t0 + at
            w.ok("POST", "/v1/orders", w.bob, json=sell(price, qty))
            w.ok("POST", "/v1/orders", w.alice, json=buy(price, qty))
        assert platform.persister is not None and platform.exporter is not None
        platform.persister.run_once()
        assert platform.exporter.run_once() == 4
        assert platform.exporter.run_once() == 0  # nothing new
        again = HistoryExporter(platform._archive, platform.history_store, lambda s: (2, 0))  # type: ignore[arg-type]
        assert again.exported == platform.exporter.exported and again.run_once() == 0
        r = w.ok("GET", f"/v1/analytics/candles/XYZ?interval=1m&start={t0}&end={t0 + 5 * MIN}")
        assert r["interval"] == "1m"
        assert [
            (c["start"] - t0, c["open"], c["high"], c["low"], c["close"], c["volume"], c["trades"])
            for c in r["candles"]
        ] == [
            (0, "100.00", "101.50", "100.00", "101.50", "5", 2),
            (MIN, "99.00", "99.00", "99.00", "99.00", "4", 1),
            (3 * MIN, "102.00", "102.00", "102.00", "102.00", "1", 1),
        ]
        hour = w.ok("GET", f"/v1/analytics/candles/XYZ?interval=1h&start={t0}&end={t0 + 60 * MIN}")
        assert [(c["open"], c["close"], c["volume"], c["trades"]) for c in hour["candles"]] == [
            ("100.00", "102.00", "10", 4)
        ]
        for q, code in (("interval=7x", 400), (f"start={t0}&end={t0}", 400)):
            assert w.call("GET", f"/v1/analytics/candles/XYZ?{q}").status_code == code, q
        assert w.call("GET", "/v1/analytics/candles/NOPE").status_code == 404
    finally:
        w.client.__exit__(None, None, None)


def test_no_historical_store_is_a_422(tmp_path: Path) -> None:
    w = World(tmp_path)
    try:
        r = w.call("GET", "/v1/analytics/candles/XYZ")
        assert r.status_code == 422 and r.json()["error"]["code"] == "no_history"
    finally:
        w.client.__exit__(None, None, None)
