"""PersisterService: a replica that follows the node's journal into SQLite.

An ``EngineNode`` (the plain ``Engine``) journals a seeded load in a temp directory; the
service catches up while the node holds the journal open, more commands follow, it
catches up again, and a new instance ("restart") writes nothing twice. At every step the
store must equal a reference store fed the node's own events directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from mercato.adapters.sql import SqlPersister
from mercato.adapters.sql.schema import TABLES, metadata, orders, trades
from mercato.domain.commands import Command
from mercato.domain.events import Event, OrderAccepted, Trade
from mercato.services.engine_node import EngineNode
from mercato.services.oms import OrderHistory
from mercato.services.persister import PersisterService, touched_orders, view_row

from .test_engine_node import batches, load

CMDS = load(11, 600)


def dump(url: str, skip: tuple[str, ...] = ("replica_state",)) -> dict[str, list[Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            out = {}
            for name in TABLES:
                if name in skip:
                    continue
                table = metadata.tables[name]
                q = select(table).order_by(*table.primary_key.columns)
                out[name] = [tuple(r) for r in conn.execute(q)]
            return out
    finally:
        engine.dispose()


class Node:
    """The node, and every event it answered with, in order."""

    def __init__(self, data: Path) -> None:
        self.node = EngineNode.open(data, fsync=False, snapshot_every=0)
        self.events: list[Event] = []
        self.counts: dict[int, int] = {0: 0}  # journal seq -> events emitted up to it
        self.done = 0

    def submit(self, cmds: list[Command]) -> None:
        start = self.done
        for batch in batches(cmds, start):
            shifted = [(s, n + start, c) for s, n, c in batch]
            for r in self.node.submit(shifted):
                assert r.seq and not r.error
                self.events.extend(r.events)
                self.counts[r.seq] = len(self.events)
        self.done += len(cmds)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node(tmp_path / "data")
    yield n
    n.node.close()


def reference(tmp_path: Path, events: list[Event]) -> dict[str, list[Any]]:
    url = f"sqlite:///{tmp_path / 'reference.db'}"
    (tmp_path / "reference.db").unlink(missing_ok=True)
    p = SqlPersister(url)
    views = OrderHistory(max_closed=1 << 30)  # one projection of every event, no eviction
    views.apply(events)
    rows = [view_row(v) for oid in touched_orders(events) if (v := views.order(oid))]
    try:
        p.write(events, views=rows)
    finally:
        p.close()
    return dump(url)


def test_catches_up_resumes_and_never_writes_twice(tmp_path: Path, node: Node) -> None:
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    data = tmp_path / "data"
    node.submit(CMDS[:250])
    store = SqlPersister(url)
    svc = PersisterService(data, store, batch_events=40)
    assert svc.run_once() == len(node.events)
    assert (svc.applied_seq, svc.lag()) == (250, 0)
    assert store.last_seq() == node.events[-1].seq
    assert store.journal_seq() == 250
    assert svc.run_once() == 0  # nothing new

    node.submit(CMDS[250:400])
    node.node.snapshot()  # at journal seq 400
    node.submit(CMDS[400:450])
    assert svc.run_once() == len(node.events) - node.counts[250]
    assert svc.applied_seq == 450
    assert dump(url) == reference(tmp_path, node.events)

    with store.engine.connect() as conn:
        rows = {r.order_id: r for r in conn.execute(select(orders))}
        db_trades = [tuple(r) for r in conn.execute(select(trades).order_by(trades.c.seq))]
    accepted = {e.order_id for e in node.events if isinstance(e, OrderAccepted)}
    assert set(rows) == accepted
    for oid, o in node.node.engine.orders.items():  # the live orders, as the engine has them
        r = rows[oid]
        assert (r.price, r.stop_price, r.qty, r.filled, r.status) == (
            o.price,
            o.stop_price,
            o.qty,
            o.filled,
            o.status,
        )
    want = [e for e in node.events if isinstance(e, Trade)]
    assert [t[0] for t in db_trades] == [t.seq for t in want] and len(want) > 50
    store.close()

    # A restart: a new store handle and service start from the snapshot (seq 400 <= 450)
    # and replay its tail; nothing is written twice.
    store2 = SqlPersister(url)
    svc2 = PersisterService(data, store2, batch_events=40)
    assert svc2.run_once() == 0
    assert (svc2.start_seq, svc2.applied_seq) == (400, 450)
    node.submit(CMDS[450:])
    assert svc2.run_once() == len(node.events) - node.counts[450]
    assert store2.last_seq() == node.events[-1].seq
    assert dump(url) == reference(tmp_path, node.events)
    store2.close()


def test_split_commands_and_a_store_behind_the_snapshot(tmp_path: Path, node: Node) -> None:
    """batch_events=3: a transaction per command or two (a command's events are never
    split); a store that is behind the node's newest snapshot restarts from an empty core
    instead. The stored order views equal one projection fed every event."""
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    data = tmp_path / "data"
    node.submit(CMDS[:120])
    store = SqlPersister(url)
    svc = PersisterService(data, store, batch_events=3, keep_views=2)  # views come back
    assert svc.run_once() == len(node.events)
    node.submit(CMDS[120:300])
    node.node.snapshot()  # at 300, ahead of the store (120)
    node.submit(CMDS[300:320])
    svc2 = PersisterService(data, store, batch_events=3, keep_views=0)  # from the store
    n = svc2.run_once()
    assert svc2.start_seq == 0 and svc2.applied_seq == 320
    assert n == len(node.events) - node.counts[120]
    assert dump(url) == reference(tmp_path, node.events)
    store.close()


def test_run_follows_the_node_and_stops_cleanly(tmp_path: Path, node: Node) -> None:
    url = f"sqlite:///{tmp_path / 'replica.db'}"
    store = SqlPersister(url)
    svc = PersisterService(tmp_path / "data", store, batch_events=100)

    async def main() -> None:
        task = asyncio.create_task(svc.run(poll_interval=0.01))
        for lo in range(0, 300, 100):
            node.submit(CMDS[lo : lo + 100])
            for _ in range(500):  # bounded wait for the poll to catch up
                if svc.applied_seq == node.done:
                    break
                await asyncio.sleep(0.01)
            assert svc.applied_seq == node.done and svc.lag() == 0
        svc.stop()
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert store.last_seq() == node.events[-1].seq
    assert dump(url) == reference(tmp_path, node.events)
    store.close()
