"""The Parquet history: hive partitions by day and symbol, reads that touch only the
partitions of the query, idempotent writes by (source, trade id), a bounded writer."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from mercato.analytics.store import HistoryStore, StoreError, TradeWriter
from mercato.domain.instrument import Instrument
from mercato.marketdata.events import BUY, SELL, MdTrade

DAY = 86_400 * 1_000_000_000
T0 = 19_000 * DAY  # 2022-01-08T00:00Z


def batch(
    rows: list[tuple[str, int, int, int, int]], scales: tuple[int, int] = (2, 0)
) -> pl.DataFrame:
    """(symbol, ts, trade_id, price, qty) rows, taker side buy."""
    symbol, ts, ids, price, qty = (list(c) for c in zip(*rows, strict=True))
    return pl.DataFrame(
        {"symbol": symbol, "ts": ts, "trade_id": ids, "price": price, "qty": qty}
    ).with_columns(side=pl.lit(BUY), price_scale=pl.lit(scales[0]), qty_scale=pl.lit(scales[1]))


def test_layout_is_hive_by_day_and_symbol(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    rows = [
        ("AAPL", T0 + 5, 1, 10_000, 3),
        ("AAPL", T0 + DAY, 2, 10_100, 1),
        ("BTC/USD", T0, 7, 1, 1),
    ]
    assert store.write_trades(batch(rows), "csv").written == 3
    names = sorted(str(p.relative_to(tmp_path)) for p in store.parts())
    assert [n.rsplit("-", 1)[0] for n in names] == [
        "history/trades/date=2022-01-08/symbol=AAPL/part-csv-1-1",
        "history/trades/date=2022-01-08/symbol=BTC%2FUSD/part-csv-7-7",
        "history/trades/date=2022-01-09/symbol=AAPL/part-csv-2-2",
    ]
    assert store.symbols() == ["AAPL", "BTC/USD"]
    assert store.scales("AAPL") == (2, 0)
    assert store.scales("MSFT") is None
    # any hive reader sees the partition columns from the path
    whole = pl.scan_parquet(str(tmp_path / "history/trades"), hive_partitioning=True).collect()
    assert sorted(whole["symbol"].to_list()) == ["AAPL", "AAPL", "BTC/USD"]
    got = store.scan_trades("BTC/USD").collect()
    assert got.select("symbol", "ts", "trade_id", "price", "qty", "source").rows() == [
        ("BTC/USD", T0, 7, 1, 1, "csv")
    ]


def test_a_query_opens_only_its_partitions(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    rows = [("A", T0 + i * DAY + i, i, 100 + i, 1) for i in range(5)] + [
        ("B", T0 + 2 * DAY, 9, 5, 1)
    ]
    store.write_trades(batch(rows), "csv")
    for p in store.parts():  # spoil every partition but A's third day: reading one would fail
        if "date=2022-01-10/symbol=A" not in str(p):
            p.write_bytes(b"not parquet")
    lo, hi = T0 + 2 * DAY, T0 + 3 * DAY
    got = store.scan_trades("A", lo, hi).collect()
    assert got["trade_id"].to_list() == [2]
    assert len(store.parts("A", lo, hi)) == 1
    assert store.scan_trades("A", T0 + 2 * DAY + 3, hi).collect().is_empty()  # ts filtered too
    assert store.scan_trades("Z").collect().is_empty()


def test_writing_the_same_trades_twice_stores_them_once(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    rows = [("A", T0 + i, 100 + i, 50, 1) for i in range(10)]
    assert store.write_trades(batch(rows), "binance") == (10, 0, 1)
    assert store.write_trades(batch(rows), "binance") == (0, 10, 0)
    # overlapping: 5 known, 5 new; and a repeat inside the batch is kept once
    more = [("A", T0 + i, 100 + i, 50, 1) for i in range(5, 15)] + [("A", T0 + 14, 114, 50, 1)]
    assert store.write_trades(batch(more), "binance") == (5, 6, 1)
    ids = store.scan_trades("A").collect()["trade_id"].sort().to_list()
    assert ids == list(range(100, 115))
    # the same ids from another source are other trades
    assert store.write_trades(batch(rows), "csv").written == 10
    assert store.scan_trades("A").collect().height == 25


def test_only_overlapping_parts_of_the_same_source_are_read(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write_trades(batch([("A", T0, 1, 5, 1), ("A", T0 + 1, 2, 5, 1)]), "s")
    store.write_trades(batch([("A", T0 + 2, 10, 5, 1)]), "other")
    for p in store.parts():
        p.write_bytes(b"spoilt")  # a read of any of them would fail
    assert store.write_trades(batch([("A", T0 + 3, 3, 5, 1)]), "s").written == 1  # ids 3..3


def test_trades_are_sorted_within_a_part_and_no_temporary_file_stays(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write_trades(
        batch([("A", T0 + 9, 2, 5, 1), ("A", T0 + 1, 3, 6, 1), ("A", T0 + 1, 1, 7, 1)]), "s"
    )
    (part,) = store.parts()
    assert pl.read_parquet(part)["trade_id"].to_list() == [1, 3, 2]
    assert [p.name for p in part.parent.iterdir()] == [part.name]


@pytest.mark.parametrize(
    "change, words",
    [
        ({"trade_id": -1}, "negative id"),
        ({"qty": 0}, "qty"),
        ({"side": 3}, "side"),
        ({"price_scale": 19}, "scales"),
        ({"symbol": "A B"}, "symbol"),
    ],
)
def test_bad_trades_are_refused(tmp_path: Path, change: dict[str, object], words: str) -> None:
    frame = batch([("A", T0, 1, 5, 1)]).with_columns(**{k: pl.lit(v) for k, v in change.items()})
    with pytest.raises(StoreError, match=words):
        HistoryStore(tmp_path).write_trades(frame, "s")
    assert not HistoryStore(tmp_path).parts()


def test_a_symbol_keeps_its_scales(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    store.write_trades(batch([("A", T0, 1, 5, 1)], (2, 0)), "s")
    with pytest.raises(StoreError, match="stored at price scale 2"):
        HistoryStore(tmp_path).write_trades(batch([("A", T0 + DAY, 2, 5, 1)], (4, 0)), "s")
    with pytest.raises(StoreError, match="source"):
        store.write_trades(batch([("A", T0, 1, 5, 1)]), "Bad-Source")


def test_the_writer_buffers_at_most_max_rows(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    ins = Instrument(symbol="A", price_scale=2)
    writer = TradeWriter(store, "mercato", max_rows=4)
    for i in range(10):
        writer.add(MdTrade("A", T0 + i, i + 1, 100 + i, 1, SELL), ins)
        assert len(writer) < 4
        assert store.scan_trades("A").collect().height == (i + 1) // 4 * 4  # flushed batches
    writer.flush()
    assert writer.written == 10 and len(writer) == 0
    assert len(store.parts()) == 3
    got = store.scan_trades("A").collect().sort("ts")
    assert got["price"].to_list() == list(range(100, 110))
    assert set(got["side"].to_list()) == {SELL}
