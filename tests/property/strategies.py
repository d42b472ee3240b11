"""Hypothesis strategies for engine commands, shared by the property tests.

Prices sit a few ticks around ``BASE`` so that orders cross often; most commands are well
formed and a few carry one flaw, so that every rejection reason turns up too.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from msgspec.structs import replace as with_fields

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    EndOfDay,
    NewOrder,
    ReplaceOrder,
    SetTradingStatus,
)
from mercato.domain.types import TradingStatus

from .reference import BUY, DAY, FOK, GTC, GTD, IOC, LIMIT, MARKET, SELL, STOP, STOP_LIMIT

# symbol -> (tick size, lot size). "ZZZ" is unknown until a step adds it.
SPEC = {"AAA": (1, 1), "BBB": (5, 10), "ZZZ": (1, 1)}
START = ("AAA", "BBB")
BASE = 100  # prices are BASE +- a few ticks, so orders cross often


# -- command strategies ---------------------------------------------------------------------

symbols = st.sampled_from(["AAA"] * 4 + ["BBB"] * 3 + ["ZZZ"])
ticks = st.integers(min_value=-4, max_value=4)
lots = st.integers(min_value=1, max_value=6)
# most commands are well formed; a few carry one flaw
NEW_FLAWS = ["tick", "lot", "zero_qty", "price_on_market", "stop_on_limit", "post_only_ioc"]
NEW_FLAWS += [
    "bad_side",
    "bad_type",
    "bad_tif",
    "no_stop",
    "negative_price",
    "expire_not_gtd",
    "bad_self_trade",
]


@st.composite
def new_orders(draw: st.DrawFn) -> NewOrder:
    """A new order (order id 0: the state machine picks the id)."""
    sym = draw(symbols)
    tick, lot = SPEC[sym]
    kind = draw(st.sampled_from([LIMIT] * 6 + [MARKET, STOP, STOP_LIMIT]))
    tif = draw(st.sampled_from([GTC] * 4 + [DAY] * 2 + [IOC, FOK, GTD, GTD]))
    price = BASE + draw(ticks) * tick if kind in (LIMIT, STOP_LIMIT) else 0
    stop = BASE + draw(ticks) * tick if kind in (STOP, STOP_LIMIT) else 0
    post_only = kind == LIMIT and tif in (GTC, DAY, GTD) and draw(st.integers(0, 4)) == 0
    fields: dict[str, Any] = dict(
        order_id=0,
        account=draw(st.integers(min_value=1, max_value=4)),
        symbol=sym,
        side=draw(st.sampled_from([BUY, SELL])),
        type=kind,
        qty=draw(lots) * lot,
        tif=tif,
        price=price,
        stop_price=stop,
        post_only=post_only,
        # absolute core times: the commands' ts count 1, 2, ...; some are already past
        expire_ts=draw(st.integers(min_value=1, max_value=60)) if tif == GTD else 0,
        self_trade=draw(st.sampled_from([0] * 6 + [1, 2, 3])),
    )
    flaw = draw(st.sampled_from([None] * 60 + NEW_FLAWS))
    if flaw == "tick":
        fields["price" if kind in (LIMIT, STOP_LIMIT) else "stop_price"] += 1 if tick > 1 else 0
    elif flaw == "lot":
        fields["qty"] += 1 if lot > 1 else 0
    elif flaw == "zero_qty":
        fields["qty"] = 0
    elif flaw == "price_on_market":
        fields["type"], fields["price"], fields["stop_price"] = MARKET, BASE, 0
    elif flaw == "stop_on_limit":
        fields["type"], fields["price"], fields["stop_price"] = LIMIT, BASE, BASE
    elif flaw == "post_only_ioc":
        fields["type"], fields["price"], fields["stop_price"] = LIMIT, BASE, 0
        fields["tif"], fields["post_only"] = IOC, True
    elif flaw == "bad_side":
        fields["side"] = 0
    elif flaw == "bad_type":
        fields["type"] = 5
    elif flaw == "bad_tif":
        fields["tif"] = 9
    elif flaw == "bad_self_trade":
        fields["self_trade"] = 4
    elif flaw == "expire_not_gtd":
        fields["tif"], fields["expire_ts"] = GTC, 10
    elif flaw == "no_stop":
        fields["type"], fields["stop_price"] = STOP, 0
    elif flaw == "negative_price":
        fields["type"], fields["price"], fields["stop_price"] = LIMIT, -tick, 0
    return NewOrder(**fields)


order_batches = st.lists(
    st.tuples(new_orders(), st.integers(min_value=0, max_value=14), st.integers(0, 999)),
    min_size=1,
    max_size=4,
)  # (order, reuse an old id when 0, which one)
ReplaceArgs = tuple[int, str, int, "int | None", "str | None"]
replace_args = st.tuples(
    ticks,  # new price, in ticks from BASE ("new")...
    st.sampled_from(["new", "new", "same", "cross"]),  # ...same price, or the best opposite
    lots,  # new quantity in lots
    st.one_of(st.none(), ticks),  # new stop price (waiting stops only)
    st.sampled_from([None] * 12 + ["tick", "lot", "zero_qty", "price", "neg_stop"]),
)


@st.composite
def command_lists(draw: st.DrawFn, max_size: int = 80) -> list[Command]:
    """A whole session: both instruments, then orders with ids from a small pool (so that
    cancels and replaces hit live orders, and some ids are duplicates or reused)."""
    cmds: list[Command] = [
        AddInstrument(symbol=sym, tick_size=SPEC[sym][0], lot_size=SPEC[sym][1]) for sym in START
    ]
    order_ids = st.integers(min_value=1, max_value=40)
    on_both_grids = st.integers(min_value=-4, max_value=4).map(lambda t: BASE + 5 * t)
    for ts in range(1, draw(st.integers(min_value=0, max_value=max_size)) + 1):
        kind = draw(st.sampled_from(["new"] * 6 + ["cancel", "replace", "replace", "admin"]))
        sym = draw(st.sampled_from(START))
        if kind == "new":
            cmd: Command = with_fields(draw(new_orders()), order_id=draw(order_ids))
        elif kind == "cancel":
            cmd = CancelOrder(order_id=draw(order_ids), symbol=sym)
        elif kind == "replace":
            cmd = ReplaceOrder(
                order_id=draw(order_ids),
                symbol=sym,
                price=draw(st.sampled_from([0, 0]) | on_both_grids),
                qty=10 * draw(lots),
                stop_price=draw(st.just(0) | on_both_grids),
            )
        else:
            status = draw(st.sampled_from([TradingStatus.OPEN, TradingStatus.HALTED, None]))
            cmd = EndOfDay() if status is None else SetTradingStatus(symbol=sym, status=status)
        cmds.append(with_fields(cmd, ts=ts))
    return cmds
