"""The engine's auction against a deliberately simple reference uncross.

The reference tries every tick from the lowest price named to the highest (not only the
limit prices, as ``auction.py`` does), keeps the orders as a plain list, and matches in the
priority the rules give; on random orders, cancels and replaces collected in a pre-open,
the engine's indicative price, its uncross trades and the book left after the open must be
the reference's.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from mercato.domain import (
    AddInstrument,
    AuctionIndicative,
    CancelOrder,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import OrderType, TradingStatus
from mercato.engine import Engine
from mercato.engine.auction import uncross_price

SYM = "X"
BUY, SELL = 1, 2


@dataclass
class Ref:
    oid: int
    account: int
    side: int
    limit: int  # 0: a market order at any price
    market: bool
    qty: int
    arrival: int


def reference_price(orders: list[Ref], reference: int, tick: int) -> tuple[int, int, int, int]:
    """Every tick from the lowest price named (a limit, a protection price or the
    reference) to the highest, compared by the documented rules."""
    if not reference and not any(o.limit for o in orders):
        return (0, 0, 0, 0)  # market orders alone, and no price to give them
    named = [o.limit for o in orders if o.limit] + ([reference] if reference else [])
    best: tuple[int, int, int, int] = (0, 0, 0, 0)
    best_key: tuple[int, int, int, int] | None = None
    for p in range(min(named), max(named) + 1, tick):  # no price beyond what someone named
        b = sum(o.qty for o in orders if o.side == BUY and (o.limit == 0 or o.limit >= p))
        s = sum(o.qty for o in orders if o.side == SELL and (o.limit == 0 or o.limit <= p))
        v = min(b, s)
        if v == 0:
            continue
        key = (-v, abs(b - s), abs(p - reference) if reference else 0, p)
        if best_key is None or key < best_key:
            best_key = key
            best = (p, v, abs(b - s), BUY if b > s else SELL if s > b else 0)
    return best


def reference_auction(
    orders: list[Ref], reference: int, tick: int
) -> tuple[list[tuple[int, int, int, int]], set[int]]:
    """(price, qty, buy id, sell id) of each trade, and the self-trade cancels: rounds at
    the reference price of what is left, while anything crosses."""
    left = {o.oid: o.qty for o in orders}
    trades: list[tuple[int, int, int, int]] = []
    cancelled: set[int] = set()
    while True:
        alive = [
            Ref(o.oid, o.account, o.side, o.limit, o.market, left[o.oid], o.arrival)
            for o in orders
            if left[o.oid] and o.oid not in cancelled
        ]
        price = reference_price(alive, reference, tick)[0] if alive else 0
        if not price:
            return trades, cancelled
        # market orders at any price first; then by price, market orders first at a price
        buys = sorted(
            (o for o in alive if o.side == BUY and (o.limit == 0 or o.limit >= price)),
            key=lambda o: (o.limit != 0, -o.limit, not o.market, o.arrival),
        )
        sells = sorted(
            (o for o in alive if o.side == SELL and (o.limit == 0 or o.limit <= price)),
            key=lambda o: (o.limit != 0, o.limit, not o.market, o.arrival),
        )
        i = j = 0
        while i < len(buys) and j < len(sells):
            b, s = buys[i], sells[j]
            if b.account == s.account:
                older = b if b.oid < s.oid else s
                cancelled.add(older.oid)
                if older is b:
                    i += 1
                else:
                    j += 1
                continue
            q = min(left[b.oid], left[s.oid])
            left[b.oid] -= q
            left[s.oid] -= q
            trades.append((price, q, b.oid, s.oid))
            reference = price
            if left[b.oid] == 0:
                i += 1
            if left[s.oid] == 0:
                j += 1


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("new"),
            st.sampled_from([BUY, SELL]),
            st.integers(0, 12),  # 0: market
            st.integers(1, 9),
            st.integers(1, 4),  # account
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("replace"), st.integers(0, 30), st.integers(1, 12), st.integers(1, 9)),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=1000, deadline=None)
@given(
    actions=actions,
    last=st.integers(0, 12),
    protect=st.booleans(),
    tick=st.sampled_from([1, 5]),
)
def test_the_uncross_is_the_reference_uncross(
    actions: list[tuple[object, ...]], last: int, protect: bool, tick: int
) -> None:
    e = Engine()
    e.process(AddInstrument(symbol=SYM, tick_size=tick, lot_size=1))
    last *= tick
    if last:
        e.process(
            NewOrder(order_id=1000, account=91, symbol=SYM, side=BUY, type=2, qty=1, price=last)
        )
        e.process(
            NewOrder(order_id=1001, account=92, symbol=SYM, side=SELL, type=2, qty=1, price=last)
        )
    e.process(SetTradingStatus(symbol=SYM, status=TradingStatus.PRE_OPEN))
    live: dict[int, Ref] = {}
    indicative = (0, 0, 0, 0)
    for n, a in enumerate(actions):
        arrival = n + 1
        if a[0] == "new":
            _, side, ticks, qty, account = a
            price = int(ticks) * tick  # type: ignore[call-overload]
            market = price == 0
            limit = 0
            if market and protect:  # a protection price: a market order with a limit
                limit = 6 * tick
            c = NewOrder(
                order_id=n + 1,
                account=int(account),  # type: ignore[call-overload]
                symbol=SYM,
                side=int(side),  # type: ignore[call-overload]
                type=int(OrderType.MARKET if market else OrderType.LIMIT),
                qty=int(qty),  # type: ignore[call-overload]
                price=price,
                protect_price=limit,
            )
            live[n + 1] = Ref(n + 1, c.account, c.side, limit or c.price, market, c.qty, arrival)
            events = e.process(c)
        elif a[0] == "cancel":
            oid = int(a[1])  # type: ignore[call-overload]
            events = e.process(CancelOrder(order_id=oid, symbol=SYM))
            live.pop(oid, None)
        else:
            oid, ticks, qty = (int(x) for x in a[1:])  # type: ignore[call-overload]
            price = ticks * tick
            o = live.get(oid)
            events = e.process(ReplaceOrder(order_id=oid, symbol=SYM, price=price, qty=qty))
            if o is not None and not o.market:
                if not (price == o.limit and qty <= o.qty):
                    o.arrival = arrival  # to the back of its new level
                o.limit, o.qty = price, qty
        for ev in events:
            if isinstance(ev, AuctionIndicative):
                indicative = (ev.price, ev.qty, ev.surplus, ev.surplus_side)
        orders = list(live.values())
        ref_price = reference_price(orders, last, tick) if orders else (0, 0, 0, 0)
        assert indicative == ref_price, (orders, last)
        buys = [(o.limit, o.qty) for o in orders if o.side == BUY]
        sells = [(o.limit, o.qty) for o in orders if o.side == SELL]
        assert uncross_price(buys, sells, last, tick) == ref_price

    events = e.process(SetTradingStatus(symbol=SYM, status=TradingStatus.OPEN))
    trades = [ev for ev in events if isinstance(ev, Trade)]
    got = [
        (t.price, t.qty, *sorted((t.taker_order_id, t.maker_order_id), key=lambda i: live[i].side))
        for t in trades
    ]
    want, cancelled = reference_auction(list(live.values()), last, tick)
    assert got == want
    if want and not cancelled:  # one round, at the indicative price
        assert {t[0] for t in want} == {indicative[0]}
    assert all(max(t.taker_order_id, t.maker_order_id) == t.taker_order_id for t in trades)
    book = e.books[SYM]
    bid, ask = book.bids.best_price(), book.asks.best_price()
    assert bid == 0 or ask == 0 or bid < ask  # continuous trading starts uncrossed
    assert not book.market_bids and not book.market_asks
    filled: dict[int, int] = {}
    for _, q, b, s in want:
        filled[b] = filled.get(b, 0) + q
        filled[s] = filled.get(s, 0) + q
    for o in live.values():
        rests = o.oid in e.orders
        done = o.oid in cancelled or filled.get(o.oid, 0) == o.qty or o.market
        assert rests != done, o
        if rests:
            assert e.orders[o.oid].remaining == o.qty - filled.get(o.oid, 0)
