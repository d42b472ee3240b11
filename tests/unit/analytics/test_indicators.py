"""Indicators: hand-worked cases, TA-Lib as the oracle on seeded random walks and on bars
built here from the Binance and LOBSTER recordings, plain-Python references where TA-Lib
has no such indicator or refuses the period, the edges, and the spec parser."""

from __future__ import annotations

import gzip
import json
import math
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import talib

from mercato.analytics import indicators as ind
from mercato.analytics.indicator_specs import REGISTRY, SpecError, compute, parse_spec

DATA = Path(__file__).resolve().parents[2] / "data"
RTOL = 1e-9
C, H, L, V = pl.col("close"), pl.col("high"), pl.col("low"), pl.col("volume")


def bars_of(
    close: list[int] | np.ndarray,
    high: list[int] | np.ndarray | None = None,
    low: list[int] | np.ndarray | None = None,
    volume: list[int] | np.ndarray | None = None,
) -> pl.DataFrame:
    c = np.asarray(close, dtype=np.int64)
    n = len(c)
    return pl.DataFrame(
        {
            "start": np.arange(n, dtype=np.int64) * 60_000_000_000,
            "open": c,
            "high": c if high is None else np.asarray(high, dtype=np.int64),
            "low": c if low is None else np.asarray(low, dtype=np.int64),
            "close": c,
            "volume": np.ones(n, dtype=np.int64) if volume is None else np.asarray(volume),
            "trades": np.ones(n, dtype=np.int64),
        },
        schema={k: pl.Int64 for k in ind.BAR_COLUMNS},
    )


def values(bars: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    """The expression's values as floats, null as NaN (TA-Lib's warm-up)."""
    return bars.select(expr.cast(pl.Float64)).to_series().fill_null(float("nan")).to_numpy()


def assert_matches(got: np.ndarray, want: np.ndarray, level: float) -> None:
    """Same warm-up (NaN where ``want`` is), values within 1e-9 relative: to the value, or
    to ``level`` (the series' magnitude) where the value is near 0 (a MACD histogram)."""
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    tol = RTOL * np.maximum(np.abs(want[ok]), level)
    bad = np.abs(got[ok] - want[ok]) > tol
    assert not bad.any(), (got[ok][bad][:5], want[ok][bad][:5])


# --- plain-Python references (no Polars, no TA-Lib) ----------------------------------------


def ref_seeded(xs: list[float | None], n: int, alpha: float) -> list[float | None]:
    """Seed with the mean of the first n non-null values, then y += alpha * (x - y)."""
    out: list[float | None] = [None] * len(xs)
    first = next((i for i, x in enumerate(xs) if x is not None), len(xs))
    if first + n > len(xs):
        return out
    y = sum(xs[first : first + n]) / n  # type: ignore[arg-type]
    out[first + n - 1] = y
    for i in range(first + n, len(xs)):
        y = y + alpha * (xs[i] - y)  # type: ignore[operator]
        out[i] = y
    return out


def ref_rsi(c: list[int], n: int) -> list[float | None]:
    d: list[float | None] = [None] + [float(b - a) for a, b in pairwise(c)]
    g = ref_seeded([None if x is None else max(x, 0.0) for x in d], n, 1 / n)
    lo = ref_seeded([None if x is None else max(-x, 0.0) for x in d], n, 1 / n)
    return [
        None if a is None or b is None else (0.0 if a + b == 0 else 100 * a / (a + b))
        for a, b in zip(g, lo, strict=True)
    ]


def nan(xs: list[float | None]) -> np.ndarray:
    return np.array([float("nan") if x is None else x for x in xs])


def random_walk(seed: int, n: int, start: int = 1_000_000) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = start + np.cumsum(rng.integers(-300, 301, n))
    high = close + rng.integers(0, 200, n)
    low = close - rng.integers(0, 200, n)
    return bars_of(close, high, low, rng.integers(0, 50, n))


# --- hand-worked cases ---------------------------------------------------------------------


def test_sma_ema_by_hand() -> None:
    b = bars_of([10, 11, 12, 13, 14])
    # SMA(3): -, -, (10+11+12)/3 = 11, 12, 13
    assert values(b, ind.sma(C, 3)).tolist()[2:] == [11.0, 12.0, 13.0]
    # EMA(3), k = 0.5: seed 11 at bar 2; 11 + .5 (13 - 11) = 12; 12 + .5 (14 - 12) = 13
    got = values(b, ind.ema(C, 3))
    assert np.isnan(got[:2]).all() and got[2:].tolist() == [11.0, 12.0, 13.0]
    # EMA(2), k = 2/3: seed 10.5 at bar 1; 10.5 + 2/3 * 1.5 = 11.5; 12.5; 13.5
    assert values(b, ind.ema(C, 2))[1:] == pytest.approx([10.5, 11.5, 12.5, 13.5])


def test_rsi_by_hand() -> None:
    # changes +2, -1, +3, -2; RSI(2): seed gain (2 + 0)/2 = 1, loss (0 + 1)/2 = .5 at bar 2:
    # 100 * 1 / 1.5 = 66.67; bar 3 (+3): gain (1 + 3)/2 = 2, loss .25 -> 88.89;
    # bar 4 (-2): gain 1, loss (.25 + 2)/2 = 1.125 -> 47.06
    got = values(bars_of([10, 12, 11, 14, 12]), ind.rsi(C, 2))
    assert np.isnan(got[:2]).all()
    assert got[2:] == pytest.approx([200 / 3, 800 / 9, 100 / 2.125])


def test_macd_by_hand() -> None:
    # MACD(2, 3, 2) on 1, 2, 4, 8, 16: both EMAs start at bar 2: fast = (2+4)/2 = 3,
    # slow = (1+2+4)/3 = 7/3; line 2/3. Bar 3: fast 3 + 2/3 (8-3) = 19/3, slow 7/3 + .5
    # (8 - 7/3) = 31/6; line 7/6. Signal seeded at bar 3 (= 3 + 2 - 2) with (2/3 + 7/6)/2
    # = 11/12. Bar 4: fast 19/3 + 2/3 (16 - 19/3) = 115/9, slow 31/6 + .5 (16 - 31/6)
    # = 127/12, line 79/36; signal 11/12 + 2/3 (79/36 - 11/12) = 191/108.
    line, sig, hist = (values(bars_of([1, 2, 4, 8, 16]), e) for e in ind.macd(C, 2, 3, 2))
    assert np.isnan(line[:3]).all() and np.isnan(sig[:3]).all()
    assert line[3:] == pytest.approx([7 / 6, 79 / 36])
    assert sig[3:] == pytest.approx([11 / 12, 191 / 108])
    assert hist[3:] == pytest.approx([7 / 6 - 11 / 12, 79 / 36 - 191 / 108])


def test_bbands_by_hand() -> None:
    # window 2, 4, 6: mean 4, population variance (4 + 0 + 4)/3 = 8/3
    up, mid, lo = (values(bars_of([2, 4, 6]), e) for e in ind.bbands(C, 3, 2))
    assert (mid[2], up[2], lo[2]) == pytest.approx(
        (4, 4 + 2 * math.sqrt(8 / 3), 4 - 2 * math.sqrt(8 / 3))
    )


def test_atr_by_hand() -> None:
    # bars (h, l, c): (10, 8, 9), (12, 9, 11), (11, 7, 8), (9, 8, 9)
    # TR from bar 1: max(3, 3, 0) = 3; max(4, 0, 4) = 4; max(1, 1, 0) = 1
    # ATR(2): (3 + 4)/2 = 3.5 at bar 2; (3.5 * 1 + 1)/2 = 2.25 at bar 3
    b = bars_of([9, 11, 8, 9], high=[10, 12, 11, 9], low=[8, 9, 7, 8])
    assert values(b, ind.true_range(H, L, C))[1:].tolist() == [3, 4, 1]
    got = values(b, ind.atr(H, L, C, 2))
    assert np.isnan(got[:2]).all() and got[2:].tolist() == [3.5, 2.25]


def test_vwap_by_hand() -> None:
    # typical prices (12+8+10)/3 = 10, (14+11+11)/3 = 12, (13+10+13)/3 = 12; volumes 1, 3, 0
    b = bars_of([10, 11, 13], high=[12, 14, 13], low=[8, 11, 10], volume=[1, 3, 0])
    # cumulative: 10, (10 + 36)/4 = 11.5, 11.5 (no volume added)
    assert values(b, ind.vwap(H, L, C, V)).tolist() == [10.0, 11.5, 11.5]
    # rolling 1: each bar's own typical price, undefined (null) where nothing traded
    got = b.select(ind.vwap(H, L, C, V, 1)).to_series().to_list()
    assert got == [10.0, 12.0, None]
    assert b.select(ind.bar_vwap(H, L, C, V)).to_series().to_list() == [10.0, 12.0, None]
    # rolling 2: -, 11.5, 12 (36 / 3)
    assert values(b, ind.vwap(H, L, C, V, 2)).tolist()[1:] == [11.5, 12.0]


def test_vwap_anchored_by_day() -> None:
    day = 86_400 * 10**9
    b = bars_of([10, 20, 30], volume=[1, 1, 1]).with_columns(
        start=pl.Series([0, day - 1, day], dtype=pl.Int64)
    )
    got = b.select(ind.vwap(H, L, C, V, start=pl.col("start"), anchor_ns=day)).to_series()
    assert got.to_list() == [10.0, 15.0, 30.0]  # the second day starts again
    with pytest.raises(ValueError, match="start column"):
        ind.vwap(H, L, C, V, anchor_ns=day)


def test_returns_volatility_drawdown_by_hand() -> None:
    b = bars_of([100, 110, 99, 121])
    assert values(b, ind.simple_returns(C))[1:] == pytest.approx([0.1, -0.1, 22 / 99])
    logs = [math.log(1.1), math.log(0.9), math.log(121 / 99)]
    assert values(b, ind.log_returns(C))[1:] == pytest.approx(logs)
    # window 2 of log returns, sample std, annualized by sqrt(4)
    rv = values(b, ind.realized_volatility(C, 2, bars_per_year=4))
    assert np.isnan(rv[:2]).all()
    want = [np.std(logs[0:2], ddof=1) * 2, np.std(logs[1:3], ddof=1) * 2]
    assert rv[2:] == pytest.approx(want)
    assert values(b, ind.drawdown(C)) == pytest.approx([0, 0, -0.1, 0])
    m = ind.max_drawdown(b)
    start = b.get_column("start").to_list()
    # from 110 down to 99: 10%, back above 110 at 121
    assert m.depth == pytest.approx(0.1)
    assert (m.peak, m.trough, m.recovery) == (start[1], start[2], start[3])


def test_max_drawdown_peak_is_the_last_high_before_the_trough() -> None:
    b = bars_of([100, 90, 100, 80, 95])
    m = ind.max_drawdown(b)
    s = b.get_column("start").to_list()
    assert m.depth == pytest.approx(0.2)
    assert (m.peak, m.trough, m.recovery) == (s[2], s[3], None)
    assert ind.max_drawdown(bars_of([1, 2, 3])) == ind.MaxDrawdown(0.0, None, None, None)
    assert ind.max_drawdown(bars_of([])) == ind.MaxDrawdown(0.0, None, None, None)


def test_regime_and_crossovers_by_hand() -> None:
    # SMA(1) = the close against SMA(2): closes 10, 12, 11, 11, 9, 10
    # SMA(2):                        -, 11, 11.5, 11, 10, 9.5
    # diff:                          -, +1, -0.5, 0, -1, +0.5
    regime, cross = ind.ma_regime(C, 1, 2)
    b = bars_of([10, 12, 11, 11, 9, 10])
    assert b.select(regime).to_series().to_list() == [None, 1, -1, 0, -1, 1]
    # cross up needs <= 0 before, > 0 now; down >= 0 before, < 0 now (0 -> -1 counts)
    assert b.select(cross).to_series().to_list() == [None, 0, -1, 0, -1, 1]


def test_breakout_by_hand() -> None:
    # previous 2 bars' highest high / lowest low; the bar itself is not counted
    b = bars_of([10, 11, 12, 11, 8], high=[11, 12, 12, 12, 9], low=[9, 10, 11, 10, 7])
    # bar 2: close 12 vs max(11, 12) = 12: not above -> 0; bar 3: 11 in [10, 12] -> 0;
    # bar 4: 8 < min(11, 10) = 10 -> -1
    assert b.select(ind.breakout(H, L, C, 2)).to_series().to_list() == [None, None, 0, 0, -1]
    up = bars_of([10, 11, 13], high=[10, 11, 13], low=[10, 11, 13])
    assert up.select(ind.breakout(H, L, C, 2)).to_series().to_list() == [None, None, 1]


# --- TA-Lib on seeded random walks -------------------------------------------------------

SEEDS = (1, 2, 3)
PERIODS = (1, 2, 3, 5, 14, 30, 250)  # 250: longer than the 200-bar series


def _talib_or_none(f: object, *args: object) -> object:
    try:
        return f(*args)  # type: ignore[operator]
    except Exception as e:  # TA-Lib refuses period 1 for RSI, BBANDS and MACD's fast
        assert "Bad Parameter" in str(e)
        return None


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", PERIODS)
def test_against_talib_random_walk(seed: int, period: int) -> None:
    b = random_walk(seed, 200)
    c = b.get_column("close").to_numpy().astype(float)
    h = b.get_column("high").to_numpy().astype(float)
    lo = b.get_column("low").to_numpy().astype(float)
    level = float(np.abs(c).max())
    assert_matches(values(b, ind.sma(C, period)), talib.SMA(c, period), level)
    assert_matches(values(b, ind.ema(C, period)), talib.EMA(c, period), level)
    assert_matches(values(b, ind.atr(H, L, C, period)), talib.ATR(h, lo, c, period), level)
    want_rsi = _talib_or_none(talib.RSI, c, period)
    if want_rsi is None:  # period 1: the reference
        want_rsi = nan(ref_rsi(b.get_column("close").to_list(), period))
    assert_matches(values(b, ind.rsi(C, period)), want_rsi, 100.0)  # type: ignore[arg-type]
    bands = _talib_or_none(talib.BBANDS, c, period, 2.5, 2.5)
    got = [values(b, e) for e in ind.bbands(C, period, 2.5)]
    if bands is None:  # period 1: every band is the close
        bands = (c, c, c)
    for g, w in zip(got, bands, strict=True):  # type: ignore[call-overload]
        assert_matches(g, w, level)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("fast", "slow", "signal"),
    [(12, 26, 9), (2, 3, 1), (2, 3, 2), (5, 35, 5), (1, 5, 3), (50, 150, 60)],
)
def test_macd_against_talib(seed: int, fast: int, slow: int, signal: int) -> None:
    b = random_walk(seed, 200)
    c = b.get_column("close").to_numpy().astype(float)
    got = [values(b, e) for e in ind.macd(C, fast, slow, signal)]
    want = _talib_or_none(talib.MACD, c, fast, slow, signal)
    if want is None:  # fast 1: the EMA(1) is the close; a plain-Python MACD
        cl = c.tolist()
        slow_ema = ref_seeded(cl, slow, 2 / (slow + 1))
        line = [None if s is None else x - s for x, s in zip(cl, slow_ema, strict=True)]
        sig = ref_seeded(line, signal, 2 / (signal + 1))
        first = slow + signal - 2
        line = [None if i < first else x for i, x in enumerate(line)]
        want = (nan(line), nan(sig), nan(line) - nan(sig))
    level = float(np.abs(c).max())
    for g, w in zip(got, want, strict=True):  # type: ignore[call-overload]
        assert_matches(g, w, level)


@pytest.mark.parametrize("seed", SEEDS)
def test_large_prices_stay_exact(seed: int) -> None:
    """BTC at scale 8 is ~6e12 units: sums are exact (Int128), so a flat stretch has bands
    exactly on the mean and the bands agree with TA-Lib to 1e-9 of the price."""
    rng = np.random.default_rng(seed)
    c = 6_183_763_000_000 + np.cumsum(rng.choice([0, 0, 0, 1_000_000, -1_000_000], 300))
    b = bars_of(c)
    up, mid, lo = (values(b, e) for e in ind.bbands(C, 20, 2))
    for g, w in zip((up, mid, lo), talib.BBANDS(c.astype(float), 20, 2, 2), strict=True):
        assert_matches(g, w, float(c.max()))
    flat = bars_of([6_183_763_000_000] * 30)
    up, mid, lo = (values(flat, e) for e in ind.bbands(C, 20, 2))
    assert (up[19:] == mid[19:]).all() and (lo[19:] == 6_183_763_000_000).all()


# --- no TA-Lib counterpart: NumPy and plain-Python references ------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("window", [2, 3, 20, 250])
def test_returns_and_volatility_against_numpy(seed: int, window: int) -> None:
    b = random_walk(seed, 200)
    c = b.get_column("close").to_numpy().astype(float)
    simple = np.concatenate([[np.nan], c[1:] / c[:-1] - 1])
    logs = np.concatenate([[np.nan], np.log(c[1:] / c[:-1])])
    assert_matches(values(b, ind.simple_returns(C)), simple, 1e-3)
    assert_matches(values(b, ind.log_returns(C)), logs, 1e-3)
    want = np.full(len(c), np.nan)
    for i in range(window, len(c)):
        want[i] = np.std(logs[i - window + 1 : i + 1], ddof=1) * math.sqrt(252)
    assert_matches(values(b, ind.realized_volatility(C, window, 252)), want, 1e-3)
    dd = c / np.maximum.accumulate(c) - 1
    assert_matches(values(b, ind.drawdown(C)), dd, 1e-3)
    m = ind.max_drawdown(b)
    trough = int(np.argmin(dd))
    assert m.depth == pytest.approx(-dd[trough], rel=RTOL)
    assert m.trough == b.get_column("start")[trough]
    peak = max(i for i in range(trough + 1) if c[i] == c[: trough + 1].max())
    assert m.peak == b.get_column("start")[peak]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [1, 2, 20, 250])
def test_vwap_and_signals_against_python(seed: int, period: int) -> None:
    b = random_walk(seed, 200)
    h, lo, c, v = (b.get_column(n).to_list() for n in ("high", "low", "close", "volume"))
    tp = [Decimal(x + y + z) / 3 for x, y, z in zip(h, lo, c, strict=True)]
    want: list[float | None] = []
    for i in range(len(c)):
        if i < period - 1:
            want.append(None)
            continue
        vol = sum(v[i - period + 1 : i + 1])
        pv = sum(tp[j] * v[j] for j in range(i - period + 1, i + 1))
        want.append(None if vol == 0 else float(pv / vol))
    got = b.select(ind.vwap(H, L, C, V, period)).to_series().to_list()
    assert [g is None for g in got] == [w is None for w in want]
    assert [g for g in got if g is not None] == pytest.approx(
        [w for w in want if w is not None], rel=RTOL
    )
    brk: list[int | None] = [None] * min(period, len(c))
    for i in range(period, len(c)):
        top, bottom = max(h[i - period : i]), min(lo[i - period : i])
        brk.append(1 if c[i] > top else -1 if c[i] < bottom else 0)
    assert b.select(ind.breakout(H, L, C, period)).to_series().to_list() == brk
    slow = period + 3
    sf = [
        None if i < period - 1 else sum(c[i - period + 1 : i + 1]) / Decimal(period)
        for i in range(len(c))
    ]
    ss = [
        None if i < slow - 1 else sum(c[i - slow + 1 : i + 1]) / Decimal(slow)
        for i in range(len(c))
    ]
    diff = [None if s is None else f - s for f, s in zip(sf, ss, strict=True)]
    regime, cross = ind.ma_regime(C, period, slow)
    sign = [None if d is None else (d > 0) - (d < 0) for d in diff]
    assert b.select(regime).to_series().to_list() == sign

    def crossed(p: Decimal | None, d: Decimal | None) -> int | None:
        if d is None:
            return None
        if p is not None and p <= 0 < d:
            return 1
        if p is not None and p >= 0 > d:
            return -1
        return 0

    crosses = [crossed(p, d) for p, d in zip([None, *diff[:-1]], diff, strict=True)]
    assert b.select(cross).to_series().to_list() == crosses


# --- real data: bars built here from the recordings ----------------------------------------


def _bucket(trades: list[tuple[int, int, int]], width_ns: int) -> pl.DataFrame:
    """(ts ns, price, qty) in time order → OHLCV bars of ``width_ns``, plain Python."""
    rows: dict[int, list[int]] = {}
    for ts, price, qty in trades:
        k = ts // width_ns * width_ns
        r = rows.get(k)
        if r is None:
            rows[k] = [price, price, price, price, qty, 1]
        else:
            r[1], r[2], r[3] = max(r[1], price), min(r[2], price), price
            r[4] += qty
            r[5] += 1
    cols = list(zip(*rows.values(), strict=True))
    return pl.DataFrame(
        {"start": list(rows), **{n: list(cols[i]) for i, n in enumerate(ind.BAR_COLUMNS[1:])}},
        schema={k: pl.Int64 for k in ind.BAR_COLUMNS},
    )


def binance_bars() -> pl.DataFrame:
    trades = []
    with gzip.open(DATA / "binance" / "btcusdt_20240808.gz", "rt") as f:
        for line in f:
            _, _, raw = line.partition(" ")
            if raw.startswith('{"stream":"btcusdt@trade"'):
                d = json.loads(raw)["data"]
                price = int(Decimal(d["p"]).scaleb(8))
                trades.append((d["T"] * 10**6, price, int(Decimal(d["q"]).scaleb(8))))
    trades.sort(key=lambda t: t[0])
    return _bucket(trades, 10**9)  # 1-second bars


def lobster_bars() -> pl.DataFrame:
    trades = []
    path = DATA / "lobster" / "AAPL_2012-06-21_34200000_57600000_message_10.csv"
    for line in path.read_text().splitlines():
        t, kind, _, size, price, _ = line.split(",")
        if kind in ("4", "5"):  # visible and hidden executions
            trades.append((int(Decimal(t) * 10**9), int(price), int(size)))
    return _bucket(trades, 10**8)  # 100 ms bars


@pytest.mark.parametrize("source", ["binance", "lobster"])
def test_against_talib_on_recordings(source: str) -> None:
    b = binance_bars() if source == "binance" else lobster_bars()
    assert b.height >= (300 if source == "binance" else 50)
    c, h, lo = (b.get_column(n).to_numpy().astype(float) for n in ("close", "high", "low"))
    level = float(c.max())
    for n in (2, 5, 14, 20):
        assert_matches(values(b, ind.sma(C, n)), talib.SMA(c, n), level)
        assert_matches(values(b, ind.ema(C, n)), talib.EMA(c, n), level)
        assert_matches(values(b, ind.rsi(C, n)), talib.RSI(c, n), 100.0)
        assert_matches(values(b, ind.atr(H, L, C, n)), talib.ATR(h, lo, c, n), level)
        for g, w in zip(ind.bbands(C, n, 2), talib.BBANDS(c, n, 2, 2), strict=True):
            assert_matches(values(b, g), w, level)
    for g, w in zip(ind.macd(C, 5, 13, 4), talib.MACD(c, 5, 13, 4), strict=True):
        assert_matches(values(b, g), w, level)
    # the spec path gives the same columns
    out = compute(b, ["sma:14", "macd:5,13,4"])
    assert_matches(out["sma_14"].fill_null(float("nan")).to_numpy(), talib.SMA(c, 14), level)
    want_hist = talib.MACD(c, 5, 13, 4)[2]
    assert_matches(out["macd_hist_5_13_4"].fill_null(float("nan")).to_numpy(), want_hist, level)


# --- edges ---------------------------------------------------------------------------------


def test_empty_frame() -> None:
    specs = [k for k in REGISTRY]
    out = compute(bars_of([]), specs)
    assert out.height == 0 and "macd_12_26_9" in out.columns and "rv_20_365" in out.columns


def test_fewer_bars_than_the_period_is_all_null() -> None:
    out = compute(
        bars_of([5, 6, 7]), ["sma:5", "ema:5", "rsi:3", "macd:2,3,2", "bbands:4,2", "atr:3"]
    )
    assert all(out[c].null_count() == 3 for c in out.columns if c != "start")
    # and one bar more than the lookback has exactly one value
    assert compute(bars_of([5, 6, 7, 8]), ["rsi:3"])["rsi_3"].null_count() == 3


def test_flat_series() -> None:
    b = bars_of([500] * 30)
    c = np.full(30, 500.0)
    # RSI: no gain and no loss; TA-Lib gives 0 (not 50 or NaN) and so does Mercato
    assert_matches(values(b, ind.rsi(C, 14)), talib.RSI(c, 14), 100.0)
    assert values(b, ind.rsi(C, 14))[14:].tolist() == [0.0] * 16
    assert values(b, ind.atr(H, L, C, 14))[14:].tolist() == [0.0] * 16
    up, mid, lo = (values(b, e) for e in ind.bbands(C, 20, 2))
    assert up[19:].tolist() == lo[19:].tolist() == mid[19:].tolist() == [500.0] * 11
    assert values(b, ind.realized_volatility(C, 5))[5:].tolist() == [0.0] * 25
    assert ind.max_drawdown(b).depth == 0.0
    regime, cross = ind.ma_regime(C, 2, 5)
    assert b.select(regime).to_series().to_list()[4:] == [0] * 26  # exact: never a cross
    assert b.select(cross).to_series().to_list()[4:] == [0] * 26


def test_zero_volume_vwap_is_null() -> None:
    b = bars_of([10, 11, 12], volume=[0, 0, 0])
    assert b.select(ind.vwap(H, L, C, V)).to_series().to_list() == [None, None, None]
    assert compute(b, ["vwap:2"])["vwap_2"].to_list() == [None, None, None]


def test_bad_frames_are_refused() -> None:
    b = bars_of([1, 2, 3])
    with pytest.raises(ValueError, match="missing column 'volume'"):
        compute(b.drop("volume"), ["sma:2"])
    with pytest.raises(ValueError, match="'close' must be integers"):
        compute(b.with_columns(pl.col("close").cast(pl.Float64)), ["sma:2"])
    with_null = b.with_columns(close=pl.Series([1, None, 3], dtype=pl.Int64))
    with pytest.raises(ValueError, match="nulls in close"):
        compute(with_null, ["sma:2"])
    # NaN cannot be in an integer column; a float column (which could hold NaN) is refused
    nan_close = b.with_columns(close=pl.Series([1.0, float("nan"), 3.0]))
    with pytest.raises(ValueError, match="must be integers"):
        compute(nan_close, ["sma:2"])
    with pytest.raises(ValueError, match="close must be positive"):
        compute(bars_of([1, 0, 3]), ["returns"])
    compute(bars_of([1, 0, 3]), ["sma:2"])  # a zero close is fine where nothing divides by it


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ind.sma(C, 0), "period must be at least 1, not 0"),
        (lambda: ind.ema(C, -3), "period must be at least 1"),
        (lambda: ind.rsi(C, 2.5), "period must be an integer"),  # type: ignore[arg-type]
        (lambda: ind.atr(H, L, C, True), "period must be an integer"),
        (lambda: ind.macd(C, 26, 12, 9), r"fast \(26\) must be less than slow \(12\)"),
        (lambda: ind.macd(C, 12, 26, 0), "signal must be at least 1"),
        (lambda: ind.bbands(C, 20, -1), "k must be a finite number"),
        (lambda: ind.bbands(C, 20, float("inf")), "k must be a finite number"),
        (lambda: ind.realized_volatility(C, 1), "window must be at least 2"),
        (lambda: ind.realized_volatility(C, 20, 0), "bars_per_year must be a positive number"),
        (lambda: ind.ma_regime(C, 5, 5), "fast"),
        (lambda: ind.breakout(H, L, C, 0), "period must be at least 1"),
    ],
)
def test_bad_parameters(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()  # type: ignore[operator]


# --- specs ---------------------------------------------------------------------------------


def test_parse_specs() -> None:
    assert parse_spec("sma:20").text == "sma:20"
    assert parse_spec(" EMA:12 ").params == (12,)
    assert parse_spec("rsi").params == (14,)  # defaults
    assert parse_spec("macd:12,26,9").params == (12, 26, 9)
    assert parse_spec("macd:5").params == (5, 26, 9)
    assert parse_spec("bbands:20,2").text == "bbands:20,2"
    assert parse_spec("bbands:20,2.5").params == (20, 2.5)
    assert parse_spec("atr:14").params == (14,)
    assert [o.name for o in parse_spec("macd:12,26,9").outputs()] == [
        "macd_12_26_9",
        "macd_signal_12_26_9",
        "macd_hist_12_26_9",
    ]
    assert [o.unit for o in parse_spec("bbands:20,2").outputs()] == ["price"] * 3
    assert parse_spec("rsi:14").outputs()[0].unit == "percent"
    assert parse_spec("regime:5,20").outputs()[1].name == "regime_cross_5_20"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("smaa:20", "unknown indicator 'smaa'"),
        ("", "unknown indicator ''"),
        ("sma:0", "period must be at least 1, not 0"),
        ("sma:-5", "period must be a whole number, not '-5'"),
        ("sma:20.5", "period must be a whole number, not '20.5'"),
        ("sma:abc", "period must be a whole number, not 'abc'"),
        ("sma:", "period must be a whole number, not ''"),
        ("sma:1e3", "whole number"),
        ("sma:20,3", r"sma takes at most 1 number\(s\) \(period\), got 2"),
        ("returns:1", r"returns takes at most 0 number\(s\) \(none\)"),
        ("macd:26,12,9", r"fast \(26\) must be less than slow \(12\)"),
        ("macd:12,26,", "signal must be a whole number"),
        ("bbands:20,x", "k must be a number, not 'x'"),
        ("bbands:20,nan", "k must be a number"),
        ("rv:20,0", "bars_per_year must be a positive number"),
        ("rv:1", "window must be at least 2"),
    ],
)
def test_bad_specs(text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_compute_shares_a_spec_given_twice() -> None:
    out = compute(random_walk(1, 50), ["sma:5", "sma:5", "macd:2,3,2", "macd:2,4,2"])
    assert out.columns == [
        "start",
        "sma_5",
        *(f"macd{x}_2_3_2" for x in ("", "_signal", "_hist")),
        *(f"macd{x}_2_4_2" for x in ("", "_signal", "_hist")),
    ]


# --- rendering -----------------------------------------------------------------------------


def test_render_at_the_instrument_scale() -> None:
    # SMA of 10050 and 10061 at scale 2 = 10055.5 units = 100.555, half to even at 2 places
    assert ind.render(10055.5, 2) == "100.56"
    assert ind.render(10056.5, 2) == "100.56"  # (the tie goes to the even cent)
    assert ind.render(10055.5, 2, places=4) == "100.5550"
    assert ind.render(None, 2) is None and ind.render(float("nan"), 2) is None
    assert ind.render(61837.63e8, 8) == "61837.63000000"
    out = bars_of([10050, 10061]).select(ind.to_units(ind.sma(C, 2), 2)).to_series()
    assert out.to_list() == [None, pytest.approx(100.555)]
