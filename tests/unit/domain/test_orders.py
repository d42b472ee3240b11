"""The order state machine: every allowed move works, every other one raises."""

from __future__ import annotations

import itertools

import pytest

from mercato.domain import FINAL, TRANSITIONS, IllegalTransition, Order, OrderStatus
from mercato.domain.types import OrderType, Side, TimeInForce

S = OrderStatus
ALL_PAIRS = list(itertools.product(OrderStatus, OrderStatus))
ALLOWED = [(a, b) for a, b in ALL_PAIRS if b in TRANSITIONS[a]]
DISALLOWED = [(a, b) for a, b in ALL_PAIRS if b not in TRANSITIONS[a]]


def order_in(status: OrderStatus, qty: int = 10) -> Order:
    o = Order(1, 7, "ACME", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, 100, 0, qty, False)
    o.status = int(status)
    return o


def _name(pair: tuple[OrderStatus, OrderStatus]) -> str:
    return f"{pair[0].name}->{pair[1].name}"


def test_transitions_cover_every_status() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


def test_a_new_order_starts_new() -> None:
    o = Order(1, 7, "ACME", Side.SELL, OrderType.LIMIT, TimeInForce.DAY, 100, 0, 10, False)
    assert (o.status, o.filled, o.remaining, o.is_buy) == (S.NEW, 0, 10, False)


@pytest.mark.parametrize("pair", ALLOWED, ids=_name)
def test_every_allowed_transition_works(pair: tuple[OrderStatus, OrderStatus]) -> None:
    o = order_in(pair[0])
    o.transition(pair[1])
    assert o.status == pair[1]


@pytest.mark.parametrize("pair", DISALLOWED, ids=_name)
def test_every_disallowed_transition_raises(pair: tuple[OrderStatus, OrderStatus]) -> None:
    o = order_in(pair[0])
    with pytest.raises(IllegalTransition, match=f"{pair[0].name} -> {pair[1].name}"):
        o.transition(pair[1])
    assert o.status == pair[0], "a refused transition leaves the state alone"


@pytest.mark.parametrize(
    "pair",
    [
        (S.NEW, S.ACCEPTED),
        (S.NEW, S.REJECTED),
        (S.ACCEPTED, S.PARTIALLY_FILLED),
        (S.ACCEPTED, S.FILLED),
        (S.ACCEPTED, S.CANCELLED),
        (S.ACCEPTED, S.EXPIRED),
        (S.ACCEPTED, S.REPLACED),
        (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED),  # another partial fill
        (S.PARTIALLY_FILLED, S.FILLED),
        (S.PARTIALLY_FILLED, S.REPLACED),
        (S.PARTIALLY_FILLED, S.CANCELLED),
        (S.REPLACED, S.REPLACED),  # replaced twice
        (S.REPLACED, S.PARTIALLY_FILLED),
        (S.REPLACED, S.FILLED),
        (S.REPLACED, S.EXPIRED),
    ],
    ids=_name,
)
def test_hand_written_allowed_transitions(pair: tuple[OrderStatus, OrderStatus]) -> None:
    assert pair in ALLOWED


@pytest.mark.parametrize(
    "pair",
    [
        (S.NEW, S.FILLED),  # never traded before being accepted
        (S.NEW, S.CANCELLED),
        (S.NEW, S.NEW),
        (S.ACCEPTED, S.NEW),
        (S.ACCEPTED, S.ACCEPTED),
        (S.ACCEPTED, S.REJECTED),  # rejection happens before acceptance only
        (S.PARTIALLY_FILLED, S.ACCEPTED),
        (S.FILLED, S.CANCELLED),  # a filled order cannot be cancelled
        (S.FILLED, S.PARTIALLY_FILLED),
        (S.CANCELLED, S.FILLED),
        (S.CANCELLED, S.ACCEPTED),
        (S.EXPIRED, S.REPLACED),
        (S.REJECTED, S.ACCEPTED),
    ],
    ids=_name,
)
def test_hand_written_disallowed_transitions(pair: tuple[OrderStatus, OrderStatus]) -> None:
    assert pair in DISALLOWED


def test_final_states_are_exactly_the_dead_ends() -> None:
    assert frozenset({S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED}) == FINAL
    for status in FINAL:
        assert not TRANSITIONS[status]
    for status in set(OrderStatus) - FINAL:
        assert TRANSITIONS[status], f"{status.name} is not final yet leads nowhere"


def test_every_state_is_reachable_from_new() -> None:
    seen, todo = {S.NEW}, [S.NEW]
    while todo:
        for nxt in TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(OrderStatus)


def test_fill_moves_to_partially_filled_then_filled() -> None:
    o = order_in(S.ACCEPTED, qty=10)
    o.fill(3)
    assert (o.status, o.filled, o.remaining) == (S.PARTIALLY_FILLED, 3, 7)
    o.fill(7)
    assert (o.status, o.filled, o.remaining) == (S.FILLED, 10, 0)


def test_fill_of_a_final_order_raises() -> None:
    o = order_in(S.CANCELLED)
    with pytest.raises(IllegalTransition):
        o.fill(1)


def test_overfill_is_caught() -> None:
    o = order_in(S.ACCEPTED, qty=10)
    with pytest.raises(AssertionError, match="overfill"):
        o.fill(11)
