"""The OMS order history, driven by a real engine (and by hand-built events for the parts
of the core that are not wired into ``Engine.process`` yet)."""

from __future__ import annotations

from typing import Any

import msgspec

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    Event,
    NewOrder,
    ReplaceOrder,
)
from mercato.domain.events import (
    DuplicateClientOrder,
    LedgerPosted,
    Liquidation,
    OrderAccepted,
    OrdersLinked,
    StopMoved,
    StopTrails,
    Trade,
)
from mercato.domain.ledger import FEES, PAPER, Entry
from mercato.domain.orders import OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce
from mercato.engine import Engine
from mercato.services.oms import FillView, Group, OrderHistory, OrderView

S = OrderStatus
BUY, SELL = int(Side.BUY), int(Side.SELL)
SYM, OTHER = "ACME", "BETA"


def order(
    side: int,
    oid: int,
    qty: int,
    price: int = 0,
    *,
    acct: int,
    stop: int = 0,
    tif: int = TimeInForce.GTC,
    sym: str = SYM,
    cid: str = "",
) -> NewOrder:
    if stop:
        kind = OrderType.STOP_LIMIT if price else OrderType.STOP
    else:
        kind = OrderType.LIMIT if price else OrderType.MARKET
    return NewOrder(
        order_id=oid,
        account=acct,
        symbol=sym,
        side=side,
        type=int(kind),
        qty=qty,
        tif=int(tif),
        price=price,
        stop_price=stop,
        client_order_id=cid,
    )


def buy(oid: int, qty: int, price: int = 0, *, acct: int = 1, **kw: Any) -> NewOrder:
    return order(BUY, oid, qty, price, acct=acct, **kw)


def sell(oid: int, qty: int, price: int = 0, *, acct: int = 2, **kw: Any) -> NewOrder:
    return order(SELL, oid, qty, price, acct=acct, **kw)


class Oms:
    """An engine with two instruments and the history fed from it, command by command."""

    def __init__(self, **kw: int) -> None:
        self.engine = Engine()
        self.history = OrderHistory(**kw)
        self.events: list[Event] = []
        self(AddInstrument(symbol=SYM), AddInstrument(symbol=OTHER))

    def __call__(self, *cmds: Command) -> list[Event]:
        out: list[Event] = []
        for c in cmds:
            events = self.engine.process(msgspec.structs.replace(c, ts=1000 + len(self.events)))
            self.history.apply(events)
            self.events.extend(events)
            out.extend(events)
        return out

    def view(self, oid: int) -> OrderView:
        v = self.history.order(oid)
        assert v is not None, f"order {oid} not kept"
        return v

    def steps(self, oid: int) -> list[tuple[Any, ...]]:
        """(what, status name, details) of each transition of ``oid``."""
        return [(t.event, t.status.name, t.details) for t in self.view(oid).history]


def ids(views: list[OrderView]) -> list[int]:
    return [v.order_id for v in views]


def fill_rows(fills: list[FillView]) -> list[tuple[int, int, int, str]]:
    return [(f.order_id, f.price, f.qty, f.liquidity) for f in fills]


# -- lifecycles from the engine -----------------------------------------------------------------


def test_partial_fills_then_filled() -> None:
    m = Oms()
    m(buy(1, 10, 100, cid="b-1"))
    m(sell(2, 4, 100))
    m(sell(3, 6, 99, acct=3))
    v = m.view(1)
    assert m.steps(1) == [
        ("accepted", "ACCEPTED", {}),
        ("partially_filled", "PARTIALLY_FILLED", {"price": 100, "qty": 4, "liquidity": "maker"}),
        ("filled", "FILLED", {"price": 100, "qty": 6, "liquidity": "maker"}),
    ]
    assert (v.qty, v.filled, v.remaining, v.avg_price, v.status) == (
        10,
        10,
        0,
        (1000, 10),
        S.FILLED,
    )
    assert (v.side, v.type, v.tif, v.price, v.client_order_id) == (BUY, 2, 1, 100, "b-1")
    assert v.created_seq == v.history[0].seq and v.updated_seq == v.history[-1].seq
    assert v.created_ts < v.updated_ts and not v.is_open and v.reason == ""
    assert fill_rows(m.history.fills(order_id=1)) == [(1, 100, 6, "maker"), (1, 100, 4, "maker")]
    assert m.steps(3) == [
        ("accepted", "ACCEPTED", {}),
        ("filled", "FILLED", {"price": 100, "qty": 6, "liquidity": "taker"}),
    ]
    assert m.history.open_orders() == []
    # most recently changed first (in one trade, the taker's fill comes before the maker's)
    assert ids(m.history.orders(status=S.FILLED)) == [1, 3, 2]
    assert m.history.by_client_id(1, "b-1") is v


def test_replace_keeps_filled_plus_remaining_equal_to_qty() -> None:
    m = Oms()
    m(buy(1, 10, 100), ReplaceOrder(order_id=1, symbol=SYM, price=100, qty=4))
    m(ReplaceOrder(order_id=1, symbol=SYM, price=101, qty=6))
    m(sell(2, 2, 101))
    m(ReplaceOrder(order_id=1, symbol=SYM, price=101, qty=3))
    v = m.view(1)
    assert m.steps(1) == [
        ("accepted", "ACCEPTED", {}),
        (
            "replaced",
            "REPLACED",
            {"price": 100, "qty": 4, "stop_price": 0, "kept_priority": True},
        ),
        (
            "replaced",
            "REPLACED",
            {"price": 101, "qty": 6, "stop_price": 0, "kept_priority": False},
        ),
        ("partially_filled", "PARTIALLY_FILLED", {"price": 101, "qty": 2, "liquidity": "maker"}),
        (
            "replaced",
            "REPLACED",
            {"price": 101, "qty": 3, "stop_price": 0, "kept_priority": True},
        ),
    ]
    assert (v.price, v.qty, v.filled, v.remaining, v.status) == (101, 5, 2, 3, S.REPLACED)
    assert ids(m.history.open_orders(1)) == [1]


def test_user_cancel_and_ioc_remainder() -> None:
    m = Oms()
    m(buy(1, 5, 100), CancelOrder(order_id=1, symbol=SYM))
    assert m.steps(1)[-1] == ("cancelled", "CANCELLED", {"reason": "user", "remaining": 5})
    assert m.view(1).reason == "user" and m.history.open_orders() == []
    m(sell(2, 3, 100), buy(3, 5, 100, tif=TimeInForce.IOC))
    assert m.steps(3) == [
        ("accepted", "ACCEPTED", {}),
        ("partially_filled", "PARTIALLY_FILLED", {"price": 100, "qty": 3, "liquidity": "taker"}),
        ("cancelled", "CANCELLED", {"reason": "ioc", "remaining": 2}),
    ]
    v = m.view(3)
    assert (v.status, v.filled, v.remaining, v.reason) == (S.CANCELLED, 3, 2, "ioc")


def test_stop_triggered_then_filled() -> None:
    m = Oms()
    m(sell(900, 1, 100, acct=90), buy(901, 1, 100, acct=91))  # last trade at 100
    m(buy(1, 5, stop=102), sell(2, 10, 104, acct=3))
    assert m.view(1).status == S.ACCEPTED and ids(m.history.open_orders(1)) == [1]
    m(sell(3, 1, 102, acct=3), buy(4, 1, 102, acct=4))  # trades at 102: the stop fires
    assert m.steps(1) == [
        ("accepted", "ACCEPTED", {}),
        ("triggered", "ACCEPTED", {"stop_price": 102, "last_price": 102}),
        ("filled", "FILLED", {"price": 104, "qty": 5, "liquidity": "taker"}),
    ]
    assert m.history.open_orders(1) == [] and m.view(2).remaining == 5


def test_day_orders_expire_at_end_of_day() -> None:
    m = Oms()
    m(buy(1, 5, 100, tif=TimeInForce.DAY), sell(2, 5, stop=90, tif=TimeInForce.DAY))
    m(buy(3, 5, 99))  # GTC: stays
    m(sell(4, 2, 100, acct=3))
    m(EndOfDay())
    assert m.steps(1)[-1] == ("expired", "EXPIRED", {"remaining": 3})
    assert m.steps(2)[-1] == ("expired", "EXPIRED", {"remaining": 5})
    assert m.view(1).reason == m.view(2).reason == "expired"
    assert (m.view(1).filled, m.view(1).avg_price) == (2, (200, 2))
    assert ids(m.history.open_orders()) == [3]
    assert ids(m.history.orders(status={S.EXPIRED, S.FILLED})) == [2, 1, 4]


def test_rejected_new_orders_are_kept_with_their_reason() -> None:
    m = Oms()
    m(buy(1, 0, 100), buy(2, 5, 100, sym="NOPE", acct=7))
    v = m.view(1)
    assert (v.status, v.reason, v.detail, v.account) == (
        S.REJECTED,
        "invalid_qty",
        "quantity must be positive",
        1,
    )
    assert m.steps(1) == [
        (
            "rejected",
            "REJECTED",
            {"command": "n", "reason": "invalid_qty", "detail": "quantity must be positive"},
        )
    ]
    assert (m.view(2).reason, m.view(2).symbol) == ("unknown_symbol", "NOPE")
    assert ids(m.history.orders(account=7)) == [2] and m.history.open_orders() == []


def test_rejected_commands_on_a_kept_order_are_noted_without_changing_it() -> None:
    m = Oms()
    m(buy(1, 5, 100), buy(1, 5, 100))  # duplicate order id: the live order is untouched
    m(ReplaceOrder(order_id=1, symbol=SYM, price=100, qty=0))
    m(sell(2, 5, 100), CancelOrder(order_id=1, symbol=SYM))  # too late: filled
    steps = m.steps(1)
    assert [s[:2] for s in steps] == [
        ("accepted", "ACCEPTED"),
        ("rejected", "ACCEPTED"),
        ("rejected", "ACCEPTED"),
        ("filled", "FILLED"),
        ("rejected", "FILLED"),
    ]
    assert [s[2]["command"] for s in steps if s[0] == "rejected"] == ["n", "r", "c"]
    assert steps[1][2]["reason"] == "duplicate_order_id"
    assert steps[4][2]["reason"] == "unknown_order"
    v = m.view(1)
    assert (v.status, v.qty, v.filled, v.reason) == (S.FILLED, 5, 5, "")


def test_an_order_id_reused_after_the_order_ended_replaces_the_old_view() -> None:
    m = Oms()
    m(buy(1, 5, 100, cid="x"), CancelOrder(order_id=1, symbol=SYM))
    m(sell(1, 3, 105, cid="y"))
    v = m.view(1)
    assert (v.side, v.status, len(v.history)) == (SELL, S.ACCEPTED, 1)
    assert m.history.by_client_id(1, "x") is None  # the old order is gone
    assert m.history.by_client_id(2, "y") is v and len(m.history) == 1


def test_client_order_id_lookup() -> None:
    m = Oms()
    m(buy(1, 5, 100, cid="abc"), buy(2, 5, 100, acct=2, cid="abc"))
    assert m.history.by_client_id(1, "abc") is m.view(1)
    assert m.history.by_client_id(2, "abc") is m.view(2)
    assert m.history.by_client_id(3, "abc") is None and m.history.by_client_id(1, "") is None


def test_queries_filter_by_account_symbol_status_and_seq() -> None:
    m = Oms()
    m(buy(1, 5, 100), buy(2, 5, 50, sym=OTHER), sell(3, 5, 200, acct=2))
    m(sell(4, 2, 100, acct=3))
    mark = m.history.seq
    m(sell(5, 1, 50, acct=3, sym=OTHER), buy(6, 1, 200, acct=3))
    h = m.history
    assert ids(h.open_orders()) == [1, 2, 3]
    assert ids(h.open_orders(1)) == [1, 2] and ids(h.open_orders(1, OTHER)) == [2]
    assert ids(h.open_orders(symbol=SYM)) == [1, 3] and h.open_orders(9) == []
    assert ids(h.orders()) == [3, 6, 2, 5, 1, 4]
    assert ids(h.orders(limit=2)) == [3, 6]
    assert ids(h.orders(since_seq=mark)) == [3, 6, 2, 5]
    assert ids(h.orders(account=1)) == [2, 1] and ids(h.orders(account=1, symbol=SYM)) == [1]
    assert ids(h.orders(status=S.PARTIALLY_FILLED)) == [3, 2, 1]
    assert ids(h.orders(status=[S.FILLED], account=3)) == [6, 5, 4]
    assert fill_rows(h.fills()) == [
        (3, 200, 1, "maker"),
        (6, 200, 1, "taker"),
        (2, 50, 1, "maker"),
        (5, 50, 1, "taker"),
        (1, 100, 2, "maker"),
        (4, 100, 2, "taker"),
    ]
    assert fill_rows(h.fills(account=1)) == [(2, 50, 1, "maker"), (1, 100, 2, "maker")]
    assert fill_rows(h.fills(symbol=OTHER, limit=1)) == [(2, 50, 1, "maker")]
    assert [f.order_id for f in h.fills(since_seq=mark)] == [3, 6, 2, 5]
    assert fill_rows(h.fills(order_id=4)) == [(4, 100, 2, "taker")]
    assert fill_rows(h.fills(order_id=4, account=1)) == []
    f = h.fills(order_id=1)[0]
    assert (f.account, f.symbol, f.side, f.fee) == (1, SYM, BUY, 0)


# -- idempotence and bounds ---------------------------------------------------------------------


def snapshot(h: OrderHistory) -> Any:
    return msgspec.to_builtins(
        (
            [h.order(v.order_id) for v in h.orders(limit=None)],
            h.fills(limit=None),
            ids(h.open_orders()),
        )
    )


def test_apply_is_idempotent() -> None:
    m = Oms()
    m(buy(1, 10, 100), sell(2, 4, 100), ReplaceOrder(order_id=1, symbol=SYM, price=99, qty=3))
    m(sell(3, 9, 99, acct=3), buy(4, 0, 100), EndOfDay())
    once = snapshot(m.history)
    m.history.apply(m.events)  # all again
    m.history.apply(m.events[5:9])  # a stale slice
    assert snapshot(m.history) == once
    fresh = OrderHistory()  # overlapping batches, as after a reconnect
    fresh.apply(m.events[:12])
    fresh.apply(m.events[7:])
    assert snapshot(fresh) == once and fresh.seq == m.events[-1].seq


def test_finished_orders_are_evicted_oldest_first_and_live_ones_kept() -> None:
    m = Oms(max_closed=2, max_fills=3)
    m(buy(100, 50, 90, cid="live"))  # stays live throughout
    for oid in range(1, 6):
        m(buy(oid, 1, 100, cid=f"c{oid}"), CancelOrder(order_id=oid, symbol=SYM))
    h = m.history
    assert ids(h.orders()) == [5, 4, 100] and len(h) == 3
    assert h.order(1) is None and h.by_client_id(1, "c1") is None
    assert h.by_client_id(1, "c5") is m.view(5) and h.by_client_id(1, "live") is m.view(100)
    for oid in range(6, 10):
        m(sell(oid, 10, 90, acct=2))
    assert len(h.fills(limit=None)) == 3  # the recent-fills list is bounded...
    assert [f.qty for f in h.fills(order_id=100, limit=None)] == [
        10,
        10,
        10,
        10,
    ]  # ...not an order's
    assert ids(h.orders()) == [100, 9, 8] and ids(h.open_orders()) == [100]


def test_max_closed_zero_keeps_only_live_orders() -> None:
    m = Oms(max_closed=0)
    m(buy(1, 5, 100), buy(2, 0, 100), sell(3, 2, 100))
    assert ids(m.history.orders()) == [1] and m.view(1).filled == 2


# -- events of the risk core, built by hand ----------------------------------------------------


def accepted(seq: int, oid: int, acct: int, side: int = BUY, qty: int = 10, **kw: Any) -> Event:
    fields: dict[str, Any] = dict(
        seq=seq,
        ts=seq * 10,
        order_id=oid,
        account=acct,
        symbol=SYM,
        side=side,
        type=int(OrderType.LIMIT),
        tif=int(TimeInForce.GTC),
        price=100,
        stop_price=0,
        qty=qty,
        post_only=False,
    )
    fields.update(kw)
    return OrderAccepted(**fields)


def trade(seq: int, taker: int, maker: int, qty: int, t_left: int, m_left: int, **kw: Any) -> Trade:
    fields: dict[str, Any] = dict(
        seq=seq,
        ts=seq * 10,
        symbol=SYM,
        price=100,
        qty=qty,
        taker_order_id=taker,
        maker_order_id=maker,
        taker_account=2,
        maker_account=1,
        taker_side=SELL,
        taker_remaining=t_left,
        maker_remaining=m_left,
    )
    fields.update(kw)
    return Trade(**fields)


def trade_posting(seq: int, ref: int, buyer: int, seller: int, fees: dict[int, int]) -> Event:
    entries = [
        Entry(buyer, SYM, 5),
        Entry(seller, SYM, -5),
        Entry(buyer, "USD", -500),
        Entry(seller, "USD", 500),
    ]
    for payer, fee in fees.items():
        entries += [Entry(payer, "USD", -fee), Entry(FEES, "USD", fee)]
    return LedgerPosted(
        seq=seq, ts=seq * 10, posting=seq, kind="trade", ref=ref, entries=tuple(entries)
    )


def test_ledger_postings_put_the_fees_on_the_fills() -> None:
    h = OrderHistory()
    h.apply(
        [
            accepted(1, 10, 1),
            accepted(2, 20, 2, side=SELL, qty=5),
            trade(3, 20, 10, 5, 0, 5),
            trade_posting(4, 3, buyer=1, seller=2, fees={1: 3, 2: 7}),
            LedgerPosted(seq=5, ts=50, posting=5, kind="deposit", ref=3, entries=()),
        ]
    )
    maker, taker = h.order(10), h.order(20)
    assert maker is not None and taker is not None
    assert (maker.fees, taker.fees) == (3, 7)
    assert [(f.order_id, f.liquidity, f.fee) for f in h.fills()] == [
        (10, "maker", 3),
        (20, "taker", 7),
    ]


def test_paper_fills_have_no_maker_order() -> None:
    h = OrderHistory()
    paper = dict(maker_account=PAPER, taker_account=1, taker_side=BUY)
    h.apply(
        [
            accepted(1, 10, 1, qty=8),
            trade(2, 10, 0, 3, 5, 0, **paper),
            trade_posting(3, 2, buyer=1, seller=PAPER, fees={1: 2}),
            trade(4, 10, 0, 5, 0, 0, **paper),
        ]
    )
    v = h.order(10)
    assert v is not None and (v.status, v.filled, v.fees) == (S.FILLED, 8, 2)
    assert fill_rows(h.fills()) == [(10, 100, 5, "taker"), (10, 100, 3, "taker")]
    assert h.order(0) is None


def test_liquidation_flags_the_order_that_follows() -> None:
    h = OrderHistory()
    h.apply(
        [
            accepted(1, 5, 1),
            Liquidation(
                seq=2,
                ts=20,
                account=1,
                order_id=77,
                symbol=SYM,
                side=SELL,
                qty=4,
                equity=10,
                requirement=50,
            ),
            accepted(3, 77, 1, side=SELL, qty=4, type=int(OrderType.MARKET), price=0),
        ]
    )
    v77, v5 = h.order(77), h.order(5)
    assert v77 is not None and v5 is not None
    assert v77.liquidation and not v5.liquidation


def test_linked_orders_carry_their_group() -> None:
    h = OrderHistory()
    h.apply(
        [
            accepted(1, 10, 1),
            OrdersLinked(
                seq=2, ts=20, kind="bracket", account=1, symbol=SYM, order_ids=(10, 11, 12)
            ),
            accepted(3, 11, 1, side=SELL),  # an exit leg goes in later
        ]
    )
    bracket = Group("bracket", (10, 11, 12))
    assert [v.group for v in h.open_orders(1)] == [bracket, bracket]


def test_a_trailing_stop_move_updates_the_stop_price() -> None:
    h = OrderHistory()
    stop = dict(type=int(OrderType.STOP), price=0, stop_price=95)
    h.apply(
        [
            accepted(1, 10, 1, side=SELL, **stop),
            StopMoved(seq=2, ts=20, order_id=10, account=1, symbol=SYM, stop_price=97),
        ]
    )
    v = h.order(10)
    assert v is not None and v.stop_price == 97 and v.updated_seq == 2
    assert [(t.event, t.status, t.details) for t in v.history][-1] == (
        "stop_moved",
        S.ACCEPTED,
        {"stop_price": 97},
    )


def test_a_trailing_stop_keeps_its_trail_and_one_transition_for_all_its_moves() -> None:
    h = OrderHistory()
    stop = {"type": int(OrderType.STOP), "stop_price": 95}
    h.apply([accepted(1, 10, 1, side=SELL, **stop)])
    h.apply(
        [
            StopTrails(
                2, 20, order_id=10, account=1, symbol=SYM, trail_amount=5, trail_bps=0, best=100
            )
        ]
    )
    h.apply(
        [
            StopMoved(
                seq=s, ts=10 * s, order_id=10, account=1, symbol=SYM, stop_price=s, best=s + 5
            )
            for s in range(3, 1_003)
        ]
    )
    v = h.order(10)
    assert v is not None and (v.trail_amount, v.trail_bps, v.trail_best) == (5, 0, 1_007)
    assert v.stop_price == 1_002 and v.updated_seq == 1_002
    assert [t.event for t in v.history] == ["accepted", "trailing", "stop_moved"]
    assert v.history[-1].details == {"stop_price": 1_002}


def test_a_duplicate_client_order_id_is_a_rejected_order_pointing_to_the_original() -> None:
    h = OrderHistory()
    h.apply(
        [
            accepted(1, 10, 1, client_order_id="k"),
            DuplicateClientOrder(
                seq=2, ts=20, account=1, client_order_id="k", order_id=10, rejected_id=11
            ),
            DuplicateClientOrder(
                seq=3, ts=30, account=1, client_order_id="k", order_id=10, rejected_id=10
            ),
        ]
    )
    original, repeat = h.order(10), h.order(11)
    assert original is not None and repeat is not None
    assert h.by_client_id(1, "k") is original and original.status == S.ACCEPTED
    assert [t.details for t in original.history[1:]] == [
        {"command": "n", "reason": "duplicate_client_order", "order_id": 11},
        {"command": "n", "reason": "duplicate_client_order", "order_id": 10},
    ]
    assert (repeat.status, repeat.reason, repeat.client_order_id) == (
        S.REJECTED,
        "duplicate_client_order",
        "k",
    )
    assert "order 10" in repeat.detail and h.open_orders() == [original]
