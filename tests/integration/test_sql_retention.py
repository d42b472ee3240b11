"""SQL-store retention against PostgreSQL (``MERCATO_PG_DSN``; skipped without a server
unless ``MERCATO_REQUIRE_SERVICES=1``): a demo's journal (``mercato demo --fast``),
followed by two persisters with the same retention, one into PostgreSQL and one into
SQLite. Retention depends only on what the store holds (the core's time, never a clock),
so both stores must be pruned to the very same rows, and PostgreSQL's balances must still
be the core's ledger."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from mercato.adapters.sql import SqlPersister
from mercato.adapters.sql.persister import SECOND
from mercato.adapters.sql.retention import SqlRetention, balances
from mercato.adapters.sql.schema import TABLES, metadata
from mercato.cli import main
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode
from mercato.services.persister import PersisterService

from .test_sql_persister import _pg_url


@pytest.fixture
def pg_url(require_service: Callable[[str], None]) -> Iterator[str]:
    yield from _pg_url(require_service)


def _follow(data: Path, url: str) -> PersisterService:
    store = SqlPersister(url)
    return PersisterService(
        data,
        store,
        make_core=Core,
        restore_core=Core.restore,
        batch_events=500,
        retention=SqlRetention(store.engine, 4 * SECOND, batch_rows=101),
        prune_every=0,
        prune_batches=20,  # a few batches per round: the rest waits for the next rounds
    )


def _rows(engine: Engine, table: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        q = select(table).order_by(*table.primary_key.columns)
        return [tuple(r) for r in conn.execute(q)]


def test_postgresql_prunes_exactly_as_sqlite(tmp_path: Path, pg_url: str) -> None:
    data = tmp_path / "node"
    assert (
        main(["demo", "--fast", "--duration", "12", "--rate", "300", "--data-dir", str(data)]) == 0
    )
    node = EngineNode.open(data, machine="core", fsync=False)
    core = node.engine
    assert isinstance(core, Core)
    ledger = dict(core.ledger.items())
    node.close()
    pg, lite = _follow(data, pg_url), _follow(data, f"sqlite:///{tmp_path / 'l.db'}")
    try:
        for svc in (pg, lite):
            svc.run_once()
            rounds = 1
            while not svc.pruned.done:
                svc.run_once()
                rounds += 1
            assert rounds > 1  # it took several bounded rounds
        assert pg.pruned.horizon == lite.pruned.horizon > 0
        a, b = pg.store.engine, lite.store.engine
        for name in TABLES:
            table = metadata.tables[name]
            assert _rows(a, table) == _rows(b, table), name
        with a.connect() as conn:
            trades = metadata.tables["trades"]
            oldest = conn.execute(select(func.min(trades.c.seq))).scalar_one()
        assert oldest > pg.pruned.horizon
        assert {k: v for k, v in balances(a).items() if v} == ledger
    finally:
        pg.store.close()
        lite.store.close()
