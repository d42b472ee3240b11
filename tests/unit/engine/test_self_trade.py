"""Self-trade prevention modes: per order, or per account through the risk core; the
incoming order's mode decides in continuous trading, the newer order's in an auction."""

from __future__ import annotations

import pytest

from mercato.domain import (
    AddInstrument,
    CreateAccount,
    Deposit,
    NewOrder,
    OrderAccepted,
    OrderCancelled,
    Rejected,
    SelfTradeSet,
    SetSelfTrade,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import SelfTrade, TimeInForce, TradingStatus
from mercato.engine import snapshot
from mercato.engine.core import Core
from mercato.engine.engine import Engine

BUY, SELL, LIMIT = 1, 2, 2
RESTING, INCOMING, BOTH = SelfTrade.CANCEL_RESTING, SelfTrade.CANCEL_INCOMING, SelfTrade.CANCEL_BOTH


def order(oid: int, account: int, side: int, qty: int, price: int, **kw: object) -> NewOrder:
    return NewOrder(
        order_id=oid, account=account, symbol="X", side=side, type=LIMIT, qty=qty, price=price, **kw
    )  # type: ignore[arg-type]


def book() -> Engine:
    """Asks: 100 x5 (account 2), 101 x5 (account 1, the buyer's own), 102 x5 (account 2)."""
    e = Engine()
    e.process(AddInstrument(symbol="X"))
    e.process(order(1, 2, SELL, 5, 100))
    e.process(order(2, 1, SELL, 5, 101))
    e.process(order(3, 2, SELL, 5, 102))
    return e


def story(events: list[object]) -> list[tuple[object, ...]]:
    out: list[tuple[object, ...]] = []
    for e in events:
        if isinstance(e, Trade):
            out.append(("trade", e.maker_order_id, e.qty))
        elif isinstance(e, OrderCancelled):
            out.append(("cancelled", e.order_id, e.remaining, e.reason))
    return out


@pytest.mark.parametrize(
    ("mode", "expected", "rests"),
    [
        (0, [("trade", 1, 5), ("cancelled", 2, 5, "self_trade"), ("trade", 3, 5)], 2),
        (RESTING, [("trade", 1, 5), ("cancelled", 2, 5, "self_trade"), ("trade", 3, 5)], 2),
        (INCOMING, [("trade", 1, 5), ("cancelled", 4, 7, "self_trade")], 0),
        (
            BOTH,
            [("trade", 1, 5), ("cancelled", 2, 5, "self_trade"), ("cancelled", 4, 7, "self_trade")],
            0,
        ),
    ],
)
def test_the_incoming_orders_mode_decides(mode: int, expected: list[object], rests: int) -> None:
    e = book()
    out = e.process(order(4, 1, BUY, 12, 102, self_trade=mode))
    assert story(out) == expected
    assert (e.orders[4].remaining if 4 in e.orders else 0) == rests
    assert (2 in e.orders) == (mode == INCOMING)  # the own resting order stays only then
    e.book("X").assert_uncrossed()


def test_fok_counts_only_what_comes_before_its_own_order_when_that_ends_the_match() -> None:
    e = book()
    out = e.process(order(4, 1, BUY, 10, 102, tif=TimeInForce.FOK, self_trade=INCOMING))
    assert story(out) == [("cancelled", 4, 10, "fok")]  # 5 before its own ask: not 10
    out = e.process(order(5, 1, BUY, 10, 102, tif=TimeInForce.FOK, self_trade=RESTING))
    assert story(out) == [("trade", 1, 5), ("cancelled", 2, 5, "self_trade"), ("trade", 3, 5)]


def test_a_bad_mode_is_rejected() -> None:
    e = book()
    (r,) = e.process(order(4, 1, BUY, 1, 99, self_trade=4))
    assert isinstance(r, Rejected) and r.reason == "invalid_self_trade"


def test_the_mode_survives_a_snapshot() -> None:
    e = Engine()
    e.process(AddInstrument(symbol="X"))
    e.process(order(1, 1, SELL, 5, 101, self_trade=INCOMING))
    copy = snapshot.restore(e.encode())
    assert copy.orders[1].self_trade == INCOMING and copy.state_hash() == e.state_hash()


@pytest.mark.parametrize(("mode", "cancelled"), [(RESTING, [1]), (INCOMING, [2]), (BOTH, [1, 2])])
def test_in_an_auction_the_newer_orders_mode_decides(mode: int, cancelled: list[int]) -> None:
    e = Engine()
    e.process(AddInstrument(symbol="X"))
    e.process(SetTradingStatus(symbol="X", status=TradingStatus.PRE_OPEN))
    e.process(order(1, 1, SELL, 5, 100))
    e.process(order(2, 1, BUY, 5, 101, self_trade=mode))
    out = e.process(SetTradingStatus(symbol="X", status=TradingStatus.OPEN))
    got = sorted(c.order_id for c in out if isinstance(c, OrderCancelled))
    assert got == cancelled and not any(isinstance(x, Trade) for x in out)


def test_an_accounts_mode_applies_to_its_orders_that_name_none() -> None:
    core = Core()
    for cmd in (
        AddInstrument(symbol="X"),
        CreateAccount(account=1),
        Deposit(account=1, asset="USD", amount=10**8),
        Deposit(account=1, asset="X", amount=100),
    ):
        core.process(cmd)
    (ev,) = core.process(SetSelfTrade(account=1, mode=INCOMING))
    assert isinstance(ev, SelfTradeSet) and ev.mode == INCOMING
    (bad,) = core.process(SetSelfTrade(account=1, mode=9))
    assert isinstance(bad, Rejected) and bad.reason == "invalid_self_trade"
    (unknown,) = core.process(SetSelfTrade(account=7, mode=BOTH))
    assert isinstance(unknown, Rejected) and unknown.reason == "unknown_account"
    core.process(order(1, 1, SELL, 5, 100))
    out = core.process(order(2, 1, BUY, 5, 100))  # names no mode: the account's
    acc = next(e for e in out if isinstance(e, OrderAccepted))
    assert acc.self_trade == INCOMING
    assert [e.order_id for e in out if isinstance(e, OrderCancelled)] == [2]
    out = core.process(order(3, 1, BUY, 5, 100, self_trade=RESTING))  # the order's own wins
    assert [e.order_id for e in out if isinstance(e, OrderCancelled)] == [1]
    assert core.accounts[1].open_orders == 1  # order 3 rests; holds came back for 1 and 2
    restored = Core.restore(core.encode())
    assert restored.accounts[1].self_trade == INCOMING
    assert restored.state_hash() == core.state_hash()
