"""The OMS order history agrees with the engine's live orders after every command.

Hypothesis drives a real engine with random sessions (every order type and time in force,
cancels and replaces of live, finished and unknown ids, reused ids, halts, end of day,
malformed orders); the projection, fed each command's events, must show exactly the
engine's live orders as open, with the same status and quantities, and keep its own
invariants for every order it holds. Re-applying the events changes nothing.
"""

from __future__ import annotations

import msgspec
from hypothesis import event, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace as with_fields

from mercato.domain import CancelOrder, Command, NewOrder, ReplaceOrder
from mercato.domain.orders import FINAL
from mercato.engine import Engine
from mercato.services.oms import OrderHistory

from .strategies import command_lists


def with_client_ids(cmds: list[Command]) -> list[Command]:
    """Give most new orders a client order id (unique per command)."""
    return [
        with_fields(c, client_order_id=f"c{i}") if isinstance(c, NewOrder) and i % 3 else c
        for i, c in enumerate(cmds)
    ]


def aim(c: Command, engine: Engine, data: st.DataObject) -> Command:
    """Point most cancels and replaces at a live order (the shared strategy picks ids at
    random, so a replace seldom finds one), at its price or a tick away."""
    if not isinstance(c, CancelOrder | ReplaceOrder) or not engine.orders:
        return c
    if not data.draw(st.integers(0, 3), label="aim"):
        return c
    o = engine.orders[data.draw(st.sampled_from(sorted(engine.orders)), label="live id")]
    if isinstance(c, CancelOrder):
        return with_fields(c, order_id=o.order_id, symbol=o.symbol)
    tick = engine.books[o.symbol].tick_size
    move = data.draw(st.sampled_from([0, 0, -1, 1, -3, 3]), label="ticks")
    price = o.price + move * tick if o.price else 0
    return with_fields(c, order_id=o.order_id, symbol=o.symbol, price=price)


def check(engine: Engine, h: OrderHistory) -> None:
    live = engine.orders
    open_views = h.open_orders()
    assert sorted(v.order_id for v in open_views) == sorted(live)
    for v in open_views:
        o = live[v.order_id]
        assert (v.status, v.remaining, v.filled, v.qty) == (o.status, o.remaining, o.filled, o.qty)
        assert (v.account, v.symbol, v.side, v.price, v.stop_price) == (
            o.account,
            o.symbol,
            o.side,
            o.price,
            o.stop_price,
        )
        if o.client_order_id:
            assert h.by_client_id(o.account, o.client_order_id) is v
        assert v in h.open_orders(v.account, v.symbol)
    for v in h.orders(limit=None):
        assert v.filled + v.remaining == v.qty
        assert sum(f.qty for f in v.fills) == v.filled
        assert sum(f.price * f.qty for f in v.fills) == v.notional
        assert (v.status in FINAL) == (v.order_id not in live) == (not v.is_open)
        assert h.order(v.order_id) is v
        assert [t.seq for t in v.history] == sorted(t.seq for t in v.history)


@settings(max_examples=max(1, settings.default.max_examples // 2))  # 50; "long": 1000
@given(
    cmds=command_lists(max_size=60),
    max_closed=st.sampled_from([0, 3, 100_000]),
    data=st.data(),
)
def test_history_mirrors_the_engine(
    cmds: list[Command], max_closed: int, data: st.DataObject
) -> None:
    engine = Engine()
    h = OrderHistory(max_closed=max_closed, max_fills=50)
    seen = []
    for c in with_client_ids(cmds):
        events = engine.process(aim(c, engine, data))
        h.apply(events)
        seen.extend(events)
        check(engine, h)
    for v in h.orders(limit=None):
        for t in v.history:
            event(t.event)
    assert len(h.fills(limit=None)) <= 50
    assert len(h.orders(limit=None)) <= len(engine.orders) + max_closed
    before = msgspec.to_builtins(h.orders(limit=None))
    h.apply(seen)  # idempotent
    assert msgspec.to_builtins(h.orders(limit=None)) == before
