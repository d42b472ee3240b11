"""Positions: signed quantity, exact integer cost basis, realized and unrealized PnL."""

from fractions import Fraction

import pytest

from mercato.domain.types import Side
from mercato.engine.positions import Position, Positions, marks_per_unit

BUY, SELL = Side.BUY, Side.SELL


def test_open_long() -> None:
    p = Position()
    assert p.apply_fill(BUY, 10, 1000) == 0
    assert (p.qty, p.cost, p.realized) == (10, 1000, 0)
    assert p.avg_price == Fraction(100)


def test_open_short() -> None:
    p = Position()
    assert p.apply_fill(SELL, 10, 1000) == 0
    assert (p.qty, p.cost, p.realized) == (-10, -1000, 0)
    assert p.avg_price == Fraction(100)


def test_add_to_long_adds_to_cost() -> None:
    p = Position()
    p.apply_fill(BUY, 10, 1000)
    assert p.apply_fill(BUY, 5, 550) == 0
    assert (p.qty, p.cost) == (15, 1550)
    assert p.avg_price == Fraction(1550, 15)
    assert p.avg_price is not None and p.avg_price.as_integer_ratio() == (310, 3)


def test_add_to_short_adds_to_cost() -> None:
    p = Position()
    p.apply_fill(SELL, 10, 1000)
    assert p.apply_fill(SELL, 10, 1200) == 0
    assert (p.qty, p.cost) == (-20, -2200)


def test_partial_reduce_long_releases_cost_pro_rata() -> None:
    p = Position()
    p.apply_fill(BUY, 10, 1000)
    assert p.apply_fill(SELL, 4, 480) == 480 - 400
    assert (p.qty, p.cost, p.realized) == (6, 600, 80)


def test_partial_reduce_short() -> None:
    p = Position()
    p.apply_fill(SELL, 10, 1000)
    assert p.apply_fill(BUY, 4, 360) == 400 - 360  # bought back cheaper: a gain
    assert (p.qty, p.cost, p.realized) == (-6, -600, 40)


def test_partial_reduce_rounds_toward_zero_and_full_close_is_exact() -> None:
    long = Position()
    long.apply_fill(BUY, 3, 100)
    assert long.apply_fill(SELL, 1, 40) == 40 - 33  # 100 * 1 / 3 = 33.3 -> 33
    assert long.cost == 67
    assert long.apply_fill(SELL, 1, 40) == 40 - 33  # 67 * 1 / 2 = 33.5 -> 33
    assert long.apply_fill(SELL, 1, 40) == 40 - 34  # the rest on the final close
    assert (long.qty, long.cost, long.realized) == (0, 0, 120 - 100)

    short = Position()  # the mirror image: same magnitudes, rounded toward zero too
    short.apply_fill(SELL, 3, 100)
    assert short.apply_fill(BUY, 1, 40) == 33 - 40
    assert short.cost == -67
    assert short.apply_fill(BUY, 2, 80) == 67 - 80
    assert (short.qty, short.cost, short.realized) == (0, 0, 100 - 120)


def test_full_close_releases_all_cost() -> None:
    p = Position()
    p.apply_fill(BUY, 7, 701)
    assert p.apply_fill(SELL, 7, 650) == 650 - 701
    assert (p.qty, p.cost, p.realized) == (0, 0, -51)
    assert p.avg_price is None
    assert p.unrealized(0) == 0


def test_flip_long_to_short() -> None:
    p = Position()
    p.apply_fill(BUY, 10, 1000)
    # sell 15 for 1800: 10 of them (1200) close the long, 5 (600) open a short
    assert p.apply_fill(SELL, 15, 1800) == 1200 - 1000
    assert (p.qty, p.cost, p.realized) == (-5, -600, 200)
    assert p.avg_price == Fraction(120)


def test_flip_short_to_long() -> None:
    p = Position()
    p.apply_fill(SELL, 10, 1000)
    # buy 15 for 1500: 10 of them (1000) close the short, 5 (500) open a long
    assert p.apply_fill(BUY, 15, 1500) == 0
    assert (p.qty, p.cost) == (5, 500)
    assert p.apply_fill(SELL, 5, 400) == -100
    assert (p.qty, p.cost, p.realized) == (0, 0, -100)


def test_flip_splits_cash_exactly() -> None:
    p = Position()
    p.apply_fill(BUY, 1, 10)
    # sell 3 for 100: closing part 100 * 1 // 3 = 33, opening part gets the other 67
    assert p.apply_fill(SELL, 3, 100) == 33 - 10
    assert (p.qty, p.cost) == (-2, -67)


def test_unrealized_long_and_short() -> None:
    long = Position()
    long.apply_fill(BUY, 10, 1000)
    assert long.unrealized(1100) == 100
    assert long.unrealized(900) == -100
    short = Position()
    short.apply_fill(SELL, 10, 1000)
    assert short.unrealized(1100) == -100
    assert short.unrealized(900) == 100


@pytest.mark.parametrize("qty", [0, -1])
def test_non_positive_qty_is_refused_and_changes_nothing(qty: int) -> None:
    p = Position()
    p.apply_fill(BUY, 10, 1000)
    with pytest.raises(ValueError, match="quantity"):
        p.apply_fill(SELL, qty, 0)
    assert (p.qty, p.cost, p.realized) == (10, 1000, 0)


def test_negative_cash_and_negative_mark_are_refused() -> None:
    p = Position()
    with pytest.raises(ValueError, match="cash"):
        p.apply_fill(BUY, 1, -1)
    with pytest.raises(ValueError, match="marked"):
        p.unrealized(-1)
    assert p == Position()


def test_zero_cash_fill_is_allowed() -> None:
    p = Position()
    p.apply_fill(BUY, 2, 0)
    assert (p.qty, p.cost) == (2, 0)
    assert p.apply_fill(SELL, 1, 5) == 5


def test_container_by_account_and_symbol() -> None:
    ps = Positions()
    assert ps.apply_fill(1, "AAPL", BUY, 10, 1000) == 0
    assert ps.apply_fill(1, "MSFT", SELL, 5, 2000) == 0
    assert ps.apply_fill(2, "AAPL", SELL, 4, 400) == 0
    assert ps.apply_fill(1, "AAPL", SELL, 5, 600) == 100
    assert ps.get(1, "AAPL") == Position(5, 500, 100)
    assert ps.get(2, "AAPL") == Position(-4, -400, 0)
    assert ps.get(3, "AAPL") == Position()
    assert ps.accounts() == [1, 2]
    assert [(a, s) for a, s, _ in ps.items()] == [(1, "AAPL"), (1, "MSFT"), (2, "AAPL")]
    assert [s for _, s, _ in ps.items(2)] == ["AAPL"]


def test_container_exposure_and_pnl() -> None:
    ps = Positions()
    ps.apply_fill(1, "AAPL", BUY, 10, 1000)
    ps.apply_fill(1, "MSFT", SELL, 5, 2000)
    ps.apply_fill(2, "AAPL", SELL, 4, 400)
    ps.apply_fill(2, "MSFT", BUY, 3, 1200)
    ps.apply_fill(2, "MSFT", SELL, 3, 1500)  # flat again: realized 300, no exposure
    mark = marks_per_unit({"AAPL": 110, "MSFT": 390})
    assert ps.gross_exposure(mark, 1) == 1100 + 1950
    assert ps.net_exposure(mark, 1) == 1100 - 1950
    assert ps.gross_exposure(mark, 2) == 440
    assert ps.net_exposure(mark, 2) == -440
    assert ps.gross_exposure(mark) == 1100 + 1950 + 440
    assert ps.net_exposure(mark) == 1100 - 1950 - 440
    assert ps.unrealized(mark, 1) == 100 + 50
    assert ps.unrealized(mark, 2) == -40
    assert ps.unrealized(mark) == 110
    assert ps.realized(1) == 0
    assert ps.realized(2) == 300
    assert ps.realized() == 300


def test_container_refused_fill_stores_nothing() -> None:
    ps = Positions()
    with pytest.raises(ValueError):
        ps.apply_fill(1, "AAPL", BUY, 0, 0)
    assert ps.items() == [] and ps.accounts() == []


def test_missing_mark_raises() -> None:
    ps = Positions()
    ps.apply_fill(1, "AAPL", BUY, 1, 100)
    with pytest.raises(KeyError):
        ps.gross_exposure(marks_per_unit({}))
