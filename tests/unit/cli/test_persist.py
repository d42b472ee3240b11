"""`mercato persist`: a demo's journal followed into SQLite, idempotently."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from mercato.adapters.sql.schema import ledger_entries, orders
from mercato.cli import main
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode


def _core(data: Path) -> Core:
    """The core the journal in ``data`` recovers to."""
    node = EngineNode.open(data, machine="core", fsync=False)
    core = node.engine
    assert isinstance(core, Core)
    node.close()
    return core


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
    core = _core(data)
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


def test_persist_with_a_retention_deletes_old_history_and_keeps_balances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mercato.adapters.sql.retention import balances

    data = tmp_path / "node"
    assert main(["demo", "--duration", "12", "--fast", "--data-dir", str(data)]) == 0
    assert main(["persist", str(data), "--once", "--retention", "4s"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("retention (4 s of core time): deleted ")
    assert not out[-1].startswith("retention (4 s of core time): deleted 0 ")
    assert main(["persist", str(data), "--once", "--retention", "4s"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith("deleted 0 rows")
    core = _core(data)
    db = create_engine(f"sqlite:///{data / 'store.sqlite'}")
    with db.connect() as conn:
        n_orders = conn.execute(select(func.count()).select_from(orders)).scalar_one()
    assert {k: v for k, v in balances(db).items() if v} == dict(core.ledger.items())
    db.dispose()
    assert n_orders > 0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("30m", 1_800), ("1h", 3_600), ("7d", 604_800), ("forever", None)],
)
def test_retention_durations(text: str, seconds: int | None) -> None:
    from mercato.cli import build_parser

    for cmd in (["serve"], ["persist", "x"], ["demo"]):
        assert build_parser().parse_args([*cmd, "--retention", text]).retention == seconds


@pytest.mark.parametrize("text", ["0", "0h", "-1h", "1.5h", "1w", "", "h", "1 h", "forever!"])
def test_bad_retentions_are_refused(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["persist", "x", "--retention", text])
    assert e.value.code == 2
    assert "--retention" in capsys.readouterr().err


def test_only_the_demo_deletes_by_default() -> None:
    from mercato.cli import DEMO_RETENTION, build_parser
    from mercato.sim.served import ServedConfig

    p = build_parser()
    assert p.parse_args(["serve"]).retention is None
    assert p.parse_args(["persist", "x"]).retention is None
    assert p.parse_args(["demo"]).retention == DEMO_RETENTION == ServedConfig().retention == 3_600
