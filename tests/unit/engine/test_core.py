"""The risk core: accounts and money, pre-trade risk, idempotency, kill switches, contingent
orders and the paper venue, one behaviour per test."""

from __future__ import annotations

from typing import Any

import pytest

from mercato.domain.commands import (
    AddCurrency,
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    MarketPrice,
    NewBracket,
    NewOco,
    NewOrder,
    ReplaceOrder,
    SetInstrumentRisk,
    SetKillSwitch,
    SetRiskLimits,
    Withdraw,
)
from mercato.domain.events import (
    DuplicateClientOrder,
    Event,
    LedgerPosted,
    OrderAccepted,
    OrderCancelled,
    OrdersLinked,
    OrderTriggered,
    Rejected,
    StopMoved,
    StopTrails,
    Trade,
)
from mercato.domain.ledger import EXTERNAL, FEES, PAPER, fees_of
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce, Venue
from mercato.engine.core import INTERNAL_IDS, Core

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, STOP = OrderType.LIMIT, OrderType.MARKET, OrderType.STOP


def core_with(*accounts: tuple[int, AccountKind, int], **risk: Any) -> Core:
    """A core with instrument X (cents, 0.10% maker / 0.20% taker unless told) and the
    accounts (id, kind, cash deposited)."""
    c = Core()
    c.process(AddInstrument(symbol="X", tick_size=1, lot_size=1, price_scale=2))
    params = {"maker_fee_bps": 10, "taker_fee_bps": 20, "reference_price": 10_000, **risk}
    c.process(SetInstrumentRisk(symbol="X", **params))
    for acct, kind, cash in accounts:
        c.process(CreateAccount(account=acct, kind=kind))
        if cash:
            c.process(Deposit(account=acct, asset="USD", amount=cash))
    return c


def order(oid: int, acct: int, side: int, qty: int, price: int = 0, **kw: Any) -> NewOrder:
    kind = kw.pop("type", LIMIT if price else MARKET)
    return NewOrder(
        order_id=oid, account=acct, symbol="X", side=side, type=kind, qty=qty, price=price, **kw
    )


def rejected(events: list[Event]) -> list[str]:
    return [e.reason for e in events if isinstance(e, Rejected)]


def types(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


CASH, MARGIN = AccountKind.CASH, AccountKind.MARGIN


# -- accounts and money ---------------------------------------------------------------------


def test_accounts_and_currencies_are_checked() -> None:
    c = core_with((1, CASH, 0))
    assert rejected(c.process(CreateAccount(account=1))) == ["duplicate_account"]
    assert rejected(c.process(CreateAccount(account=0))) == ["invalid_account"]
    assert rejected(c.process(CreateAccount(account=2, kind=9))) == ["invalid_account"]
    assert rejected(c.process(CreateAccount(account=2, currency="EUR"))) == ["unknown_currency"]
    c.process(AddCurrency(code="EUR", scale=2))
    assert types(c.process(CreateAccount(account=2, currency="EUR"))) == ["AccountCreated"]
    assert rejected(c.process(AddCurrency(code="EUR", scale=2))) == ["duplicate_currency"]
    # an EUR account cannot trade or hold a USD instrument
    c.process(Deposit(account=2, asset="EUR", amount=10**6))
    assert rejected(c.process(order(1, 2, BUY, 1, 10_000))) == ["invalid_currency"]
    assert rejected(c.process(Deposit(account=2, asset="X", amount=1))) == ["invalid_currency"]


def test_deposit_and_withdraw_post_balanced_entries() -> None:
    c = core_with((1, CASH, 0))
    (ev,) = c.process(Deposit(account=1, asset="USD", amount=500, ref=7))
    assert isinstance(ev, LedgerPosted) and ev.kind == "deposit" and ev.ref == 7
    assert {(e.account, e.amount) for e in ev.entries} == {(EXTERNAL, -500), (1, 500)}
    assert rejected(c.process(Withdraw(account=1, asset="USD", amount=501))) == [
        "insufficient_funds"
    ]
    assert rejected(c.process(Withdraw(account=1, asset="USD", amount=0))) == ["invalid_amount"]
    assert rejected(c.process(Deposit(account=9, asset="USD", amount=1))) == ["unknown_account"]
    assert rejected(c.process(Deposit(account=1, asset="Y", amount=1))) == ["unknown_asset"]
    c.process(Withdraw(account=1, asset="USD", amount=200))
    assert c.cash(1) == 300 and c.ledger.balance(EXTERNAL, "USD") == -300


def test_reserved_cash_cannot_be_withdrawn() -> None:
    c = core_with((1, CASH, 100_000))
    c.process(order(1, 1, BUY, 5, 10_000))  # 50_000 + 0.20% fee = 50_100 held
    assert c.accounts[1].reserved == 50_100 and c.buying_power(1) == 49_900
    assert rejected(c.process(Withdraw(account=1, asset="USD", amount=49_901))) == [
        "insufficient_funds"
    ]
    assert not rejected(c.process(Withdraw(account=1, asset="USD", amount=49_900)))


def test_instrument_deposit_sets_the_position_and_withdrawal_takes_cost_with_it() -> None:
    c = core_with((1, CASH, 0))
    c.process(Deposit(account=1, asset="X", amount=10, cost=95_000))
    pos = c.positions.get(1, "X")
    assert (pos.qty, pos.cost, c.ledger.balance(1, "X")) == (10, 95_000, 10)
    c.process(Withdraw(account=1, asset="X", amount=4))
    assert (pos.qty, pos.cost, pos.realized) == (6, 57_000, 0)


# -- settlement ---------------------------------------------------------------------------


def test_a_trade_settles_cash_instrument_and_fees() -> None:
    c = core_with((1, CASH, 1_000_000), (2, CASH, 0))
    c.process(Deposit(account=2, asset="X", amount=10, cost=0))
    c.process(order(1, 2, SELL, 10, 10_001))  # maker
    events = c.process(order(2, 1, BUY, 4, 10_001))  # taker
    (post,) = [e for e in events if isinstance(e, LedgerPosted)]
    cash = 4 * 10_001
    assert post.kind == "trade"
    assert fees_of(post.entries) == {1: cash * 20 // 10_000, 2: cash * 10 // 10_000}
    assert c.cash(1) == 1_000_000 - cash - 80
    assert c.cash(2) == cash - 40
    assert c.ledger.balance(FEES, "USD") == 120
    assert c.ledger.balance(1, "X") == 4 and c.ledger.balance(2, "X") == 6
    # the buyer's order ended: its hold is gone; the seller still holds 6 for its order
    assert c.accounts[1].reserved == 0 and c.accounts[2].selling["X"] == 6


def test_cash_rounding_when_scales_do_not_divide() -> None:
    """Quantities in thousandths and prices in cents, cash in cents: the trade's cash is
    rounded down, the reservation up."""
    c = Core()
    c.process(AddInstrument(symbol="BTC", tick_size=1, lot_size=1, price_scale=2, qty_scale=3))
    c.process(CreateAccount(account=1))
    c.process(CreateAccount(account=2))
    c.process(Deposit(account=1, asset="USD", amount=10**6))
    c.process(Deposit(account=2, asset="BTC", amount=1_000))
    btc: dict[str, Any] = {"symbol": "BTC", "type": LIMIT, "qty": 7, "price": 333}
    c.process(NewOrder(order_id=1, account=2, side=SELL, **btc))
    c.process(NewOrder(order_id=2, account=1, side=BUY, **btc))
    # 3.33 x 0.007 = 0.02331 USD -> 2 cents moved
    assert c.cash(2) == 2 and c.cash(1) == 10**6 - 2
    c.process(NewOrder(order_id=3, account=1, side=BUY, **btc))
    assert c.accounts[1].reserved == 3  # rounded up


# -- pre-trade risk -------------------------------------------------------------------------


def test_insufficient_buying_power_and_short_sales() -> None:
    c = core_with((1, CASH, 10_019), (2, MARGIN, 15_000))
    assert rejected(c.process(order(1, 1, BUY, 1, 10_000))) == ["insufficient_buying_power"]
    c.process(Deposit(account=1, asset="USD", amount=1))
    assert not rejected(c.process(order(2, 1, BUY, 1, 10_000)))
    assert rejected(c.process(order(3, 1, SELL, 1, 10_000))) == ["short_sale_not_allowed"]
    # a margin account may sell short against its equity (initial margin 100% by default)
    assert not rejected(c.process(order(4, 2, SELL, 1, 10_100)))
    assert rejected(c.process(order(5, 2, SELL, 1, 10_100))) == ["insufficient_buying_power"]


def test_limits_apply_per_account_over_platform_defaults() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 10**9))
    c.process(SetRiskLimits(account=0, limits=RiskLimits(max_order_qty=10)))
    c.process(SetRiskLimits(account=2, limits=RiskLimits(max_order_qty=100, collar_bps=100)))
    assert rejected(c.process(order(1, 1, BUY, 11, 10_000))) == ["max_order_qty"]
    assert not rejected(c.process(order(2, 2, BUY, 11, 10_000)))
    # the collar is 1% around the reference price 100.00
    assert rejected(c.process(order(3, 2, BUY, 1, 10_101))) == ["price_collar"]
    c.process(SetRiskLimits(account=2, limits=None))  # back to the defaults
    assert rejected(c.process(order(4, 2, BUY, 11, 10_000))) == ["max_order_qty"]
    assert rejected(c.process(SetRiskLimits(account=0, limits=None))) == ["invalid_risk"]


def test_throttle_counts_new_orders_and_replaces() -> None:
    c = core_with((1, CASH, 10**9))
    c.process(SetRiskLimits(account=1, limits=RiskLimits(max_commands_per_s=2)))
    assert not rejected(c.process(order(1, 1, BUY, 1, 9_000, ts=1)))
    assert not rejected(c.process(ReplaceOrder(order_id=1, symbol="X", price=9_001, qty=1, ts=2)))
    assert rejected(c.process(order(2, 1, BUY, 1, 9_000, ts=3))) == ["throttled"]
    assert not rejected(c.process(order(3, 1, BUY, 1, 9_000, ts=1_000_000_002)))


def test_market_orders_are_protected_by_the_band_and_reserved_at_it() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 0))
    c.process(Deposit(account=2, asset="X", amount=10))
    c.process(order(1, 2, SELL, 5, 10_400))
    c.process(order(2, 2, SELL, 5, 10_600))  # beyond 5% above the reference 100.00
    events = c.process(order(3, 1, BUY, 10))
    (acc,) = [e for e in events if isinstance(e, OrderAccepted)]
    assert acc.protect_price == 10_500
    assert [e.qty for e in events if isinstance(e, Trade)] == [5]
    assert [e.reason for e in events if isinstance(e, OrderCancelled)] == ["market"]
    assert c.accounts[1].reserved == 0


def test_market_order_without_any_price_is_rejected() -> None:
    c = Core()
    c.process(AddInstrument(symbol="X"))
    c.process(CreateAccount(account=1))
    c.process(Deposit(account=1, asset="USD", amount=10**6))
    assert rejected(c.process(order(1, 1, BUY, 1))) == ["no_reference_price"]


def test_replace_adjusts_the_hold_and_is_refused_beyond_buying_power() -> None:
    c = core_with((1, CASH, 100_000))
    c.process(order(1, 1, BUY, 5, 10_000))
    assert c.accounts[1].reserved == 50_100
    c.process(ReplaceOrder(order_id=1, symbol="X", price=9_000, qty=5))
    assert c.accounts[1].reserved == 45_090
    assert rejected(c.process(ReplaceOrder(order_id=1, symbol="X", price=10_000, qty=10))) == [
        "insufficient_buying_power"
    ]
    assert c.accounts[1].reserved == 45_090
    c.process(CancelOrder(order_id=1, symbol="X"))
    assert c.accounts[1].reserved == 0 and c.accounts[1].open_orders == 0


# -- idempotency and kill switches --------------------------------------------------------


def test_client_order_id_is_an_idempotency_key_per_account_and_day() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 10**9))
    c.process(order(1, 1, BUY, 1, 9_000, client_order_id="a"))
    (dup,) = c.process(order(2, 1, BUY, 1, 9_000, client_order_id="a"))
    assert dup == DuplicateClientOrder(dup.seq, 0, 1, "a", 1, 2)
    assert 2 not in c.holds and c.accounts[1].open_orders == 1
    assert not rejected(c.process(order(3, 2, BUY, 1, 9_000, client_order_id="a")))
    c.process(EndOfDay())
    assert not rejected(c.process(order(4, 1, BUY, 1, 9_000, client_order_id="a")))


def test_kill_switch_cancels_open_orders_and_blocks_new_ones() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 10**9))
    c.process(order(1, 1, BUY, 1, 9_000))
    c.process(order(2, 2, BUY, 1, 9_000))
    events = c.process(SetKillSwitch(account=1, on=True))
    assert [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)] == [
        (1, "kill_switch")
    ]
    assert rejected(c.process(order(3, 1, BUY, 1, 9_000))) == ["account_killed"]
    c.process(SetKillSwitch(account=0, on=True))
    assert 2 not in c.holds
    assert rejected(c.process(order(4, 2, BUY, 1, 9_000))) == ["platform_killed"]
    c.process(SetKillSwitch(account=0, on=False))
    c.process(SetKillSwitch(account=1, on=False))
    assert not rejected(c.process(order(5, 1, BUY, 1, 9_000)))


def test_order_ids_of_the_core_are_reserved() -> None:
    c = core_with((1, CASH, 10**9))
    assert rejected(c.process(order(INTERNAL_IDS, 1, BUY, 1, 9_000))) == ["invalid_order_id"]
    assert rejected(c.process(order(0, 1, BUY, 1, 9_000))) == ["invalid_order_id"]


# -- contingent orders -------------------------------------------------------------------


def test_oco_one_leg_filling_cancels_the_other_and_the_pair_holds_once() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 0))
    c.process(Deposit(account=2, asset="X", amount=10))
    events = c.process(
        NewOco(
            account=2,
            symbol="X",
            side=SELL,
            qty=10,
            limit_id=1,
            limit_price=11_000,
            stop_id=2,
            stop_price=9_000,
        )
    )
    assert next(e for e in events if isinstance(e, OrdersLinked)).order_ids == (1, 2)
    assert c.accounts[2].selling["X"] == 10  # held once for the pair
    events = c.process(order(3, 1, BUY, 4, 11_000))
    assert [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)] == [(2, "oco")]
    assert c.accounts[2].selling["X"] == 6  # the limit leg's remaining 6 still held


def test_oco_stop_leg_firing_takes_over_the_hold() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 0), (3, CASH, 0))
    c.process(Deposit(account=2, asset="X", amount=10))
    c.process(Deposit(account=3, asset="X", amount=10))
    c.process(
        NewOco(
            account=2,
            symbol="X",
            side=SELL,
            qty=10,
            limit_id=1,
            limit_price=11_000,
            stop_id=2,
            stop_price=9_500,
        )
    )
    c.process(order(4, 1, BUY, 10, 9_100))  # a bid for the stop to sell into
    events = c.process(order(5, 3, SELL, 1, 9_100))  # trades at 91.00: the stop fires
    assert types(events).count("OrderTriggered") == 1
    fills = [(e.taker_order_id, e.qty) for e in events if isinstance(e, Trade)]
    assert fills == [(5, 1), (2, 9)]  # at 91.00, inside the stop's 5% band (90.25)
    assert [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)] == [
        (1, "oco"),
        (2, "market"),  # nothing left to sell into for the last 1
    ]
    assert c.ledger.balance(2, "X") == 1 and c.accounts[2].selling["X"] == 0
    assert not c.holds and c.accounts[2].open_orders == 0


def test_bracket_places_exits_as_the_entry_fills() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 10**9))
    c.process(Deposit(account=2, asset="X", amount=100))
    events = c.process(
        NewBracket(
            account=1,
            symbol="X",
            side=BUY,
            qty=10,
            entry_id=1,
            take_profit_id=2,
            stop_loss_id=3,
            take_profit_price=11_000,
            stop_loss_price=9_000,
            price=10_000,
        )
    )
    assert [e.order_ids for e in events if isinstance(e, OrdersLinked)] == [(1, 2, 3)]
    c.process(order(4, 2, SELL, 4, 10_000))
    assert c.holds[2].qty == 4 and 3 in c.engine.books["X"].stops  # exits for 4
    c.process(order(5, 2, SELL, 6, 10_000))
    assert c.engine.orders[2].remaining == 10 and c.engine.orders[3].remaining == 10
    # the take-profit fills: the stop-loss goes
    events = c.process(order(6, 2, BUY, 10, 11_000))
    assert [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)] == [(3, "oco")]
    assert c.ledger.balance(1, "X") == 0 and not c.holds and c.accounts[1].reserved == 0


def test_a_bracket_stop_loss_firing_as_it_is_placed_cancels_the_take_profit() -> None:
    """Found by the core's property test: the market had already passed the stop-loss when
    the entry filled, so the stop fired and filled as it was placed; the take-profit stayed
    live and a cash account sold the one share it bought twice (balance -1)."""
    c = core_with((1, CASH, 10**9), (2, CASH, 10**9), (3, CASH, 10**9))
    c.process(Deposit(account=2, asset="X", amount=100))
    c.process(order(9, 3, BUY, 5, 9_900))
    c.process(
        NewBracket(
            account=1,
            symbol="X",
            side=BUY,
            qty=1,
            entry_id=1,
            take_profit_id=2,
            stop_loss_id=3,
            take_profit_price=10_000,
            stop_loss_price=9_900,
            price=10_000,
        )
    )
    events = c.process(order(4, 2, SELL, 2, 9_900))  # fills the entry, then trades at 9,900
    cancelled = [(e.order_id, e.reason) for e in events if isinstance(e, OrderCancelled)]
    assert cancelled == [(2, "oco")]
    assert c.ledger.balance(1, "X") == 0 and set(c.holds) == {9}  # account 3's bid rests
    assert c.accounts[1].reserved == 0 and c.accounts[1].selling.get("X", 0) == 0
    c.process(order(5, 2, BUY, 1, 10_000))  # nothing of account 1's is left to sell
    assert c.ledger.balance(1, "X") == 0


def test_trailing_stop_follows_the_best_price_then_fires() -> None:
    c = core_with((1, CASH, 10**9), (2, CASH, 0))
    c.process(Deposit(account=2, asset="X", amount=100))
    events = c.process(order(1, 2, SELL, 5, 0, type=STOP, stop_price=9_500, trail_amount=500))
    assert 1 in c.trailing
    (trails,) = [e for e in events if isinstance(e, StopTrails)]  # what the OMS keeps
    assert (trails.order_id, trails.trail_amount, trails.trail_bps) == (1, 500, 0)
    c.process(order(2, 2, SELL, 1, 10_200))
    events = c.process(order(3, 1, BUY, 1, 10_200))  # trade at 102.00: stop to 97.00
    (moved,) = [e for e in events if isinstance(e, StopMoved)]
    assert (moved.stop_price, moved.best) == (9_700, 10_200)
    c.process(order(4, 1, BUY, 5, 9_600))
    c.process(order(5, 2, SELL, 1, 9_600))  # trade at 96.00 <= 97.00: fires
    assert 1 not in c.engine.orders and 1 not in c.trailing
    assert c.ledger.balance(2, "X") == 100 - 1 - 1 - 4


def test_trailing_needs_a_stop() -> None:
    c = core_with((1, CASH, 10**9))
    assert rejected(c.process(order(1, 1, BUY, 1, 9_000, trail_amount=5))) == ["invalid_trail"]


# -- the paper venue ----------------------------------------------------------------------


def test_paper_account_fills_against_the_market_price() -> None:
    c = core_with()
    c.process(CreateAccount(account=7, venue=Venue.PAPER))
    c.process(Deposit(account=7, asset="USD", amount=1_000_000))
    c.process(order(1, 7, BUY, 2, 9_900))
    assert 1 in c.paper.orders and not c.engine.books["X"].bids.levels
    events = c.process(MarketPrice(symbol="X", price=9_800))
    (t,) = [e for e in events if isinstance(e, Trade)]
    assert (t.price, t.maker_account) == (9_800, PAPER)
    assert c.ledger.balance(7, "X") == 2 and c.ledger.balance(PAPER, "X") == -2
    assert c.cash(7) == 1_000_000 - 19_600 - 39  # 0.20% taker fee, rounded down
    assert c.accounts[7].reserved == 0


def paper_trader(c: Core) -> None:
    c.process(CreateAccount(account=7, venue=Venue.PAPER))
    c.process(Deposit(account=7, asset="USD", amount=1_000_000))


def trade_at(c: Core, price: int, oid: int) -> None:
    """A trade on the real book at ``price`` between accounts 1 and 2."""
    c.process(order(oid, 1, SELL, 1, price))
    events = c.process(order(oid + 1, 2, BUY, 1, price))
    assert [e.price for e in events if isinstance(e, Trade)] == [price]


def test_a_paper_market_order_fills_at_the_last_trade_with_no_paper_order_resting() -> None:
    """Issue 11: the paper venue heard of prices only while a paper order rested, so a
    paper market order was refused ``no_reference_price`` although X traded."""
    c = core_with((1, MARGIN, 10**7), (2, MARGIN, 10**7))
    paper_trader(c)
    trade_at(c, 10_200, 1)
    events = c.process(order(11, 7, BUY, 2))
    assert rejected(events) == []
    (t,) = [e for e in events if isinstance(e, Trade)]
    assert (t.price, t.qty, t.maker_account) == (10_200, 2, PAPER)
    assert c.ledger.balance(7, "X") == 2


def test_a_paper_market_order_fills_at_the_current_price_not_a_stale_one() -> None:
    """The sibling: the venue kept the price of the last time a paper order rested, and
    filled at it after the market had moved on."""
    c = core_with((1, MARGIN, 10**7), (2, MARGIN, 10**7))
    paper_trader(c)
    c.process(order(11, 7, BUY, 1, 9_000))  # rests on the paper venue...
    trade_at(c, 10_000, 1)  # ...which hears of 100.00
    c.process(CancelOrder(order_id=11, symbol="X"))
    assert not c.paper.orders
    trade_at(c, 10_300, 3)  # the market moves on with no paper order resting
    events = c.process(order(12, 7, BUY, 1))
    (t,) = [e for e in events if isinstance(e, Trade)]
    assert t.price == 10_300


def test_a_paper_market_order_fills_at_an_outside_market_price() -> None:
    c = core_with()
    paper_trader(c)
    c.process(MarketPrice(symbol="X", price=9_700))
    events = c.process(order(11, 7, BUY, 1))
    assert rejected(events) == []
    (t,) = [e for e in events if isinstance(e, Trade)]
    assert t.price == 9_700


def test_a_paper_market_order_with_no_market_at_all_is_still_refused() -> None:
    c = core_with()
    paper_trader(c)
    assert rejected(c.process(order(11, 7, BUY, 1))) == ["no_reference_price"]


# -- determinism --------------------------------------------------------------------------


def test_snapshot_restores_the_same_state() -> None:
    c = core_with((1, CASH, 10**9), (2, MARGIN, 10**7))
    cmds: list[Command] = [
        order(1, 1, BUY, 5, 9_900),
        order(2, 2, SELL, 3, 9_900),
        order(3, 2, SELL, 2, 10_100, type=OrderType.STOP_LIMIT, stop_price=9_000),
        order(4, 1, SELL, 1, 0, type=STOP, stop_price=9_000, trail_amount=100),
        order(5, 2, BUY, 1, 9_000, tif=TimeInForce.DAY),
    ]
    for cmd in cmds:
        c.process(cmd)
    d = Core.restore(c.encode())
    assert d.state_hash() == c.state_hash()
    more = [order(6, 1, SELL, 2, 9_000), EndOfDay(), order(7, 2, BUY, 1)]
    assert [c.process(m) for m in more] == [d.process(m) for m in more]
    assert d.state_hash() == c.state_hash()


@pytest.mark.parametrize("kind", [CASH, MARGIN])
def test_orders_of_unknown_accounts_are_rejected(kind: AccountKind) -> None:
    c = core_with((1, kind, 0))
    assert rejected(c.process(order(1, 9, BUY, 1, 9_000))) == ["unknown_account"]
    assert isinstance(c.process(order(2, 1, BUY, 1, 9_000))[0], Rejected)
    assert not any(isinstance(e, OrderTriggered) for e in c.process(EndOfDay()))


def test_summary_and_exposure() -> None:
    c = core_with((1, MARGIN, 1_000_000), (2, MARGIN, 1_000_000))
    c.process(order(1, 1, BUY, 10, 10_000))
    c.process(order(2, 2, SELL, 10, 10_000))  # 1 long 10, 2 short 10 at 100.00
    c.process(order(3, 1, SELL, 1, 10_500))
    c.process(order(4, 2, BUY, 1, 10_500))  # last 105.00: both now hold 9
    s1, s2 = c.summary(1), c.summary(2)
    assert (s1.gross_exposure, s1.net_exposure) == (94_500, 94_500)
    assert (s2.gross_exposure, s2.net_exposure) == (94_500, -94_500)
    assert c.exposure() == (189_000, 0) and c.exposure(symbol="Y") == (0, 0)
    assert s1.realized == 500 and s1.unrealized == 9 * 500
    assert s2.realized == -500 and s2.unrealized == -9 * 500
    assert s1.equity == s1.cash + 94_500 and s2.equity == s2.cash - 94_500
    assert s1.initial_margin == 94_500 and s1.margin_status == "ok"
    assert s1.day_pnl == s1.realized + s1.unrealized
