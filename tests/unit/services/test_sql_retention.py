"""SQL-store retention (``adapters/sql/retention.py``): the demo's traders trade through a
journaled core, the persister follows the journal into SQLite with a retention of a few
seconds of core time, and the store must then hold exactly the reference store's recent
history and live orders, balances that still add up, and a file that stops growing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select

from mercato.adapters.sql import SqlPersister
from mercato.adapters.sql.persister import SECOND
from mercato.adapters.sql.retention import SqlRetention, balances
from mercato.adapters.sql.schema import (
    fills,
    ledger_postings,
    order_events,
    order_views,
    orders,
    risk_events,
    seq_clock,
    trades,
)
from mercato.domain.events import Event
from mercato.domain.orders import FINAL, OrderStatus
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode
from mercato.services.oms_views import Group, OrderView, encode_view
from mercato.services.persister import PersisterService
from mercato.sim.market import NS, Simulator

START = 1_800_000_000 * NS  # the core's clock: the simulator's, never this process's


class Market:
    """The demo's traders through a journaled ``Core`` (``EngineNode``), every event kept."""

    def __init__(self, data: Path, rate: int = 150, symbols: tuple[str, ...] = ("AAPL",)):
        self.node = EngineNode.open(data, machine="core", fsync=False, snapshot_every=0)
        self.sim = Simulator(symbols, 7, rate=rate, start_ns=START)
        self.events: list[Event] = []
        self.n = 0
        self._submit(self.sim.setup())

    def _submit(self, cmds: list[Any]) -> None:
        for i in range(0, len(cmds), 200):
            chunk = cmds[i : i + 200]
            batch = [("sim", self.n + k, c) for k, c in enumerate(chunk, 1)]
            self.n += len(chunk)
            for r in self.node.submit(batch):
                assert not r.error
                self.events.extend(r.events)
                self.sim.on_events(r.events)

    def advance(self, seconds: float) -> None:
        """``seconds`` of simulated (core) time."""
        end = self.sim.elapsed_ns + int(seconds * NS)
        while self.sim.elapsed_ns < end:
            self._submit(self.sim.next_batch())

    @property
    def core(self) -> Core:
        core = self.node.engine
        assert isinstance(core, Core)
        return core


@pytest.fixture
def market(tmp_path: Path) -> Iterator[Market]:
    m = Market(tmp_path / "data")
    yield m
    m.node.close()


def follower(tmp_path: Path, name: str, keep_s: int | None) -> PersisterService:
    store = SqlPersister(f"sqlite:///{tmp_path / name}")
    keep = None if keep_s is None else SqlRetention(store.engine, keep_s * SECOND, batch_rows=97)
    return PersisterService(
        tmp_path / "data",
        store,
        make_core=Core,
        restore_core=Core.restore,
        retention=keep,
        prune_every=0,
        prune_batches=1_000_000,
    )


def rows(engine: Engine, table: Any, *where: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        q = select(table).where(*where).order_by(*table.primary_key.columns)
        return [tuple(r) for r in conn.execute(q)]


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_prunes_old_finished_history_and_keeps_the_rest(tmp_path: Path, market: Market) -> None:
    market.advance(20)
    kept, ref = follower(tmp_path, "kept.db", 8), follower(tmp_path, "ref.db", None)
    kept.run_once()
    ref.run_once()
    db, full = kept.store.engine, ref.store.engine
    pruned = kept.pruned
    h = pruned.horizon
    assert pruned.done and h > 0
    assert {"order_views", "order_events", "fills", "trades", "ledger_postings"} <= set(pruned.rows)

    # the horizon is in core time: every event at or before it is older than 8 s before
    # the newest second; every event 10 s older than the newest is at or before it
    newest = max(e.ts for e in market.events)
    assert all(e.ts < newest - 7 * NS for e in market.events if e.seq <= h)
    assert all(e.seq <= h for e in market.events if e.ts < newest - 10 * NS)

    # the recent part of every table is the reference's, row for row
    for table, key in (
        (trades, trades.c.seq),
        (risk_events, risk_events.c.seq),
        (order_events, order_events.c.seq),
        (fills, fills.c.trade_seq),
        (ledger_postings, ledger_postings.c.seq),
        (order_views, order_views.c.updated_seq),
    ):
        assert rows(db, table, key > h) == rows(full, table, key > h), table.name
        assert count(db, table) < count(full, table), table.name
    # nothing old is left but what live orders need
    v = order_views.c
    old = rows(db, order_views, v.updated_seq <= h)
    assert all(r[3] not in FINAL for r in old)  # (status)
    live = {*market.core.engine.orders, *market.core.paper.orders}
    assert live and {r[0] for r in old} <= live
    # a live order keeps its row, its view, every event and every fill, however old
    ids = sorted(live)
    for table, col in (
        (orders, orders.c.order_id),
        (order_views, v.order_id),
        (order_events, order_events.c.order_id),
        (fills, fills.c.order_id),
    ):
        assert rows(db, table, col.in_(ids)) == rows(full, table, col.in_(ids)), table.name
    assert (
        rows(db, orders, orders.c.status.in_([int(s) for s in FINAL]), orders.c.updated_seq <= h)
        == []
    )

    # balances still add up: compacted part + remaining entries == the core's ledger
    assert balances(db) == balances(full)
    assert {k: n for k, n in balances(db).items() if n} == dict(market.core.ledger.items())
    per_asset: dict[str, int] = {}
    for (_, asset), n in balances(db).items():
        per_asset[asset] = per_asset.get(asset, 0) + n
    assert set(per_asset.values()) == {0}

    # the clock keeps the horizon's second and later only
    with db.connect() as conn:
        seconds = [r[0] for r in conn.execute(select(seq_clock.c.second))]
    assert len(seconds) <= 12

    # pruning again deletes nothing more; more trading moves the horizon on
    assert kept.retention is not None
    assert kept.retention.prune().total == 0
    market.advance(5)
    kept.run_once()
    assert kept.pruned.horizon > h and kept.pruned.total > 0
    kept.store.close()
    ref.store.close()


def test_keep_everything_without_a_retention(tmp_path: Path, market: Market) -> None:
    market.advance(5)
    svc = follower(tmp_path, "all.db", None)
    svc.run_once()
    assert svc.pruned.total == 0
    n_trades = sum(1 for e in market.events if type(e).__name__ == "Trade")
    assert n_trades > 0 and count(svc.store.engine, trades) == n_trades
    svc.store.close()


def _view(oid: int, status: OrderStatus, seq: int, group: Group | None) -> dict[str, Any]:
    v = OrderView(oid, 1, "AAPL", status, seq, 0, seq, 0, group=group)
    return {
        "order_id": oid,
        "account": 1,
        "symbol": "AAPL",
        "status": int(status),
        "client_order_id": "",
        "created_seq": seq,
        "updated_seq": seq,
        "view": encode_view(v),
    }


def test_a_finished_order_linked_to_a_live_one_is_kept(tmp_path: Path) -> None:
    store = SqlPersister(f"sqlite:///{tmp_path / 's.db'}")
    db = store.engine
    g = Group("bracket", (1, 2, 3))
    with db.begin() as conn:
        conn.execute(
            insert(order_views),
            [
                _view(1, OrderStatus.FILLED, 10, g),  # the entry, filled long ago
                _view(2, OrderStatus.ACCEPTED, 11, g),  # its take-profit, live
                _view(3, OrderStatus.CANCELLED, 11, g),  # its stop-loss, done
                _view(4, OrderStatus.FILLED, 12, None),  # unlinked, done
                _view(5, OrderStatus.CANCELLED, 13, Group("oco", (5, 99))),  # 99: gone
            ],
        )
        conn.execute(insert(seq_clock), [{"second": 100, "seq": 20}, {"second": 500, "seq": 30}])
    keep = SqlRetention(db, 60 * SECOND, batch_rows=2)
    assert keep.horizon() == 20
    assert keep.prune().rows == {"order_views": 2}
    assert [r[0] for r in rows(db, order_views)] == [1, 2, 3]
    with db.begin() as conn:  # the take-profit is cancelled: the whole bracket may go
        conn.execute(order_views.update().where(order_views.c.order_id == 2).values(status=4))
    assert keep.prune().rows == {"order_views": 3}
    assert rows(db, order_views) == []
    store.close()


def test_sqlite_reuses_the_pages_it_freed(tmp_path: Path) -> None:
    """SQLite's default (no auto_vacuum) keeps freed pages on its free list and reuses
    them: insert, delete, insert again, and the file grows by little."""
    path = tmp_path / "pages.db"
    store = SqlPersister(f"sqlite:///{path}")

    def fill(first: int) -> None:
        with store.engine.begin() as conn:
            conn.execute(
                insert(trades),
                [
                    dict(
                        seq=s,
                        ts=s,
                        symbol="AAPL",
                        price=s,
                        qty=1,
                        taker_order_id=s,
                        maker_order_id=s,
                        taker_account=1,
                        maker_account=2,
                        taker_side=1,
                    )
                    for s in range(first, first + 20_000)
                ],
            )

    fill(1)
    size = os.path.getsize(path)
    with store.engine.begin() as conn:
        conn.execute(insert(seq_clock), [{"second": 1, "seq": 10**9}, {"second": 9, "seq": 10**9}])
    assert SqlRetention(store.engine, 0, batch_rows=5_000).prune().rows["trades"] == 20_000
    fill(100_000)
    assert os.path.getsize(path) <= size * 1.1
    store.close()


def test_a_demo_like_load_keeps_the_store_bounded(tmp_path: Path, market: Market) -> None:
    """Five rounds of 4 s each with a retention of 3 s: the file stops growing after the
    first two while the reference (no retention) keeps growing."""
    kept, ref = follower(tmp_path, "kept.db", 3), follower(tmp_path, "ref.db", None)
    sizes, ref_sizes = [], []
    for _ in range(5):
        market.advance(4)
        for svc, out, name in ((kept, sizes, "kept.db"), (ref, ref_sizes, "ref.db")):
            svc.run_once()
            out.append(os.path.getsize(tmp_path / name))
    assert ref_sizes[-1] > 2 * ref_sizes[1]
    assert max(sizes[2:]) <= sizes[1] * 1.15, sizes
    kept.store.close()
    ref.store.close()


def test_small_rounds_resume_where_they_stopped(tmp_path: Path, market: Market) -> None:
    """Rounds of one batch each reach every table and end as one unbounded round does, in
    about as many batches (a round that started over at the first table would spend its
    budget there and leave the trades and the ledger waiting)."""
    market.advance(12)
    small, whole = follower(tmp_path, "small.db", 4), follower(tmp_path, "whole.db", 4)
    small.prune_batches = 1
    small.run_once()
    rounds, deleted = 1, small.pruned.total
    while not small.pruned.done:
        small.run_once()
        rounds += 1
        deleted += small.pruned.total
    whole.run_once()
    assert deleted == whole.pruned.total > 0
    assert rounds <= whole.pruned.total // 97 + 12  # (97 rows a batch, a few short ones)
    for table in (order_views, order_events, fills, trades, risk_events, ledger_postings):
        assert rows(small.store.engine, table) == rows(whole.store.engine, table), table.name
    small.store.close()
    whole.store.close()
