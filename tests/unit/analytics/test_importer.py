"""``history import``: the real recordings into the store, their candles against a
computation straight from the files, idempotent re-imports, the CSV format and its errors."""

from __future__ import annotations

import csv
import gzip
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from mercato.analytics.candles import candles, parse_interval
from mercato.analytics.importer import import_file
from mercato.analytics.store import HistoryStore
from mercato.feeds import FeedError

NS = 10**9
Candle = tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal, int]


def direct_candles(trades: list[tuple[int, Decimal, Decimal]], length: int) -> list[Candle]:
    """Candles of (ts ns, price, qty) in file order, with a dict: no Polars, no store."""
    out: dict[int, list[Decimal | int]] = {}
    for ts, price, qty in trades:
        start = ts // length * length
        c = out.get(start)
        if c is None:
            out[start] = [price, price, price, price, qty, 1]
        else:
            c[1], c[2], c[3] = max(c[1], price), min(c[2], price), price
            c[4] += qty
            c[5] += 1
    return [(s, *c) for s, c in sorted(out.items())]  # type: ignore[misc]


def stored_candles(store: HistoryStore, symbol: str, length: int) -> list[Candle]:
    ps, qs = store.scales(symbol) or (0, 0)
    frame = candles(store.scan_trades(symbol), parse_interval(f"{length // NS}s"))
    return [
        (s, *(Decimal(v).scaleb(-ps) for v in (o, h, lo, c)), Decimal(vol).scaleb(-qs), n)
        for s, o, h, lo, c, vol, n in frame.iter_rows()
    ]


def binance_trades(path: Path) -> list[tuple[int, Decimal, Decimal]]:
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if '@trade"' in line:
                d = json.loads(line.partition(" ")[2])["data"]
                out.append((d["T"] * 1_000_000, Decimal(d["p"]), Decimal(d["q"])))
    return out


def lobster_trades(path: Path) -> list[tuple[int, Decimal, Decimal]]:
    midnight = 1_340_251_200 * NS  # 2012-06-21 00:00 in New York (EDT) is 04:00 UTC
    out = []
    with open(path, newline="") as f:
        for time, kind, _, size, price, _ in csv.reader(f):
            if kind in ("4", "5"):
                ts = midnight + int(Decimal(time) * NS)
                out.append((ts, Decimal(price) / 10_000, Decimal(size)))
    return out


def test_the_binance_recording(binance_file: Path, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    r = import_file(store, "binance", str(binance_file))
    assert (r.source, r.read, r.written, r.duplicates, r.symbols) == (
        "binance",
        9_757,
        9_757,
        0,
        {"BTCUSDT"},
    )
    assert store.scales("BTCUSDT") == (8, 8)
    expected = direct_candles(binance_trades(binance_file), 60 * NS)
    assert len(expected) == 7
    assert stored_candles(store, "BTCUSDT", 60 * NS) == expected
    assert stored_candles(store, "BTCUSDT", NS) == direct_candles(binance_trades(binance_file), NS)
    # again: nothing new, the same parts
    parts = store.parts()
    r = import_file(HistoryStore(tmp_path), "binance", str(binance_file), batch_rows=1_000)
    assert (r.read, r.written, r.duplicates) == (9_757, 0, 9_757)
    assert store.parts() == parts
    assert store.scan_trades("BTCUSDT").collect().height == 9_757


def test_the_lobster_recording(lobster_messages: Path, tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    r = import_file(store, "lobster", str(lobster_messages))
    assert (r.source, r.written, r.symbols) == ("lobster_34200000_57600000", 159, {"AAPL"})
    trades = store.scan_trades("AAPL").collect()
    executions = trades.filter(pl.col("trade_id") == 36).row(0, named=True)
    assert (executions["price"], executions["price_scale"], executions["qty_scale"]) == (
        5_857_400,
        4,
        0,
    )
    direct = lobster_trades(lobster_messages)
    for seconds in (1, 5, 60):
        assert stored_candles(store, "AAPL", seconds * NS) == direct_candles(direct, seconds * NS)
    assert import_file(store, "lobster", str(lobster_messages)).written == 0
    assert store.scan_trades("AAPL").collect().height == 159


def test_a_bad_binance_trade_names_its_line(binance_file: Path, tmp_path: Path) -> None:
    with gzip.open(binance_file, "rb") as f:
        lines = [next(f) for _ in range(400)]
    n = next(i for i, line in enumerate(lines) if b"@trade" in line)
    lines[n] = lines[n].replace(b'"p":"', b'"p":"x')
    plain = tmp_path / "rec.jsonl"
    plain.write_bytes(b"".join(lines))
    with pytest.raises(FeedError, match=rf"rec\.jsonl:{n + 1}: not a decimal"):
        import_file(HistoryStore(tmp_path), "binance", str(plain))


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_csv_import(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    f = write(
        tmp_path / "t.csv",
        "symbol,ts,price,qty,side\n"
        "XYZ,1723075200000,100.5,10,buy\n"
        "XYZ,2024-08-08T00:00:30.000000001Z,100.25,5,SELL\n"
        "\n"
        "XYZ,1723075260000.5,101,1,\n"
        "ABC,2024-08-08,0.001,0.5,buy\n",
    )
    r = import_file(store, "csv", f)
    assert r.source.startswith("csv_") and len(r.source) == 16  # the file's digest
    assert (r.read, r.written) == (4, 4)
    assert store.scales("XYZ") == (2, 0) and store.scales("ABC") == (3, 1)  # the file's most
    got = store.scan_trades("XYZ").collect().sort("ts")
    assert got.select("ts", "trade_id", "price", "qty", "side").rows() == [
        (1_723_075_200 * NS, 2, 10_050, 10, 1),
        (1_723_075_230 * NS + 1, 3, 10_025, 5, 2),
        (1_723_075_260 * NS + 500_000, 5, 10_100, 1, 0),
    ]
    assert import_file(store, "csv", f).written == 0
    # a known symbol is read at its stored scales: a finer price is a bad row
    bad = write(tmp_path / "b.csv", "symbol,ts,price,qty,side\nXYZ,0,1.001,1,buy\n")
    with pytest.raises(FeedError, match=r"b\.csv:2: .*more than 2 decimal places"):
        import_file(store, "csv", bad)
    with pytest.raises(FeedError, match="stored at price scale 2 and qty scale 0, not 3 and 0"):
        import_file(store, "csv", bad, price_scale=3)


def test_csv_with_trade_ids_and_a_source(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    head = "trade_id,symbol,side,qty,price,ts\n"
    a = write(tmp_path / "a.csv", head + "7,XYZ,buy,1,1.00,0\n8,XYZ,sell,2,2.00,1\n")
    b = write(tmp_path / "b.csv", head + "8,XYZ,sell,2,2.00,1\n9,XYZ,buy,3,3.00,2\n")
    assert import_file(store, "csv", a).source == "csv"
    r = import_file(store, "csv", b)  # another file with one trade in common
    assert (r.written, r.duplicates) == (1, 1)
    assert import_file(store, "csv", b, source="other").written == 2
    assert store.scan_trades("XYZ").collect().height == 5


@pytest.mark.parametrize(
    "body, words",
    [
        ("", "t.csv:1: empty file"),
        ("symbol,ts,price,qty\n", "t.csv:1: the header"),
        ("symbol,ts,price,qty,side,extra\n", "t.csv:1: the header"),
        ("symbol,ts,price,qty,side\nX,0,1,1\n", "t.csv:2: expected 5 fields"),
        ("symbol,ts,price,qty,side\nX,0,1,1,buy\nX,soon,1,1,buy\n", "t.csv:3: not a time"),
        ("symbol,ts,price,qty,side\nX,0,1e3,1,buy\n", "t.csv:2: not a decimal"),
        ("symbol,ts,price,qty,side\nX,0,1,0,buy\n", "t.csv:2: qty must be positive"),
        ("symbol,ts,price,qty,side\nX,0,1,1,up\n", "t.csv:2: side must be"),
        ("symbol,ts,price,qty,side\nA B,0,1,1,buy\n", "t.csv:2: symbol"),
        ("symbol,ts,price,qty,side,trade_id\nX,0,1,1,buy,-4\n", "t.csv:2: trade_id"),
    ],
)
def test_csv_errors_name_the_row(tmp_path: Path, body: str, words: str) -> None:
    f = write(tmp_path / "t.csv", body)
    with pytest.raises(FeedError) as e:
        import_file(HistoryStore(tmp_path), "csv", f)
    assert words in str(e.value)
    assert not HistoryStore(tmp_path).parts()  # nothing half-imported from a small file


def test_refused_options(tmp_path: Path, binance_file: Path) -> None:
    store = HistoryStore(tmp_path)
    with pytest.raises(ValueError, match="unknown format"):
        import_file(store, "parquet", str(binance_file))
    with pytest.raises(ValueError, match="csv format only"):
        import_file(store, "binance", str(binance_file), price_scale=2)
    with pytest.raises(ValueError, match="--source"):
        import_file(store, "binance", str(binance_file), source="Not OK")
    with pytest.raises(FileNotFoundError):
        import_file(store, "csv", str(tmp_path / "missing.csv"))
