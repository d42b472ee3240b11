"""The risk core (``mercato.engine.core``) under random commands: its invariants hold.

Hypothesis drives one ``Core`` with two instruments (``AAA`` with fees, margin rates and a
reference price; ``BBB`` with a coarser tick and no reference), cash and margin accounts
on the matching engine and on the paper venue, and three well-funded "whale" accounts that
push prices hard (so margin accounts get margin calls and are liquidated). Commands:
deposits and withdrawals, orders of every type and time in force near the mark (trailing
stops too), cancels, replaces, OCO pairs, brackets, market prices, end of day, halts,
kill switches, risk limits and snapshot/restore. After every command (and per event where
it says so):

1. every ``LedgerPosted`` balances per asset;
2. per asset all balances sum to zero, and customers + FEES + PAPER hold the net deposits;
3. holds agree with the accounts (reserved, selling, open orders) and with the live orders;
4. no cash account is negative in cash or short; no hold is negative;
5. positions agree with the ledger, and each ``PositionChanged`` with the ledger so far;
6. determinism: a replay gives the same events and state hash, and a restored snapshot
   carries on exactly like the original (checked on ``snapshot`` steps and at teardown).

``test_liquidations_happen`` runs the machine on fixed seeds and checks that margin calls
and liquidations do happen, so the invariants are not checked only on quiet markets.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from msgspec.structs import replace as with_fields

from mercato.domain import (
    AddInstrument,
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    Event,
    LedgerPosted,
    MarketPrice,
    NewBracket,
    NewOco,
    NewOrder,
    PositionChanged,
    Rejected,
    ReplaceOrder,
    SetInstrumentRisk,
    SetKillSwitch,
    SetRiskLimits,
    SetTradingStatus,
    Withdraw,
)
from mercato.domain.ledger import EXTERNAL, FEES, PAPER, imbalance
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind, OrderType, Side, TimeInForce, TradingStatus, Venue
from mercato.engine.core import Core

BUY, SELL = int(Side.BUY), int(Side.SELL)
MARKET, LIMIT, STOP, STOP_LIMIT = (int(t) for t in OrderType)
GTC, DAY, IOC, FOK = (int(t) for t in TimeInForce if t <= TimeInForce.FOK)
CASH, MARGIN = int(AccountKind.CASH), int(AccountKind.MARGIN)
INTERNAL, PAPER_VENUE = int(Venue.INTERNAL), int(Venue.PAPER)
USD = "USD"
SYMBOLS = ("AAA", "BBB")
TICK = {"AAA": 1, "BBB": 5}
START_PRICE = {"AAA": 10_000, "BBB": 5_000}  # AAA's reference; BBB's first market price
STEP_NS = 10_000_000  # 10 ms between commands

# account -> (kind, venue, starting cash, starting AAA)
CUSTOMERS = {
    1: (CASH, INTERNAL, 500_000, 40),
    2: (CASH, INTERNAL, 300_000, 0),
    3: (MARGIN, INTERNAL, 200_000, 0),
    4: (MARGIN, INTERNAL, 150_000, 0),
    5: (CASH, PAPER_VENUE, 400_000, 10),
    6: (MARGIN, PAPER_VENUE, 200_000, 0),
}
LP, SELLER, BUYER = 90, 91, 92  # the whales: a liquidity provider and two price pushers
WHALES = (LP, SELLER, BUYER)
WHALE_CASH = 10**13
WHALE_QTY = 10**7
ACCOUNTS = sorted(CUSTOMERS)

accounts = st.sampled_from([*ACCOUNTS, 3, 4, 6])  # margin accounts a bit more often
symbols = st.sampled_from(["AAA", "AAA", "BBB"])
sides = st.sampled_from([BUY, SELL])
tifs = st.sampled_from([GTC, GTC, GTC, DAY, DAY, IOC, FOK])
pcts = st.integers(-8, 8)  # a price as a percentage away from the mark
qtys = st.integers(1, 30)
client_ids = st.sampled_from(["", "", "", "", "x", "y"])


class CoreInvariants(RuleBasedStateMachine):
    counts: Counter[str] = Counter()  # event kinds over every run (for the seeded test)

    def __init__(self) -> None:
        super().__init__()
        self.core = Core()
        self.shadow: Core | None = None  # restored from a snapshot: must follow exactly
        self.log: list[tuple[Command, list[Event]]] = []
        self.ts = 0
        self.next_oid = 1
        self.net: Counter[str] = Counter()  # net deposits per asset
        self.step(AddInstrument(symbol="AAA", tick_size=1))
        self.step(AddInstrument(symbol="BBB", tick_size=5))
        self.step(
            SetInstrumentRisk(
                symbol="AAA",
                maker_fee_bps=10,
                taker_fee_bps=25,
                initial_margin_bps=5_000,
                maintenance_margin_bps=3_000,
                liquidation_margin_bps=2_000,
                reference_price=START_PRICE["AAA"],
            )
        )
        for acct, (kind, venue, cash, aaa) in CUSTOMERS.items():
            self.step(CreateAccount(account=acct, kind=kind, venue=venue))
            self.step(Deposit(account=acct, asset=USD, amount=cash, ref=acct))
            if aaa:
                self.step(Deposit(account=acct, asset="AAA", amount=aaa, cost=aaa * 9_000))
        for acct in WHALES:
            self.step(CreateAccount(account=acct))
            self.step(Deposit(account=acct, asset=USD, amount=WHALE_CASH))
            for sym in SYMBOLS:
                self.step(Deposit(account=acct, asset=sym, amount=WHALE_QTY))
        self.step(MarketPrice(symbol="BBB", price=START_PRICE["BBB"]))
        for sym in SYMBOLS:
            self.provide(sym, 200)

    # -- the one way commands go in ---------------------------------------------------

    def step(self, cmd: Command) -> list[Event]:
        self.ts += STEP_NS
        cmd = with_fields(cmd, ts=self.ts)
        core = self.core
        seq = core.seq
        postings = core.ledger.seq
        mirror = dict(core.ledger.items())  # balances as the events say
        events = core.process(cmd)
        self.log.append((cmd, events))
        for e in events:
            seq += 1
            assert (e.seq, e.ts) == (seq, self.ts), e
            if isinstance(e, LedgerPosted):  # 1. each posting balances
                assert not imbalance(e.entries), e
                postings += 1
                assert e.posting == postings, e
                for en in e.entries:
                    mirror[(en.account, en.asset)] = (
                        mirror.get((en.account, en.asset), 0) + en.amount
                    )
            elif isinstance(e, PositionChanged):  # 5. as the ledger says at that point
                assert mirror.get((e.account, e.symbol), 0) == e.qty, e
            self.counts[type(e).__name__] += 1
            event(type(e).__name__)
            if isinstance(e, Rejected):
                event(f"rejected {e.command} {e.reason}")
        assert core.seq == seq and core.ledger.seq == postings
        assert {k: v for k, v in mirror.items() if v} == dict(core.ledger.items())
        if isinstance(cmd, (Deposit, Withdraw)) and not any(
            isinstance(e, Rejected) for e in events
        ):
            self.net[cmd.asset] += cmd.amount if isinstance(cmd, Deposit) else -cmd.amount
        if self.shadow is not None:  # 6. a restored core carries on identically
            assert self.shadow.process(cmd) == events, cmd
            assert self.shadow.state_hash() == core.state_hash()
        self.check()
        return events

    # -- the invariants ---------------------------------------------------------------

    def check(self) -> None:
        core = self.core
        balances = core.ledger.items()
        # 2. the ledger sums to zero per asset; EXTERNAL holds minus the net deposits
        total: Counter[str] = Counter()
        for (acct, asset), v in balances:
            total[asset] += v
            assert acct in core.accounts or acct in (EXTERNAL, FEES, PAPER), (acct, asset)
        assert not +total and not -total, total
        for asset in set(self.net) | {a for (_, a), _ in balances}:
            assert core.ledger.balance(EXTERNAL, asset) == -self.net[asset], asset
        assert core.ledger.balance(FEES, USD) >= 0
        # 3. holds against the accounts and the live orders
        reserved: Counter[int] = Counter()
        count: Counter[int] = Counter()
        selling: Counter[tuple[int, str]] = Counter()
        for oid, h in core.holds.items():
            assert h.order_id == oid and h.cash >= 0 and h.qty >= 0, vars_of(h)  # 4.
            venue = core.engine if h.venue == INTERNAL else core.paper
            o = venue.orders.get(oid)
            assert o is not None, f"hold without a live order: {vars_of(h)}"
            assert (o.account, o.symbol, o.side) == (h.account, h.symbol, h.side), oid
            assert h.venue == core.accounts[h.account].venue, oid
            reserved[h.account] += h.cash
            count[h.account] += 1
            if h.qty:
                selling[(h.account, h.symbol)] += h.qty
            if h.sibling:
                other = core.holds.get(h.sibling)
                assert other is not None and other.sibling == oid, oid
        live = set(core.engine.orders) | set(core.paper.orders)
        assert not set(core.engine.orders) & set(core.paper.orders)
        assert live == set(core.holds), f"live orders without holds: {live - set(core.holds)}"
        for acct_id, acct in core.accounts.items():
            assert acct.reserved == reserved[acct_id], (acct_id, acct.reserved, reserved)
            assert acct.open_orders == count[acct_id], acct_id
            for sym in SYMBOLS:
                assert acct.selling.get(sym, 0) == selling[(acct_id, sym)], (acct_id, sym)
            # 4. a cash account never owes cash nor sells short
            if acct.kind == CASH:
                assert core.cash(acct_id) >= 0, (acct_id, core.cash(acct_id))
                for sym in SYMBOLS:
                    assert core.ledger.balance(acct_id, sym) >= 0, (acct_id, sym)
                    assert acct.selling.get(sym, 0) <= core.ledger.balance(acct_id, sym)
            # 5. positions are the ledger's quantities
            for sym in SYMBOLS:
                pos = core.positions.get(acct_id, sym)
                assert pos.qty == core.ledger.balance(acct_id, sym), (acct_id, sym)
                if sym in acct.positions:
                    assert acct.positions[sym] is core.positions.get(acct_id, sym)
            for sym, pos in acct.positions.items():
                holders = core.holders.get(sym, set())
                assert (acct.kind == MARGIN and pos.qty != 0) == (acct_id in holders), acct_id

    @invariant()
    def flat_positions_in_system_accounts(self) -> None:
        for acct, _sym, pos in self.core.positions.items():
            assert acct > 0 and acct in self.core.accounts, (acct, pos)

    def teardown(self) -> None:
        """6. A fresh core fed the same commands says the same and ends the same."""
        replay = Core()
        for cmd, events in self.log:
            assert replay.process(cmd) == events, cmd
        assert replay.state_hash() == self.core.state_hash()
        assert Core.restore(self.core.encode()).state_hash() == self.core.state_hash()

    # -- helpers ----------------------------------------------------------------------

    def new_id(self) -> int:
        self.next_oid += 1
        return self.next_oid

    def price(self, sym: str, pct: int) -> int:
        """A price ``pct`` percent away from the symbol's mark, on the tick, positive."""
        mark = self.core.mark(sym) or START_PRICE[sym]
        p = mark * (100 + pct) // 100
        p -= p % TICK[sym]
        return max(p, TICK[sym])

    def pick_live(self, pick: int) -> int | None:
        ids = sorted(oid for oid, h in self.core.holds.items() if h.account not in WHALES)
        return ids[pick % len(ids)] if ids else None

    # -- money ------------------------------------------------------------------------

    @rule(acct=accounts, asset=st.sampled_from([USD, USD, "AAA", "BBB"]), amount=qtys)
    def deposit(self, acct: int, asset: str, amount: int) -> None:
        if asset == USD:
            amount *= 10_000
        self.step(Deposit(account=acct, asset=asset, amount=amount, cost=0))

    @rule(
        acct=accounts,
        asset=st.sampled_from([USD, USD, "AAA"]),
        amount=qtys,
        everything=st.booleans(),
    )
    def withdraw(self, acct: int, asset: str, amount: int, everything: bool) -> None:
        core = self.core
        if everything:  # what is free, exactly (or a bit more for a margin account)
            if asset == USD:
                amount = core.buying_power(acct)
            else:
                held = core.ledger.balance(acct, asset)
                amount = held - core.accounts[acct].selling.get(asset, 0)
        elif asset == USD:
            amount *= 5_000
        self.step(Withdraw(account=acct, asset=asset, amount=amount))

    # -- orders -----------------------------------------------------------------------

    @rule(
        acct=accounts,
        sym=symbols,
        side=sides,
        kind=st.sampled_from([LIMIT, LIMIT, LIMIT, MARKET, STOP, STOP_LIMIT]),
        tif=tifs,
        qty=qtys,
        pct=pcts,
        stop_pct=pcts,
        trail=st.sampled_from([0, 0, 0, 1, 2]),
        cid=client_ids,
        reuse=st.integers(0, 15),
    )
    def new_order(
        self,
        acct: int,
        sym: str,
        side: int,
        kind: int,
        tif: int,
        qty: int,
        pct: int,
        stop_pct: int,
        trail: int,
        cid: str,
        reuse: int,
    ) -> None:
        oid = self.new_id() if reuse else max(self.next_oid - 1, 1)
        price = self.price(sym, pct) if kind in (LIMIT, STOP_LIMIT) else 0
        stop = 0
        if kind in (STOP, STOP_LIMIT):  # a stop away from the market, so it waits
            away = abs(stop_pct) + 1
            stop = self.price(sym, away if side == BUY else -away)
        if kind not in (STOP, STOP_LIMIT) and reuse > 1:
            trail = 0  # mostly on stops; on other orders it is refused
        amount = TICK[sym] * 20 if trail == 1 else 0
        self.step(
            NewOrder(
                order_id=oid,
                account=acct,
                symbol=sym,
                side=side,
                type=kind,
                qty=qty,
                tif=tif if kind != MARKET or tif in (IOC, FOK) else IOC,
                price=price,
                stop_price=stop,
                client_order_id=cid,
                trail_amount=amount,
                trail_bps=300 if trail == 2 else 0,
            )
        )

    @rule(pick=st.integers(0, 999), wrong=st.integers(0, 9))
    def cancel(self, pick: int, wrong: int) -> None:
        oid = self.pick_live(pick)
        if oid is None or wrong == 0:
            self.step(CancelOrder(order_id=pick + 1, symbol="AAA"))
            return
        self.step(CancelOrder(order_id=oid, symbol=self.core.holds[oid].symbol))

    @rule(pick=st.integers(0, 999), pct=pcts, qty=qtys, stop_pct=pcts)
    def replace(self, pick: int, pct: int, qty: int, stop_pct: int) -> None:
        oid = self.pick_live(pick)
        if oid is None:
            return
        h = self.core.holds[oid]
        venue = self.core.engine if h.venue == INTERNAL else self.core.paper
        o = venue.orders[oid]
        price = self.price(h.symbol, pct) if o.type in (LIMIT, STOP_LIMIT) else 0
        stop = 0
        if o.type in (STOP, STOP_LIMIT) and o.stop_price:  # a waiting stop
            away = abs(stop_pct) + 1
            stop = self.price(h.symbol, away if o.side == BUY else -away)
        self.step(
            ReplaceOrder(order_id=oid, symbol=h.symbol, price=price, qty=qty, stop_price=stop)
        )

    @rule(
        acct=accounts,
        sym=symbols,
        side=sides,
        qty=qtys,
        limit_pct=st.integers(1, 8),
        stop_pct=st.integers(1, 8),
        stop_limit=st.booleans(),
    )
    def oco(
        self,
        acct: int,
        sym: str,
        side: int,
        qty: int,
        limit_pct: int,
        stop_pct: int,
        stop_limit: bool,
    ) -> None:
        """A take-profit limit below the market (buy) and a breakout stop above it."""
        sign = -1 if side == BUY else 1
        stop = self.price(sym, -sign * stop_pct)
        self.step(
            NewOco(
                account=acct,
                symbol=sym,
                side=side,
                qty=qty,
                limit_id=self.new_id(),
                limit_price=self.price(sym, sign * limit_pct),
                stop_id=self.new_id(),
                stop_price=stop,
                stop_limit_price=self.price(sym, -sign * (stop_pct + 1)) if stop_limit else 0,
            )
        )

    @rule(
        acct=accounts,
        sym=symbols,
        side=sides,
        qty=qtys,
        market=st.booleans(),
        pct=st.integers(-3, 3),
        tp_pct=st.integers(-1, 8),
        sl_pct=st.integers(1, 8),
        tif=st.sampled_from([GTC, DAY, IOC]),
    )
    def bracket(
        self,
        acct: int,
        sym: str,
        side: int,
        qty: int,
        market: bool,
        pct: int,
        tp_pct: int,
        sl_pct: int,
        tif: int,
    ) -> None:
        sign = 1 if side == BUY else -1
        self.step(
            NewBracket(
                account=acct,
                symbol=sym,
                side=side,
                qty=qty,
                entry_id=self.new_id(),
                take_profit_id=self.new_id(),
                stop_loss_id=self.new_id(),
                take_profit_price=self.price(sym, sign * tp_pct),
                stop_loss_price=self.price(sym, -sign * sl_pct),
                type=MARKET if market else LIMIT,
                price=0 if market else self.price(sym, pct),
                tif=IOC if market else tif,
            )
        )

    # -- the market -------------------------------------------------------------------

    @rule(sym=symbols, pct=st.integers(-10, 10))
    def market_price(self, sym: str, pct: int) -> None:
        self.step(MarketPrice(symbol=sym, price=self.price(sym, pct)))

    @rule(sym=symbols, pct=st.integers(-70, 70), depth=st.integers(0, 400))
    def push(self, sym: str, pct: int, depth: int) -> None:
        """The whales move the price ``pct`` percent: fresh two-sided liquidity around the
        target, then a print at the target (sweeping whatever rests on the way)."""
        for whale in WHALES:  # a kill switch cancels a whale's old orders at once
            self.step(SetKillSwitch(account=whale, on=True))
            self.step(SetKillSwitch(account=whale, on=False))
        target = self.price(sym, pct)
        down = pct < 0
        bid, ask = self.price_at(sym, target, -2), self.price_at(sym, target, 2)
        for side, price in ((BUY, bid), (SELL, ask)) if down else ((SELL, ask), (BUY, bid)):
            if depth:
                self.whale_order(LP, sym, side, depth, price)
        self.whale_order(SELLER, sym, SELL, 1, target)
        self.whale_order(BUYER, sym, BUY, 1, target)
        self.step(MarketPrice(symbol=sym, price=target))  # the paper venue follows

    @rule(sym=symbols, depth=st.integers(1, 400))
    def provide(self, sym: str, depth: int) -> None:
        """The liquidity provider quotes both sides, one percent around the mark."""
        self.step(SetKillSwitch(account=LP, on=True))
        self.step(SetKillSwitch(account=LP, on=False))
        mark = self.price(sym, 0)
        self.whale_order(LP, sym, BUY, depth, self.price_at(sym, mark, -1))
        self.whale_order(LP, sym, SELL, depth, self.price_at(sym, mark, 1))

    @rule(
        acct=st.sampled_from([3, 4, 6]),
        sym=symbols,
        side=sides,
        share=st.integers(50, 100),
    )
    def leverage(self, acct: int, sym: str, side: int, share: int) -> None:
        """A margin account uses ``share`` percent of its buying power in one market order."""
        core = self.core
        mark = self.price(sym, 0)
        rate = core.instruments[sym].im
        qty = core.buying_power(acct) * share * 10_000 // (100 * mark * (rate + 100))
        if qty > 0:
            self.step(
                NewOrder(
                    order_id=self.new_id(),
                    account=acct,
                    symbol=sym,
                    side=side,
                    type=MARKET,
                    qty=qty,
                    tif=IOC,
                )
            )

    @rule(
        acct=st.sampled_from([3, 4, 6]),
        sym=symbols,
        side=sides,
        share=st.integers(60, 100),
        pct=st.integers(30, 70),
        back=st.integers(0, 60),
    )
    def boom_and_bust(
        self, acct: int, sym: str, side: int, share: int, pct: int, back: int
    ) -> None:
        """A margin account levers up, the price runs against it (a margin call or a
        liquidation), then comes ``back`` part of the way (restored, if it survived)."""
        self.provide(sym, 400)
        self.leverage(acct, sym, side, share)
        self.push(sym, -pct if side == BUY else pct, 400)
        if back:
            self.push(sym, back if side == BUY else -back, 400)

    def price_at(self, sym: str, base: int, pct: int) -> int:
        p = base * (100 + pct) // 100
        return max(p - p % TICK[sym], TICK[sym])

    def whale_order(self, whale: int, sym: str, side: int, qty: int, price: int) -> None:
        self.step(
            NewOrder(
                order_id=self.new_id(),
                account=whale,
                symbol=sym,
                side=side,
                type=LIMIT,
                qty=qty,
                price=price,
            )
        )

    # -- the day, the switches, the limits ---------------------------------------------

    @rule()
    def end_of_day(self) -> None:
        self.step(EndOfDay())

    @rule(
        sym=symbols,
        status=st.sampled_from([TradingStatus.HALTED, TradingStatus.CLOSED]),
        n=st.integers(0, 3),
    )
    def halt_then_open(self, sym: str, status: TradingStatus, n: int) -> None:
        """A halt for a few market prices, then open again."""
        self.step(SetTradingStatus(symbol=sym, status=status))
        for i in range(n):
            self.step(MarketPrice(symbol=sym, price=self.price(sym, 3 * i - 3)))
        self.step(SetTradingStatus(symbol=sym, status=TradingStatus.OPEN))

    @rule(acct=st.sampled_from([0, *ACCOUNTS]), on=st.booleans(), then_off=st.booleans())
    def kill_switch(self, acct: int, on: bool, then_off: bool) -> None:
        self.step(SetKillSwitch(account=acct, on=on))
        if on and then_off:
            self.step(SetKillSwitch(account=acct, on=False))

    @rule(
        acct=st.sampled_from(ACCOUNTS),
        clear=st.booleans(),
        max_qty=st.sampled_from([0, 10]),
        open_orders=st.sampled_from([0, 3]),
        collar=st.sampled_from([0, 300]),
        position=st.sampled_from([0, 25]),
        per_s=st.sampled_from([0, 0, 2]),
    )
    def risk_limits(
        self,
        acct: int,
        clear: bool,
        max_qty: int,
        open_orders: int,
        collar: int,
        position: int,
        per_s: int,
    ) -> None:
        limits = RiskLimits(
            max_order_qty=max_qty,
            max_open_orders=open_orders,
            collar_bps=collar,
            max_position=position,
            max_commands_per_s=per_s,
        )
        self.step(SetRiskLimits(account=acct, limits=None if clear else limits))

    @rule(im=st.sampled_from([5_000, 8_000]), mm=st.sampled_from([3_000, 4_000]))
    def margin_rates(self, im: int, mm: int) -> None:
        self.step(
            SetInstrumentRisk(
                symbol="AAA",
                maker_fee_bps=10,
                taker_fee_bps=25,
                initial_margin_bps=im,
                maintenance_margin_bps=mm,
                liquidation_margin_bps=2_000,
                reference_price=START_PRICE["AAA"],
            )
        )

    # -- snapshots --------------------------------------------------------------------

    @rule()
    def snapshot(self) -> None:
        """6. A restored core has the same state; from now on it must follow exactly."""
        data = self.core.encode()
        restored = Core.restore(data)
        assert restored.state_hash() == self.core.state_hash()
        assert restored.encode() == data
        self.shadow = restored


def vars_of(obj: object) -> dict[str, object]:
    return {k: getattr(obj, k) for k in getattr(obj, "__slots__", ())}


CoreInvariants.TestCase.settings = settings(stateful_step_count=50)
TestCoreInvariants = CoreInvariants.TestCase


def test_liquidations_happen() -> None:
    """On fixed seeds the generated runs reach margin calls, liquidations and recoveries
    (so the invariants above are checked where it matters)."""
    CoreInvariants.counts.clear()
    run_state_machine_as_test(
        CoreInvariants,
        settings=settings(max_examples=30, stateful_step_count=40, derandomize=True, database=None),
    )
    counts = CoreInvariants.counts
    for kind in ("Trade", "Liquidation", "MarginCall", "MarginRestored", "StopMoved"):
        assert counts[kind] > 0, (kind, counts)
    for kind in ("OrdersLinked", "OrderReplaced"):  # expiry and duplicates: unit tests
        assert counts[kind] > 0, (kind, counts)
