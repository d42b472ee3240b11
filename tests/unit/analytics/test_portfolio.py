"""Portfolio statistics: hand-worked curves, and numpy / pandas as the oracle on random
curves (the definitions are in ``mercato.analytics.portfolio`` and docs/analytics.md)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mercato.analytics.portfolio import many, max_drawdown, performance, versus

DAY = 86_400 * 1_000_000_000


def curve(values: list[int]) -> list[tuple[int, int]]:
    return [(i * DAY, v) for i, v in enumerate(values)]


def test_a_hand_worked_curve() -> None:
    # 100 -> 110 (+10%) -> 99 (-10%) -> 108.9 is not an int: 100, 110, 99, 120
    p = performance(curve([10_000, 11_000, 9_900, 12_000]), periods_per_year=252)
    r = [0.1, -0.1, 12_000 / 9_900 - 1]
    mean = sum(r) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in r) / 2)
    assert p.periods == 3 and p.skipped == 0
    assert p.total_return == pytest.approx(0.2)
    assert p.volatility == pytest.approx(sd * math.sqrt(252))
    assert p.sharpe == pytest.approx(mean / sd * math.sqrt(252))
    down = math.sqrt((0.1**2) / 3)  # only -10% is below 0; all three periods count
    assert p.sortino == pytest.approx(mean / down * math.sqrt(252))
    dd = p.max_drawdown
    assert dd.depth == pytest.approx(-0.1) and (dd.peak_ts, dd.trough_ts) == (DAY, 2 * DAY)
    assert dd.recovered_ts == 3 * DAY
    assert (p.best_period, p.worst_period) == (pytest.approx(r[2]), pytest.approx(-0.1))


def test_edges_are_none_never_nan() -> None:
    one = performance(curve([5_000]))
    assert one.periods == 0 and one.volatility is None and one.sharpe is None
    assert one.sortino is None and one.total_return == 0.0 and one.max_drawdown.depth == 0.0
    flat = performance(curve([5_000, 5_000, 5_000]))
    assert flat.volatility == 0.0 and flat.sharpe == 0.0 and flat.sortino is None
    zero = performance(curve([0, 100, 110]))
    assert zero.skipped == 1 and zero.periods == 1 and zero.total_return is None
    unrecovered = max_drawdown(curve([100, 80, 90]))
    assert unrecovered.depth == pytest.approx(-0.2) and unrecovered.recovered_ts is None
    with pytest.raises(ValueError):
        performance([])
    with pytest.raises(ValueError):
        performance([(2, 1), (1, 1)])
    with pytest.raises(ValueError):
        performance(curve([1, 2]), periods_per_year=0)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=3, max_size=60),
    st.sampled_from([12, 252, 365]),
    st.sampled_from([0.0, 0.02]),
)
def test_against_pandas(values: list[int], ppy: int, rf: float) -> None:
    p = performance(curve(values), periods_per_year=ppy, risk_free=rf)
    s = pd.Series(values, dtype="float64")
    r = s.pct_change().dropna()
    ex = r - ((1 + rf) ** (1 / ppy) - 1)
    assert p.volatility == pytest.approx(r.std(ddof=1) * math.sqrt(ppy), rel=1e-9, abs=1e-12)
    if ex.std(ddof=1) > 0:
        assert p.sharpe == pytest.approx(ex.mean() / ex.std(ddof=1) * math.sqrt(ppy), rel=1e-6)
    down = math.sqrt((np.minimum(ex.to_numpy(), 0.0) ** 2).mean())
    if down > 0:
        assert p.sortino == pytest.approx(ex.mean() / down * math.sqrt(ppy), rel=1e-6)
    dd = (s / s.cummax() - 1).min()
    assert p.max_drawdown.depth == pytest.approx(dd, rel=1e-9, abs=1e-12)
    assert p.total_return == pytest.approx(values[-1] / values[0] - 1, rel=1e-12)


def test_versus_a_benchmark() -> None:
    rng = np.random.default_rng(4)
    bench = np.cumprod(1 + rng.normal(0, 0.01, 200)) * 10_000
    acct = np.cumprod(1 + 1.5 * (bench[1:] / bench[:-1] - 1) + 0.0005) * 10_000
    acct = np.concatenate([[10_000], acct])
    a = curve([int(x) for x in acct])
    b = curve([int(x) for x in bench])
    v = versus(a, b)
    ra = pd.Series([x for _, x in a], dtype="float64").pct_change().dropna()
    rb = pd.Series([x for _, x in b], dtype="float64").pct_change().dropna()
    assert v.periods == 199
    assert v.correlation == pytest.approx(ra.corr(rb), rel=1e-9)
    assert v.beta == pytest.approx(ra.cov(rb) / rb.var(), rel=1e-9)
    assert v.beta == pytest.approx(1.5, rel=0.01)  # the account is 1.5x the benchmark
    assert v.alpha == pytest.approx((ra.mean() - v.beta * rb.mean()) * 252, rel=1e-9)
    # only the times both curves have count
    assert versus(a[::2], b).periods == len(a[::2]) - 1
    assert versus(a, [(7, 1)]).correlation is None


def test_many_curves_at_once_agree_with_one_at_a_time() -> None:
    rng = np.random.default_rng(9)
    values = (np.cumprod(1 + rng.normal(0.0005, 0.01, (50, 40)), axis=1) * 10**6).astype(np.int64)
    values[3] = 10**6  # a flat curve
    m = many(values, periods_per_year=252, risk_free=0.01)
    for i in range(len(values)):
        one = performance(curve([int(x) for x in values[i]]), periods_per_year=252, risk_free=0.01)
        for name in (
            "total_return",
            "volatility",
            "sharpe",
            "sortino",
            "best_period",
            "worst_period",
        ):
            want = getattr(one, name)
            got = getattr(m, name)[i]
            if want is None:
                assert np.isnan(got), (i, name)
            else:
                assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (i, name)
        assert m.max_drawdown[i] == pytest.approx(one.max_drawdown.depth, abs=1e-12)
    with pytest.raises(ValueError):
        many(np.zeros((2, 3), dtype=np.int64))
