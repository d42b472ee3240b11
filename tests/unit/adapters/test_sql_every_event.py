"""Every event the core can emit has a place in the SQL persister (or is knowingly not
stored): a new event type without one would stop the persister at its first batch."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from mercato.adapters.sql import SqlPersister
from mercato.domain import (
    AddInstrument,
    CreateAccount,
    Deposit,
    NewOrder,
    SetSelfTrade,
    SetTradingStatus,
)
from mercato.domain.events import AnyEvent, AuctionIndicative, SelfTradeSet
from mercato.domain.types import TradingStatus
from mercato.engine.core import Core


def test_every_event_type_has_a_handler(tmp_path: Path) -> None:
    p = SqlPersister(f"sqlite:///{tmp_path / 'store.sqlite'}")
    missing = [t.__name__ for t in get_args(AnyEvent) if t not in p._handlers]
    assert missing == []


def test_an_auction_and_a_self_trade_mode_are_persisted(tmp_path: Path) -> None:
    p = SqlPersister(f"sqlite:///{tmp_path / 'store.sqlite'}")
    core = Core()
    events = []
    for ts, cmd in enumerate(
        [
            AddInstrument(symbol="X"),
            CreateAccount(account=1),
            Deposit(account=1, asset="USD", amount=10**6),
            SetSelfTrade(account=1, mode=2),
            SetTradingStatus(symbol="X", status=TradingStatus.PRE_OPEN),
            CreateAccount(account=2),
            Deposit(account=2, asset="X", amount=10),
            NewOrder(order_id=1, account=1, symbol="X", side=1, type=2, qty=1, price=100),
            NewOrder(order_id=2, account=2, symbol="X", side=2, type=2, qty=1, price=100),
        ],
        1,
    ):
        events += core.process(cmd.__class__(**{**_fields(cmd), "ts": ts}))
    kinds = {type(e) for e in events}
    assert AuctionIndicative in kinds and SelfTradeSet in kinds
    assert p.write(events) == len(events)
    assert p.last_seq() == events[-1].seq


def _fields(cmd: object) -> dict[str, object]:
    return {f: getattr(cmd, f) for f in cmd.__struct_fields__}  # type: ignore[attr-defined]
