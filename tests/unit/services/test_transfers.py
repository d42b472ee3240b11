"""Transfers (deposits and withdrawals) for the account activities: memory's window is
bounded, and with a SQL store the transfers before a restart are read from the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mercato.domain.commands import AddInstrument, CreateAccount, Deposit, Withdraw
from mercato.domain.events import LedgerPosted
from mercato.domain.ledger import EXTERNAL, Entry
from mercato.services.platform import Platform
from mercato.services.transfers import Transfer, TransferLog


def _posted(seq: int, account: int, amount: int, kind: str = "deposit") -> LedgerPosted:
    entries = (Entry(EXTERNAL, "USD", -amount), Entry(account, "USD", amount))
    return LedgerPosted(seq=seq, ts=seq * 10, posting=seq, kind=kind, ref=0, entries=entries)


def test_the_window_is_bounded_and_says_where_it_ends() -> None:
    log = TransferLog(max_kept=3)
    log.apply([_posted(s, 1 + s % 2, 100 * s) for s in range(1, 8)])
    log.apply([_posted(8, 1, 5, kind="trade")])  # not a transfer
    assert len(log) == 3 and log.horizon == 4
    assert [t.seq for t in log.page([1, 2], None, 10)] == [7, 6, 5]
    assert log.page([2], None, 10) == [
        Transfer(7, 70, 2, "USD", 700),
        Transfer(5, 50, 2, "USD", 500),
    ]
    assert [t.seq for t in log.page([2], 7, 10)] == [5] and log.page([1], 6, 10) == []


def test_transfers_from_before_a_restart_come_from_the_store(tmp_path: Path) -> None:
    async def first() -> None:
        p = Platform(tmp_path / "node", fsync=False)
        p.start()
        for cmd in (
            AddInstrument(symbol="XYZ"),
            CreateAccount(account=1),
            Deposit(account=1, asset="USD", amount=50_000),
            Deposit(account=1, asset="XYZ", amount=7),
            Withdraw(account=1, asset="USD", amount=20_000),
        ):
            await p.submit(cmd)
        await p.stop()

    async def second() -> list[Transfer]:
        p = Platform(tmp_path / "node", fsync=False)
        p.start()
        try:
            assert len(p.transfers) == 0  # memory starts empty: the store has them
            await p.submit(Deposit(account=1, asset="USD", amount=1))
            return await p.queries.transfers([1])
        finally:
            await p.stop()

    asyncio.run(first())
    got = asyncio.run(second())
    assert [(t.asset, t.amount) for t in got] == [
        ("USD", 1),
        ("USD", -20_000),
        ("XYZ", 7),
        ("USD", 50_000),
    ]
    assert got == sorted(got, key=lambda t: t.seq, reverse=True)
