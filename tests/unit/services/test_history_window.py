"""The in-memory history window and the SQL store behind it (issue 11): a finished order
or a fill leaves memory only once the persister has committed it, so every read still
finds it, first in memory and then in the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mercato.domain.commands import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    NewOrder,
    SetInstrumentRisk,
)
from mercato.domain.orders import OrderType, Side
from mercato.services.platform import Platform

SYM = "XYZ"


def setup() -> list[Command]:
    cmds: list[Command] = [
        AddInstrument(symbol=SYM),
        SetInstrumentRisk(symbol=SYM, reference_price=1_000),
    ]
    for acct in (1, 2):
        cmds += [CreateAccount(account=acct), Deposit(account=acct, asset="USD", amount=10**9)]
    cmds.append(Deposit(account=2, asset=SYM, amount=1_000))
    return cmds


def buy(oid: int, qty: int = 1, price: int = 1_000) -> NewOrder:
    t = int(OrderType.LIMIT)
    return NewOrder(
        order_id=oid,
        account=1,
        symbol=SYM,
        side=Side.BUY,
        type=t,
        qty=qty,
        price=price,
        client_order_id=f"c{oid}",
    )


def sell(oid: int, qty: int = 1, price: int = 1_000) -> NewOrder:
    t = int(OrderType.LIMIT)
    return NewOrder(
        order_id=oid, account=2, symbol=SYM, side=Side.SELL, type=t, qty=qty, price=price
    )


def test_memory_lets_go_only_of_what_the_store_holds(tmp_path: Path) -> None:
    async def main() -> None:
        p = Platform(tmp_path / "node", fsync=False, max_closed=2, max_fills=2)
        assert p.persister is not None
        p.persister.stop()  # its thread returns at once: the test runs it by hand
        p.start()
        try:
            for c in setup():
                await p.submit(c)
            oid = 1
            for _ in range(4):  # four orders that fill, each with a fill per side
                await p.submit(buy(oid))
                await p.submit(sell(oid + 1))
                oid += 2
            await p.submit(buy(oid))  # and one cancelled
            await p.submit(CancelOrder(order_id=oid, symbol=SYM))
            h = p.history
            # the persister has written nothing of these: memory keeps them all
            assert len(h) == 9 and len(h.fills(limit=None)) == 8
            assert h.order(1) is not None and h.horizon == 0 and h.fills_horizon == 0
            p.persister.run_once()  # now the store has them: the next change trims
            await p.submit(buy(100))
            await p.submit(CancelOrder(order_id=100, symbol=SYM))
            assert len(h) == 2 and h.order(1) is None and h.horizon > 0
            await p.submit(buy(101))
            await p.submit(sell(102))
            assert len(h.fills(limit=None)) == 2 and h.fills_horizon > 0
            p.persister.run_once()
            # the evicted order and fills are still answered, from the store
            q = p.queries
            first = await q.order(1)
            assert first is not None and first.filled == 1 and first.client_order_id == "c1"
            by_client = await q.by_client_id(1, "c3")
            assert by_client is not None and by_client.order_id == 3
            fills, _ = await q.fills([1], limit=100)
            assert sorted(f.order_id for f in fills) == [1, 3, 5, 7, 101]
            orders, _ = await q.orders([1], limit=100)
            assert sorted(v.order_id for v in orders) == [1, 3, 5, 7, 9, 100, 101]
        finally:
            await p.stop()

    asyncio.run(main())


def test_without_a_store_the_window_is_bounded_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        p = Platform(tmp_path / "node", fsync=False, store_url=None, max_closed=2, max_fills=2)
        p.start()
        try:
            for c in setup():
                await p.submit(c)
            for oid in range(1, 9, 2):
                await p.submit(buy(oid))
                await p.submit(sell(oid + 1))
            assert len(p.history) == 2 and len(p.history.fills(limit=None)) == 2
        finally:
            await p.stop()

    asyncio.run(main())
