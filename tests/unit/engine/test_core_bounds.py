"""What the core keeps grows with its accounts and live orders, not with its traffic."""

from __future__ import annotations

import msgspec

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    CreateAccount,
    Deposit,
    DuplicateClientOrder,
    NewOrder,
    Rejected,
    SetInstrumentRisk,
)
from mercato.domain.types import AccountKind, OrderType
from mercato.engine.client_ids import MAX_DONE
from mercato.engine.core import Core
from mercato.engine.core_snapshot import CoreState

from .test_core_scenarios import BUY, SELL, TRADER, WHALE, long_20_at_100, risk_kinds

BAND_SLACK = 64  # mercato.engine.core.BAND_SLACK (not imported: the test predates it)


def test_margin_band_heaps_stay_bounded_under_trading() -> None:
    desk = long_20_at_100()
    core = desk.core
    for _ in range(2_000):  # each trade gives the trader's position a new band
        desk.limit(WHALE, SELL, 1, 10_000)
        desk.limit(TRADER, BUY, 1, 10_000)
        desk.limit(WHALE, BUY, 1, 10_000)
        desk.limit(TRADER, SELL, 1, 10_000)
    lows, highs = core._bands["AAA"]
    bound = 2 * len(core._band_version) + BAND_SLACK + 1
    assert len(lows) <= bound and len(highs) <= bound
    # the bands still work: a print below the trader's band still calls it (19 left at
    # 65.00: equity 335.00 under the 370.50 of maintenance)
    assert core.positions.get(TRADER, "AAA").qty == 19
    assert "MarginCall" in risk_kinds(desk.print_at(6_500))


def _two_traders(kept: int) -> Core:
    core = Core(max_client_ids=kept)
    core.process(AddInstrument(symbol="X", tick_size=1, lot_size=1, price_scale=2))
    core.process(SetInstrumentRisk(symbol="X", reference_price=10_000))
    for acct in (1, 2):
        core.process(CreateAccount(account=acct, kind=AccountKind.CASH))
        core.process(Deposit(account=acct, asset="USD", amount=10**12))
    core.process(Deposit(account=2, asset="X", amount=10**9, cost=10**9))
    return core


def _limit(oid: int, acct: int, side: int, price: int, cid: str) -> NewOrder:
    return NewOrder(
        order_id=oid,
        account=acct,
        symbol="X",
        side=side,
        type=int(OrderType.LIMIT),
        qty=1,
        price=price,
        client_order_id=cid,
    )


def test_client_order_ids_kept_are_the_live_orders_and_the_newest_finished() -> None:
    core = _two_traders(100)
    core.process(_limit(1, 1, BUY, 5_000, "rest"))  # stays live throughout
    oid = 1
    for i in range(5_000):  # each sell rests, and the buy after it fills it at once
        oid += 2
        core.process(_limit(oid, 2, SELL, 10_000, f"s{i}"))
        core.process(_limit(oid + 1, 1, BUY, 10_000, f"b{i}"))
    ids = core.client_ids
    assert len(ids) == 101 and ids.forgotten == 9_900  # the live order and the newest 100
    assert ids.get(1, "rest") == 1 and ids.get(1, "b4999") == oid + 1
    assert ids.get(2, "s4950") == oid - 98 and ids.get(2, "s4949") is None
    assert ids.get(1, "b4950") == oid - 97 and ids.get(1, "b4949") is None
    assert len(core.engine.orders) == 1 and len(core.holds) == 1
    restored = Core.restore(core.encode())  # the bound and the table survive a snapshot
    assert restored.state_hash() == core.state_hash() and len(restored.client_ids) == 101
    assert restored.client_ids.max_done == 100 and restored.client_ids.forgotten == 9_900


def test_a_repeat_is_answered_while_kept_and_a_refused_order_takes_no_id() -> None:
    core = _two_traders(1)
    core.process(_limit(1, 1, BUY, 5_000, "a"))
    (dup,) = core.process(_limit(2, 1, BUY, 5_000, "a"))
    assert isinstance(dup, DuplicateClientOrder) and dup.order_id == 1
    refused = core.process(_limit(3, 1, BUY, 10**15, "big"))  # beyond the buying power
    assert [type(e) for e in refused] == [Rejected] and core.client_ids.get(1, "big") is None
    assert not any(isinstance(e, Rejected) for e in core.process(_limit(4, 1, BUY, 1, "big")))


def test_a_snapshot_from_before_the_bound_restores_its_finished_orders_ids() -> None:
    core = _two_traders(100)
    core.process(_limit(1, 1, BUY, 5_000, "live"))
    core.process(_limit(2, 1, BUY, 5_000, "gone"))
    core.process(CancelOrder(order_id=2, symbol="X"))
    fields = CoreState.__struct_fields__
    old = msgspec.msgpack.decode(core.encode())[: fields.index("client_ids_done")]
    old[fields.index("client_ids")] = [[1, "gone", 2], [1, "live", 1]]  # every order's id
    restored = Core.restore(msgspec.msgpack.encode(old))
    ids = restored.client_ids
    assert ids.live_items() == [(1, "live", 1)] and ids.done_items() == [(1, "gone", 2)]
    assert ids.max_done == MAX_DONE  # (it recorded no bound: the default)
    restored.client_ids.max_done = 100
    assert restored.state_hash() == core.state_hash()
