"""Candles: hand-worked cases, calendar boundaries, intervals, exact decimals, and pandas'
``resample`` as the oracle on random trades."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import polars as pl
import pytest

from mercato.analytics.candles import (
    CSV_HEADER,
    Interval,
    _in_order,
    candles,
    parse_interval,
    render,
    write_csv,
)
from mercato.analytics.times import parse_time
from mercato.domain.instrument import format_decimal

S = 1_000_000_000
M = 60 * S


def trades(rows: list[tuple[int, int, int, int]]) -> pl.DataFrame:
    """(ts, trade_id, price, qty) rows."""
    return pl.DataFrame(rows, schema=["ts", "trade_id", "price", "qty"], orient="row")


def test_hand_worked_minutes_with_an_empty_one_omitted() -> None:
    t = 1_700_000_040 * S  # a minute boundary (1700000040 = 28333334 minutes)
    rows = [
        (t + 30 * S, 3, 103, 2),  # given out of order: open/close follow (ts, trade_id)
        (t, 1, 100, 1),
        (t + 30 * S, 2, 99, 4),
        (t + 59 * S + 999_999_999, 4, 101, 1),  # the minute's last ns
        (t + 2 * M, 5, 110, 7),  # the minute between has no trade: no candle
    ]
    got = candles(trades(rows), parse_interval("1m"))
    assert got.columns == ["start", "open", "high", "low", "close", "volume", "trades"]
    assert got.rows() == [
        (t, 100, 103, 99, 101, 8, 4),
        (t + 2 * M, 110, 110, 110, 110, 7, 1),
    ]
    assert all(d == pl.Int64 for d in got.dtypes)


def test_ties_in_time_break_by_trade_id() -> None:
    rows = [(5 * S, 9, 1, 1), (5 * S, 2, 2, 1), (5 * S, 5, 3, 1)]
    assert candles(trades(rows), parse_interval("1s")).rows() == [(5 * S, 2, 3, 1, 1, 3, 3)]


def test_no_trades_no_candles() -> None:
    assert candles(trades([]).cast(pl.Int64), parse_interval("1h")).is_empty()


def test_weeks_start_on_monday_and_months_are_calendar_months_utc() -> None:
    at = parse_time
    rows = [
        (at("2024-01-31T23:59:59.999999999Z"), 1, 10, 1),  # Wednesday
        (at("2024-02-01T00:00:00Z"), 2, 20, 1),  # Thursday
        (at("2024-02-04T23:59:59Z"), 3, 30, 1),  # Sunday
        (at("2024-02-05T00:00:00Z"), 4, 40, 1),  # Monday
        (at("2024-02-29T12:00:00Z"), 5, 50, 1),  # leap day
        (at("2024-03-01T00:00:00Z"), 6, 60, 1),
    ]
    weeks = candles(trades(rows), parse_interval("1w"))
    assert weeks.select("start", "open", "close", "trades").rows() == [
        (at("2024-01-29"), 10, 30, 3),
        (at("2024-02-05"), 40, 40, 1),
        (at("2024-02-26"), 50, 60, 2),
    ]
    months = candles(trades(rows), parse_interval("1mo"))
    assert months.select("start", "open", "close", "trades").rows() == [
        (at("2024-01-01"), 10, 10, 1),
        (at("2024-02-01"), 20, 50, 4),
        (at("2024-03-01"), 60, 60, 1),
    ]
    days = candles(trades(rows), parse_interval("1d"))
    assert days["start"].to_list()[:2] == [at("2024-01-31"), at("2024-02-01")]


def test_interval_arithmetic() -> None:
    mo = parse_interval("1mo")
    assert mo.floor(parse_time("2024-12-31T23:00:00Z")) == parse_time("2024-12-01")
    assert mo.next(parse_time("2024-12-01")) == parse_time("2025-01-01")
    assert mo.ceil(parse_time("2024-12-01")) == parse_time("2024-12-01")
    assert mo.ceil(parse_time("2024-12-01T00:00:00.000000001Z")) == parse_time("2025-01-01")
    wk = parse_interval("1w")
    assert wk.floor(parse_time("2024-08-08T10:00:00Z")) == parse_time("2024-08-05")  # a Thursday
    assert wk.next(parse_time("2024-08-05")) == parse_time("2024-08-12")
    h4 = parse_interval("4h")
    assert h4.floor(parse_time("2024-08-08T03:59:59Z")) == parse_time("2024-08-08")
    assert h4.ceil(parse_time("2024-08-08T00:00:01Z")) == parse_time("2024-08-08T04:00:00Z")
    assert parse_interval("1d").floor(-1) == -86_400 * S


@pytest.mark.parametrize(
    "text, length",
    [
        ("1s", S),
        ("5s", 5 * S),
        ("15s", 15 * S),
        ("1m", M),
        ("5m", 5 * M),
        ("15m", 15 * M),
        ("30m", 30 * M),
        ("1h", 60 * M),
        ("4h", 240 * M),
        ("1d", 1440 * M),
        ("4w", 28 * 1440 * M),
    ],
)
def test_fixed_intervals(text: str, length: int) -> None:
    iv = parse_interval(text)
    assert (iv.text, iv.length, iv.months) == (text, length, 0)


@pytest.mark.parametrize(
    "text", ["", "1", "0m", "1ms", "500ms", "2mo", "5w", "29d", "1y", "-1m", "1M", "m"]
)
def test_unsupported_intervals_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


@pytest.mark.parametrize("scale", [0, 1, 2, 4, 8])
def test_rendering_is_exact(scale: int) -> None:
    values = [0, 1, -1, 7, 10**scale, -(10**scale) - 3, 123_456_789_012, 2**62]
    frame = pl.DataFrame({"start": [0] * len(values), "open": values, "high": values})
    frame = frame.with_columns(low="open", close="open", volume="open", trades=pl.lit(1))
    got = render(frame, "X", scale, scale)
    assert got["open"].to_list() == [format_decimal(v, scale) for v in values]
    assert got["volume"].to_list() == [format_decimal(v, scale) for v in values]


def test_csv_format() -> None:
    frame = pl.DataFrame(
        {"start": [1_723_075_200_123_456_789], "open": [6_183_763_000_000], "high": [1]}
    ).with_columns(low=pl.lit(2), close=pl.lit(3), volume=pl.lit(1_243_238_000), trades=pl.lit(875))
    out = io.StringIO()
    write_csv(frame, "BTCUSDT", 8, 8, out)
    assert out.getvalue().splitlines() == [
        CSV_HEADER,
        "BTCUSDT,1723075200123,61837.63000000,0.00000001,0.00000002,0.00000003,12.43238000,875",
    ]


def pandas_candles(frame: pl.DataFrame, rule: str, **kw: str) -> list[tuple[int, ...]]:
    """The same candles from pandas: resample, first/last in (ts, trade_id) order, empty
    intervals dropped."""
    df = pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})
    df = df.sort_values(["ts", "trade_id"], kind="stable")
    df.index = pd.to_datetime(df["ts"], unit="ns")
    r = df.resample(rule, **kw)  # type: ignore[call-overload]
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
    out = out[out["trades"] > 0]
    starts = out.index.asi8 if out.index.unit == "ns" else out.index.as_unit("ns").asi8
    return [
        (int(s), *(int(v) for v in row))
        for s, row in zip(starts, out.itertuples(index=False), strict=True)
    ]


@pytest.mark.parametrize(
    "interval, rule, kw, span",
    [
        ("1s", "1s", {}, 60 * S),
        ("5s", "5s", {}, 600 * S),
        ("1m", "1min", {}, 7_200 * S),
        ("15m", "15min", {}, 86_400 * S),
        ("4h", "4h", {}, 10 * 86_400 * S),
        ("1d", "1D", {}, 40 * 86_400 * S),
        ("1w", "W-MON", {"closed": "left", "label": "left"}, 100 * 86_400 * S),
        ("1mo", "MS", {}, 800 * 86_400 * S),
    ],
)
def test_against_pandas_resample(interval: str, rule: str, kw: dict[str, str], span: int) -> None:
    seed = 13
    rng = np.random.default_rng(seed)
    n = 3_000
    ts = parse_time("2023-12-30T17:00:00Z") + rng.integers(0, span, n)
    ts[:50] = ts[50]  # ties in time
    frame = pl.DataFrame(
        {
            "ts": ts,
            "trade_id": rng.permutation(n),
            "price": rng.integers(1, 1_000_000, n),
            "qty": rng.integers(1, 10**9, n),
        }
    )
    iv = parse_interval(interval)
    got = candles(frame, iv)
    assert got.rows() == pandas_candles(frame, rule, **kw), f"seed {seed}"
    assert got.height > 1
    # in (ts, trade_id) order: the path that takes first and last as they come
    assert candles(frame.sort("ts", "trade_id"), iv).equals(got)
    # in time order but ties against the ids: the path that orders each candle
    assert candles(frame.sort("ts", pl.col("trade_id"), descending=[False, True]), iv).equals(got)


def test_order_check() -> None:
    def f(ts: list[int], ids: list[int]) -> bool:
        return _in_order(pl.DataFrame({"ts": ts, "trade_id": ids}))

    assert f([], []) and f([1], [5]) and f([1, 2, 3], [3, 2, 1]) and f([1, 1, 2], [1, 2, 0])
    assert not f([2, 1], [1, 2]) and not f([1, 1, 2], [2, 1, 3]) and not f([1, 1], [1, 1])


def test_interval_is_a_value() -> None:
    assert parse_interval(" 1m ") == Interval("1m", M)
