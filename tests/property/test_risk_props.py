"""Pre-trade risk on random inputs: the collar is exact, the throttle never lets too much by."""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from mercato.domain.types import Side
from mercato.engine.risk import (
    WINDOW_NS,
    KillSwitches,
    LimitsBook,
    RiskLimits,
    RiskReject,
    Throttle,
    check_new_order,
    collar_ok,
)

SIDES = st.sampled_from([Side.BUY, Side.SELL])
REFERENCES = st.integers(1, 10**9)
BASIS_POINTS = st.integers(0, 20_000)
BPS_ONE = 10_000  # basis points in one


@st.composite
def collared(draw: st.DrawFn) -> tuple[Side, int, int, int]:
    """(side, price, reference, bps) with the price often within a unit or two of a bound."""
    side, reference, bps = draw(SIDES), draw(REFERENCES), draw(BASIS_POINTS)
    band = BPS_ONE + bps if side == Side.BUY else BPS_ONE - bps
    near = reference * band // BPS_ONE + draw(st.integers(-2, 2))
    price = draw(st.one_of(st.just(near), st.integers(1, 2 * 10**9)))
    return side, max(price, 1), reference, bps


def fraction_ok(side: Side, price: int, reference: int, bps: int) -> bool:
    if side == Side.BUY:
        return Fraction(price) <= Fraction(reference) * (1 + Fraction(bps, BPS_ONE))
    return Fraction(price) >= Fraction(reference) * (1 - Fraction(bps, BPS_ONE))


@given(collared())
def test_collar_agrees_with_exact_fractions(case: tuple[Side, int, int, int]) -> None:
    side, price, reference, bps = case
    expected = fraction_ok(side, price, reference, bps)
    assert collar_ok(side, price, reference, bps) is expected
    if bps == 0:
        return  # 0 means no collar at all
    result = check_new_order(
        account=1,
        side=side,
        qty=1,
        price=price,
        notional=price,
        open_orders=0,
        position=0,
        gross_exposure=0,
        day_pnl=0,
        reference_price=reference,
        ts=0,
        cash_account=False,
        available_to_sell=0,
        buying_power=10**12,
        limits=LimitsBook(RiskLimits(collar_bps=bps)),
        throttle=Throttle(),
        kills=KillSwitches(),
    )
    assert result == (None if expected else RiskReject.PRICE_COLLAR)


@given(
    st.integers(1, 5),
    st.lists(st.integers(0, 3 * WINDOW_NS // 2), max_size=60).map(sorted),
)
def test_throttle_matches_a_naive_window(limit: int, stamps: list[int]) -> None:
    """Admitted iff fewer than ``limit`` admitted stamps lie in (ts - 1s, ts]."""
    throttle = Throttle()
    admitted: list[int] = []
    for ts in stamps:
        expected = sum(1 for a in admitted if a > ts - WINDOW_NS) < limit
        assert throttle.admit(1, ts, limit) is expected
        if expected:
            admitted.append(ts)
        assert len(throttle.recent(1)) <= limit
