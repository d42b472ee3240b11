"""Good-till-date orders: ``expire_ts`` checked against each command's own ``ts`` on the
engine and on the paper venue, a ``Clock`` command when nothing else comes, the risk core
giving the hold back, snapshots keeping the expiry, and the stale-entry bound."""

from __future__ import annotations

import msgspec
import pytest

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Clock,
    CreateAccount,
    Deposit,
    NewOrder,
    OrderAccepted,
    OrderExpired,
    Rejected,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import OrderType, Side, TimeInForce, TradingStatus, Venue
from mercato.engine import snapshot
from mercato.engine.core import Core
from mercato.engine.engine import Engine
from mercato.engine.expiry import MIN_REBUILD

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT, STOP = int(OrderType.LIMIT), int(OrderType.STOP)
GTD, GTC = int(TimeInForce.GTD), int(TimeInForce.GTC)


def gtd(
    oid: int, ts: int, expire_ts: int, side: int = BUY, price: int = 100, **kw: object
) -> NewOrder:
    fields: dict[str, object] = dict(
        ts=ts, order_id=oid, account=1, symbol="X", side=side, type=LIMIT, qty=5, price=price
    )
    fields.update(tif=GTD, expire_ts=expire_ts)
    fields.update(kw)
    return NewOrder(**fields)  # type: ignore[arg-type]


def engine() -> Engine:
    e = Engine()
    e.process(AddInstrument(symbol="X"))
    return e


def expired(events: list[object]) -> list[int]:
    return [e.order_id for e in events if isinstance(e, OrderExpired)]


def test_a_gtd_order_rests_until_a_command_at_or_after_its_time() -> None:
    e = engine()
    (acc, _) = e.process(gtd(1, ts=10, expire_ts=50))
    assert isinstance(acc, OrderAccepted) and acc.tif == GTD and acc.expire_ts == 50
    assert expired(e.process(Clock(ts=49))) == [] and 1 in e.orders
    out = e.process(Clock(ts=50))
    assert expired(out) == [1] and 1 not in e.orders
    assert e.book("X").bids.best_price() == 0  # the level went with it (a BookDelta to 0)
    assert e.process(Clock(ts=60)) == []  # nothing left to expire


def test_any_command_expires_what_is_due_first_soonest_first() -> None:
    e = engine()
    e.process(gtd(1, ts=1, expire_ts=30, price=99))
    e.process(gtd(2, ts=2, expire_ts=20, price=98))
    e.process(gtd(3, ts=3, expire_ts=20, price=97))
    e.process(gtd(4, ts=4, expire_ts=90, price=96))
    # a sell that would have hit the 99 bid at ts 40: the bid expired at 30 first
    out = e.process(
        NewOrder(ts=40, order_id=9, account=2, symbol="X", side=SELL, type=LIMIT, qty=5, price=99)
    )
    assert expired(out) == [2, 3, 1]  # by time, then by id
    assert not any(isinstance(x, Trade) for x in out) and 9 in e.orders and 4 in e.orders


def test_expire_times_are_checked() -> None:
    e = engine()
    (r,) = e.process(gtd(1, ts=10, expire_ts=10))
    assert isinstance(r, Rejected) and r.reason == "invalid_expire_time"
    (r,) = e.process(gtd(2, ts=10, expire_ts=0))
    assert isinstance(r, Rejected) and r.reason == "invalid_expire_time"
    (r,) = e.process(gtd(3, ts=10, expire_ts=99, tif=GTC))
    assert isinstance(r, Rejected) and r.reason == "invalid_expire_time"
    accepted = e.process(gtd(4, ts=10, expire_ts=99, post_only=True))  # post-only may be GTD
    assert isinstance(accepted[0], OrderAccepted)


def test_a_filled_or_cancelled_gtd_order_is_not_expired_later() -> None:
    e = engine()
    e.process(gtd(1, ts=1, expire_ts=50))
    e.process(gtd(2, ts=2, expire_ts=50, price=90))
    e.process(
        NewOrder(ts=3, order_id=3, account=2, symbol="X", side=SELL, type=LIMIT, qty=5, price=100)
    )
    e.process(CancelOrder(ts=4, order_id=2, symbol="X"))
    assert e.process(Clock(ts=60)) == [] and not e.orders


def test_a_waiting_gtd_stop_and_an_auction_order_expire_too() -> None:
    e = engine()
    e.process(gtd(1, ts=1, expire_ts=50, type=STOP, price=0, stop_price=120))
    e.process(SetTradingStatus(ts=2, symbol="X", status=TradingStatus.PRE_OPEN))
    e.process(gtd(2, ts=3, expire_ts=50))
    e.process(
        NewOrder(
            ts=4,
            order_id=3,
            account=2,
            symbol="X",
            side=SELL,
            type=LIMIT,
            qty=5,
            price=100,
            tif=GTC,
        )
    )
    assert e.book("X").indicative[1] == 5  # the GTD buy would trade 5 at the uncross
    out = e.process(Clock(ts=55))
    assert expired(out) == [1, 2]
    assert e.book("X").indicative[1] == 0  # and the indicative said so


def test_snapshots_keep_the_expiry_and_replay_alike() -> None:
    e = engine()
    e.process(gtd(1, ts=1, expire_ts=50))
    e.process(gtd(2, ts=2, expire_ts=70, price=90))
    copy = snapshot.restore(e.encode())
    assert copy.state_hash() == e.state_hash()
    later = [
        Clock(ts=60),
        NewOrder(ts=65, order_id=5, account=2, symbol="X", side=SELL, type=LIMIT, qty=1, price=95),
        Clock(ts=80),
    ]
    assert [copy.process(c) for c in later] == [e.process(c) for c in later]
    assert copy.state_hash() == e.state_hash() and not e.orders.keys() & {1, 2}


def test_a_snapshot_from_before_gtd_reads_as_no_expiry() -> None:
    e = engine()
    e.process(
        NewOrder(ts=1, order_id=1, account=1, symbol="X", side=BUY, type=LIMIT, qty=5, price=100)
    )
    state = msgspec.msgpack.decode(e.encode())
    state[3][0] = state[3][0][:-1]  # the OrderState without its last field, expire_ts
    old = snapshot.restore(msgspec.msgpack.encode(state))
    assert old.orders[1].expire_ts == 0 and len(old.expiries) == 0


def test_stale_entries_stay_bounded_by_the_live_orders() -> None:
    e = engine()
    for i in range(1, 5 * MIN_REBUILD):
        e.process(gtd(i, ts=i, expire_ts=10**9, price=100 - i % 50))
        e.process(CancelOrder(ts=i, order_id=i, symbol="X"))
    assert not e.orders and len(e.expiries) <= MIN_REBUILD


def test_the_core_gives_the_hold_back_on_both_venues() -> None:
    core = Core()
    ts = 0

    def do(cmd: object) -> list[object]:
        nonlocal ts
        ts += 1
        return core.process(msgspec.structs.replace(cmd, ts=ts))  # type: ignore[type-var]

    do(AddInstrument(symbol="X"))
    do(CreateAccount(account=1))
    do(Deposit(account=1, asset="USD", amount=100_000))
    do(CreateAccount(account=2, venue=Venue.PAPER))
    do(Deposit(account=2, asset="USD", amount=100_000))
    before = (core.buying_power(1), core.buying_power(2))
    out1 = do(gtd(1, ts=0, expire_ts=10))
    out2 = do(gtd(2, ts=0, expire_ts=12, account=2))
    assert isinstance(out1[0], OrderAccepted) and isinstance(out2[-1], OrderAccepted), (out1, out2)
    assert core.buying_power(1) == before[0] - 500 and core.buying_power(2) == before[1] - 500
    assert expired(core.process(Clock(ts=11))) == [1]
    assert expired(core.process(Clock(ts=12))) == [2]
    assert (core.buying_power(1), core.buying_power(2)) == before
    assert core.accounts[1].open_orders == 0 and core.accounts[2].open_orders == 0


@pytest.mark.parametrize("venue", [Venue.INTERNAL, Venue.PAPER])
def test_the_core_expires_on_any_command_even_a_deposit(venue: Venue) -> None:
    core = Core()
    core.process(AddInstrument(symbol="X"))
    core.process(CreateAccount(account=1, venue=venue))
    core.process(Deposit(account=1, asset="USD", amount=100_000))
    core.process(gtd(1, ts=5, expire_ts=10))
    out = core.process(Deposit(ts=20, account=1, asset="USD", amount=1, ref=7))
    assert expired(out) == [1]
