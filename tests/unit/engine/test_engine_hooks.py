"""What the risk core asks of the engine: protection prices, cancel with a reason,
one-cancels-other links and moving a stop."""

from __future__ import annotations

from typing import Any

from mercato.domain.commands import AddInstrument, EndOfDay, NewOrder, ReplaceOrder
from mercato.domain.events import (
    BookDelta,
    Event,
    OrderCancelled,
    OrderTriggered,
    Rejected,
    StopMoved,
    Trade,
)
from mercato.domain.types import OrderType, Side, TimeInForce
from mercato.engine.engine import Engine

BUY, SELL = Side.BUY, Side.SELL


def engine() -> Engine:
    e = Engine()
    e.process(AddInstrument(symbol="X", tick_size=5))
    return e


def new(oid: int, acct: int, side: int, qty: int, price: int = 0, **kw: Any) -> NewOrder:
    kind = kw.pop("type", OrderType.LIMIT if price else OrderType.MARKET)
    return NewOrder(
        order_id=oid, account=acct, symbol="X", side=side, type=kind, qty=qty, price=price, **kw
    )


def only(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def test_market_order_trades_no_worse_than_its_protection_price() -> None:
    e = engine()
    e.process(new(1, 1, SELL, 5, 100))
    e.process(new(2, 1, SELL, 5, 110))
    events = e.process(new(3, 2, BUY, 10, protect_price=105))
    assert [(t.price, t.qty) for t in only(events, Trade)] == [(100, 5)]
    assert [(c.order_id, c.remaining, c.reason) for c in only(events, OrderCancelled)] == [
        (3, 5, "market")
    ]


def test_fok_market_order_counts_only_liquidity_inside_its_protection() -> None:
    e = engine()
    e.process(new(1, 1, SELL, 5, 100))
    e.process(new(2, 1, SELL, 5, 110))
    events = e.process(new(3, 2, BUY, 10, protect_price=105, tif=TimeInForce.FOK))
    assert not only(events, Trade) and only(events, OrderCancelled)[0].reason == "fok"


def test_protection_price_is_only_for_market_and_stop_orders() -> None:
    e = engine()
    (rej,) = e.process(new(1, 1, BUY, 1, 100, protect_price=105))
    assert isinstance(rej, Rejected) and rej.reason == "invalid_protect_price"
    (rej,) = e.process(new(2, 1, BUY, 1, protect_price=103))  # not a tick multiple
    assert isinstance(rej, Rejected) and rej.reason == "invalid_protect_price"
    (rej,) = e.process(new(3, 1, BUY, 1, trail_amount=5))
    assert isinstance(rej, Rejected) and rej.reason == "invalid_trail"


def test_cancel_with_a_reason() -> None:
    e = engine()
    e.process(new(1, 1, BUY, 5, 100))
    events = e.cancel(1, "kill_switch", ts=9)
    assert [(c.order_id, c.reason, c.ts) for c in only(events, OrderCancelled)] == [
        (1, "kill_switch", 9)
    ]
    assert only(events, BookDelta)[0].qty == 0 and not e.orders
    assert e.cancel(1, "kill_switch", ts=10) == []


def oco(e: Engine) -> None:
    e.process(new(1, 1, SELL, 10, 120))  # take profit
    e.process(new(2, 1, SELL, 10, type=OrderType.STOP, stop_price=90))  # stop loss
    e.link(1, 2)


def test_linked_limit_filling_cancels_the_waiting_stop() -> None:
    e = engine()
    oco(e)
    events = e.process(new(3, 2, BUY, 4, 120))
    assert [(c.order_id, c.reason) for c in only(events, OrderCancelled)] == [(2, "oco")]
    assert 2 not in e.orders and e.orders[1].remaining == 6 and e.orders[1].link == 0


def test_linked_stop_triggering_cancels_the_resting_limit() -> None:
    e = engine()
    oco(e)
    e.process(new(3, 2, BUY, 10, 90))
    events = e.process(new(4, 3, SELL, 1, 90))  # trades at 90: the stop fires
    assert [o.order_id for o in only(events, OrderTriggered)] == [2]
    assert [(t.taker_order_id, t.qty) for t in only(events, Trade)] == [(4, 1), (2, 9)]
    assert [(c.order_id, c.reason) for c in only(events, OrderCancelled)] == [
        (1, "oco"),
        (2, "market"),  # the bid had 9 left
    ]


def test_cancelling_or_expiring_one_leg_cancels_the_other() -> None:
    e = engine()
    oco(e)
    events = e.cancel(2, "user", ts=0)
    assert [(c.order_id, c.reason) for c in only(events, OrderCancelled)] == [
        (2, "user"),
        (1, "oco"),
    ]
    e = engine()
    e.process(new(1, 1, SELL, 10, 120, tif=TimeInForce.DAY))
    e.process(new(2, 1, SELL, 10, type=OrderType.STOP, stop_price=90, tif=TimeInForce.DAY))
    e.link(1, 2)
    events = e.process(EndOfDay())
    assert [c.order_id for c in only(events, OrderCancelled)] == [2] and not e.orders


def test_move_stop_then_trigger_at_the_last_price() -> None:
    e = engine()
    e.process(new(1, 1, BUY, 1, 100))
    e.process(new(2, 2, SELL, 1, 100))  # last price 100
    e.process(new(3, 1, SELL, 5, type=OrderType.STOP, stop_price=90))
    e.process(new(4, 3, BUY, 5, 95))
    (moved,) = e.move_stop(3, 95, ts=1)
    assert isinstance(moved, StopMoved) and e.orders[3].stop_price == 95
    events = e.move_stop(3, 100, ts=2)  # now the last price reaches it
    assert [type(x).__name__ for x in events][:2] == ["StopMoved", "OrderTriggered"]
    assert [t.price for t in only(events, Trade)] == [95]


def test_replace_sets_a_waiting_stops_protection() -> None:
    e = engine()
    e.process(new(1, 1, SELL, 5, type=OrderType.STOP, stop_price=90))
    e.process(ReplaceOrder(order_id=1, symbol="X", price=0, qty=5, protect_price=85))
    assert e.orders[1].protect == 85
