"""Snapshots: restore gives the same state hash and the same events from then on."""

from __future__ import annotations

import pytest

from mercato.domain import AddInstrument, Command
from mercato.engine import Engine, encode, restore, state_hash

from .helpers import DAY, Market, buy, cancel, eod, halt, replace, sell

HISTORY: list[Command] = [
    AddInstrument(symbol="OTHER", tick_size=5, lot_size=10),
    buy(1, 10, 100, acct=1),
    buy(2, 10, 100, acct=2, tif=DAY),
    buy(3, 5, 99, acct=3),
    sell(4, 5, 103, acct=4, post_only=True),
    sell(5, 5, 104, acct=1),
    sell(6, 3, 100, acct=5),  # trades: last price 100
    buy(7, 5, stop=103, acct=6),
    sell(8, 5, 95, stop=99, acct=7, tif=DAY),
    buy(9, 20, 105, sym="OTHER"),
    replace(1, 100, 12),  # loses priority behind 2
    halt("OTHER"),
]
FUTURE: list[Command] = [
    sell(20, 12, 99, acct=8),  # sweeps 100 and 99; last 99
    buy(21, 4, acct=9),  # last 103: triggers 7
    sell(22, 30, acct=10),  # last down: triggers 8
    replace(2, 101, 5),
    cancel(3),
    eod(),
    buy(23, 10, 105, sym="OTHER"),  # still halted
    buy(25, 10, 96, acct=11),
    buy(24, 1, 200),
]


def run(engine: Engine, cmds: list[Command]) -> list[object]:
    return [e for c in cmds for e in engine.process(c)]


def test_restore_gives_the_same_state_hash() -> None:
    m = Market()
    run(m.engine, HISTORY)
    data = encode(m.engine)
    restored = restore(data)
    assert state_hash(restored) == state_hash(m.engine)
    assert encode(restored) == data


def test_restore_gives_identical_subsequent_events() -> None:
    m = Market()
    run(m.engine, HISTORY)
    restored = restore(encode(m.engine))
    original_events = run(m.engine, FUTURE)
    restored_events = run(restored, FUTURE)
    assert restored_events == original_events
    assert len(original_events) > 20
    assert state_hash(restored) == state_hash(m.engine)


def test_restore_keeps_time_priority_stops_and_last_price() -> None:
    m = Market()
    run(m.engine, HISTORY)
    restored = restore(encode(m.engine))
    for sym in ("ACME", "OTHER"):
        a, b = m.engine.book(sym), restored.book(sym)
        assert a.bids.depth(0) == b.bids.depth(0) and a.asks.depth(0) == b.asks.depth(0)
        assert [list(lv.orders) for lv in a.bids.levels_best_first()] == [
            list(lv.orders) for lv in b.bids.levels_best_first()
        ]
        assert list(a.stops) == list(b.stops)
        assert (a.last_price, a.status) == (b.last_price, b.status)
    assert list(restored.orders) == list(m.engine.orders)
    assert restored.seq == m.engine.seq


def test_state_hash_differs_when_state_differs() -> None:
    a, b = Market(), Market()
    a(buy(1, 10, 100))
    b(buy(1, 10, 101))
    assert state_hash(a.engine) != state_hash(b.engine)


def test_state_hash_is_the_same_for_the_same_commands() -> None:
    a, b = Market(), Market()
    run(a.engine, HISTORY + FUTURE)
    run(b.engine, HISTORY + FUTURE)
    assert state_hash(a.engine) == state_hash(b.engine)


def test_restore_refuses_another_snapshot_version() -> None:
    import msgspec

    from mercato.engine.snapshot import capture

    state = capture(Market().engine)
    state.version += 1
    with pytest.raises(ValueError, match="version"):
        restore(msgspec.msgpack.encode(state))
