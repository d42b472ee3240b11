"""Candles (OHLCV and trade count) from trades, at any interval from 1 s to 1 month.

Definitions (``docs/analytics.md``):

- An interval is ``N`` units, ``s``, ``m``, ``h``, ``d``, ``w`` or ``mo`` (``1m``, ``4h``,
  ``1mo``), from 1 s to 4 w, or exactly ``1mo``.
- A candle covers ``[start, next start)``. Fixed intervals start at multiples of their
  length since 1970-01-01T00:00Z (a ``1d`` candle runs midnight to midnight UTC); weeks
  start on Monday 00:00 UTC (multiples since Monday 1970-01-05); months are calendar months
  in UTC.
- Open and close are the trades with the smallest and the largest ``(ts, trade_id)`` of
  the candle; high and low the extreme prices; volume the sum of quantities; trades the count.
- Intervals without a trade have no candle (they are omitted, not filled).
- Prices and volumes stay integers at the instrument's scales; ``render`` turns them into
  exact decimal strings.

``candles(trades, interval)`` returns a Polars frame ``start`` (ns), ``open``, ``high``,
``low``, ``close``, ``volume``, ``trades``, all Int64, sorted by ``start``: what the
indicators take.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

import polars as pl

__all__ = [
    "CANDLE_SCHEMA",
    "CSV_HEADER",
    "Interval",
    "candles",
    "decimal_expr",
    "parse_interval",
    "render",
    "write_csv",
]

NS = 1_000_000_000
_UNITS = {"s": NS, "m": 60 * NS, "h": 3_600 * NS, "d": 86_400 * NS, "w": 7 * 86_400 * NS}
MAX_FIXED = 4 * _UNITS["w"]
WEEK_ORIGIN = 4 * _UNITS["d"]  # Monday 1970-01-05 00:00 UTC
_TEXT = re.compile(r"([1-9][0-9]{0,6})(mo|[smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CSV_HEADER = "symbol,start,open,high,low,close,volume,trades"
CANDLE_SCHEMA = {
    c: pl.Int64() for c in ("start", "open", "high", "low", "close", "volume", "trades")
}


@dataclass(frozen=True)
class Interval:
    """A candle interval: ``length`` ns and an ``origin`` its starts are multiples from,
    or (``months`` = 1) calendar months."""

    text: str
    length: int = 0
    origin: int = 0
    months: int = 0

    def floor(self, ts: int) -> int:
        """The start of the candle holding ``ts``."""
        if self.months:
            t = _EPOCH + timedelta(microseconds=ts // 1_000)
            return _ns(datetime(t.year, t.month, 1, tzinfo=UTC))
        return (ts - self.origin) // self.length * self.length + self.origin

    def next(self, start: int) -> int:
        """The start of the candle after the one starting at ``start``."""
        if self.months:
            t = _EPOCH + timedelta(microseconds=start // 1_000)
            y, m = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
            return _ns(datetime(y, m, 1, tzinfo=UTC))
        return self.floor(start) + self.length

    def ceil(self, ts: int) -> int:
        """The first candle start at or after ``ts``."""
        f = self.floor(ts)
        return f if f == ts else self.next(f)

    def bucket(self, ts: pl.Expr) -> pl.Expr:
        """The candle start of each ``ts`` (Int64 ns), as a Polars expression."""
        if self.months:
            return pl.from_epoch(ts, time_unit="ns").dt.truncate("1mo").dt.epoch("ns")
        if self.origin:
            return (ts - self.origin) // self.length * self.length + self.origin
        return ts // self.length * self.length


def _ns(t: datetime) -> int:
    return (t - _EPOCH) // timedelta(microseconds=1) * 1_000


def parse_interval(text: str) -> Interval:
    """``"1m"`` -> 1 minute; a ValueError says what is accepted."""
    m = _TEXT.fullmatch(text.strip())
    if m is None:
        raise ValueError(
            f"not an interval: {text!r} (N followed by s, m, h, d, w or mo: 1s, 5m, 4h, 1d, "
            "1w, 1mo)"
        )
    n, unit = int(m[1]), m[2]
    if unit == "mo":
        if n != 1:
            raise ValueError(f"interval {text!r}: months are supported as 1mo only")
        return Interval("1mo", months=1)
    length = n * _UNITS[unit]
    if length > MAX_FIXED:
        raise ValueError(f"interval {text!r} is longer than 4w (use 1mo for a month)")
    return Interval(f"{n}{unit}", length, WEEK_ORIGIN if unit == "w" else 0)


def candles(trades: pl.LazyFrame | pl.DataFrame, interval: Interval) -> pl.DataFrame:
    """The candles of one instrument's ``trades`` (columns ``ts``, ``trade_id``, ``price``,
    ``qty``, in any order), omitting intervals without trades.

    Trades already in ``(ts, trade_id)`` order (as the store's parts are written, and as a
    single source's day reads back) take the first and last of each candle as they come;
    otherwise each candle's trades are ordered by ``(ts, trade_id)`` first. Checking the
    order costs one pass; sorting would cost several times the whole computation.
    """
    frame = (trades.lazy() if isinstance(trades, pl.DataFrame) else trades).select(
        "ts", "trade_id", "price", "qty"
    )
    df = frame.collect()
    price = pl.col("price")
    start = interval.bucket(pl.col("ts"))
    if _in_order(df):
        lf = df.lazy().with_columns(start=start.set_sorted())
        by = lf.group_by("start", maintain_order=True)
        first, last = price.first(), price.last()
    else:
        lf = df.lazy().with_columns(start=start)
        by = lf.group_by("start")
        first, last = (
            price.sort_by("ts", "trade_id").first(),
            price.sort_by("ts", "trade_id").last(),
        )
    return (
        by.agg(
            open=first,
            high=price.max(),
            low=price.min(),
            close=last,
            volume=pl.col("qty").sum(),
            trades=pl.len(),
        )
        .sort("start")
        .collect()
        .cast(CANDLE_SCHEMA)  # type: ignore[arg-type]
    )


def _in_order(df: pl.DataFrame) -> bool:
    """Whether the rows are sorted by ``(ts, trade_id)``."""
    ts = df["ts"]
    if not ts.is_sorted():
        return False
    if df.height < 2 or int(ts.diff().min()) > 0:  # type: ignore[arg-type]
        return True  # no two trades at the same time
    ties = df.select(((pl.col("ts").diff() == 0) & (pl.col("trade_id").diff() <= 0)).any()).item()
    return not ties


def decimal_expr(column: str, scale: int) -> pl.Expr:
    """An Int64 column at ``scale`` as exact decimal strings (``12345`` at 2: ``123.45``)."""
    col = pl.col(column)
    if scale == 0:
        return col.cast(pl.String)
    unit = 10**scale
    magnitude = col.abs()
    sign = pl.when(col < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.concat_str(
        sign,
        (magnitude // unit).cast(pl.String),
        pl.lit("."),
        (magnitude % unit).cast(pl.String).str.zfill(scale),
    )


def render(frame: pl.DataFrame, symbol: str, price_scale: int, qty_scale: int) -> pl.DataFrame:
    """The CSV's columns as strings: ``start`` in epoch ms, prices and volume decimal."""
    prices = [decimal_expr(c, price_scale).alias(c) for c in ("open", "high", "low", "close")]
    return frame.select(
        pl.lit(symbol).alias("symbol"),
        (pl.col("start") // 1_000_000).cast(pl.String).alias("start"),
        *prices,
        decimal_expr("volume", qty_scale).alias("volume"),
        pl.col("trades").cast(pl.String),
    )


def write_csv(
    frame: pl.DataFrame, symbol: str, price_scale: int, qty_scale: int, out: str | Path | TextIO
) -> None:
    """``symbol,start,open,high,low,close,volume,trades`` to ``out`` (a path: written to a
    temporary file and renamed, so a failed run leaves it alone)."""
    text = render(frame, symbol, price_scale, qty_scale).write_csv(
        include_header=False, quote_style="never"
    )
    body = CSV_HEADER + "\n" + text
    if isinstance(out, str | Path):
        tmp = Path(f"{out}.tmp")
        tmp.write_text(body, encoding="ascii")
        tmp.replace(out)
    else:
        out.write(body)
