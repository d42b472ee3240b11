"""A simulated trading day, over and over: continuous trading, the closing auction and its
uncross at the close, DAY orders expiring at the end of day, nothing while closed, a
pre-open and an opening auction uncrossing at the next day's open; deterministic by seed,
replayable, and through ``mercato demo --day``."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from mercato.cli import main
from mercato.domain import (
    Command,
    EndOfDay,
    NewOrder,
    OrderExpired,
    Rejected,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import TimeInForce, TradingStatus
from mercato.engine.core import Core
from mercato.sim import DemoConfig, Simulator
from mercato.sim.day import SimDay, parse_day

from .test_demo import demo

NS = 1_000_000_000
DAY = SimDay(session_s=20, closing_s=3, closed_s=2, pre_open_s=3, opening_s=2)  # 30 s
OPEN, CLOSING, CLOSED = TradingStatus.OPEN, TradingStatus.CLOSING_AUCTION, TradingStatus.CLOSED
PRE_OPEN, OPENING = TradingStatus.PRE_OPEN, TradingStatus.OPENING_AUCTION


def test_the_phases_of_a_day() -> None:
    at = [DAY.phase_at(s * NS) for s in (0, 19, 20, 22, 23, 24, 25, 27, 28, 29, 30, 61)]
    assert at == [
        (OPEN, 0),
        (OPEN, 0),
        (CLOSING, 0),
        (CLOSING, 0),
        (CLOSED, 0),
        (CLOSED, 0),
        (PRE_OPEN, 0),
        (PRE_OPEN, 0),
        (OPENING, 0),
        (OPENING, 0),
        (OPEN, 1),
        (OPEN, 2),
    ]
    assert parse_day("20,3,2,3,2") == DAY and parse_day("300") == SimDay()
    for bad in ("x", "0", "20,3,0", "1,2,3,4,5,6", "20,-1"):
        with pytest.raises(ValueError):
            parse_day(bad)


def run(seed: int, days: float) -> tuple[list[Command], Core, Counter[str]]:
    sim = Simulator(("AAA", "BBB"), seed, rate=400, day=DAY)
    core = Core()
    cmds: list[Command] = []
    seen: Counter[str] = Counter()
    for c in sim.setup():
        sim.on_events(core.process(c))
    for _ in range(int(days * DAY.length_ns // sim.slice_ns)):
        for c in sim.next_batch():
            cmds.append(c)
            events = core.process(c)
            sim.on_events(events)
            trades = sum(isinstance(e, Trade) for e in events)
            if isinstance(c, SetTradingStatus):
                seen[f"{TradingStatus(c.status).name} trades"] += trades
                seen[f"{TradingStatus(c.status).name}"] += 1
            elif isinstance(c, EndOfDay):
                seen["eod"] += 1
                seen["expired at eod"] += sum(isinstance(e, OrderExpired) for e in events)
            elif isinstance(c, NewOrder):
                seen[f"tif {TimeInForce(c.tif).name}"] += 1
            for e in events:
                if isinstance(e, Rejected):
                    seen[f"rejected {e.reason}"] += 1
    return cmds, core, seen


def test_two_days_with_auctions_expiries_and_the_next_open() -> None:
    cmds, core, seen = run(7, 2.5)
    # both symbols: open (the first batch), 2 x (closing auction, close, pre-open, opening)
    assert (seen["OPEN"], seen["CLOSING_AUCTION"], seen["CLOSED"]) == (6, 4, 4)
    assert (seen["PRE_OPEN"], seen["OPENING_AUCTION"], seen["eod"]) == (4, 4, 2)
    assert seen["OPEN trades"] > 0  # the opening uncross (entering OPEN) executed
    assert seen["CLOSED trades"] > 0  # and the closing one, at the close
    assert seen["expired at eod"] > 0  # DAY orders left at the close expired
    assert seen["tif OPG"] > 0 and seen["tif CLS"] > 0 and seen["tif DAY"] > 0
    # what an auction refuses (IOC, FOK, post-only) is never sent while one collects
    assert not [k for k in seen if k.startswith("rejected") and "unknown_order" not in k], seen
    # nothing is sent while the market is closed
    closed = [False]
    for c in cmds:
        if isinstance(c, SetTradingStatus):
            closed[0] = c.status == CLOSED
        elif closed[0]:
            assert isinstance(c, EndOfDay), c
    # the day ends open: continuous trading again, no DAY order older than the last close
    assert {b.status for b in core.engine.books.values()} == {int(OPEN)}


def test_the_same_seed_gives_the_same_day_and_it_replays() -> None:
    a_cmds, a_core, _ = run(11, 1.2)
    b_cmds, b_core, _ = run(11, 1.2)
    assert a_cmds == b_cmds and a_core.state_hash() == b_core.state_hash()
    replay = Core()
    for c in Simulator(("AAA", "BBB"), 11, rate=400, day=DAY).setup():
        replay.process(c)
    for c in a_cmds:
        replay.process(c)
    assert replay.state_hash() == a_core.state_hash()
    c_cmds, _, _ = run(12, 1.2)
    assert c_cmds != a_cmds


def test_the_console_demo_runs_trading_days(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "demo",
            "--fast",
            "--duration",
            "35",
            "--rate",
            "200",
            "--symbols",
            "AAPL",
            "--day",
            "20,3,2,3,2",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "a trading day every 30 s" in out
    assert re.search(r"^state_hash [0-9a-f]{64}$", out, re.M)


def test_a_journaled_day_resumes_only_with_the_same_day(tmp_path: Path) -> None:
    d = str(tmp_path / "d")
    cfg = DemoConfig(symbols=("AAPL",), seed=3, rate=200, duration=5.0, fast=True, day=DAY)
    direct, _ = demo(cfg)
    journaled, _ = demo(DemoConfig(**{**cfg.__dict__, "data_dir": d}))
    assert journaled.state_hash == direct.state_hash
    from mercato.sim import DemoError

    with pytest.raises(DemoError, match="--day 20,3,2,3,2"):
        demo(DemoConfig(**{**cfg.__dict__, "data_dir": d, "day": None}))
