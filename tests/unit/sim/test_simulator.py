"""The market simulator on the risk core: reproducible from its seed, funded accounts that
pass risk, and a market worth watching."""

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
    AccountKind,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    Liquidation,
    NewOrder,
    OrderCancelled,
    OrderTriggered,
    OrderType,
    Rejected,
    ReplaceOrder,
    RiskLimits,
    RiskReject,
    SetInstrumentRisk,
    SetKillSwitch,
    SetRiskLimits,
    TimeInForce,
    Trade,
    Withdraw,
)
from mercato.engine.core import Core
from mercato.sim import Simulator
from mercato.sim.agents import MarketMaker, MomentumTrader, NoiseTrader
from mercato.sim.market import MARGIN_BPS

SYMBOLS = ("AAPL", "MSFT", "GOOG")


def drive(seed: int, batches: int, rate: int = 1000, symbols=SYMBOLS):
    """Run a simulator against a core; return (commands, core, simulator, events)."""
    sim = Simulator(symbols, seed, rate=rate)
    core = Core()
    commands: list[Command] = []
    events = []
    for i in range(batches + 1):
        batch = sim.next_batch() if i else sim.setup()
        out = run(core, sim, batch)
        commands.extend(batch)
        events.extend(out)
    return commands, core, sim, events


def run(core: Core, sim: Simulator, batch: list[Command]) -> list:
    out = [ev for cmd in batch for ev in core.process(cmd)]
    sim.on_events(out)
    return out


def setup_len(symbols=SYMBOLS) -> int:
    return len(Simulator(symbols, 0).setup())


def assert_agents_agree_with_the_core(core: Core, sim: Simulator) -> None:
    """What each agent believes (live orders, prices, positions) is what the core holds."""
    for agent in sim.agents:
        for oid, mine in agent.orders.items():
            o = core.engine.order(oid)
            assert o is not None, (agent.kind, oid)
            assert o.account == agent.account and o.price == mine.price
            assert o.remaining == mine.remaining
        held = core.accounts[agent.account].positions
        for s in sim.symbols:
            assert agent.position[s] == (held[s].qty if s in held else 0), (agent.kind, s)
    live_by_agent = sum(len(a.orders) for a in sim.agents)
    assert live_by_agent == len(core.engine.orders)


def encode(commands: list[Command]) -> bytes:
    return msgspec.msgpack.encode(commands)


def test_setup_creates_funded_accounts() -> None:
    sim = Simulator(SYMBOLS, 3)
    core = Core()
    setup = sim.setup()
    events = run(core, sim, setup)
    assert not [e for e in events if isinstance(e, Rejected)]
    assert set(core.instruments) == set(SYMBOLS)
    for s in SYMBOLS:
        inst = core.instruments[s]
        assert (inst.im, inst.mm, inst.liq) == MARGIN_BPS and 0 < inst.maker < inst.taker
        assert inst.reference == sim.start_price[s] == round(sim.fair[s])
    kinds = {type(a): core.accounts[a.account].kind for a in sim.agents}
    assert kinds == {
        MarketMaker: AccountKind.MARGIN,
        MomentumTrader: AccountKind.MARGIN,
        NoiseTrader: AccountKind.CASH,
    }
    for a in sim.agents:
        assert core.cash(a.account) == a.cash > 0
        assert core.buying_power(a.account) > 0
        for s in SYMBOLS:  # noise traders start with shares to sell, the others flat
            assert a.position[s] == a.shares == (20_000 if isinstance(a, NoiseTrader) else 0)
            if a.shares:
                pos = core.accounts[a.account].positions[s]
                assert pos.qty == a.shares and pos.cost == a.shares * sim.start_price[s]
    # the stream starts with the instruments, then one account at a time
    assert [type(c) for c in setup[:2]] == [type(setup[0]), SetInstrumentRisk]
    assert sum(isinstance(c, CreateAccount) for c in setup) == len(sim.agents)
    assert sum(isinstance(c, Deposit) for c in setup) == len(sim.agents) + len(sim.noise) * 3


def test_same_seed_same_commands() -> None:
    a, core_a, _, _ = drive(seed=42, batches=300)
    b, core_b, _, _ = drive(seed=42, batches=300)
    assert len(a) == setup_len() + 3000  # the set-up, then exactly rate x time
    assert encode(a) == encode(b)
    assert core_a.state_hash() == core_b.state_hash()


def test_different_seed_different_commands() -> None:
    a, core_a, _, _ = drive(seed=1, batches=100)
    b, core_b, _, _ = drive(seed=2, batches=100)
    assert encode(a) != encode(b)
    assert core_a.state_hash() != core_b.state_hash()


def test_time_is_virtual_and_steady() -> None:
    commands, _, sim, _ = drive(seed=5, batches=50, rate=400)
    orders = commands[setup_len() :]
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
    # earlier command of the same batch filled, or a trailing stop that just triggered;
    # the accounts are funded so that pre-trade risk lets ordinary orders through
    assert {r.reason for r in rejects} <= {"unknown_order", "invalid_stop_price"}
    assert len(rejects) < 0.1 * len(commands)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_few_risk_rejects(seed: int) -> None:
    commands, _, _, events = drive(seed=seed, batches=500, symbols=("AAPL", "MSFT"))
    risk = {str(r) for r in RiskReject}
    refused = [e for e in events if isinstance(e, Rejected) and e.reason in risk]
    assert len(refused) < 0.05 * len(commands)
    assert sum(isinstance(e, Trade) for e in events) > 1000


def test_market_makers_keep_two_sided_books() -> None:
    sim = Simulator(SYMBOLS, 11, rate=1000)
    core = Core()
    engine = core.engine
    run(core, sim, sim.setup())
    checks = two_sided = 0
    for i in range(2000):
        run(core, sim, sim.next_batch())
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


def test_agents_know_their_orders_and_positions() -> None:
    """What each agent believes is live is live in the core, with its price."""
    _, core, sim, _ = drive(seed=3, batches=500)
    assert_agents_agree_with_the_core(core, sim)


def test_positions_add_up_to_the_deposits() -> None:
    _, _, sim, _ = drive(seed=9, batches=500)
    for s in SYMBOLS:
        assert sum(a.position[s] for a in sim.agents) == sum(a.shares for a in sim.agents)


def test_agents_cope_with_a_kill_switch() -> None:
    """The core cancels a killed account's orders and refuses its new ones; the agent
    learns both from the events, and quotes again when the switch is off."""
    sim = Simulator(SYMBOLS, 21)
    core = Core()
    run(core, sim, sim.setup())
    for _ in range(100):
        run(core, sim, sim.next_batch())
    maker = sim.makers[0]
    assert maker.orders
    events = run(core, sim, [SetKillSwitch(ts=sim.now_ns, account=maker.account, on=True)])
    assert {e.reason for e in events if isinstance(e, OrderCancelled)} == {"kill_switch"}
    refused = 0
    for _ in range(50):
        events = run(core, sim, sim.next_batch())
        refused += sum(
            isinstance(e, Rejected) and e.reason == RiskReject.ACCOUNT_KILLED for e in events
        )
        assert_agents_agree_with_the_core(core, sim)
        assert not maker.orders  # every order it sends is refused, and it knows
    assert refused > 0
    run(core, sim, [SetKillSwitch(ts=sim.now_ns, account=maker.account, on=False)])
    for _ in range(50):
        run(core, sim, sim.next_batch())
    assert maker.orders
    assert_agents_agree_with_the_core(core, sim)


def test_agents_cope_with_throttled_orders_and_replaces() -> None:
    """A refused replace leaves the order as it was: the agent puts back what it believed."""
    sim = Simulator(SYMBOLS, 23)
    core = Core()
    run(core, sim, sim.setup())
    maker = sim.makers[0]
    limits = RiskLimits(max_commands_per_s=20)
    run(core, sim, [SetRiskLimits(ts=sim.start_ns, account=maker.account, limits=limits)])
    refused: Counter[str] = Counter()
    for _ in range(300):
        events = run(core, sim, sim.next_batch())
        refused.update(
            e.command for e in events if isinstance(e, Rejected) and e.reason == "throttled"
        )
        assert_agents_agree_with_the_core(core, sim)
    assert refused["n"] > 0 and refused["r"] > 0
    assert maker.orders


def test_agents_cope_with_a_liquidation() -> None:
    """A momentum trader whose margin runs out is liquidated by the core: its orders are
    cancelled and its positions closed by the core's own orders; it learns its new
    positions from the events and trades on."""
    sim = Simulator(SYMBOLS, 22)
    core = Core()
    run(core, sim, sim.setup())
    for _ in range(300):
        run(core, sim, sim.next_batch())
    trader = max(sim.momentum, key=lambda a: sum(map(abs, a.position.values())))
    before = dict(trader.position)
    assert any(before.values())
    acct = trader.account
    # take out every free dollar, then ask for all of the positions' value as margin
    free = min(core.buying_power(acct), core.cash(acct))
    events = run(core, sim, [Withdraw(ts=sim.now_ns, account=acct, asset="USD", amount=free)])
    assert not [e for e in events if isinstance(e, Rejected)]
    tighter = [
        SetInstrumentRisk(
            ts=sim.now_ns,
            symbol=s,
            maker_fee_bps=1,
            taker_fee_bps=3,
            initial_margin_bps=10_000,
            maintenance_margin_bps=10_000,
            liquidation_margin_bps=10_000,
            reference_price=sim.start_price[s],
        )
        for s in SYMBOLS
    ]
    assert trader.orders
    events = run(core, sim, tighter)
    for _ in range(100):  # the next trade in a symbol it holds triggers the margin check
        events += run(core, sim, sim.next_batch())
    cancelled = [e for e in events if isinstance(e, OrderCancelled) and e.reason == "liquidation"]
    assert cancelled and {e.account for e in cancelled} == {acct}
    assert not {e.order_id for e in cancelled} & set(trader.orders)  # it knows they are gone
    liquidations = [e for e in events if isinstance(e, Liquidation)]
    assert liquidations and {e.account for e in liquidations} == {acct}
    assert {e.symbol for e in liquidations} == {s for s, q in before.items() if q}
    assert_agents_agree_with_the_core(core, sim)


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
