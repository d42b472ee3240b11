"""Positions on random fill sequences: PnL conserves cash exactly, in integers."""

from hypothesis import given
from hypothesis import strategies as st

from mercato.domain.types import Side
from mercato.engine.positions import Position, Positions

SIDES = st.sampled_from([Side.BUY, Side.SELL])
FILL = st.tuples(SIDES, st.integers(1, 1000), st.integers(0, 10**6))  # side, qty, cash
FILLS = st.lists(FILL, max_size=50)
MARK_PER_UNIT = st.integers(0, 10**4)


def _flow(side: Side, cash: int) -> int:
    return cash if side == Side.SELL else -cash


def _check_signs(p: Position) -> None:
    if p.qty > 0:
        assert p.cost >= 0
    elif p.qty < 0:
        assert p.cost <= 0
    else:
        assert p.cost == 0


@given(FILLS, MARK_PER_UNIT)
def test_realized_plus_unrealized_equals_cash_plus_marked_value(
    fills: list[tuple[Side, int, int]], mark: int
) -> None:
    p = Position()
    realized = 0
    cash = 0  # received from sells minus paid for buys
    for side, qty, amount in fills:
        realized += p.apply_fill(side, qty, amount)
        cash += _flow(side, amount)
        _check_signs(p)
        assert realized == p.realized
        marked = mark * abs(p.qty)
        signed_marked = marked if p.qty >= 0 else -marked
        assert realized + p.unrealized(marked) == cash + signed_marked


@given(FILLS, st.integers(0, 10**6))
def test_full_close_leaves_nothing(fills: list[tuple[Side, int, int]], close_cash: int) -> None:
    p = Position()
    cash = 0
    for side, qty, amount in fills:
        p.apply_fill(side, qty, amount)
        cash += _flow(side, amount)
        if p.qty == 0:  # flat mid-sequence: everything realized
            assert p.cost == 0 and p.realized == cash
    if p.qty:
        side = Side.SELL if p.qty > 0 else Side.BUY
        p.apply_fill(side, abs(p.qty), close_cash)
        cash += _flow(side, close_cash)
    assert (p.qty, p.cost) == (0, 0)
    assert p.realized == cash  # a round trip realizes exactly its cash


@given(FILLS)
def test_short_is_the_mirror_of_long(fills: list[tuple[Side, int, int]]) -> None:
    """Swapping every buy and sell negates quantity, cost and realized PnL (rounding too)."""
    p, m = Position(), Position()
    for side, qty, amount in fills:
        other = Side.SELL if side == Side.BUY else Side.BUY
        assert p.apply_fill(side, qty, amount) == -m.apply_fill(other, qty, amount)
        assert (p.qty, p.cost) == (-m.qty, -m.cost)


@given(
    st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["A", "B"]), FILL), max_size=60),
    st.fixed_dictionaries({"A": MARK_PER_UNIT, "B": MARK_PER_UNIT}),
)
def test_container_totals_are_sums_of_positions(
    fills: list[tuple[int, str, tuple[Side, int, int]]], prices: dict[str, int]
) -> None:
    ps = Positions()
    cash: dict[int, int] = {}
    for account, symbol, (side, qty, amount) in fills:
        ps.apply_fill(account, symbol, side, qty, amount)
        cash[account] = cash.get(account, 0) + _flow(side, amount)

    def mark(symbol: str, qty: int) -> int:
        return prices[symbol] * qty

    for account in ps.accounts():
        net = ps.net_exposure(mark, account)
        assert ps.realized(account) + ps.unrealized(mark, account) == cash[account] + net
        assert ps.gross_exposure(mark, account) >= abs(net)
    assert ps.realized() == sum(ps.realized(a) for a in ps.accounts())
    assert ps.gross_exposure(mark) == sum(ps.gross_exposure(mark, a) for a in ps.accounts())
    assert ps.realized() + ps.unrealized(mark) == sum(cash.values()) + ps.net_exposure(mark)
