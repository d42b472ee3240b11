"""The risk core on small scenarios: margin call, liquidation, recovery, reservations.

``AAA`` trades at 100.00 (price 10_000, cash in cents: price x qty); a margin account
needs 50% of a position's value to open it, 30% to keep it (below: a margin call) and 20%
(below: it is liquidated). Two whale accounts (8 and 9) make the prices.
"""

from __future__ import annotations

from msgspec.structs import replace as with_fields

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    Event,
    Liquidation,
    MarginCall,
    MarginRestored,
    NewOrder,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    PositionChanged,
    ReplaceOrder,
    SetInstrumentRisk,
    SetRiskLimits,
    Trade,
)
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce
from mercato.engine.core import Core

BUY, SELL = int(Side.BUY), int(Side.SELL)
LIMIT = int(OrderType.LIMIT)
SYM = "AAA"
TRADER, WHALE, OTHER_WHALE = 1, 8, 9


class Desk:
    """A core with ``AAA``, the whales, and one trader account."""

    def __init__(self, kind: int, cash: int, maker_bps: int = 0, taker_bps: int = 0) -> None:
        self.core = Core()
        self.ts = 0
        self.next_id = 100
        self.do(AddInstrument(symbol=SYM))
        self.do(
            SetInstrumentRisk(
                symbol=SYM,
                maker_fee_bps=maker_bps,
                taker_fee_bps=taker_bps,
                initial_margin_bps=5_000,
                maintenance_margin_bps=3_000,
                liquidation_margin_bps=2_000,
                reference_price=10_000,
            )
        )
        self.do(CreateAccount(account=TRADER, kind=kind))
        self.do(Deposit(account=TRADER, asset="USD", amount=cash))
        for whale in (WHALE, OTHER_WHALE):
            self.do(CreateAccount(account=whale))
            self.do(Deposit(account=whale, asset="USD", amount=10**10))
            self.do(Deposit(account=whale, asset=SYM, amount=10**6))

    def do(self, cmd: Command) -> list[Event]:
        self.ts += 1
        return self.core.process(with_fields(cmd, ts=self.ts))

    def limit(
        self, account: int, side: int, qty: int, price: int, tif: int = TimeInForce.GTC
    ) -> list[Event]:
        self.next_id += 1
        return self.do(
            NewOrder(
                order_id=self.next_id,
                account=account,
                symbol=SYM,
                side=side,
                type=LIMIT,
                qty=qty,
                price=price,
                tif=tif,
            )
        )

    def print_at(self, price: int) -> list[Event]:
        """The whales trade one unit at ``price``: the mark moves there."""
        self.limit(WHALE, BUY, 1, price)
        return self.limit(OTHER_WHALE, SELL, 1, price)


def kinds(events: list[Event]) -> list[str]:
    return [type(e).__name__ for e in events]


def risk_kinds(events: list[Event]) -> list[str]:
    """The event types without market data and bookkeeping (book deltas, postings)."""
    return [k for k in kinds(events) if k not in ("BookDelta", "LedgerPosted")]


def long_20_at_100() -> Desk:
    """The trader (margin, 1000.00) buys 20 at 100.00: 2000.00 of AAA on 1000.00 equity."""
    desk = Desk(AccountKind.MARGIN, 100_000)
    desk.limit(WHALE, SELL, 20, 10_000)
    desk.limit(TRADER, BUY, 20, 10_000)
    core = desk.core
    assert core.positions.get(TRADER, SYM).qty == 20
    assert core.cash(TRADER) == -100_000
    assert (core.equity(TRADER), core.margin_used(TRADER, "mm")) == (100_000, 60_000)
    assert core.buying_power(TRADER) == 0  # 50% initial margin: fully used
    return desk


def test_margin_call_then_liquidation_through_a_market_order() -> None:
    desk = long_20_at_100()
    core = desk.core

    # at 70.00: equity 400.00 < maintenance 420.00 (30% of 1400.00), above 280.00
    events = desk.print_at(7_000)
    assert risk_kinds(events) == [
        "OrderAccepted",
        "Trade",
        "PositionChanged",
        "PositionChanged",
        "MarginCall",
    ]
    call = events[-1]
    assert isinstance(call, MarginCall)
    assert (call.account, call.equity, call.maintenance) == (TRADER, 40_000, 42_000)
    assert core.accounts[TRADER].margin_status == 1  # under a call, not liquidating

    # a bid for the liquidation to hit, then a print at 60.00: equity 200.00 < 240.00
    desk.limit(WHALE, BUY, 20, 5_900)
    events = desk.print_at(6_000)
    assert risk_kinds(events) == [
        "OrderAccepted",  # the whale's sell
        "Trade",
        "PositionChanged",
        "PositionChanged",
        "Liquidation",
        "OrderAccepted",  # the core's market order
        "Trade",
        "PositionChanged",
        "PositionChanged",
        "MarginRestored",  # flat: nothing left to maintain
    ]
    liq = next(e for e in events if isinstance(e, Liquidation))
    assert (liq.account, liq.side, liq.qty) == (TRADER, SELL, 20)
    assert (liq.equity, liq.requirement) == (20_000, 24_000)
    order = next(e for e in events if isinstance(e, OrderAccepted) and e.order_id == liq.order_id)
    assert (order.type, order.tif, order.protect_price) == (1, TimeInForce.IOC, 5_700)
    fill = next(e for e in events if isinstance(e, Trade) and e.taker_order_id == liq.order_id)
    assert (fill.price, fill.qty, fill.taker_remaining) == (5_900, 20, 0)
    flat = [e for e in events if isinstance(e, PositionChanged) and e.account == TRADER]
    assert [(e.qty, e.cost, e.realized) for e in flat] == [(0, 0, -82_000)]

    pos = core.positions.get(TRADER, SYM)
    assert (pos.qty, pos.cost) == (0, 0)
    assert core.ledger.balance(TRADER, SYM) == 0
    assert core.cash(TRADER) == core.equity(TRADER) == 100_000 - 200_000 + 118_000
    assert core.accounts[TRADER].margin_status == 0
    assert core.holds == {} and core.accounts[TRADER].reserved == 0


def test_straight_to_liquidation_calls_first() -> None:
    """A drop straight through the liquidation level: MarginCall, then Liquidation."""
    desk = long_20_at_100()
    desk.limit(WHALE, BUY, 20, 5_900)
    events = desk.print_at(6_000)
    assert risk_kinds(events)[4:7] == ["MarginCall", "Liquidation", "OrderAccepted"]
    assert desk.core.positions.get(TRADER, SYM).qty == 0


def test_liquidation_without_a_bid_keeps_the_account_liquidating() -> None:
    """Nothing to sell into within the band: the market order is cancelled, the position
    stays, new orders are refused, and the next price move tries again."""
    desk = long_20_at_100()
    events = desk.print_at(6_000)
    assert "Liquidation" in kinds(events)
    cancelled = [e for e in events if isinstance(e, OrderCancelled) and e.account == TRADER]
    assert [e.remaining for e in cancelled] == [20]
    assert desk.core.positions.get(TRADER, SYM).qty == 20
    assert desk.core.accounts[TRADER].margin_status == 2
    refused = desk.limit(TRADER, SELL, 1, 6_500)
    assert [getattr(e, "reason", "") for e in refused] == ["account_liquidating"]

    desk.limit(WHALE, BUY, 20, 5_800)
    events = desk.print_at(5_900)
    assert "Liquidation" in kinds(events)
    assert desk.core.positions.get(TRADER, SYM).qty == 0
    assert desk.core.accounts[TRADER].margin_status == 0


def test_margin_restored_when_the_price_recovers() -> None:
    desk = long_20_at_100()
    assert "MarginCall" in kinds(desk.print_at(7_000))
    events = desk.print_at(7_200)  # equity 440.00 >= 432.00: restored
    restored = events[-1]
    assert isinstance(restored, MarginRestored)
    assert (restored.account, restored.equity, restored.maintenance) == (TRADER, 44_000, 43_200)
    assert desk.core.accounts[TRADER].margin_status == 0
    assert "MarginRestored" not in kinds(desk.print_at(9_000))  # only once
    assert "MarginCall" in kinds(desk.print_at(7_000))  # and a new call after it


# -- reservations ---------------------------------------------------------------------------


def cash_desk() -> Desk:
    """A cash account with 10000.00, fees 0.10% maker and 0.25% taker."""
    return Desk(AccountKind.CASH, 1_000_000, maker_bps=10, taker_bps=25)


def assert_nothing_reserved(desk: Desk) -> None:
    core = desk.core
    acct = core.accounts[TRADER]
    assert (acct.reserved, acct.open_orders) == (0, 0)
    assert not any(acct.selling.values())
    assert [h for h in core.holds.values() if h.account == TRADER] == []
    assert core.buying_power(TRADER) == core.cash(TRADER)


def test_buy_reserves_notional_and_the_higher_fee_rounded_up() -> None:
    desk = cash_desk()
    desk.limit(TRADER, BUY, 10, 9_999)
    reserved = 99_990 + 250  # 0.25% of 999.90 is 2.49975: rounded up
    assert desk.core.accounts[TRADER].reserved == reserved
    assert desk.core.buying_power(TRADER) == 1_000_000 - reserved


def test_reservation_released_on_cancel() -> None:
    desk = cash_desk()
    desk.limit(TRADER, BUY, 10, 10_000)
    assert desk.core.accounts[TRADER].reserved == 100_250
    events = desk.do(CancelOrder(order_id=desk.next_id, symbol=SYM))
    assert "OrderCancelled" in kinds(events)
    assert_nothing_reserved(desk)
    assert desk.core.cash(TRADER) == 1_000_000


def test_reservation_released_on_expiry() -> None:
    desk = cash_desk()
    desk.limit(TRADER, BUY, 10, 10_000, tif=TimeInForce.DAY)
    desk.limit(TRADER, BUY, 3, 9_000)  # GTC: survives the day
    events = desk.do(EndOfDay())
    assert [e.order_id for e in events if isinstance(e, OrderExpired)] == [desk.next_id - 1]
    assert desk.core.accounts[TRADER].reserved == 27_000 + 68  # 67.5 rounded up
    desk.do(CancelOrder(order_id=desk.next_id, symbol=SYM))
    assert_nothing_reserved(desk)


def test_reservation_follows_a_replace() -> None:
    desk = cash_desk()
    desk.limit(TRADER, BUY, 10, 10_000)
    oid = desk.next_id
    events = desk.do(ReplaceOrder(order_id=oid, symbol=SYM, price=9_000, qty=5))
    assert "OrderReplaced" in kinds(events)
    assert desk.core.accounts[TRADER].reserved == 45_000 + 113  # 112.5 rounded up
    events = desk.do(ReplaceOrder(order_id=oid, symbol=SYM, price=11_000, qty=20))
    assert any(isinstance(e, OrderReplaced) for e in events)
    assert desk.core.accounts[TRADER].reserved == 220_000 + 550
    events = desk.do(ReplaceOrder(order_id=oid, symbol=SYM, price=11_000, qty=100))
    assert [getattr(e, "reason", "") for e in events] == ["insufficient_buying_power"]
    assert desk.core.accounts[TRADER].reserved == 220_000 + 550  # unchanged
    desk.do(CancelOrder(order_id=oid, symbol=SYM))
    assert_nothing_reserved(desk)


def test_reservation_released_by_fills() -> None:
    """Partial fills take their cost out of the hold; the last fill frees the rest."""
    desk = cash_desk()
    desk.limit(TRADER, BUY, 10, 10_000)
    desk.limit(WHALE, SELL, 4, 9_000)  # the trader is the maker: at 100.00, fee 0.10%
    core = desk.core
    assert core.cash(TRADER) == 1_000_000 - 40_000 - 40
    assert core.accounts[TRADER].reserved == 100_250 - 40_040
    desk.limit(WHALE, SELL, 6, 10_000)
    assert core.positions.get(TRADER, SYM).qty == 10
    assert core.cash(TRADER) == 1_000_000 - 100_000 - 100
    assert_nothing_reserved(desk)


def test_price_improvement_frees_the_difference() -> None:
    """A buy limit at 101.00 that takes an offer at 100.00 keeps nothing reserved."""
    desk = cash_desk()
    desk.limit(WHALE, SELL, 10, 10_000)
    desk.limit(TRADER, BUY, 10, 10_100)
    assert desk.core.cash(TRADER) == 1_000_000 - 100_000 - 250  # taker fee
    assert_nothing_reserved(desk)


def test_sell_holds_the_quantity_until_it_ends() -> None:
    desk = cash_desk()
    desk.do(Deposit(account=TRADER, asset=SYM, amount=10, cost=90_000))
    desk.limit(TRADER, SELL, 6, 11_000)
    acct = desk.core.accounts[TRADER]
    assert (acct.selling[SYM], acct.reserved) == (6, 0)
    refused = desk.limit(TRADER, SELL, 5, 11_000)
    assert [getattr(e, "reason", "") for e in refused] == ["short_sale_not_allowed"]
    desk.limit(WHALE, BUY, 2, 11_000)
    assert acct.selling[SYM] == 4
    desk.do(CancelOrder(order_id=desk.next_id - 2, symbol=SYM))
    assert_nothing_reserved(desk)
    assert desk.core.positions.get(TRADER, SYM).qty == 8


def test_margin_order_reserves_initial_margin_and_releases_it() -> None:
    desk = Desk(AccountKind.MARGIN, 100_000, taker_bps=25)
    desk.limit(TRADER, BUY, 10, 10_000)
    assert desk.core.accounts[TRADER].reserved == 50_000 + 250
    assert desk.core.buying_power(TRADER) == 100_000 - 50_250
    desk.do(CancelOrder(order_id=desk.next_id, symbol=SYM))
    assert_nothing_reserved(desk)


# -- replaces are checked like new orders ---------------------------------------------------


def test_replace_cannot_grow_a_reducing_margin_order_into_an_unmargined_short() -> None:
    desk = long_20_at_100()  # buying power 0
    desk.limit(TRADER, SELL, 20, 11_000)  # reduces the long: holds nothing
    oid = desk.next_id
    events = desk.do(ReplaceOrder(order_id=oid, symbol=SYM, price=11_000, qty=2_000))
    # selling 2000 opens a short of 1980 (2178.00 x 1980 of initial margin): refused
    assert [getattr(e, "reason", "") for e in events] == ["insufficient_buying_power"]


def test_replace_respects_max_position() -> None:
    desk = cash_desk()
    desk.do(SetRiskLimits(account=TRADER, limits=RiskLimits(max_position=25)))
    refused = desk.limit(TRADER, BUY, 30, 10_000)
    assert [getattr(e, "reason", "") for e in refused] == ["max_position"]
    desk.limit(TRADER, BUY, 20, 10_000)
    events = desk.do(ReplaceOrder(order_id=desk.next_id, symbol=SYM, price=10_000, qty=60))
    assert [getattr(e, "reason", "") for e in events] == ["max_position"]
