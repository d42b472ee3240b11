"""The core's bounded table of client order ids under random orders, cancels, fills, ends
of day and snapshots: a repeat names today's order with that id while the table keeps it;
an id is taken again only once its order ended and the table forgot it; the table never
holds more than the live orders and ``max_done`` finished ones; and snapshots taken at
random points change nothing (same events, same state hash, same bytes)."""

from __future__ import annotations

from hypothesis import event, given
from hypothesis import strategies as st

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    DuplicateClientOrder,
    EndOfDay,
    Event,
    NewOrder,
    OrderAccepted,
    SetInstrumentRisk,
)
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce
from mercato.engine.core import Core

BUY, SELL = int(Side.BUY), int(Side.SELL)
SETUP: list[Command] = [
    AddInstrument(symbol="X", tick_size=1, lot_size=1, price_scale=2),
    SetInstrumentRisk(symbol="X", reference_price=100),
    *(CreateAccount(account=a, kind=AccountKind.CASH) for a in (1, 2)),
    *(Deposit(account=a, asset="USD", amount=10**12) for a in (1, 2)),
    *(Deposit(account=a, asset="X", amount=10**6, cost=10**8) for a in (1, 2)),
]

orders = st.builds(
    lambda acct, side, price, cid, ioc: ("new", acct, side, price, cid, ioc),
    st.sampled_from([1, 2]),
    st.sampled_from([BUY, SELL]),
    st.integers(98, 102),
    st.sampled_from(["", "a", "b", "c", "d", "e"]),
    st.booleans(),
)
steps = st.lists(
    st.one_of(orders, orders, orders, st.tuples(st.just("cancel"), st.integers(0, 40))),
    max_size=60,
)


def commands(plan: list[tuple[object, ...]], eod_every: int) -> list[Command]:
    out: list[Command] = list(SETUP)
    ids: list[int] = []
    for i, step in enumerate(plan, 1):
        if step[0] == "new":
            _, acct, side, price, cid, ioc = step
            ids.append(i)
            out.append(
                NewOrder(
                    ts=i,
                    order_id=i,
                    account=acct,  # type: ignore[arg-type]
                    symbol="X",
                    side=side,  # type: ignore[arg-type]
                    type=int(OrderType.LIMIT),
                    qty=1,
                    price=price,  # type: ignore[arg-type]
                    tif=int(TimeInForce.IOC if ioc else TimeInForce.GTC),
                    client_order_id=cid,  # type: ignore[arg-type]
                )
            )
        elif ids:
            pick = ids[step[1] % len(ids)]  # type: ignore[operator]
            out.append(CancelOrder(ts=i, order_id=pick, symbol="X"))
        if eod_every and i % eod_every == 0:
            out.append(EndOfDay(ts=i))
    return out


def run(core: Core, cmds: list[Command], keys: dict[tuple[int, str], int]) -> list[list[Event]]:
    out = []
    ids = core.client_ids
    for cmd in cmds:
        live_before = set(core.holds)
        events = core.process(cmd)
        out.append(events)
        for e in events:
            if isinstance(e, DuplicateClientOrder):
                assert keys[(e.account, e.client_order_id)] == e.order_id, e
                event("a repeat answered")
            elif isinstance(e, OrderAccepted) and e.client_order_id:
                key = (e.account, e.client_order_id)
                prior = keys.get(key)
                if prior is not None:  # taken again: its order ended and was forgotten
                    assert prior not in live_before and ids.forgotten > 0, (e, prior)
                    event("an id taken again")
                keys[key] = e.order_id
        if isinstance(cmd, EndOfDay):
            keys.clear()
        assert len(ids.done_items()) <= ids.max_done
        for account, cid, oid in ids.live_items():
            assert oid in core.holds and keys[(account, cid)] == oid, (account, cid)
    return out


@given(
    plan=steps,
    kept=st.integers(0, 3),
    eod_every=st.sampled_from([0, 0, 17]),
    cuts=st.lists(st.integers(0, 80), max_size=3),
)
def test_bounded_client_ids_replay_and_survive_snapshots(
    plan: list[tuple[object, ...]], kept: int, eod_every: int, cuts: list[int]
) -> None:
    cmds = commands(plan, eod_every)
    straight = Core(kept)
    expected = run(straight, cmds, {})

    core, done = Core(kept), 0
    got: list[list[Event]] = []
    keys: dict[tuple[int, str], int] = {}
    for cut in sorted(min(c, len(cmds)) for c in cuts):
        got += run(core, cmds[done:cut], keys)
        done = cut
        data = core.encode()
        core = Core.restore(data)
        assert core.encode() == data
    got += run(core, cmds[done:], keys)

    assert got == expected
    assert core.state_hash() == straight.state_hash()
    assert core.client_ids.done_items() == straight.client_ids.done_items()
