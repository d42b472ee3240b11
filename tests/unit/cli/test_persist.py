"""`mercato persist`: a demo's journal followed into SQLite, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from mercato.adapters.sql.schema import ledger_entries, orders
from mercato.cli import main
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode


def test_persist_once_catches_up_and_writes_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "node"
    assert main(["demo", "--duration", "1", "--fast", "--data-dir", str(data)]) == 0
    assert main(["persist", str(data), "--once"]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert first.startswith("wrote ") and not first.startswith("wrote 0 ")
    assert main(["persist", str(data), "--once"]) == 0
    assert capsys.readouterr().out.startswith("wrote 0 events")
    node = EngineNode.open(data, machine="core", fsync=False)
    core = node.engine
    assert isinstance(core, Core)
    node.close()
    db = create_engine(f"sqlite:///{data / 'store.sqlite'}")
    with db.connect() as conn:
        sums = conn.execute(
            select(
                ledger_entries.c.account, ledger_entries.c.asset, func.sum(ledger_entries.c.amount)
            ).group_by(ledger_entries.c.account, ledger_entries.c.asset)
        ).all()
        n_orders = conn.execute(select(func.count()).select_from(orders)).scalar_one()
    db.dispose()
    assert sorted((a, s, int(v)) for a, s, v in sums if v) == [
        (a, s, v) for (a, s), v in core.ledger.items()
    ]
    assert n_orders > 0


def test_persist_refuses_a_directory_without_a_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["persist", str(tmp_path), "--once"]) == 1
    assert "has no journal" in capsys.readouterr().err


def test_persist_follows_the_directory_the_served_demo_was_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import io

    from mercato.sim.served import ServedConfig, serve_demo

    cfg = ServedConfig(symbols=("AAPL",), rate=200, port=0, data_dir=str(tmp_path), duration=2)
    asyncio.run(serve_demo(cfg, io.StringIO()))
    assert main(["persist", str(tmp_path), "--once"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("wrote ") and not line.startswith("wrote 0 "), line
    db = create_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() > 0
    db.dispose()
