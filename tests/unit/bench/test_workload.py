"""The engine benchmark's workload really is the exchange-core mix it claims to be."""

import sys
from collections import Counter
from pathlib import Path

from mercato.domain import CancelOrder, NewOrder, ReplaceOrder, TimeInForce
from mercato.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "benchmarks"))

from workload import generate


def test_mix_book_size_and_levels() -> None:
    w = generate(20_000, books=1, seed=3)
    kinds = Counter(
        "replace"
        if isinstance(c, ReplaceOrder)
        else "cancel"
        if isinstance(c, CancelOrder)
        else "ioc"
        if isinstance(c, NewOrder) and c.tif == TimeInForce.IOC
        else "gtc"
        for c in w.commands
    )
    n = len(w.commands)
    assert abs(kinds["replace"] / n - 0.82) < 0.02
    assert abs(kinds["gtc"] / n - 0.09) < 0.02
    assert abs(kinds["ioc"] / n - 0.03) < 0.01
    assert abs(kinds["cancel"] / n - 0.06) < 0.02

    engine = Engine()
    for c in w.setup:
        engine.process(c)
    rejected = 0
    for c in w.commands:
        rejected += sum(1 for e in engine.process(c) if type(e).__name__ == "Rejected")
    book = engine.book("S000")
    levels = len(book.bids.levels) + len(book.asks.levels)
    assert 900 <= len(engine.orders) <= 1100
    assert 650 <= levels <= 850
    assert rejected == 0  # every replace and cancel names a live order


def test_same_seed_same_commands() -> None:
    assert generate(500, seed=9).commands == generate(500, seed=9).commands
