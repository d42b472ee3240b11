"""Mercato's own trades into the historical store (``analytics/store.py``), off the order
path: ``HistoryExporter`` follows the SQL store's trade tape (which the persister wrote,
durably, from the journal) and appends what is new to the Parquet partitions in batches,
as source ``mercato`` with the event seq as the trade id.

It keeps no state of its own: where to go on is the highest trade id of source ``mercato``
already in the store (read from the part names), so a restart (or a crash between a part
and the next) carries on without losing or doubling a trade, and the store's idempotence
(``(source, trade_id)``) covers a part written twice. A trade whose instrument the core
no longer knows is skipped (its scales are unknown).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

import polars as pl

from mercato.adapters.sql.history import SqlHistory
from mercato.analytics.store import HistoryStore

_log = logging.getLogger(__name__)

SOURCE: Final = "mercato"
BATCH: Final = 50_000  # trades a round reads and writes at most


class HistoryExporter:
    def __init__(
        self,
        sql: SqlHistory,
        store: HistoryStore,
        scales: Callable[[str], tuple[int, int] | None],
        batch: int = BATCH,
    ) -> None:
        self.sql = sql
        self.store = store
        self.scales = scales  # symbol -> (price scale, qty scale), None: unknown
        self.batch = batch
        self.exported = store.last_trade_id(SOURCE)
        self._stop = threading.Event()

    def run_once(self) -> int:
        """Export what the SQL store has beyond what the Parquet store has; how many."""
        total = 0
        while True:
            rows = self.sql.trades_after(self.exported, self.batch)
            if not rows:
                return total
            kept = []
            for seq, ts, symbol, price, qty, side in rows:
                sc = self.scales(symbol)
                if sc is not None:
                    kept.append((symbol, ts, seq, price, qty, side, sc[0], sc[1]))
            if kept:
                cols = list(zip(*kept, strict=True))
                frame = pl.DataFrame(
                    {
                        "symbol": pl.Series(cols[0], dtype=pl.String),
                        "ts": pl.Series(cols[1], dtype=pl.Int64),
                        "trade_id": pl.Series(cols[2], dtype=pl.Int64),
                        "price": pl.Series(cols[3], dtype=pl.Int64),
                        "qty": pl.Series(cols[4], dtype=pl.Int64),
                        "side": pl.Series(cols[5], dtype=pl.Int8),
                        "price_scale": pl.Series(cols[6], dtype=pl.Int8),
                        "qty_scale": pl.Series(cols[7], dtype=pl.Int8),
                    }
                )
                self.store.write_trades(frame, SOURCE)
            self.exported = rows[-1][0]
            total += len(kept)
            if len(rows) < self.batch:
                return total

    def run(self, every: float = 5.0) -> None:
        """Export every ``every`` seconds until ``stop`` (a thread's target)."""
        while not self._stop.wait(every):
            try:
                self.run_once()
            except Exception:
                _log.exception("history export failed; retrying at the next round")
        try:
            self.run_once()  # what came before the stop
        except Exception:
            _log.exception("history export failed at the stop")

    def stop(self) -> None:
        self._stop.set()
