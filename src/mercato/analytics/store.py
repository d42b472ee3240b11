"""The historical store: Parquet files partitioned by table, day and symbol (hive style).

Layout (``docs/analytics.md``)::

    DIR/history/trades/date=YYYY-MM-DD/symbol=SYM/part-SOURCE-LO-HI-TOKEN.parquet

``date`` is the UTC day of the trade's ``ts``; ``SYM`` is percent-encoded (``/`` and ``:``
may appear in symbols). A part holds the trades of one source whose trade ids run from LO to
HI, sorted by ``(ts, trade_id)``. The partition columns live in the path, not in the files,
as any hive reader (Polars, DuckDB, Spark, Arrow) expects.

**Idempotence.** A trade is identified by ``(source, trade_id)`` within its partition: the
source's own id (Mercato's seq, the exchange's trade id, a file's line number). Before a
batch is written, the ids already stored for that source in that partition are taken out;
only the parts of the same source whose [LO, HI] range (read from their names) overlaps the
batch's are opened, so an append-only source (increasing ids) reads nothing, and importing
the same file again reads its own parts back and writes nothing.

**Readers never wait.** A part is written to a hidden temporary name and renamed into
place: a query lists the parts that exist when it starts and reads only whole files; there
is no lock on the read side. Writers of one table take an ``flock`` on ``TABLE/.lock`` so
that two imports cannot both miss each other's trades.

Bars, fills and daily values are designed the same way (``TABLES``); only trades are
written today.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, unquote

import polars as pl

from mercato.analytics.times import DAY_NS, day_of
from mercato.domain.instrument import Instrument
from mercato.marketdata.events import MdTrade

__all__ = [
    "TABLES",
    "TRADES",
    "HistoryStore",
    "StoreError",
    "Table",
    "TradeWriter",
    "WriteResult",
]


@dataclass(frozen=True)
class Table:
    """A table of the store: the columns of its files and the keys of its partitions (in
    the path, outermost first)."""

    name: str
    partitions: tuple[str, ...]
    columns: Mapping[str, pl.DataType]


TRADES = Table(
    "trades",
    ("date", "symbol"),
    {
        "ts": pl.Int64(),  # ns since the epoch, the source's trade time
        "source": pl.String(),  # mercato, binance, lobster_..., csv...
        "trade_id": pl.Int64(),  # unique per source (and partition)
        "price": pl.Int64(),  # at price_scale
        "qty": pl.Int64(),  # at qty_scale
        "price_scale": pl.Int8(),
        "qty_scale": pl.Int8(),
        "side": pl.Int8(),  # the taker's: 1 buy, 2 sell, 0 unknown
    },
)
# Designed, not yet written (the service that follows the event stream comes next):
TABLES: dict[str, Table] = {
    "trades": TRADES,
    "bars": Table(  # closed bars as published, one interval per partition
        "bars",
        ("interval", "date", "symbol"),
        {"start": pl.Int64(), "open": pl.Int64(), "high": pl.Int64(), "low": pl.Int64()}
        | {"close": pl.Int64(), "volume": pl.Int64(), "trades": pl.Int64()},
    ),
    "fills": Table(  # every account's fills, by day and account (private: never by symbol)
        "fills",
        ("date", "account"),
        {"ts": pl.Int64(), "seq": pl.Int64(), "order_id": pl.Int64(), "symbol": pl.String()}
        | {"side": pl.Int8(), "price": pl.Int64(), "qty": pl.Int64(), "fee": pl.Int64()},
    ),
    "daily_values": Table(  # each account's value marked to market at each day's end
        "daily_values",
        ("year", "account"),
        {"date": pl.Date(), "cash": pl.Int64(), "positions": pl.Int64(), "equity": pl.Int64()},
    ),
}
HIVE_SCHEMA = {"date": pl.Date(), "symbol": pl.String()}
SOURCE = re.compile(r"[a-z0-9_]{1,64}")
_PART = re.compile(r"part-([a-z0-9_]{1,64})-(\d+)-(\d+)-[0-9a-f]+\.parquet")
_REQUIRED = ("symbol", "ts", "trade_id", "price", "qty", "side", "price_scale", "qty_scale")


class StoreError(ValueError):
    """A batch the store refuses (bad values, scales that disagree with what is stored)."""


class WriteResult(NamedTuple):
    written: int
    duplicates: int  # rows left out: already stored, or repeated within the batch
    parts: int


class HistoryStore:
    """The Parquet history under ``data_dir/history``."""

    def __init__(self, data_dir: str | Path) -> None:
        self.root = Path(data_dir) / "history"
        self._scales: dict[str, tuple[int, int]] = {}

    # -- layout ------------------------------------------------------------------------

    def table_dir(self, table: Table = TRADES) -> Path:
        return self.root / table.name

    def partition_dir(self, day: date, symbol: str) -> Path:
        return self.table_dir() / f"date={day.isoformat()}" / f"symbol={quote(symbol, safe='')}"

    def _days(self) -> list[tuple[date, Path]]:
        base = self.table_dir()
        if not base.is_dir():
            return []
        out = []
        for d in base.iterdir():
            if d.name.startswith("date=") and d.is_dir():
                try:
                    out.append((date.fromisoformat(d.name[5:]), d))
                except ValueError:
                    continue  # not ours: left alone
        return sorted(out)

    def parts(
        self, symbol: str | None = None, start: int | None = None, end: int | None = None
    ) -> list[Path]:
        """The part files of ``symbol`` (None: all) on the UTC days that [start, end) meets,
        by day, symbol, source and first trade id: a query touches no other partition."""
        first = day_of(start) if start is not None else None
        last = day_of(end - 1) if end is not None else None
        sym_dir = f"symbol={quote(symbol, safe='')}" if symbol is not None else None
        files: list[Path] = []
        for day, d in self._days():
            if (first is not None and day < first) or (last is not None and day > last):
                continue
            dirs = [d / sym_dir] if sym_dir else sorted(d.glob("symbol=*"))
            for s in dirs:
                files += [p for p, _ in sorted(_named_parts(s), key=lambda x: x[1])]
        return files

    def last_trade_id(self, source: str) -> int:
        """The highest trade id of ``source`` stored (0: none), from the part names: where
        a follower of an append-only source goes on (``services/history_export.py``)."""
        best = 0
        for _, d in self._days():
            for s in d.glob("symbol=*"):
                for _, (src, _, hi) in _named_parts(s):
                    if src == source and hi > best:
                        best = hi
        return best

    def symbols(self) -> list[str]:
        """Every symbol with trades stored."""
        return sorted({unquote(p.parent.name[len("symbol=") :]) for p in self.parts()})

    # -- reading -----------------------------------------------------------------------

    def scan_trades(
        self, symbol: str | None = None, start: int | None = None, end: int | None = None
    ) -> pl.LazyFrame:
        """The trades of ``symbol`` with ``start <= ts < end`` (None: unbounded), lazily:
        columns ``ts, source, trade_id, price, qty, price_scale, qty_scale, side, date,
        symbol``. Only the partitions of the range are opened."""
        files = self.parts(symbol, start, end)
        if not files:
            return pl.LazyFrame(schema={**TRADES.columns, **HIVE_SCHEMA})
        lf = pl.scan_parquet(
            [str(f) for f in files], hive_partitioning=True, hive_schema=HIVE_SCHEMA
        )
        if start is not None:
            lf = lf.filter(pl.col("ts") >= start)
        if end is not None:
            lf = lf.filter(pl.col("ts") < end)
        return lf

    def scales(self, symbol: str) -> tuple[int, int] | None:
        """(price_scale, qty_scale) of ``symbol``'s stored trades, None if it has none."""
        if symbol in self._scales:
            return self._scales[symbol]
        files = self.parts(symbol)
        if not files:
            return None
        row = pl.read_parquet(files[0], columns=["price_scale", "qty_scale"], n_rows=1)
        found = (int(row["price_scale"][0]), int(row["qty_scale"][0]))
        self._scales[symbol] = found
        return found

    # -- writing -----------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        base = self.table_dir()
        _mkdirs(base)
        lock = base / ".lock"
        os.close(os.open(lock, os.O_CREAT | os.O_WRONLY, 0o600))
        with open(lock, "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def write_trades(self, batch: pl.DataFrame, source: str) -> WriteResult:
        """Store ``batch`` (columns ``symbol, ts, trade_id, price, qty, side, price_scale,
        qty_scale``) as trades of ``source``, leaving out those already stored."""
        if not SOURCE.fullmatch(source):
            raise StoreError(f"source must be 1-64 of a-z 0-9 _: {source!r}")
        missing = [c for c in _REQUIRED if c not in batch.columns]
        if missing:
            raise StoreError(f"a trade batch needs the columns {', '.join(missing)}")
        if batch.is_empty():
            return WriteResult(0, 0, 0)
        frame = batch.select(
            pl.col("symbol").cast(pl.String),
            *(pl.col(c).cast(t) for c, t in TRADES.columns.items() if c != "source"),
        )
        self._check(frame)
        written = parts = 0
        with self._locked():
            for key, group in frame.group_by(pl.col("ts").floordiv(DAY_NS).alias("day"), "symbol"):
                day = day_of(int(key[0]) * DAY_NS)
                n = self._write_partition(group, day, str(key[1]), source)
                written += n
                parts += n > 0
        return WriteResult(written, batch.height - written, parts)

    def _check(self, frame: pl.DataFrame) -> None:
        bad = frame.filter(
            (pl.col("trade_id") < 0)
            | (pl.col("qty") <= 0)
            | ~pl.col("side").is_in([0, 1, 2])
            | ~pl.col("price_scale").is_between(0, 18)
            | ~pl.col("qty_scale").is_between(0, 18)
        )
        if not bad.is_empty():
            raise StoreError(f"bad trade (negative id, qty <= 0, side, scales): {bad.row(0)}")
        scales = frame.group_by("symbol").agg(
            pl.col("price_scale").unique(), pl.col("qty_scale").unique()
        )
        for symbol, ps, qs in scales.iter_rows():
            problem = Instrument(symbol=symbol).validate()
            if problem is not None:
                raise StoreError(f"symbol {symbol!r}: {problem}")
            if len(ps) != 1 or len(qs) != 1:
                raise StoreError(f"{symbol}: trades at more than one scale in one batch")
            stored = self.scales(symbol)
            if stored is not None and stored != (ps[0], qs[0]):
                raise StoreError(
                    f"{symbol}: stored at price scale {stored[0]}, qty scale {stored[1]}; "
                    f"this batch has {ps[0]}, {qs[0]}"
                )

    def _write_partition(self, group: pl.DataFrame, day: date, symbol: str, source: str) -> int:
        rows = group.unique("trade_id", keep="first", maintain_order=True)
        lo, hi = int(rows["trade_id"].min()), int(rows["trade_id"].max())  # type: ignore[arg-type]
        d = self.partition_dir(day, symbol)
        stored = [
            p
            for p, (src, p_lo, p_hi) in _named_parts(d)
            if src == source and p_lo <= hi and p_hi >= lo
        ]
        if stored:
            known = pl.read_parquet([str(p) for p in stored], columns=["trade_id"])
            rows = rows.join(known, on="trade_id", how="anti", maintain_order="left")
        if rows.is_empty():
            return 0
        rows = rows.sort("ts", "trade_id").select(
            "ts",
            pl.lit(source).alias("source"),
            *(c for c in TRADES.columns if c not in ("ts", "source")),
        )
        lo, hi = int(rows["trade_id"].min()), int(rows["trade_id"].max())  # type: ignore[arg-type]
        _mkdirs(d)
        name = f"part-{source}-{lo}-{hi}-{secrets.token_hex(6)}.parquet"
        tmp = d / f".{name}.tmp"
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # owner only
        rows.write_parquet(tmp, compression="zstd", statistics=True)
        os.replace(tmp, d / name)
        self._scales.setdefault(symbol, (int(rows["price_scale"][0]), int(rows["qty_scale"][0])))
        return rows.height


def _mkdirs(d: Path) -> None:
    """``d`` and its missing parents, owner only (as the rest of a data directory: the
    history of a private platform is private too)."""
    missing = []
    p = d
    while not p.exists():
        missing.append(p)
        p = p.parent
    for q in reversed(missing):
        q.mkdir(mode=0o700, exist_ok=True)


def _named_parts(d: Path) -> Iterable[tuple[Path, tuple[str, int, int]]]:
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _PART.fullmatch(p.name)
        if m is not None:
            out.append((p, (m[1], int(m[2]), int(m[3]))))
    return out


class TradeWriter:
    """Buffers trades of one source and writes them to the store in batches of at most
    ``max_rows`` (the buffer never holds more: ``add`` flushes when it is full). Whoever
    owns it runs it off the order path (a service following the event stream, an import);
    queries read the files and never wait on it."""

    def __init__(self, store: HistoryStore, source: str, max_rows: int = 100_000) -> None:
        if max_rows <= 0:
            raise ValueError("max_rows must be positive")
        self.store = store
        self.source = source
        self.max_rows = max_rows
        self.written = 0
        self.duplicates = 0
        self._cols: dict[str, list[int | str]] = {c: [] for c in _REQUIRED}

    def __len__(self) -> int:
        return len(self._cols["ts"])

    def add(self, trade: MdTrade, instrument: Instrument) -> None:
        c = self._cols
        c["symbol"].append(trade.symbol)
        c["ts"].append(trade.ts)
        c["trade_id"].append(trade.trade_id)
        c["price"].append(trade.price)
        c["qty"].append(trade.qty)
        c["side"].append(trade.side)
        c["price_scale"].append(instrument.price_scale)
        c["qty_scale"].append(instrument.qty_scale)
        if len(c["ts"]) >= self.max_rows:
            self.flush()

    def flush(self) -> WriteResult:
        if not self:
            return WriteResult(0, 0, 0)
        schema = {"symbol": pl.String} | {c: pl.Int64 for c in _REQUIRED[1:]}
        batch = pl.DataFrame(self._cols, schema=schema)
        result = self.store.write_trades(batch, self.source)  # raises: the rows stay
        for v in self._cols.values():
            v.clear()
        self.written += result.written
        self.duplicates += result.duplicates
        return result
