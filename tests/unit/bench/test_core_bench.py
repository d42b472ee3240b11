"""The risk core benchmark is honest: on its workload the core rejects nothing and makes
exactly the trades that matching alone makes, with margin and with cash accounts."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from core import core_setup, fresh, trades_and_rejects
from workload import generate


@pytest.mark.parametrize("kind", ["margin", "cash"])
def test_core_makes_the_engines_trades_and_rejects_nothing(kind: str) -> None:
    w = generate(3_000, books=2, seed=5, target_orders=200)
    engine_trades, engine_rejects = trades_and_rejects(fresh(w, "engine"), w.commands)
    core_trades, core_rejects = trades_and_rejects(fresh(w, kind), w.commands)
    assert len(engine_trades) > 20  # the stream does cross
    assert core_trades == engine_trades
    assert engine_rejects == 0 and core_rejects == 0


def test_setup_funds_every_account_the_workload_names() -> None:
    w = generate(500, seed=2, target_orders=100)
    setup = core_setup(w, "cash")
    created = {c.account for c in setup if type(c).__name__ == "CreateAccount"}
    named = {c.account for c in (*w.setup, *w.commands) if hasattr(c, "account")}
    assert named <= created
    deposits = [c for c in setup if type(c).__name__ == "Deposit"]
    assert len(deposits) == 2 * len(created)  # cash, and the one instrument to sell
