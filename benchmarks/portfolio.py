"""Portfolio statistics benchmark (issue 13): 10,000 accounts with a year of daily values
(253 points), their total return, volatility, Sharpe, Sortino, maximum drawdown and best
and worst day, by Mercato (``mercato.analytics.portfolio.many``: NumPy over the whole
matrix) and by a plain pandas computation of the same definitions, in the same run; each
the median of ``--runs`` runs (wall time). The two are checked against each other first.

One JSON line per figure: {"bench": "portfolio", "impl": "mercato" | "pandas",
"accounts": N, "points": P, "median_s": .., "runs_s": [..], "machine": ..}; Mercato's
line also carries "target_s": 1.0 and "target_met".

Usage: python benchmarks/portfolio.py [--accounts 10000] [--points 253] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from _common import machine
from mercato.analytics.portfolio import many


def with_pandas(values: np.ndarray, ppy: int) -> dict[str, Any]:
    df = pd.DataFrame(values.T.astype("float64"))  # a column per account
    r = df.pct_change().iloc[1:]
    sd = r.std(ddof=1)
    down = np.sqrt((r.clip(upper=0.0) ** 2).mean())
    return {
        "total_return": df.iloc[-1] / df.iloc[0] - 1,
        "volatility": sd * math.sqrt(ppy),
        "sharpe": r.mean() / sd * math.sqrt(ppy),
        "sortino": r.mean() / down * math.sqrt(ppy),
        "max_drawdown": (df / df.cummax() - 1).min(),
        "best": r.max(),
        "worst": r.min(),
    }


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, list[float]]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=253)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    steps = 1 + rng.normal(0.0003, 0.012, (a.accounts, a.points))
    values = (np.cumprod(steps, axis=1) * 10**7).astype(np.int64)  # cents: 100,000.00
    mine = many(values, periods_per_year=252)
    theirs = with_pandas(values, 252)
    for got, want in (
        (mine.sharpe, theirs["sharpe"]),
        (mine.sortino, theirs["sortino"]),
        (mine.max_drawdown, theirs["max_drawdown"]),
        (mine.volatility, theirs["volatility"]),
    ):
        assert np.allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)
    med, runs = timed(lambda: many(values, periods_per_year=252), a.runs)
    line = {"bench": "portfolio", "impl": "mercato", "accounts": a.accounts, "points": a.points}
    print(
        json.dumps(
            {
                **line,
                "median_s": round(med, 4),
                "runs_s": [round(x, 4) for x in runs],
                "machine": machine(),
                "target_s": 1.0,
                "target_met": med < 1.0,
            }
        )
    )
    med, runs = timed(lambda: with_pandas(values, 252), a.runs)
    print(
        json.dumps(
            {
                **line,
                "impl": "pandas",
                "median_s": round(med, 4),
                "runs_s": [round(x, 4) for x in runs],
                "machine": machine(),
            }
        )
    )


if __name__ == "__main__":
    main()
