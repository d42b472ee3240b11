"""After a restart (snapshot + journal replay), the core in memory and the SQL tables agree.

An ``EngineNode`` running the risk core journals a seeded day of trading: cash and margin
accounts, a paper account, deposits and withdrawals, every order type, cancels, replaces,
an OCO pair, market prices and a price spike that liquidates a margin account. Halfway the
node is abandoned without a clean shutdown and recovered from disk, and the persister
replica is restarted too. At the end, balances (summed from the ledger entries),
positions, accounts and open orders in SQL equal the recovered core's, on SQLite and on
the PostgreSQL server.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from mercato.adapters.sql import SqlPersister
from mercato.adapters.sql.schema import accounts, ledger_entries, orders, positions
from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    MarketPrice,
    NewOco,
    NewOrder,
    ReplaceOrder,
    SetInstrumentRisk,
    Withdraw,
)
from mercato.domain.events import Liquidation
from mercato.domain.orders import OrderStatus
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce, Venue
from mercato.engine.core import Core
from mercato.services.engine_node import EngineNode
from mercato.services.persister import PersisterService

from .test_sql_persister import _pg_url

CASH, MARGIN = AccountKind.CASH, AccountKind.MARGIN
LIVE = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.REPLACED)


def day(seed: int, n: int) -> list[Command]:
    """A seeded day: set-up, then ``n`` orders and money movements, then a price spike."""
    rng = random.Random(seed)
    cmds: list[Command] = [
        AddInstrument(symbol="X", tick_size=1, lot_size=1, price_scale=2),
        SetInstrumentRisk(
            symbol="X",
            maker_fee_bps=5,
            taker_fee_bps=15,
            initial_margin_bps=5_000,
            maintenance_margin_bps=3_000,
            liquidation_margin_bps=2_000,
            reference_price=10_000,
        ),
    ]
    for a in range(1, 7):
        kind = AccountKind.MARGIN if a > 4 else AccountKind.CASH
        cmds.append(CreateAccount(account=a, kind=kind))
        cmds.append(Deposit(account=a, asset="USD", amount=5_000_000, ref=a))
        if kind == AccountKind.CASH:
            cmds.append(Deposit(account=a, asset="X", amount=500, cost=5_000_000, ref=a))
    cmds.append(CreateAccount(account=9, venue=Venue.PAPER))
    cmds.append(Deposit(account=9, asset="USD", amount=1_000_000, ref=9))
    oid = 0
    for i in range(n):
        oid += 1
        r = rng.random()
        acct = rng.choice([1, 2, 3, 4, 5, 6, 9])
        side = rng.choice([Side.BUY, Side.SELL])
        px = 10_000 + rng.randint(-40, 40)
        if r < 0.55:
            cmds.append(
                NewOrder(
                    order_id=oid,
                    account=acct,
                    symbol="X",
                    side=side,
                    type=OrderType.LIMIT,
                    qty=rng.randint(1, 30),
                    price=px,
                    tif=rng.choice([1, 1, 2, 3]),
                    client_order_id=f"c{oid}" if rng.random() < 0.3 else "",
                )
            )
        elif r < 0.65:
            cmds.append(
                NewOrder(
                    order_id=oid,
                    account=acct,
                    symbol="X",
                    side=side,
                    type=OrderType.MARKET,
                    qty=rng.randint(1, 20),
                )
            )
        elif r < 0.7:
            cmds.append(
                NewOrder(
                    order_id=oid,
                    account=acct,
                    symbol="X",
                    side=side,
                    type=OrderType.STOP,
                    qty=rng.randint(1, 10),
                    stop_price=px + (30 if side == Side.BUY else -30),
                )
            )
        elif r < 0.8:
            cmds.append(CancelOrder(order_id=rng.randint(1, oid), symbol="X"))
        elif r < 0.9:
            cmds.append(
                ReplaceOrder(
                    order_id=rng.randint(1, oid), symbol="X", price=px, qty=rng.randint(1, 30)
                )
            )
        elif r < 0.93:
            cmds.append(MarketPrice(symbol="X", price=px))
        elif r < 0.96:
            cmds.append(Withdraw(account=acct, asset="USD", amount=rng.randint(1, 10_000), ref=i))
        else:
            cmds.append(
                NewOco(
                    account=rng.choice([1, 2]),
                    symbol="X",
                    side=Side.SELL,
                    qty=5,
                    limit_id=oid,
                    limit_price=10_100,
                    stop_id=oid + 1,
                    stop_price=9_900,
                    tif=TimeInForce.GTC,
                )
            )
            oid += 1
    # margin account 11 sells short heavily into account 10's bid; then account 8 buys up
    # account 7's offers, the price runs from 101 to 135 and account 11 is liquidated
    for a, kind in ((7, CASH), (8, CASH), (10, MARGIN), (11, MARGIN)):
        cmds.append(CreateAccount(account=a, kind=kind))
        cash = 5_000_000 if a == 11 else 10_000_000
        cmds.append(Deposit(account=a, asset="USD", amount=cash, ref=a))
    cmds.append(Deposit(account=7, asset="X", amount=1_000, cost=10_000_000, ref=7))
    big = dict(symbol="X", type=OrderType.LIMIT, qty=900, price=10_000)
    cmds.append(NewOrder(order_id=oid + 1, account=10, side=Side.BUY, **big))  # type: ignore[arg-type]
    cmds.append(
        NewOrder(
            order_id=oid + 2,
            account=11,
            symbol="X",
            side=Side.SELL,
            type=OrderType.MARKET,
            qty=900,
        )
    )
    oid += 10
    for px in range(10_100, 14_000, 100):
        oid += 1
        cmds.append(
            NewOrder(
                order_id=oid,
                account=7,
                symbol="X",
                side=Side.SELL,
                type=OrderType.LIMIT,
                qty=20,
                price=px,
            )
        )
    for px in range(10_100, 13_600, 100):
        oid += 1
        cmds.append(
            NewOrder(
                order_id=oid,
                account=8,
                symbol="X",
                side=Side.BUY,
                type=OrderType.LIMIT,
                qty=20,
                price=px,
            )
        )
    return cmds


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest, tmp_path: Path, require_service: Callable[[str], None]
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.sqlite'}"
        return
    with contextlib.contextmanager(_pg_url)(require_service) as url:
        yield url


def submit_all(node: EngineNode, cmds: list[Command], start: int) -> None:
    for i in range(0, len(cmds), 17):
        chunk = cmds[i : i + 17]
        node.submit([("t", start + i + j + 1, c) for j, c in enumerate(chunk)])


def sql_state(url: str) -> dict[str, object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            bal = conn.execute(
                select(
                    ledger_entries.c.account,
                    ledger_entries.c.asset,
                    func.sum(ledger_entries.c.amount),
                ).group_by(ledger_entries.c.account, ledger_entries.c.asset)
            ).all()
            pos = conn.execute(
                select(
                    positions.c.account,
                    positions.c.symbol,
                    positions.c.qty,
                    positions.c.cost,
                    positions.c.realized,
                )
            ).all()
            accts = conn.execute(
                select(accounts.c.account, accounts.c.kind, accounts.c.venue)
            ).all()
            live = conn.execute(
                select(orders.c.order_id, orders.c.qty - orders.c.filled).where(
                    orders.c.status.in_([int(s) for s in LIVE])
                )
            ).all()
    finally:
        engine.dispose()
    return {
        "balances": sorted((a, s, int(v)) for a, s, v in bal if v),
        "positions": sorted(tuple(r) for r in pos),
        "accounts": sorted(tuple(r) for r in accts),
        "open": sorted(tuple(r) for r in live),
    }


def core_state(core: Core) -> dict[str, object]:
    live = {**core.engine.orders, **core.paper.orders}
    return {
        "balances": sorted((a, s, v) for (a, s), v in core.ledger.items()),
        "positions": sorted(
            (a, s, p.qty, p.cost, p.realized) for a, s, p in core.positions.items()
        ),
        "accounts": sorted((a.account, a.kind, a.venue) for a in core.accounts.values()),
        "open": sorted((oid, o.remaining) for oid, o in live.items()),
    }


def test_sql_agrees_with_the_core_after_a_restart(tmp_path: Path, db_url: str) -> None:
    cmds = day(5, 700)
    half = len(cmds) // 2
    data = tmp_path / "node"
    node = EngineNode.open(data, machine="core", fsync=False, snapshot_every=97)
    submit_all(node, cmds[:half], 0)
    store = SqlPersister(db_url)
    replica = PersisterService(
        data, store, make_core=Core, restore_core=Core.restore, batch_events=500
    )
    assert replica.run_once() > 0
    # the node is abandoned (no clean shutdown beyond releasing its lock) and recovered
    node.journal.close()
    node = EngineNode.open(data, machine="core", fsync=False, snapshot_every=97)
    submit_all(node, cmds[half:], half)
    core = node.engine
    assert isinstance(core, Core)
    # a new replica (a restarted persister) takes over from the store's position
    store.close()
    store = SqlPersister(db_url)
    replica = PersisterService(
        data, store, make_core=Core, restore_core=Core.restore, batch_events=500
    )
    replica.run_once()
    assert replica.lag() == 0
    node.journal.close()
    store.close()
    assert sql_state(db_url) == core_state(core)
    # and a core rebuilt from the journal alone is the same core
    fresh = Core()
    seen_liquidation = False
    for c in cmds:
        seen_liquidation |= any(isinstance(e, Liquidation) for e in fresh.process(c))
    assert fresh.state_hash() == core.state_hash()
    assert seen_liquidation, "the price spike must liquidate the short margin account"
