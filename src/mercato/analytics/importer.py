"""Recordings loaded into the historical store: ``mercato history import``.

Formats (``docs/analytics.md``):

- ``binance``: a Binance spot recording (``mercato.feeds.binance``); its ``@trade``
  messages (the other streams' lines are skipped unread), source ``binance``, trade id the
  exchange's ``t``. The symbol is the first stream's.
- ``lobster``: a LOBSTER message file (``mercato.feeds.lobster``); its executions (types 4
  and 5, and 6, the cross trades, with an unknown side), trade id the message's line
  number, source ``lobster_START_END`` from the file name's window (line numbers are unique
  within one file only).
- ``csv``: a header, then ``symbol,ts,price,qty,side`` and optionally ``trade_id`` (any
  order). ``ts``: epoch ms (up to 6 decimals) or RFC 3339 (``mercato.analytics.times``);
  ``price`` and ``qty`` decimal strings; ``side`` ``buy``, ``sell`` or empty (unknown).
  Without ``trade_id`` the ids are the rows' line numbers and the source names the file's
  content (``csv_`` and 12 hex digits of its SHA-256), so the same file is recognised.

Every bad row raises ``FeedError`` naming the file and line. Trades are written in batches
of ``batch_rows`` through a ``TradeWriter``; what was already stored is left out.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mercato.analytics.store import SOURCE, HistoryStore, StoreError, TradeWriter
from mercato.analytics.times import TimeError, parse_time
from mercato.domain.instrument import DecimalError, Instrument, parse_decimal
from mercato.feeds import FeedError
from mercato.feeds import binance as bn
from mercato.feeds import lobster as lb
from mercato.feeds import run as feeds
from mercato.marketdata.events import BUY, SELL, MdTrade

__all__ = ["FORMATS", "ImportResult", "import_file"]

FORMATS = ("binance", "lobster", "csv")
CSV_COLUMNS = ("symbol", "ts", "price", "qty", "side")
_SIDES = {"buy": BUY, "sell": SELL, "": 0}
_STREAM = re.compile(rb'"stream":"([a-z0-9]+)@')
_WINDOW = re.compile(r"_(\d+)_(\d+)_message_\d+\.csv$")


@dataclass
class ImportResult:
    source: str
    read: int = 0  # trades in the file
    written: int = 0  # new in the store
    duplicates: int = 0  # already stored (or repeated in the file)
    symbols: set[str] = field(default_factory=set)


def import_file(
    store: HistoryStore,
    fmt: str,
    path: str,
    *,
    source: str | None = None,
    price_scale: int | None = None,
    qty_scale: int | None = None,
    batch_rows: int = 200_000,
) -> ImportResult:
    """Load the trades of ``path`` (format ``fmt``) into ``store``."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    if fmt != "csv" and (price_scale is not None or qty_scale is not None):
        raise ValueError("--price-scale and --qty-scale apply to the csv format only")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if fmt == "binance":
        instrument = _binance_instrument(path)
        trades: Iterator[tuple[MdTrade, Instrument]] = _with(instrument, _binance(path, instrument))
        name = source or "binance"
    elif fmt == "lobster":
        trades, name = _lobster(path)
        name = source or name
    else:
        trades, name = _csv(store, path, source, price_scale, qty_scale)
    if not SOURCE.fullmatch(name):
        raise ValueError(f"--source must be 1-64 of a-z 0-9 _: {name!r}")
    result = ImportResult(name)
    writer = TradeWriter(store, name, max_rows=batch_rows)
    try:
        for trade, instrument in trades:
            result.read += 1
            result.symbols.add(trade.symbol)
            writer.add(trade, instrument)
        writer.flush()
    except StoreError as e:
        raise FeedError(str(e), path=path) from None
    result.written, result.duplicates = writer.written, writer.duplicates
    return result


def _trades_of(events: Iterator[object]) -> Iterator[MdTrade]:
    return (e for e in events if isinstance(e, MdTrade))


def _with(
    instrument: Instrument, trades: Iterator[MdTrade]
) -> Iterator[tuple[MdTrade, Instrument]]:
    return ((t, instrument) for t in trades)


def _binance(path: str, instrument: Instrument) -> Iterator[MdTrade]:
    """The ``@trade`` messages only (the quotes and depth are not history: their lines are
    not parsed), through the feed's own parser, numbered as in the file."""
    replay = bn.BinanceReplay(instrument)
    marker = f'"stream":"{instrument.symbol.lower()}@trade"'.encode()
    for n, line in enumerate(feeds.binary_lines(path), 1):
        if marker in line:
            try:
                yield from _trades_of(iter(replay.line_events(line, n)))
            except FeedError as e:
                e.path = path
                raise


def _binance_instrument(path: str) -> Instrument:
    """BTCUSDT's, or for another symbol the feed's scales (8) with a tick and lot of 1
    unit: the symbol is the first stream's."""
    for n, line in enumerate(feeds.binary_lines(path), 1):
        m = _STREAM.search(line)
        if m is not None:
            symbol = m[1].decode().upper()
            if symbol == bn.BTCUSDT.symbol:
                return bn.BTCUSDT
            return Instrument(symbol=symbol, price_scale=8, qty_scale=8)
        if n >= 1_000:
            break
    raise FeedError("no stream message in the first 1,000 lines", path=path)


def _lobster(path: str) -> tuple[Iterator[tuple[MdTrade, Instrument]], str]:
    name = Path(path).name
    symbol, day, _ = lb.file_info(name)
    m = _WINDOW.search(name)
    if m is None:
        raise FeedError("not a LOBSTER message file name (..._START_END_message_N.csv)", path=path)
    instrument = lb.AAPL if symbol == "AAPL" else Instrument(symbol=symbol, price_scale=4)
    replay = lb.LobsterReplay(symbol, lb.day_start_ns(day))
    lines = feeds.located(path, lb.read_messages(feeds.text_lines(path)))
    trades = _trades_of(replay.iter_events(lines))
    return _with(instrument, trades), f"lobster_{m[1]}_{m[2]}"


def _decimals(text: str) -> int:
    _, dot, frac = text.strip().partition(".")
    return len(frac.rstrip("0")) if dot else 0


def _rows(path: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line, row) of a CSV with a header naming the columns."""
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise FeedError("empty file: a header is expected", 1, path)
        names = [h.strip() for h in header]
        missing = [c for c in CSV_COLUMNS if c not in names]
        unknown = [c for c in names if c not in (*CSV_COLUMNS, "trade_id")]
        if missing or unknown or len(set(names)) != len(names):
            raise FeedError(
                f"the header must name symbol,ts,price,qty,side and optionally trade_id, "
                f"each once; got {','.join(names)!r}",
                1,
                path,
            )
        for row in reader:
            line = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(names):
                raise FeedError(f"expected {len(names)} fields, got {len(row)}", line, path)
            yield line, dict(zip(names, row, strict=True))


def _csv(
    store: HistoryStore,
    path: str,
    source: str | None,
    price_scale: int | None,
    qty_scale: int | None,
) -> tuple[Iterator[tuple[MdTrade, Instrument]], str]:
    """Two passes: the first finds each symbol's scales where neither the store nor the
    flags give them (the most decimals the file writes), the second parses and yields."""
    seen: dict[str, list[int]] = {}
    has_ids = False
    for line, row in _rows(path):
        has_ids = "trade_id" in row
        symbol = row["symbol"].strip()
        problem = Instrument(symbol=symbol).validate()
        if problem is not None:
            raise FeedError(f"symbol {symbol!r}: {problem}", line, path)
        d = seen.setdefault(symbol, [0, 0])
        d[0] = max(d[0], _decimals(row["price"]))
        d[1] = max(d[1], _decimals(row["qty"]))
    instruments: dict[str, Instrument] = {}
    for symbol, (pd, qd) in seen.items():
        stored = store.scales(symbol)
        ps = price_scale if price_scale is not None else stored[0] if stored else min(pd, 18)
        qs = qty_scale if qty_scale is not None else stored[1] if stored else min(qd, 18)
        if stored is not None and stored != (ps, qs):
            raise FeedError(
                f"{symbol} is stored at price scale {stored[0]} and qty scale {stored[1]}, "
                f"not {ps} and {qs}",
                path=path,
            )
        instruments[symbol] = Instrument(symbol=symbol, price_scale=ps, qty_scale=qs)
    if source is None:
        source = "csv"
        if not has_ids:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
            source = f"csv_{digest.hexdigest()[:12]}"
    return _csv_trades(path, instruments), source


def _csv_trades(
    path: str, instruments: dict[str, Instrument]
) -> Iterator[tuple[MdTrade, Instrument]]:
    for line, row in _rows(path):
        ins = instruments[row["symbol"].strip()]
        try:
            ts = parse_time(row["ts"])
            price = parse_decimal(row["price"], ins.price_scale)
            qty = parse_decimal(row["qty"], ins.qty_scale)
        except (TimeError, DecimalError) as e:
            raise FeedError(str(e), line, path) from None
        side = _SIDES.get(row["side"].strip().lower())
        if side is None:
            raise FeedError(f"side must be buy, sell or empty: {row['side']!r}", line, path)
        if qty <= 0:
            raise FeedError(f"qty must be positive: {row['qty']!r}", line, path)
        trade_id = line
        if "trade_id" in row:
            text = row["trade_id"].strip()
            if not (text.isascii() and text.isdigit() and len(text) <= 18):
                raise FeedError(f"trade_id must be a whole number >= 0: {text!r}", line, path)
            trade_id = int(text)
        yield MdTrade(ins.symbol, ts, trade_id, price, qty, side), ins
