"""The market simulator: reproducible from its seed, and a market worth watching."""

from __future__ import annotations

import ast
import inspect
import itertools
from collections import Counter

import msgspec
import pytest

import mercato.sim.agents
import mercato.sim.market
from mercato.domain import (
    CancelOrder,
    Command,
    NewOrder,
    OrderTriggered,
    OrderType,
    Rejected,
    ReplaceOrder,
    TimeInForce,
    Trade,
)
from mercato.engine import Engine, state_hash
from mercato.sim import Simulator
from mercato.sim.agents import MarketMaker

SYMBOLS = ("AAPL", "MSFT", "GOOG")


def drive(seed: int, batches: int, rate: int = 1000, symbols=SYMBOLS):
    """Run a simulator against an engine; return (commands, engine, simulator, events)."""
    sim = Simulator(symbols, seed, rate=rate)
    engine = Engine()
    commands: list[Command] = []
    events = []
    for i in range(batches + 1):
        batch = sim.next_batch() if i else sim.setup()
        out = [ev for cmd in batch for ev in engine.process(cmd)]
        commands.extend(batch)
        events.extend(out)
        sim.on_events(out)
    return commands, engine, sim, events


def encode(commands: list[Command]) -> bytes:
    return msgspec.msgpack.encode(commands)


def test_same_seed_same_commands() -> None:
    a, engine_a, _, _ = drive(seed=42, batches=300)
    b, engine_b, _, _ = drive(seed=42, batches=300)
    assert len(a) == 3 + 3000  # the instruments, then exactly rate x time
    assert encode(a) == encode(b)
    assert state_hash(engine_a) == state_hash(engine_b)


def test_different_seed_different_commands() -> None:
    a, engine_a, _, _ = drive(seed=1, batches=100)
    b, engine_b, _, _ = drive(seed=2, batches=100)
    assert encode(a) != encode(b)
    assert state_hash(engine_a) != state_hash(engine_b)


def test_time_is_virtual_and_steady() -> None:
    commands, _, sim, _ = drive(seed=5, batches=50, rate=400)
    orders = commands[len(SYMBOLS) :]
    assert len(orders) == 200  # 50 slices of 10 ms at 400/s
    assert [c.ts - sim.start_ns for c in orders[:3]] == [0, 2_500_000, 5_000_000]
    assert all(a.ts < b.ts for a, b in itertools.pairwise(orders))
    assert sim.elapsed_ns == 500_000_000


def test_the_stream_has_every_kind_of_order_and_it_trades() -> None:
    commands, _, _, events = drive(seed=7, batches=1000)
    kinds = Counter()
    for c in commands:
        if isinstance(c, NewOrder):
            kinds[(OrderType(c.type).name, TimeInForce(c.tif).name)] += 1
        else:
            kinds[type(c).__name__] += 1
    for kind in [
        ("LIMIT", "GTC"),
        ("LIMIT", "IOC"),
        ("LIMIT", "FOK"),
        ("MARKET", "IOC"),
        ("STOP", "GTC"),
        ("STOP_LIMIT", "GTC"),
        "ReplaceOrder",
        "CancelOrder",
    ]:
        assert kinds[kind] > 0, kind
    assert kinds["ReplaceOrder"] > kinds["CancelOrder"]  # makers re-quote with replaces
    trades = [e for e in events if isinstance(e, Trade)]
    assert len(trades) > 1000
    assert {t.symbol for t in trades} == set(SYMBOLS)
    assert any(isinstance(e, OrderTriggered) for e in events)
    # each trader has its own account; no trade is between an account and itself
    assert all(t.taker_account != t.maker_account for t in trades)
    rejects = [e for e in events if isinstance(e, Rejected)]
    # the only refusals are races inside a batch: a cancel or replace of an order that an
    # earlier command of the same batch filled, or a trailing stop that just triggered
    assert {r.reason for r in rejects} <= {"unknown_order", "invalid_stop_price"}
    assert len(rejects) < 0.1 * len(commands)


def test_market_makers_keep_two_sided_books() -> None:
    sim = Simulator(SYMBOLS, 11, rate=1000)
    engine = Engine()
    sim.on_events([e for c in sim.setup() for e in engine.process(c)])
    checks = two_sided = 0
    for i in range(2000):
        sim.on_events([e for c in sim.next_batch() for e in engine.process(c)])
        if i < 20:
            continue  # the makers are still putting their first quotes up
        for s in SYMBOLS:
            book = engine.book(s)
            checks += 1
            two_sided += bool(book.bids.keys) and bool(book.asks.keys)
    assert two_sided / checks > 0.99
    for s in SYMBOLS:  # and at the end, with a spread of a few ticks around fair value
        book = engine.book(s)
        bid, ask = book.bids.best_price(), book.asks.best_price()
        assert 0 < bid < ask <= bid + 20
        assert abs((bid + ask) / 2 - sim.fair[s]) < 20
    slots = sum(len(m.slots) for m in sim.makers if isinstance(m, MarketMaker))
    up = sum(len(m.quote) for m in sim.makers if isinstance(m, MarketMaker))
    assert up > 0.6 * slots  # quotes are hit all the time, and put back at the next turn


def test_agents_know_their_orders() -> None:
    """What each agent believes is live is live in the engine, with its price."""
    _, engine, sim, _ = drive(seed=3, batches=500)
    for agent in sim.agents:
        for oid, mine in agent.orders.items():
            o = engine.order(oid)
            assert o is not None, (agent.kind, oid)
            assert o.account == agent.account and o.price == mine.price
            assert o.remaining == mine.remaining
    live_by_agent = sum(len(a.orders) for a in sim.agents)
    assert live_by_agent == len(engine.orders)


def test_positions_net_to_zero() -> None:
    _, _, sim, _ = drive(seed=9, batches=500)
    for s in SYMBOLS:
        assert sum(a.position[s] for a in sim.agents) == 0


@pytest.mark.parametrize("module", [mercato.sim.market, mercato.sim.agents])
def test_decision_logic_reads_no_clock_and_no_global_randomness(module) -> None:
    tree = ast.parse(inspect.getsource(module))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
            if node.module == "random":
                assert [a.name for a in node.names] == ["Random"]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "random"
        ):
            assert node.attr == "Random", f"random.{node.attr}"
    assert not imported & {"time", "datetime", "os", "secrets", "uuid"}


def test_commands_are_valid_on_their_face() -> None:
    commands, _, _, _ = drive(seed=13, batches=300)
    for c in commands:
        if isinstance(c, NewOrder):
            assert c.qty > 0
            if c.type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
                assert c.price > 0
            else:
                assert c.price == 0
        elif isinstance(c, ReplaceOrder):
            assert c.qty > 0
        elif isinstance(c, CancelOrder):
            assert c.order_id > 0
