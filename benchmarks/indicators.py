"""Indicators benchmark (issue 13): five indicators — SMA(20), EMA(20), RSI(14),
MACD(12,26,9), Bollinger bands(20,2) — over 1,000,000 bars of a seeded random walk, by
Mercato (``mercato.analytics.indicator_specs.compute``: one Polars query), by TA-Lib, and by a
plain pandas computation of the same definitions, in the same run; each the median of
``--runs`` runs (wall time). Each implementation's outputs are checked against TA-Lib's
first (1e-9 relative, to the price level), so the three compute the same thing.

One JSON line per figure: {"bench": "indicators", "impl": "mercato" | "talib" | "pandas",
"what": "five" | <indicator>, "bars": N, "median_s": .., "runs_s": [..], "machine": ..};
the first (Mercato's five) also carries "target_s": 1.0 and "target_met".

Usage: python benchmarks/indicators.py [--bars 1000000] [--runs 3] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import talib

from _common import machine
from mercato.analytics.indicator_specs import compute

SPECS = {
    "sma": "sma:20",
    "ema": "ema:20",
    "rsi": "rsi:14",
    "macd": "macd:12,26,9",
    "bbands": "bbands:20,2",
}
TARGET_S = 1.0


def make_bars(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 10_000_000 + np.cumsum(rng.integers(-500, 501, n))
    return pl.DataFrame(
        {
            "start": np.arange(n, dtype=np.int64) * 60_000_000_000,
            "open": close,
            "high": close + rng.integers(0, 300, n),
            "low": close - rng.integers(0, 300, n),
            "close": close,
            "volume": rng.integers(0, 1000, n),
            "trades": rng.integers(0, 10, n),
        }
    )


# --- TA-Lib --------------------------------------------------------------------------------


def talib_five(c: np.ndarray) -> dict[str, Any]:
    return {
        "sma": talib.SMA(c, 20),
        "ema": talib.EMA(c, 20),
        "rsi": talib.RSI(c, 14),
        "macd": talib.MACD(c, 12, 26, 9),
        "bbands": talib.BBANDS(c, 20, 2, 2),
    }


# --- plain pandas, the same definitions ----------------------------------------------------


def pd_seeded(x: pd.Series, n: int, alpha: float, at: int) -> pd.Series:
    """Seeded with the mean of the n values ending at row ``at``, then the recursion."""
    y = x.copy()
    y.iloc[:at] = np.nan
    y.iloc[at] = x.iloc[at - n + 1 : at + 1].mean()
    return y.ewm(alpha=alpha, adjust=False, ignore_na=False).mean()


def pandas_five(c: pd.Series) -> dict[str, Any]:
    sma = c.rolling(20).mean()
    ema = pd_seeded(c, 20, 2 / 21, 19)
    d = c.diff()
    g = pd_seeded(d.clip(lower=0), 14, 1 / 14, 14)
    lo = pd_seeded((-d).clip(lower=0), 14, 1 / 14, 14)
    rsi = (100 * g / (g + lo)).where(g + lo != 0, 0.0)
    line = pd_seeded(c, 12, 2 / 13, 25) - pd_seeded(c, 26, 2 / 27, 25)
    sig = pd_seeded(line, 9, 2 / 10, 33)
    line = line.where(sig.notna())
    std = c.rolling(20).std(ddof=0)
    return {
        "sma": sma,
        "ema": ema,
        "rsi": rsi,
        "macd": (line, sig, line - sig),
        "bbands": (sma + 2 * std, sma, sma - 2 * std),
    }


# --- checks and timing ---------------------------------------------------------------------


def _arrays(x: Any) -> list[np.ndarray]:
    if isinstance(x, tuple | list):
        return [np.asarray(a, dtype=float) for a in x]
    return [np.asarray(x, dtype=float)]


def check(name: str, got: Any, want: Any, level: float) -> None:
    for g, w in zip(_arrays(got), _arrays(want), strict=True):
        if not np.array_equal(np.isnan(g), np.isnan(w)):
            raise AssertionError(f"{name}: warm-up differs from TA-Lib")
        ok = ~np.isnan(w)
        if (np.abs(g[ok] - w[ok]) > 1e-9 * np.maximum(np.abs(w[ok]), level)).any():
            raise AssertionError(f"{name}: differs from TA-Lib")


def mercato_outputs(out: pl.DataFrame) -> dict[str, Any]:
    col = {c: out[c].fill_null(float("nan")).to_numpy() for c in out.columns}
    return {
        "sma": col["sma_20"],
        "ema": col["ema_20"],
        "rsi": col["rsi_14"],
        "macd": tuple(col[f"macd{x}_12_26_9"] for x in ("", "_signal", "_hist")),
        "bbands": tuple(col[f"bbands_{x}_20_2"] for x in ("upper", "middle", "lower")),
    }


def timed(f: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return out


def line(impl: str, what: str, n: int, runs: list[float], **extra: object) -> dict[str, object]:
    rec: dict[str, object] = {"bench": "indicators", "impl": impl, "what": what, "bars": n}
    rec["median_s"] = round(statistics.median(runs), 4)
    rec["runs_s"] = [round(r, 4) for r in runs]
    rec["machine"] = machine()
    rec.update(extra)
    return rec


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    bars = make_bars(a.bars, a.seed)
    c = bars.get_column("close").to_numpy().astype(float)
    cs = pd.Series(c)
    level = float(np.abs(c).max())

    want = talib_five(c)
    got_m = mercato_outputs(compute(bars, list(SPECS.values())))
    got_p = pandas_five(cs)
    for name in SPECS:
        check(f"mercato {name}", got_m[name], want[name], level)
        check(f"pandas {name}", got_p[name], want[name], level)

    figures = []
    specs = list(SPECS.values())
    figures.append(line("mercato", "five", a.bars, timed(lambda: compute(bars, specs), a.runs)))
    figures.append(line("talib", "five", a.bars, timed(lambda: talib_five(c), a.runs)))
    figures.append(line("pandas", "five", a.bars, timed(lambda: pandas_five(cs), a.runs)))
    one_talib: dict[str, Callable[[], object]] = {
        "sma": lambda: talib.SMA(c, 20),
        "ema": lambda: talib.EMA(c, 20),
        "rsi": lambda: talib.RSI(c, 14),
        "macd": lambda: talib.MACD(c, 12, 26, 9),
        "bbands": lambda: talib.BBANDS(c, 20, 2, 2),
    }
    for name, spec in SPECS.items():
        figures.append(
            line("mercato", name, a.bars, timed(lambda s=spec: compute(bars, [s]), a.runs))
        )
        figures.append(line("talib", name, a.bars, timed(one_talib[name], a.runs)))
    five = statistics.median(figures[0]["runs_s"])  # type: ignore[arg-type]
    figures[0].update(target_s=TARGET_S, target_met=five < TARGET_S)
    for f in figures:
        print(json.dumps(f))


if __name__ == "__main__":
    main()
