"""Analytics benchmark (issue 13): 1-minute candles from 10 million trades.

Seeded random trades of one symbol over ``--days`` days, in time order (prices at scale 2,
quantities whole, as the store keeps them), and their 1-minute candles computed

* ``mercato_memory``: ``mercato.analytics.candles.candles`` on a Polars frame in memory;
* ``mercato_memory_shuffled``: the same trades in random order (each candle's trades are
  then ordered by ``(ts, trade_id)`` before its open and close are taken);
* ``mercato_store``: the same from the historical store (``HistoryStore.scan_trades``: the
  day partitions' Parquet files, read lazily), the trades written there first;
* ``pandas``: plain pandas from an int64 frame: ``to_datetime`` index, ``resample("1min")``,
  first/max/min/last/sum/count, empty minutes dropped;

each ``--runs`` times in the same process, the median reported. The candles of the three
are checked equal. One JSON line per figure:
{"bench": "analytics", "figure": "candles_1m", "path": .., "trades": .., "candles": ..,
"seconds": [..], "median_s": .., "target_s": 1.0, "machine": ..}, and one for the store's
write ({"figure": "store_write", ...}).

Usage: python benchmarks/analytics.py [--trades 10000000] [--days 7] [--runs 3] [--seed 13]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from mercato.analytics.candles import candles, parse_interval
from mercato.analytics.store import HistoryStore

SYMBOL = "XYZ"
MINUTE = 60 * 10**9
START = 1_723_075_200 * 10**9  # 2024-08-08T00:00:00Z
TARGET_S = 1.0


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"


def make_trades(n: int, days: int, seed: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    ts = np.sort(START + rng.integers(0, days * 86_400 * 10**9, n, dtype=np.int64))
    steps = rng.integers(-1, 2, n, dtype=np.int64)
    return {
        "ts": ts,
        "trade_id": np.arange(1, n + 1, dtype=np.int64),
        "price": 100_000 + np.cumsum(steps),  # a random walk in cents around 1,000.00
        "qty": rng.integers(1, 1_000, n, dtype=np.int64),
    }


def pandas_candles(df: pd.DataFrame) -> pd.DataFrame:
    frame = df.set_index(pd.to_datetime(df["ts"], unit="ns"))
    r = frame.resample("1min")
    out = pd.DataFrame(
        {
            "open": r["price"].first(),
            "high": r["price"].max(),
            "low": r["price"].min(),
            "close": r["price"].last(),
            "volume": r["qty"].sum(),
            "trades": r["price"].count(),
        }
    )
    return out[out["trades"] > 0]


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    seconds, result = [], None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        seconds.append(round(time.perf_counter() - t, 3))
    return seconds, result


def emit(figure: str, path: str, n: int, seconds: list[float], **extra: Any) -> None:
    line = {"bench": "analytics", "figure": figure, "path": path, "trades": n}
    line |= extra | {"seconds": seconds, "median_s": statistics.median(seconds)}
    print(json.dumps(line | {"machine": machine()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    n = args.trades
    cols = make_trades(n, args.days, args.seed)
    frame = pl.DataFrame(cols)
    pdf = pd.DataFrame(cols)
    interval = parse_interval("1m")

    secs, mem = timed(lambda: candles(frame, interval), args.runs)
    emit("candles_1m", "mercato_memory", n, secs, candles=mem.height, target_s=TARGET_S)

    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=args.seed)
    secs, shu = timed(lambda: candles(shuffled, interval), args.runs)
    emit("candles_1m", "mercato_memory_shuffled", n, secs, candles=shu.height, target_s=TARGET_S)

    secs, pan = timed(lambda: pandas_candles(pdf), args.runs)
    emit("candles_1m", "pandas", n, secs, candles=len(pan), target_s=TARGET_S)

    with tempfile.TemporaryDirectory() as d:
        store = HistoryStore(d)
        batch = frame.with_columns(
            symbol=pl.lit(SYMBOL), side=pl.lit(1), price_scale=pl.lit(2), qty_scale=pl.lit(0)
        )
        t = time.perf_counter()
        written = store.write_trades(batch, "bench")
        write_s = round(time.perf_counter() - t, 3)
        emit("store_write", "mercato_store", n, [write_s], parts=written.parts)
        secs, sto = timed(lambda: candles(store.scan_trades(SYMBOL), interval), args.runs)
        emit("candles_1m", "mercato_store", n, secs, candles=sto.height, target_s=TARGET_S)

    starts = pan.index.as_unit("ns").asi8
    expected = [
        (int(s), *(int(v) for v in row))
        for s, row in zip(starts, pan.itertuples(index=False), strict=True)
    ]
    assert mem.rows() == expected, "Mercato's candles differ from pandas'"
    assert sto.equals(mem), "the store's candles differ from memory's"
    assert shu.equals(mem), "the shuffled trades' candles differ"


if __name__ == "__main__":
    main()
