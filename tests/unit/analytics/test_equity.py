"""The equity curve by hand, and returns that leave deposits out."""

from __future__ import annotations

import pytest

from mercato.analytics.equity import Pricing, curve
from mercato.analytics.portfolio import performance

H = 3_600


def test_cash_and_a_marked_position_by_hand() -> None:
    # cash USD (cents), XYZ at 2 decimals: cash = price x qty (mul 1, div 1)
    entries = [
        (10, "USD", 100_000, True),  # deposit 1,000.00 in the first hour
        (20, "USD", -50_000, False),  # buys 5 XYZ at 100.00 ...
        (20, "XYZ", 5, False),
        (H + 5, "XYZ", 2, True),  # a deposit of 2 XYZ in the second hour
    ]
    closes = {"XYZ": [(H, 10_000), (2 * H, 11_000)]}  # bar ends and closes
    pts = curve(
        "USD", {}, entries, closes, {"XYZ": Pricing(1, 1, 9_000)}, start=0, end=3 * H, interval=H
    )
    assert pts == [
        (H, 50_000 + 5 * 10_000, 100_000),  # marked at the first bar's close
        (2 * H, 50_000 + 7 * 11_000, 2 * 11_000),  # the 2 XYZ came in: a flow, at the mark
        (3 * H, 50_000 + 7 * 11_000, 0),  # no new bar: the mark carries
    ]
    # before any bar: the reference price; opening balances (retention's folded part)
    early = curve(
        "USD",
        {"USD": 7, "XYZ": -1},
        [],
        {},
        {"XYZ": Pricing(1, 1, 9_000)},
        start=0,
        end=H,
        interval=H,
    )
    assert early == [(H, 7 - 9_000, 0)]  # a short counts negative
    with pytest.raises(ValueError):
        curve("USD", {}, [], {}, {}, start=5, end=0, interval=H)


def test_a_deposit_is_not_a_return() -> None:
    points = [(0, 1_000), (1, 1_100), (2, 2_100), (3, 2_310)]
    flows = [0, 0, 1_000, 0]  # 1,000 deposited during the third period
    p = performance(points, flows=flows)
    assert p.periods == 3
    assert p.best_period == pytest.approx(0.1) and p.worst_period == pytest.approx(0.0)
    assert p.total_return == pytest.approx(1.1 * 1.0 * 1.1 - 1)  # time-weighted
    naive = performance(points)
    assert naive.total_return == pytest.approx(1.31)  # what counting the deposit would say
    with pytest.raises(ValueError):
        performance(points, flows=[0, 0])
