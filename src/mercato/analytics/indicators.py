"""Indicators over a bar series (issue 13): VWAP, SMA, EMA, RSI, MACD, Bollinger bands, ATR,
realized volatility, returns, drawdowns and two trend signals, as Polars expressions.

A bar series is a Polars frame with integer columns ``start`` (ns since the epoch), ``open``,
``high``, ``low``, ``close``, ``volume`` and ``trades``, prices at the instrument's price
scale, as ``candles.py`` builds it. Each builder here takes column expressions and returns
an expression, so that many indicators run in one ``select`` (Polars runs them in
parallel); ``compute`` checks a frame and evaluates specs on it (``indicator_specs.py``).

Units (``docs/indicators.md``): an indicator of prices (SMA, EMA, VWAP, MACD, bands, ATR)
is a Float64 *in the input's integer units* (an SMA of 10050 and 10061 at scale 2 is
10055.5, i.e. 100.555); ``render`` and ``to_units`` turn it into the instrument's decimals.
RSI is 0..100; returns, volatility and drawdowns are fractions. Warm-up rows are null, as
is a value that is undefined (a VWAP over no volume). Sums of prices are exact (Int128)
before the one division that makes them floats, so an SMA is correctly rounded and a flat
series has a standard deviation of exactly 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl

BAR_COLUMNS = ("start", "open", "high", "low", "close", "volume", "trades")

_I128 = pl.Int128


def _period(name: str, value: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    if value < least:
        raise ValueError(f"{name} must be at least {least}, not {value}")
    return value


def _wide(x: pl.Expr) -> pl.Expr:
    return x.cast(_I128)


def _float(x: pl.Expr) -> pl.Expr:
    return x.cast(pl.Float64)


def _index() -> pl.Expr:
    return pl.int_range(pl.len(), dtype=pl.Int64)


def _seeded_ewm(x: pl.Expr, n: int, alpha: float, at: int) -> pl.Expr:
    """The recursion y = y' + alpha (x - y') started at row ``at`` with the mean of the ``n``
    values of ``x`` ending there (TA-Lib seeds its EMA and Wilder's averages so); null
    before. ``x`` is null before row ``at - n + 1``, or holds integers from row 0."""
    # at row ``at``: the first n values' sum, in order (as TA-Lib adds them)
    seed = _float(x).fill_null(0).cum_sum() / n
    i = _index()
    y = pl.when(i == at).then(seed).when(i > at).then(_float(x)).otherwise(None)
    return y.ewm_mean(alpha=alpha, adjust=False, min_samples=1)


def _wide_sum(x: pl.Expr, n: int) -> pl.Expr:
    """The sum of the last ``n`` integers, exact (Int128); null for the first n - 1 rows."""
    return _wide(x).rolling_sum(n)


# --- averages -----------------------------------------------------------------------------


def sma(x: pl.Expr, period: int) -> pl.Expr:
    """Simple moving average of the last ``period`` values (integers), exact sum then one
    division; lookback ``period - 1`` (TA-Lib's SMA)."""
    n = _period("period", period)
    return _float(_wide_sum(x, n)) / n


def ema(x: pl.Expr, period: int) -> pl.Expr:
    """Exponential moving average, k = 2 / (period + 1), seeded at bar ``period - 1`` with
    the SMA of the first ``period`` values: lookback ``period - 1`` (TA-Lib's EMA)."""
    n = _period("period", period)
    return _seeded_ewm(x, n, 2.0 / (n + 1), n - 1)


# --- oscillators --------------------------------------------------------------------------


def rsi(close: pl.Expr, period: int = 14) -> pl.Expr:
    """Wilder's relative strength index, 0..100: average gain and loss of the close-to-close
    changes, seeded with their means over the first ``period`` changes, then smoothed with
    alpha = 1 / period; 100 * gain / (gain + loss), 0 where both are 0 (a flat series, as
    TA-Lib). Lookback ``period`` (TA-Lib's RSI; TA-Lib refuses period 1, which here gives
    100 on a rise and 0 on a fall or no change)."""
    n = _period("period", period)
    d = close.cast(pl.Int64).diff()
    gain = d.clip(lower_bound=0)  # null on the first bar, as the change
    avg_gain = _seeded_ewm(gain, n, 1.0 / n, n)
    # avg gain + avg loss is the same smoothing of |change| (it is linear): one expression
    # instead of two more copies of the averages; 0 / 0 (no change at all) is NaN -> 0
    avg_move = _seeded_ewm(d.abs(), n, 1.0 / n, n)
    return (100.0 * avg_gain / avg_move).fill_nan(0.0)


def _macd_periods(fast: int, slow: int, signal: int) -> tuple[int, int, int]:
    f, s, g = _period("fast", fast), _period("slow", slow), _period("signal", signal)
    if f >= s:
        raise ValueError(f"macd: fast ({f}) must be less than slow ({s})")
    return f, s, g


def macd_line(close: pl.Expr, fast: int = 12, slow: int = 26) -> pl.Expr:
    """EMA(fast) - EMA(slow) of the closes from bar ``slow - 1`` (null before), both EMAs
    started there as TA-Lib's MACD does: the fast one from the SMA of the ``fast`` closes
    ending at that bar (not at bar ``fast - 1``)."""
    f, s, _ = _macd_periods(fast, slow, 1)
    late = pl.when(_index() < s - f).then(None).otherwise(close)
    return _seeded_ewm(late, f, 2.0 / (f + 1), s - 1) - _seeded_ewm(close, s, 2.0 / (s + 1), s - 1)


def macd_from_line(line: pl.Expr, slow: int, signal: int) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """The three MACD outputs from ``macd_line(close, fast, slow)``: the line, its signal
    (EMA(signal) of the line, seeded with the SMA of its first ``signal`` values) and the
    histogram (line - signal), each from bar ``slow + signal - 2`` (TA-Lib shows nothing
    of the line before its signal starts). ``compute`` evaluates the line once, as a
    column, and these over it."""
    first = _period("slow", slow) + _period("signal", signal) - 2
    sig = _seeded_ewm(line, signal, 2.0 / (signal + 1), first)
    shown = pl.when(_index() < first).then(None).otherwise(line)
    return shown, sig, shown - sig


def macd(
    close: pl.Expr, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """MACD (line, signal, histogram) as TA-Lib's MACD(fast, slow, signal), lookback
    ``slow + signal - 2``; ``fast`` must be below ``slow`` (TA-Lib swaps them silently).
    One expression each (the line inside all three: ``compute`` shares it instead)."""
    f, s, g = _macd_periods(fast, slow, signal)
    return macd_from_line(macd_line(close, f, s), s, g)


def _k(k: float) -> float:
    if isinstance(k, bool) or not isinstance(k, int | float) or not math.isfinite(k) or k < 0:
        raise ValueError(f"bbands: k must be a finite number at least 0, not {k!r}")
    return float(k)


def rolling_mean_std(close: pl.Expr, period: int) -> tuple[pl.Expr, pl.Expr]:
    """The SMA and the population standard deviation of the last ``period`` closes, the
    variance exact: (n * sum(x^2) - sum(x)^2) / n^2 in integers (Int128), then one square
    root, so a flat window has a deviation of exactly 0."""
    n = _period("period", period)
    w = _wide(close)
    s1 = _wide_sum(w, n)
    s2 = _wide_sum(w * w, n)
    return _float(s1) / n, _float(s2 * n - s1 * s1).sqrt() / n


def bands(mid: pl.Expr, std: pl.Expr, k: float) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(mid + k std, mid, mid - k std) from ``rolling_mean_std``; ``compute`` evaluates
    those two once, as columns, and these over them."""
    k = _k(k)
    return mid + k * std, mid, mid - k * std


def bbands(close: pl.Expr, period: int = 20, k: float = 2.0) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Bollinger bands (upper, middle, lower): the SMA of ``period`` closes plus and minus
    ``k`` population standard deviations of the same closes; lookback ``period - 1``
    (TA-Lib's BBANDS with matype 0 and nbdevup = nbdevdn = k; TA-Lib refuses period 1,
    which here gives three bands equal to the close)."""
    k = _k(k)
    return bands(*rolling_mean_std(close, period), k)


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """max(high - low, |high - previous close|, |low - previous close|), an integer; null on
    the first bar (TA-Lib's TRANGE)."""
    pc = close.shift(1)
    tr = pl.max_horizontal(high - low, (high - pc).abs(), (low - pc).abs())
    return pl.when(pc.is_null()).then(None).otherwise(tr)


def atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int = 14) -> pl.Expr:
    """Average true range: the mean of the first ``period`` true ranges (bars 1..period),
    then Wilder's smoothing (alpha = 1 / period); lookback ``period`` (TA-Lib's ATR; period
    1 is the true range itself)."""
    n = _period("period", period)
    return _seeded_ewm(true_range(high, low, close), n, 1.0 / n, n)


# --- volume -------------------------------------------------------------------------------


def typical_price(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """(high + low + close) / 3, a float in the input's units."""
    return _float(_wide(high) + low + close) / 3


def vwap(
    high: pl.Expr,
    low: pl.Expr,
    close: pl.Expr,
    volume: pl.Expr,
    period: int | None = None,
    *,
    start: pl.Expr | None = None,
    anchor_ns: int | None = None,
) -> pl.Expr:
    """Volume-weighted average of the bars' typical prices: sum(tp * volume) / sum(volume)
    over the last ``period`` bars (rolling: lookback ``period - 1``), or with ``period``
    None from the first bar (cumulative), restarting at each multiple of ``anchor_ns`` of
    ``start`` when given (86_400 * 10**9: a VWAP per UTC day). Null where the volume summed
    is 0. Each bar stands for its trades by its typical price (the bar does not keep their
    own VWAP). Exact sums (Int128), one division."""
    pv = (_wide(high) + low + close) * volume
    v = _wide(volume)
    if period is not None:
        n = _period("period", period)
        num, den = _wide_sum(pv, n), _wide_sum(v, n)
    elif anchor_ns is not None:
        if start is None:
            raise ValueError("vwap: anchor_ns needs the start column")
        key = start // _period("anchor_ns", anchor_ns)
        num, den = pv.cum_sum().over(key), v.cum_sum().over(key)
    else:
        num, den = pv.cum_sum(), v.cum_sum()
    return pl.when(den == 0).then(None).otherwise(_float(num) / (_float(den) * 3))


def bar_vwap(high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """A bar's own VWAP as the bars know it: its typical price, null when it traded nothing."""
    return pl.when(volume == 0).then(None).otherwise(typical_price(high, low, close))


# --- returns and risk ---------------------------------------------------------------------


def simple_returns(close: pl.Expr) -> pl.Expr:
    """close / previous close - 1; null on the first bar."""
    return _float(close) / _float(close.shift(1)) - 1.0


def log_returns(close: pl.Expr) -> pl.Expr:
    """ln(close / previous close); null on the first bar."""
    return (_float(close) / _float(close.shift(1))).log()


def realized_volatility(close: pl.Expr, window: int = 20, bars_per_year: float = 365.0) -> pl.Expr:
    """Sample standard deviation (ddof 1) of the last ``window`` log returns, times
    sqrt(``bars_per_year``): 252 for trading days, 365 for calendar days (crypto),
    252 * 390 for US equity minutes, 365 * 1440 for crypto minutes. Lookback ``window``
    bars (a window of returns needs window + 1 closes); ``window`` at least 2."""
    n = _period("window", window, least=2)
    if not isinstance(bars_per_year, int | float) or not bars_per_year > 0:
        raise ValueError(f"bars_per_year must be a positive number, not {bars_per_year!r}")
    return log_returns(close).rolling_std(n, ddof=1) * math.sqrt(bars_per_year)


def drawdown(close: pl.Expr) -> pl.Expr:
    """close / highest close so far - 1: 0 at a new high, negative below it."""
    return _float(close) / _float(close.cum_max()) - 1.0


@dataclass(frozen=True, slots=True)
class MaxDrawdown:
    """The deepest fall from a high: ``depth`` a fraction (0.25 = 25% below the peak; 0 for
    a series that never fell), ``peak`` and ``trough`` the ``start`` of those bars (the
    peak is the last bar at the running high before the trough; the earliest trough wins a
    tie), ``recovery`` the first bar after it that closed at or above the peak, or None."""

    depth: float
    peak: int | None
    trough: int | None
    recovery: int | None


def max_drawdown(bars: pl.DataFrame, column: str = "close") -> MaxDrawdown:
    """The maximum drawdown of ``bars[column]`` with its dates (None for an empty frame)."""
    check_bars(bars, positive=(column,))
    if bars.height == 0:
        return MaxDrawdown(0.0, None, None, None)
    c = bars.get_column(column)
    dd = bars.select(drawdown(pl.col(column))).to_series().to_numpy()
    trough = int(dd.argmin())
    if dd[trough] == 0.0:
        return MaxDrawdown(0.0, None, None, None)
    starts = bars.get_column("start")
    at_high = (dd[: trough + 1] == 0.0).nonzero()[0]
    peak = int(at_high[-1])
    peak_value = c[peak]
    after = (c[trough + 1 :] >= peak_value).arg_true()
    recovery = int(starts[trough + 1 + after[0]]) if after.len() else None
    return MaxDrawdown(float(-dd[trough]), int(starts[peak]), int(starts[trough]), recovery)


# --- trend signals ------------------------------------------------------------------------


def ma_regime(close: pl.Expr, fast: int = 50, slow: int = 200) -> tuple[pl.Expr, pl.Expr]:
    """The moving-average regime and its crossovers (Int8). Regime: +1 where SMA(fast) is
    above SMA(slow), -1 below, 0 equal; null for the first ``slow - 1`` bars. Cross: +1 on
    the bar where SMA(fast) - SMA(slow) turns positive from <= 0 on the bar before, -1
    where it turns negative from >= 0, else 0 (0 on the first bar of the regime). The
    comparison is exact: sum_fast * slow against sum_slow * fast in integers."""
    f, s = _period("fast", fast), _period("slow", slow)
    if f >= s:
        raise ValueError(f"regime: fast ({f}) must be less than slow ({s})")
    w = _wide(close)
    diff = _wide_sum(w, f) * s - _wide_sum(w, s) * f
    regime = diff.sign().cast(pl.Int8)
    prev = diff.shift(1)
    cross = (
        pl.when(diff.is_null())
        .then(None)
        .when((prev <= 0) & (diff > 0))
        .then(1)
        .when((prev >= 0) & (diff < 0))
        .then(-1)
        .otherwise(0)
        .cast(pl.Int8)
    )
    return regime, cross


def breakout(high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int = 20) -> pl.Expr:
    """+1 where the close is above the highest high of the previous ``period`` bars (not
    counting this one), -1 where it is below their lowest low, else 0 (Int8); null for the
    first ``period`` bars."""
    n = _period("period", period)
    upper = high.rolling_max(n).shift(1)
    lower = low.rolling_min(n).shift(1)
    return (
        pl.when(upper.is_null())
        .then(None)
        .when(close > upper)
        .then(1)
        .when(close < lower)
        .then(-1)
        .otherwise(0)
        .cast(pl.Int8)
    )


# --- frames and rendering -----------------------------------------------------------------


def check_bars(bars: pl.DataFrame, positive: tuple[str, ...] = ()) -> None:
    """Refuse (ValueError) a frame that is not a bar series: a missing or non-integer bar
    column, a null in one, or a price in ``positive`` at or below 0 (returns, volatility
    and drawdowns divide by prices)."""
    schema = bars.schema
    for name in BAR_COLUMNS:
        if name not in schema:
            raise ValueError(f"bars: missing column {name!r}")
        if not schema[name].is_integer():
            raise ValueError(f"bars: column {name!r} must be integers, not {schema[name]}")
    if bars.height == 0:
        return
    nulls = [n for n in BAR_COLUMNS if bars.get_column(n).has_nulls()]
    if nulls:
        raise ValueError(f"bars: nulls in {', '.join(nulls)}")
    for name in positive:
        low = bars.get_column(name).min()
        if isinstance(low, int) and low <= 0:
            raise ValueError(f"bars: {name} must be positive (found {low})")


def to_units(x: pl.Expr, scale: int) -> pl.Expr:
    """A price-like indicator in the instrument's units (a float: 100.555, not 10055.5)."""
    return x / float(10**scale)


def render(value: float | None, scale: int, places: int | None = None) -> str | None:
    """A price-like indicator value as a decimal string of the instrument: ``value`` is in
    the integer units of scale ``scale``; ``places`` decimals (default ``scale``), rounded
    half to even. None (and NaN) for a missing value."""
    if value is None or math.isnan(value):
        return None
    if scale < 0 or (places is not None and places < 0):
        raise ValueError("scale and places must not be negative")
    q = Decimal(1).scaleb(-(scale if places is None else places))
    return str(Decimal(value).scaleb(-scale).quantize(q, rounding=ROUND_HALF_EVEN))
