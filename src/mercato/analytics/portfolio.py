"""Portfolio performance from an account's equity curve (``performance``) and against a
benchmark (``versus``), with the conventions written down in ``docs/analytics.md``:

- The curve is ``(ts, value)`` points in time order, values integers in the account
  currency's units (no float money: only ratios are floats).
- Period returns are simple and leave out deposits and withdrawals: with ``f_t`` the net
  flow into the account during the period (0 when none are given),
  ``r_t = (v_t - f_t) / v_{t-1} - 1`` (the flow is taken as arriving at the period's end).
  A period that starts at a value of 0 or below has no return (it is left out, and
  counted in ``skipped``). The total return chains the period returns (time-weighted).
- Volatility is the sample standard deviation (``ddof=1``) of the period returns, times
  ``sqrt(periods_per_year)`` (252 for trading days, 365 for a 24/7 market, 12 for months).
- Sharpe: the mean excess return per period over its sample standard deviation, times
  ``sqrt(periods_per_year)``; the risk-free rate is an annual rate, turned into a per-period
  one as ``(1 + rf) ** (1 / periods_per_year) - 1`` (default 0).
- Sortino: the mean excess return over the downside deviation
  ``sqrt(mean(min(excess, 0) ** 2))`` (every period counts, the positive ones as 0), times
  ``sqrt(periods_per_year)``.
- Maximum drawdown: the lowest ``v_t / max(v_0..v_t) - 1``, with the peak's and the
  trough's times and the first time after the trough when the value is back at the peak
  (None: not yet recovered).
- Undefined figures are None, never NaN or infinity: fewer than two returns (no standard
  deviation), a flat curve (zero deviation: Sharpe and volatility are then 0 and None as
  written below), no downside (Sortino None).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

TRADING_DAYS: Final = 252


@dataclass(frozen=True)
class Drawdown:
    depth: float  # the lowest value / peak - 1 (0.0: never below a peak)
    peak_ts: int | None
    trough_ts: int | None
    recovered_ts: int | None  # back at the peak's value (None: not yet, or no drawdown)


@dataclass(frozen=True)
class Performance:
    start_ts: int
    end_ts: int
    start_value: int
    end_value: int
    periods: int  # returns counted
    skipped: int  # periods without a return (they started at 0 or below)
    total_return: float | None  # time-weighted (None: a period started at 0 or below)
    annualized_return: float | None  # the mean period return compounded over a year
    volatility: float | None  # annualized
    sharpe: float | None
    sortino: float | None
    max_drawdown: Drawdown
    best_period: float | None
    worst_period: float | None


def period_returns(
    values: Sequence[int], flows: Sequence[int] | None = None
) -> tuple[list[float], int]:
    """Simple returns between consecutive values (less each period's flow, ``flows[t]``
    for the period ending at ``values[t]``), and how many periods had none."""
    out: list[float] = []
    skipped = 0
    for t, (prev, cur) in enumerate(itertools.pairwise(values), 1):
        if prev <= 0:
            skipped += 1
            continue
        flow = flows[t] if flows is not None else 0
        out.append((cur - flow) / prev - 1.0)
    return out, skipped


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _stdev(xs: Sequence[float]) -> float | None:
    """Sample standard deviation (None below two values)."""
    if len(xs) < 2:
        return None
    m = _mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / (len(xs) - 1))


def _chain(rets: Sequence[float]) -> float:
    growth = 1.0
    for r in rets:
        growth *= 1.0 + r
    return growth - 1.0


def max_drawdown(points: Sequence[tuple[int, int]]) -> Drawdown:
    """The deepest fall from a running peak, with its dates (see the module's notes)."""
    peak_value = None
    peak_ts = None
    depth = 0.0
    at: tuple[int | None, int | None] = (None, None)
    for ts, v in points:
        if peak_value is None or v > peak_value:
            peak_value, peak_ts = v, ts
            continue
        if peak_value > 0:
            d = v / peak_value - 1.0
            if d < depth:
                depth, at = d, (peak_ts, ts)
    recovered = None
    if at[0] is not None:
        peak_v = next(v for ts, v in points if ts == at[0])
        after = False
        for ts, v in points:
            if ts == at[1]:
                after = True
            elif after and v >= peak_v:
                recovered = ts
                break
    return Drawdown(depth, at[0], at[1], recovered)


def performance(
    points: Sequence[tuple[int, int]],
    *,
    periods_per_year: int = TRADING_DAYS,
    risk_free: float = 0.0,
    flows: Sequence[int] | None = None,
) -> Performance:
    """The statistics of an equity curve (at least one point, in time order); ``flows``:
    the net deposits of each period, one per point (the first one's is not used)."""
    if not points:
        raise ValueError("an equity curve needs at least one point")
    if periods_per_year <= 0:
        raise ValueError("periods_per_year must be positive")
    if any(b[0] < a[0] for a, b in itertools.pairwise(points)):
        raise ValueError("the equity curve must be in time order")
    if flows is not None and len(flows) != len(points):
        raise ValueError("one flow per point")
    values = [v for _, v in points]
    rets, skipped = period_returns(values, flows)
    rf = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    excess = [r - rf for r in rets]
    sd = _stdev(rets)
    esd = _stdev(excess)
    vol = sd * math.sqrt(periods_per_year) if sd is not None else None
    sharpe = None
    if esd is not None:
        sharpe = 0.0 if esd == 0 else _mean(excess) / esd * math.sqrt(periods_per_year)
    sortino = None
    if excess:
        down = math.sqrt(math.fsum(min(x, 0.0) ** 2 for x in excess) / len(excess))
        if down > 0:
            sortino = _mean(excess) / down * math.sqrt(periods_per_year)
    annual = None
    if rets and _mean(rets) > -1.0:
        growth = periods_per_year * math.log1p(_mean(rets))
        annual = math.expm1(growth) if growth < 700.0 else None  # (beyond a float: None)
    first, last = values[0], values[-1]
    total = None
    if first > 0 and not skipped:  # without flows, exactly end / start - 1
        total = _chain(rets) if flows is not None and any(flows[1:]) else last / first - 1.0
    return Performance(
        start_ts=points[0][0],
        end_ts=points[-1][0],
        start_value=first,
        end_value=last,
        periods=len(rets),
        skipped=skipped,
        total_return=total,
        annualized_return=annual,
        volatility=vol,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=max_drawdown(points),
        best_period=max(rets) if rets else None,
        worst_period=min(rets) if rets else None,
    )


@dataclass(frozen=True)
class Versus:
    periods: int  # returns both curves have
    correlation: float | None
    beta: float | None  # cov(account, benchmark) / var(benchmark)
    alpha: float | None  # annualized: (mean account - beta * mean benchmark) * periods/year
    excess_return: float | None  # the account's total return less the benchmark's


def versus(
    account: Sequence[tuple[int, int]],
    benchmark: Sequence[tuple[int, int]],
    *,
    periods_per_year: int = TRADING_DAYS,
) -> Versus:
    """The account against a benchmark (e.g. an instrument's closes), on the times both
    curves have; returns over consecutive common times."""
    bench = dict(benchmark)
    common = [(ts, v, bench[ts]) for ts, v in account if ts in bench]
    a: list[float] = []
    b: list[float] = []
    for (_, va, vb), (_, wa, wb) in itertools.pairwise(common):
        if va > 0 and vb > 0:
            a.append(wa / va - 1.0)
            b.append(wb / vb - 1.0)
    n = len(a)
    corr = beta = alpha = None
    if n >= 2:
        ma, mb = _mean(a), _mean(b)
        cov = math.fsum((x - ma) * (y - mb) for x, y in zip(a, b, strict=True)) / (n - 1)
        va_ = math.fsum((x - ma) ** 2 for x in a) / (n - 1)
        vb_ = math.fsum((y - mb) ** 2 for y in b) / (n - 1)
        if va_ > 0 and vb_ > 0:
            corr = cov / math.sqrt(va_ * vb_)
        if vb_ > 0:
            beta = cov / vb_
            alpha = (ma - beta * mb) * periods_per_year
    excess = None
    if common and common[0][1] > 0 and common[0][2] > 0:
        excess = (common[-1][1] / common[0][1]) - (common[-1][2] / common[0][2])
    return Versus(n, corr, beta, alpha, excess)


@dataclass(frozen=True)
class Many:
    """``performance`` for many curves at once (``many``): one value per curve, NaN where
    ``performance`` says None."""

    total_return: Any
    volatility: Any
    sharpe: Any
    sortino: Any
    max_drawdown: Any
    best_period: Any
    worst_period: Any


def many(values: Any, *, periods_per_year: int = TRADING_DAYS, risk_free: float = 0.0) -> Many:
    """The statistics of many equity curves with the same times, vectorized: ``values`` an
    (accounts x points) integer array, no flows, every value above 0 (a curve that
    touches 0 has undefined returns: use ``performance``). The same definitions as
    ``performance``, checked against it in tests."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 1:
        raise ValueError("values: an (accounts x points) array with at least one point")
    if (v <= 0).any():
        raise ValueError("values must be above 0 (use performance for curves that touch 0)")
    rets = v[:, 1:] / v[:, :-1] - 1.0
    rf = (1.0 + risk_free) ** (1.0 / periods_per_year) - 1.0
    ex = rets - rf
    n = rets.shape[1]
    root = math.sqrt(periods_per_year)
    nan = np.full(v.shape[0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = rets.std(axis=1, ddof=1) if n >= 2 else nan
        esd = ex.std(axis=1, ddof=1) if n >= 2 else nan
        mean_ex = ex.mean(axis=1) if n else nan
        sharpe = np.where(esd == 0, 0.0, mean_ex / esd * root)
        down = np.sqrt((np.minimum(ex, 0.0) ** 2).mean(axis=1)) if n else nan
        sortino = np.where(down > 0, mean_ex / down * root, np.nan)
    peaks = np.maximum.accumulate(v, axis=1)
    return Many(
        total_return=v[:, -1] / v[:, 0] - 1.0,
        volatility=sd * root,
        sharpe=sharpe,
        sortino=sortino,
        max_drawdown=(v / peaks - 1.0).min(axis=1),
        best_period=rets.max(axis=1) if n else nan,
        worst_period=rets.min(axis=1) if n else nan,
    )
