"""The risk core: accounts, ledger, positions and risk around the venues, as one
deterministic state machine.

``Core.process(command)`` is the platform's whole decision for one command. For an order it
runs pre-trade risk (limits, price collar, buying power), reserves what the order may cost,
hands it to its account's venue (the matching engine, or the paper venue), and then, from
the events the venue returned, settles every trade in the ledger and the positions,
releases reservations as orders fill or end, moves trailing stops, places bracket exits,
and checks margin, liquidating through the same order path when it must. Like the engine
it reads no clock and no randomness; every event carries the next global sequence number
(the engine's counter, shared by everything here).

The rules (reservations, margin, liquidation, brackets, trailing stops) are written down in
``docs/risk.md``; the rounding of money in ``money.py``.
"""

from __future__ import annotations

import heapq
from typing import Final

from msgspec.structs import replace as struct_replace

from mercato.domain.commands import (
    AddCurrency,
    AddInstrument,
    CancelOrder,
    Clock,
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
    SetSelfTrade,
    SetTradingStatus,
    Withdraw,
)
from mercato.domain.errors import UnknownCommand
from mercato.domain.events import (
    AccountCreated,
    BookDelta,
    CurrencyAdded,
    DuplicateClientOrder,
    Event,
    InstrumentAdded,
    InstrumentRiskSet,
    KillSwitchSet,
    LedgerPosted,
    Liquidation,
    MarginCall,
    MarginRestored,
    MarketPriceSet,
    OrderAccepted,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrdersLinked,
    PositionChanged,
    Rejected,
    RiskLimitsSet,
    SelfTradeSet,
    StopTrails,
    Trade,
)
from mercato.domain.instrument import MAX_CALENDAR
from mercato.domain.ledger import Posting
from mercato.domain.orders import Order
from mercato.domain.reasons import CancelReason, Reject, RiskReject
from mercato.domain.risk import RiskLimits
from mercato.domain.types import AccountKind
from mercato.domain.types import Venue as VenueKind
from mercato.engine.client_ids import MAX_DONE, ClientIds
from mercato.engine.core_state import (
    CALL,
    LIQUIDATING,
    OK,
    Account,
    AccountSummary,
    Bracket,
    Hold,
    InstrumentRisk,
    Trailing,
)
from mercato.engine.engine import Engine
from mercato.engine.ledger import Ledger
from mercato.engine.money import (
    BPS,
    band_price,
    cash_ceil,
    cash_factor,
    cash_floor,
    fee_ceil,
)
from mercato.engine.paper import PaperVenue
from mercato.engine.positions import Position, Positions
from mercato.engine.risk import KillSwitches, LimitsBook, Throttle, check_new_order, collar_ok

BUY: Final = 1
SELL: Final = 2
MARKET: Final = 1
LIMIT: Final = 2
STOP: Final = 3
STOP_LIMIT: Final = 4
CASH: Final = int(AccountKind.CASH)
MARGIN: Final = int(AccountKind.MARGIN)
INTERNAL: Final = int(VenueKind.INTERNAL)
PAPER_VENUE: Final = int(VenueKind.PAPER)

INTERNAL_IDS: Final = 1 << 62  # order ids from here up are the core's own (liquidations, exits)
DEFAULT_BAND_BPS: Final = 500  # market and stop orders' protection when no collar is set
DEFAULT_SCALES: Final = (("USD", 2),)  # currencies every core starts with
MAX_ROUNDS: Final = 64  # post-trade rounds per command (each liquidates an account at most once)
BAND_SLACK: Final = 64  # stale margin-band entries a symbol's heaps may hold beyond 2 per account


class Core:
    """Venues, ledger, positions and risk, one command at a time."""

    def __init__(self, max_client_ids: int = MAX_DONE) -> None:
        """``max_client_ids``: how many finished orders' client order ids the core keeps
        (``client_ids.py``; small in tests)."""
        self.engine = Engine()
        self.paper = PaperVenue(self.engine)
        self.ledger = Ledger()
        self.positions = Positions()
        self.limits = LimitsBook()
        self.throttle = Throttle()
        self.kills = KillSwitches()
        self.currencies: dict[str, int] = dict(DEFAULT_SCALES)
        self.instruments: dict[str, InstrumentRisk] = {}
        self.accounts: dict[int, Account] = {}
        self.holds: dict[int, Hold] = {}  # every live order, whatever its venue
        self.client_ids = ClientIds(max_client_ids)  # live and recently finished orders'
        self.prices: dict[str, int] = {}  # outside market prices (``MarketPrice``)
        self.trailing: dict[int, Trailing] = {}
        self._trailing_in: dict[str, dict[int, Trailing]] = {}  # the same, by symbol
        self.holders: dict[str, set[int]] = {}  # symbol -> margin accounts with a position
        # margin bands: per symbol, heaps of (-low, account, version) and (high, account,
        # version); an account is checked again only when a mark leaves its band
        self._bands: dict[str, tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]] = {}
        self._band_version: dict[int, int] = {}
        self.brackets: dict[int, Bracket] = {}  # by entry order id
        self.next_id = INTERNAL_IDS
        self._out: list[Event] = []
        self._ts = 0
        self._pending: Hold | None = None  # the hold of the order being accepted or replaced
        self._touched: set[str] = set()  # symbols whose price moved in this command
        self._accounts_hit: set[int] = set()  # accounts that traded in this command
        self._brackets_hit: set[int] = set()
        self._trail_hit: set[int] = set()

    @property
    def seq(self) -> int:
        return self.engine.seq

    # -- entry point ---------------------------------------------------------------------

    def process(self, cmd: Command) -> list[Event]:
        """Apply one command; return every event it caused, in sequence order."""
        out: list[Event] = []
        self._out = out
        try:
            self._ts = cmd.ts
        except AttributeError:
            raise UnknownCommand(f"not a command: {cmd!r}") from None
        if self.engine.expiries.heap or self.paper.expiries.heap:
            self._expire_due()
        if isinstance(cmd, ReplaceOrder):
            self._replace(cmd)
        elif isinstance(cmd, NewOrder):
            self._new_order(cmd)
        elif isinstance(cmd, CancelOrder):
            self._cancel(cmd)
        elif isinstance(cmd, Deposit):
            self._deposit(cmd)
        elif isinstance(cmd, Withdraw):
            self._withdraw(cmd)
        elif isinstance(cmd, MarketPrice):
            self._market_price(cmd)
        elif isinstance(cmd, NewBracket):
            self._new_bracket(cmd)
        elif isinstance(cmd, NewOco):
            self._new_oco(cmd)
        elif isinstance(cmd, CreateAccount):
            self._create_account(cmd)
        elif isinstance(cmd, AddCurrency):
            self._add_currency(cmd)
        elif isinstance(cmd, AddInstrument):
            self._add_instrument(cmd)
        elif isinstance(cmd, SetInstrumentRisk):
            self._set_instrument_risk(cmd)
        elif isinstance(cmd, SetRiskLimits):
            self._set_limits(cmd)
        elif isinstance(cmd, SetKillSwitch):
            self._kill_switch(cmd)
        elif isinstance(cmd, SetTradingStatus):
            self._run(self.engine.process(cmd))
        elif isinstance(cmd, EndOfDay):
            self._end_of_day(cmd)
        elif isinstance(cmd, SetSelfTrade):
            self._set_self_trade(cmd)
        elif isinstance(cmd, Clock):
            pass  # what is due has expired above
        else:
            raise UnknownCommand(f"not a command: {cmd!r}")
        if self._touched or self._accounts_hit or self._brackets_hit:
            self._post_trade()
        return out

    # -- queries -------------------------------------------------------------------------

    def mark(self, symbol: str) -> int:
        """The price positions are valued at: last trade, else the outside market price,
        else the configured reference (0: none known)."""
        book = self.engine.books.get(symbol)
        if book is not None and book.last_price:
            return book.last_price
        price = self.prices.get(symbol, 0)
        if price:
            return price
        inst = self.instruments.get(symbol)
        return inst.reference if inst is not None else 0

    def cash(self, account: int) -> int:
        return self.ledger.balance(account, self.accounts[account].currency)

    def equity(self, account: int) -> int:
        """Cash plus the marked value of the positions (longs +, shorts -)."""
        acct = self.accounts[account]
        total = self.ledger.balance(account, acct.currency)
        for sym, pos in acct.positions.items():
            if pos.qty:
                v = self._value(sym, pos)
                total += v if pos.qty > 0 else -v
        return total

    def margin_used(self, account: int, rate: str = "im") -> int:
        """The margin the positions need at their marks: initial ("im"), maintenance
        ("mm") or liquidation ("liq") rates."""
        total = 0
        for sym, pos in self.accounts[account].positions.items():
            if pos.qty:
                inst = self.instruments[sym]
                bps = inst.im if rate == "im" else inst.mm if rate == "mm" else inst.liq
                total += fee_ceil(self._value(sym, pos), bps)
        return total

    def buying_power(self, account: int) -> int:
        """Cash account: cash not reserved. Margin account: equity less the initial margin
        of its positions and what its open orders reserve."""
        acct = self.accounts[account]
        if acct.kind == CASH:
            return self.ledger.balance(account, acct.currency) - acct.reserved
        return self.equity(account) - self.margin_used(account) - acct.reserved

    def day_pnl(self, account: int) -> int:
        """Realized plus unrealized PnL since the last end of day (fees not included)."""
        return self._pnl(self.accounts[account]) - self.accounts[account].sod_pnl

    def gross_exposure(self, account: int) -> int:
        acct = self.accounts[account]
        return sum(self._value(s, p) for s, p in acct.positions.items() if p.qty)

    def exposure(self, account: int | None = None, symbol: str | None = None) -> tuple[int, int]:
        """(gross, net) marked exposure of customer positions: of one account or all, in
        one instrument or all. Net: longs minus shorts."""
        gross = net = 0
        accts = self.accounts.values() if account is None else (self.accounts[account],)
        for acct in accts:
            for sym, pos in acct.positions.items():
                if pos.qty and (symbol is None or sym == symbol):
                    v = self._value(sym, pos)
                    gross += v
                    net += v if pos.qty > 0 else -v
        return gross, net

    def summary(self, account: int) -> AccountSummary:
        """One account's money and risk figures, in its currency's units."""
        acct = self.accounts[account]
        gross, net = self.exposure(account)
        unrealized = sum(
            p.unrealized(self._value(s, p)) for s, p in acct.positions.items() if p.qty
        )
        return AccountSummary(
            account=account,
            kind=acct.kind,
            currency=acct.currency,
            cash=self.ledger.balance(account, acct.currency),
            reserved=acct.reserved,
            buying_power=self.buying_power(account),
            equity=self.equity(account),
            initial_margin=self.margin_used(account, "im"),
            maintenance_margin=self.margin_used(account, "mm"),
            gross_exposure=gross,
            net_exposure=net,
            realized=sum(p.realized for p in acct.positions.values()),
            unrealized=unrealized,
            day_pnl=self.day_pnl(account),
            open_orders=acct.open_orders,
            margin_status=("ok", "call", "liquidating")[acct.margin_status],
            killed=self.kills.account_killed(account),
        )

    def state_hash(self) -> str:
        from mercato.engine.core_snapshot import state_hash  # it imports this module

        return state_hash(self)

    def encode(self) -> bytes:
        from mercato.engine.core_snapshot import encode

        return encode(self)

    @staticmethod
    def restore(data: bytes) -> Core:
        from mercato.engine.core_snapshot import restore

        return restore(data)

    # -- emission ------------------------------------------------------------------------

    def _emit(self, event_type: type[Event], *fields: object) -> None:
        self.engine.seq += 1
        self._out.append(event_type(self.engine.seq, self._ts, *fields))

    def _reject(
        self, command: str, order_id: int, symbol: str, reason: str, detail: str, account: int
    ) -> None:
        self._emit(Rejected, command, order_id, symbol, reason, detail, account)

    # -- reference data ------------------------------------------------------------------

    def _add_currency(self, c: AddCurrency) -> None:
        if c.code in self.currencies:
            self._reject("cur", 0, c.code, str(Reject.DUPLICATE_CURRENCY), "", 0)
        elif not (1 <= len(c.code) <= 12 and c.code.isalnum() and c.code not in self.engine.books):
            self._reject("cur", 0, c.code, str(Reject.INVALID_CURRENCY), "1-12 letters/digits", 0)
        elif not 0 <= c.scale <= 18:
            self._reject("cur", 0, c.code, str(Reject.INVALID_CURRENCY), "scale 0..18", 0)
        else:
            self.currencies[c.code] = c.scale
            self._emit(CurrencyAdded, c.code, c.scale)

    def _add_instrument(self, c: AddInstrument) -> None:
        scale = self.currencies.get(c.currency)
        if scale is None:
            self._reject("ai", 0, c.symbol, str(Reject.UNKNOWN_CURRENCY), c.currency, 0)
            return
        if c.symbol in self.currencies:
            self._reject("ai", 0, c.symbol, str(Reject.INVALID_INSTRUMENT), "a currency", 0)
            return
        if len(c.calendar) > MAX_CALENDAR or not c.calendar.isprintable():
            detail = f"calendar: at most {MAX_CALENDAR} printable characters"
            self._reject("ai", 0, c.symbol, str(Reject.INVALID_INSTRUMENT), detail, 0)
            return
        events = self.engine.process(c)
        self._run(events)
        if events and isinstance(events[0], InstrumentAdded):
            mul, div = cash_factor(scale, c.price_scale, c.qty_scale)
            self.instruments[c.symbol] = InstrumentRisk(
                c.symbol, c.currency, mul, div, c.tick_size, c.calendar
            )

    def _set_instrument_risk(self, c: SetInstrumentRisk) -> None:
        inst = self.instruments.get(c.symbol)
        if inst is None:
            self._reject("irisk", 0, c.symbol, str(Reject.UNKNOWN_SYMBOL), "", 0)
            return
        rates = (c.maker_fee_bps, c.taker_fee_bps)
        margins = (c.initial_margin_bps, c.maintenance_margin_bps, c.liquidation_margin_bps)
        if not all(0 <= r <= BPS for r in rates):
            problem = "fees are 0..10000 bps"
        elif not BPS >= margins[0] >= margins[1] >= margins[2] > 0:
            problem = "margins: 10000 >= initial >= maintenance >= liquidation > 0 bps"
        elif c.reference_price < 0 or c.reference_price % inst.tick:
            problem = "reference price: 0 or a positive multiple of the tick"
        else:
            problem = ""
        if problem:
            self._reject("irisk", 0, c.symbol, str(Reject.INVALID_RISK), problem, 0)
            return
        inst.maker, inst.taker = rates
        inst.im, inst.mm, inst.liq = margins
        inst.reference = c.reference_price
        self._emit(InstrumentRiskSet, c.symbol, *rates, *margins, c.reference_price)
        self._accounts_hit.update(self.holders.get(c.symbol, ()))  # new rates: check them

    def _set_limits(self, c: SetRiskLimits) -> None:
        if c.account == 0:
            if c.limits is None:
                self._reject(
                    "lim", 0, "", str(Reject.INVALID_RISK), "defaults cannot be cleared", 0
                )
                return
            self.limits.defaults = c.limits
        elif c.account not in self.accounts:
            self._reject("lim", 0, "", str(Reject.UNKNOWN_ACCOUNT), "", c.account)
            return
        elif c.limits is None:
            self.limits.clear_account(c.account)
        else:
            self.limits.set_account(c.account, c.limits)
        self._emit(RiskLimitsSet, c.account, c.limits)

    def _market_price(self, c: MarketPrice) -> None:
        if c.symbol not in self.instruments:
            self._reject("mp", 0, c.symbol, str(Reject.UNKNOWN_SYMBOL), "", 0)
        elif c.price <= 0 or c.price % self.instruments[c.symbol].tick:
            self._reject("mp", 0, c.symbol, str(Reject.INVALID_PRICE), "", 0)
        else:
            self.prices[c.symbol] = c.price
            self._emit(MarketPriceSet, c.symbol, c.price)
            self._touched.add(c.symbol)

    # -- accounts and money --------------------------------------------------------------

    def _create_account(self, c: CreateAccount) -> None:
        if c.account in self.accounts:
            self._reject("acct", 0, "", str(Reject.DUPLICATE_ACCOUNT), "", c.account)
        elif c.account <= 0:
            self._reject("acct", 0, "", str(Reject.INVALID_ACCOUNT), "ids are > 0", c.account)
        elif c.kind != CASH and c.kind != MARGIN:
            self._reject("acct", 0, "", str(Reject.INVALID_ACCOUNT), "cash or margin", c.account)
        elif c.venue != INTERNAL and c.venue != PAPER_VENUE:
            self._reject("acct", 0, "", str(Reject.INVALID_ACCOUNT), "unknown venue", c.account)
        elif c.currency not in self.currencies:
            self._reject("acct", 0, "", str(Reject.UNKNOWN_CURRENCY), c.currency, c.account)
        else:
            self.accounts[c.account] = Account(c.account, int(c.kind), c.currency, int(c.venue))
            self._emit(AccountCreated, c.account, int(c.kind), c.currency, int(c.venue))

    def _money_check(self, tag: str, account: int, asset: str, amount: int) -> Account | None:
        acct = self.accounts.get(account)
        if acct is None:
            self._reject(tag, 0, asset, str(Reject.UNKNOWN_ACCOUNT), "", account)
        elif asset != acct.currency and asset not in self.instruments:
            self._reject(tag, 0, asset, str(Reject.UNKNOWN_ASSET), "", account)
        elif asset != acct.currency and self.instruments[asset].currency != acct.currency:
            detail = "the instrument trades in another currency"
            self._reject(tag, 0, asset, str(Reject.INVALID_CURRENCY), detail, account)
        elif amount <= 0:
            self._reject(tag, 0, asset, str(Reject.INVALID_AMOUNT), "must be positive", account)
        else:
            return acct
        return None

    def _deposit(self, c: Deposit) -> None:
        acct = self._money_check("dep", c.account, c.asset, c.amount)
        if acct is None:
            return
        if c.asset == acct.currency:
            if c.cost:
                self._reject("dep", 0, c.asset, str(Reject.INVALID_AMOUNT), "cash has no cost", 0)
                return
        elif c.cost < 0:
            self._reject("dep", 0, c.asset, str(Reject.INVALID_AMOUNT), "cost >= 0", c.account)
            return
        self._posted(self.ledger.deposit(self._ts, c.ref, c.account, c.asset, c.amount))
        self._accounts_hit.add(acct.account)
        if c.asset != acct.currency:
            pos = self._position(acct, c.asset)
            pos.apply_fill(BUY, c.amount, c.cost)  # type: ignore[arg-type]
            self._position_changed(acct.account, c.asset, pos)
            self._accounts_hit.add(acct.account)

    def _withdraw(self, c: Withdraw) -> None:
        acct = self._money_check("wd", c.account, c.asset, c.amount)
        if acct is None:
            return
        if c.asset == acct.currency:
            free = self.buying_power(acct.account)
            if acct.kind == MARGIN:
                free = min(free, self.ledger.balance(acct.account, c.asset))
        else:
            pos = acct.positions.get(c.asset)
            held = pos.qty if pos is not None else 0
            free = held - acct.selling.get(c.asset, 0)
        if c.amount > free:
            detail = f"{max(free, 0)} free"
            self._reject("wd", 0, c.asset, str(Reject.INSUFFICIENT_FUNDS), detail, c.account)
            return
        self._posted(self.ledger.withdraw(self._ts, c.ref, c.account, c.asset, c.amount))
        self._accounts_hit.add(acct.account)
        if c.asset != acct.currency:
            pos = acct.positions[c.asset]
            pos.transfer_out(c.amount)
            self._position_changed(acct.account, c.asset, pos)
            self._accounts_hit.add(acct.account)

    def _posted(self, p: Posting) -> None:
        self._emit(LedgerPosted, p.seq, p.kind, p.ref, p.entries)

    def _position(self, acct: Account, symbol: str) -> Position:
        pos = acct.positions.get(symbol)
        if pos is None:
            pos = acct.positions[symbol] = self.positions.ensure(acct.account, symbol)
        return pos

    def _position_changed(self, account: int, symbol: str, pos: Position) -> None:
        self._emit(PositionChanged, account, symbol, pos.qty, pos.cost, pos.realized)
        if self.accounts[account].kind == MARGIN:
            holders = self.holders.setdefault(symbol, set())
            if pos.qty:
                holders.add(account)
            else:
                holders.discard(account)

    # -- new orders ----------------------------------------------------------------------

    def _new_order(self, c: NewOrder) -> None:
        acct = self.accounts.get(c.account)
        if acct is None:
            self._reject("n", c.order_id, c.symbol, str(Reject.UNKNOWN_ACCOUNT), "", c.account)
            return
        if c.client_order_id:  # the key is taken when the order is accepted (``_accepted``)
            first = self.client_ids.get(c.account, c.client_order_id)
            if first is not None:
                self._emit(DuplicateClientOrder, c.account, c.client_order_id, first, c.order_id)
                return
        reason, detail, protect = self._check_order(c, acct)
        if reason:
            self._reject("n", c.order_id, c.symbol, reason, detail, c.account)
            return
        trail_amount, trail_bps = c.trail_amount, c.trail_bps
        if protect != c.protect_price or trail_amount or trail_bps:
            c = struct_replace(c, protect_price=protect, trail_amount=0, trail_bps=0)
        inst = self.instruments[c.symbol]
        hold = self._hold_for(c, acct, inst)
        if hold is None:
            return
        self._submit(c, hold)
        if (trail_amount or trail_bps) and c.order_id in self.engine.books[c.symbol].stops:
            tr = Trailing(c.order_id, c.symbol, c.side, trail_amount, trail_bps)
            tr.best = self.mark(c.symbol)
            self.add_trailing(tr)
            self._emit(
                StopTrails, c.order_id, c.account, c.symbol, trail_amount, trail_bps, tr.best
            )

    def _check_order(self, c: NewOrder, acct: Account) -> tuple[str, str, int]:
        """Checks before risk: (reason, detail, protection price); reason "" when fine."""
        if not 0 < c.order_id < INTERNAL_IDS:
            return str(Reject.INVALID_ORDER_ID), f"order ids are 1..{INTERNAL_IDS - 1}", 0
        if c.order_id in self.holds:
            return str(Reject.DUPLICATE_ORDER_ID), "", 0
        inst = self.instruments.get(c.symbol)
        if inst is None:
            return str(Reject.UNKNOWN_SYMBOL), "", 0
        if inst.currency != acct.currency:
            return str(Reject.INVALID_CURRENCY), "the instrument trades in another currency", 0
        if acct.margin_status == LIQUIDATING:
            return str(Reject.ACCOUNT_LIQUIDATING), "", 0
        if c.trail_amount or c.trail_bps:
            problem = self._check_trail(c, acct)
            if problem:
                return str(Reject.INVALID_TRAIL), problem, 0
            c = struct_replace(c, trail_amount=0, trail_bps=0)
        book = self.engine.books[c.symbol]
        reason, detail = self.engine._check_new(c, book)
        if reason:
            return reason, detail, 0
        protect = c.protect_price
        if protect == 0 and (c.type == MARKET or c.type == STOP):
            band = self.limits.for_account(acct.account).collar_bps or DEFAULT_BAND_BPS
            base = c.stop_price if c.type == STOP else self.mark(c.symbol)
            if base == 0:
                return str(Reject.NO_REFERENCE_PRICE), "no price to protect a market order", 0
            protect = band_price(base, band, c.side == BUY, inst.tick)
        return "", "", protect

    def _check_trail(self, c: NewOrder, acct: Account) -> str:
        if c.type != STOP and c.type != STOP_LIMIT:
            return "only stop and stop-limit orders trail"
        if (c.trail_amount > 0) == (c.trail_bps > 0) or c.trail_amount < 0 or c.trail_bps < 0:
            return "exactly one of trail_amount and trail_bps, positive"
        if c.trail_bps >= BPS:
            return "trail_bps below 10000"
        if acct.venue != INTERNAL:
            return "trailing stops run on the matching engine only"
        return ""

    def _hold_for(self, c: NewOrder, acct: Account, inst: InstrumentRisk) -> Hold | None:
        """Pre-trade risk for ``c``; its hold, or None after emitting the rejection."""
        basis = c.price if c.type == LIMIT or c.type == STOP_LIMIT else c.protect_price
        notional = cash_ceil(basis, c.qty, inst.mul, inst.div)
        fees = fee_ceil(notional, max(inst.maker, inst.taker))
        pos = acct.positions.get(c.symbol)
        position = pos.qty if pos is not None else 0
        account = acct.account
        lim = self.limits.for_account(account)
        cash_acct = acct.kind == CASH
        reduces = (
            (position < 0 and c.qty <= -position)
            if c.side == BUY
            else (position > 0 and c.qty <= position)
        )
        if cash_acct:
            required = notional + fees
        else:
            required = 0 if reduces else fee_ceil(notional, inst.im) + fees
        is_stop = c.type == STOP or c.type == STOP_LIMIT
        reject = check_new_order(
            account=account,
            side=c.side,
            qty=c.qty,
            price=basis,
            notional=notional,
            fees=fees,
            open_orders=acct.open_orders,
            position=position,
            gross_exposure=self.gross_exposure(account) if lim.max_gross_exposure else 0,
            day_pnl=self.day_pnl(account) if lim.daily_loss_limit else 0,
            reference_price=0 if is_stop else self.mark(c.symbol),
            ts=self._ts,
            cash_account=cash_acct,
            available_to_sell=position - acct.selling.get(c.symbol, 0),
            buying_power=self.buying_power(account) if required else 0,
            required=required,
            limits=self.limits,
            throttle=self.throttle,
            kills=self.kills,
        )
        if reject is not None:
            self._reject("n", c.order_id, c.symbol, str(reject), "", account)
            return None
        if cash_acct and c.side == SELL:
            return Hold(c.order_id, account, c.symbol, SELL, acct.venue, 0, c.qty)
        if cash_acct or not reduces:
            return Hold(c.order_id, account, c.symbol, c.side, acct.venue, required, 0)
        return Hold(c.order_id, account, c.symbol, c.side, acct.venue, 0, 0)

    def _set_self_trade(self, c: SetSelfTrade) -> None:
        if c.account not in self.accounts:
            self._reject("stp", 0, "", str(Reject.UNKNOWN_ACCOUNT), "", c.account)
        elif c.mode < 0 or c.mode > 3:
            detail = "self-trade prevention is 0 to 3 (SelfTrade)"
            self._reject("stp", 0, "", str(Reject.INVALID_SELF_TRADE), detail, c.account)
        else:
            self.accounts[c.account].self_trade = c.mode
            self._emit(SelfTradeSet, c.account, c.mode)

    def _submit(self, c: NewOrder, hold: Hold) -> None:
        """Send an order that passed risk to its venue; the hold is taken on acceptance.
        An order that names no self-trade prevention mode takes its account's."""
        if not c.self_trade:
            mode = self.accounts[hold.account].self_trade
            if mode:
                c = struct_replace(c, self_trade=mode)
        self._pending = hold
        if hold.venue == INTERNAL:
            self._run(self.engine.process(c))
        else:
            self._run(self._paper(c))
        self._pending = None

    def _paper(self, c: Command) -> list[Event]:
        self.paper.seq = self.engine.seq
        events = self.paper.process(c)
        self.engine.seq = self.paper.seq
        return events

    # -- cancel and replace --------------------------------------------------------------

    def _cancel(self, c: CancelOrder) -> None:
        h = self.holds.get(c.order_id)
        if h is not None and h.venue == PAPER_VENUE:
            self._run(self._paper(c))
        else:
            self._run(self.engine.process(c))

    def _replace(self, c: ReplaceOrder, internal: bool = False) -> None:
        """A client's replace passes the throttle and the platform kill switch and is
        checked like a new order; the core's own (growing bracket exits) only the funds."""
        h = self.holds.get(c.order_id)
        if h is None or h.symbol != c.symbol:
            self._run(self.engine.process(c))  # the venue rejects it as an unknown order
            return
        venue = self.engine if h.venue == INTERNAL else self.paper
        o = venue.orders[c.order_id]
        acct = self.accounts[h.account]
        inst = self.instruments[h.symbol]
        lim = self.limits.for_account(acct.account)
        reason = ""
        if internal:
            pass
        elif self.kills.platform:
            reason = str(RiskReject.PLATFORM_KILLED)
        elif self.kills.account_killed(acct.account):
            reason = str(RiskReject.ACCOUNT_KILLED)
        elif lim.max_commands_per_s and not self.throttle.admit(
            acct.account, self._ts, lim.max_commands_per_s
        ):
            reason = str(RiskReject.THROTTLED)
        if o.type == STOP and c.protect_price == 0 and c.qty > 0:
            band = lim.collar_bps or DEFAULT_BAND_BPS
            stop = c.stop_price or o.stop_price
            c = struct_replace(c, protect_price=band_price(stop, band, h.side == BUY, inst.tick))
        basis = c.price if o.type == LIMIT or o.type == STOP_LIMIT else c.protect_price
        new: Hold | None = None
        if o.type == MARKET or basis <= 0 or c.qty <= 0:
            pass  # the venue rejects what is malformed
        elif not reason:
            reason, new = self._check_replace(c, o, h, acct, inst, basis, lim)
        if reason:
            self._reject("r", c.order_id, c.symbol, reason, "", acct.account)
            return
        self._pending = new if new is not None else self._replace_hold(c, o, h, acct, inst, basis)
        self._run(self.engine.process(c) if h.venue == INTERNAL else self._paper(c))
        self._pending = None

    def _check_replace(
        self,
        c: ReplaceOrder,
        o: Order,
        h: Hold,
        acct: Account,
        inst: InstrumentRisk,
        basis: int,
        lim: RiskLimits,
    ) -> tuple[str, Hold | None]:
        """Why the replace is refused ("" if not), and the order's hold after it."""
        notional = cash_ceil(basis, c.qty, inst.mul, inst.div)
        if lim.max_order_qty and c.qty + o.filled > lim.max_order_qty:
            return str(RiskReject.MAX_ORDER_QTY), None
        if lim.max_order_notional and notional > lim.max_order_notional:
            return str(RiskReject.MAX_ORDER_NOTIONAL), None
        if o.type == LIMIT and lim.collar_bps:
            ref = self.mark(o.symbol)
            if ref and not collar_ok(o.side, basis, ref, lim.collar_bps):
                return str(RiskReject.PRICE_COLLAR), None
        pos = acct.positions.get(o.symbol)
        position = pos.qty if pos is not None else 0
        if not _reduces(o.side, c.qty, position):
            after = position + c.qty if o.side == BUY else position - c.qty
            if lim.max_position and abs(after) > lim.max_position:
                return str(RiskReject.MAX_POSITION), None
            gross = self.gross_exposure(acct.account) if lim.max_gross_exposure else 0
            if lim.max_gross_exposure and gross + notional > lim.max_gross_exposure:
                return str(RiskReject.MAX_GROSS_EXPOSURE), None
            if lim.daily_loss_limit and -self.day_pnl(acct.account) > lim.daily_loss_limit:
                return str(RiskReject.DAILY_LOSS_LIMIT), None
        new = self._replace_hold(c, o, h, acct, inst, basis)
        if new.qty > h.qty:
            pos = acct.positions.get(o.symbol)
            free = (pos.qty if pos is not None else 0) - acct.selling.get(o.symbol, 0)
            if new.qty - h.qty > free:
                return str(RiskReject.SHORT_SALE_NOT_ALLOWED), None
        if new.cash > h.cash and new.cash - h.cash > self.buying_power(acct.account):
            return str(RiskReject.INSUFFICIENT_BUYING_POWER), None
        return "", new

    def _replace_hold(
        self, c: ReplaceOrder, o: Order, h: Hold, acct: Account, inst: InstrumentRisk, basis: int
    ) -> Hold:
        """The hold ``o`` would have after the replace (same shape as at acceptance)."""
        new = Hold(h.order_id, h.account, h.symbol, h.side, h.venue, 0, 0)
        new.sibling = h.sibling
        notional = cash_ceil(basis, max(c.qty, 0), inst.mul, inst.div)
        fees = fee_ceil(notional, max(inst.maker, inst.taker))
        if acct.kind == CASH:
            if h.side == SELL:
                new.qty = max(c.qty, 0)
            else:
                new.cash = notional + fees
        else:  # margin: nothing while the order only reduces the position, else margin
            pos = acct.positions.get(h.symbol)
            if not _reduces(h.side, max(c.qty, 0), pos.qty if pos is not None else 0):
                new.cash = fee_ceil(notional, inst.im) + fees
        sibling = self.holds.get(h.sibling) if h.sibling else None
        if sibling is not None:  # a pair holds once: this leg only what the other does not
            new.cash = max(new.cash - sibling.cash, 0)
            new.qty = max(new.qty - sibling.qty, 0)
        return new

    # -- applying venue events -----------------------------------------------------------

    def _run(self, events: list[Event]) -> None:
        """Append a venue's events, then apply what they mean for money and holds."""
        self._out.extend(events)
        for ev in events:
            if isinstance(ev, BookDelta):  # the most common event, and nothing to do
                continue
            if isinstance(ev, Trade):
                self._settle(ev)
            elif isinstance(ev, OrderAccepted):
                self._accepted(ev)
            elif isinstance(ev, OrderCancelled):
                if ev.reason == CancelReason.OCO:
                    self._pass_hold(ev.order_id)
                self._release(ev.order_id)
            elif isinstance(ev, OrderExpired):
                self._release(ev.order_id)
            elif isinstance(ev, OrderReplaced):
                self._replaced(ev.order_id)

    def _accepted(self, ev: OrderAccepted) -> None:
        h = self._pending
        assert h is not None and h.order_id == ev.order_id, "an order accepted without risk"
        self._pending = None
        self.holds[ev.order_id] = h
        if ev.client_order_id:
            self.client_ids.opened(ev.order_id, ev.account, ev.client_order_id)
        acct = self.accounts[h.account]
        acct.open_orders += 1
        acct.reserved += h.cash
        if h.qty:
            acct.selling[h.symbol] = acct.selling.get(h.symbol, 0) + h.qty

    def _replaced(self, order_id: int) -> None:
        new = self._pending
        assert new is not None and new.order_id == order_id, "a replace without risk"
        old = self.holds[order_id]
        acct = self.accounts[old.account]
        acct.reserved += new.cash - old.cash
        if new.qty != old.qty:
            acct.selling[old.symbol] = acct.selling.get(old.symbol, 0) + new.qty - old.qty
        old.cash, old.qty = new.cash, new.qty

    def _release(self, order_id: int) -> None:
        """The order ended: give back whatever it still holds."""
        h = self.holds.pop(order_id, None)
        if h is None:
            return
        self.client_ids.closed(order_id)
        acct = self.accounts[h.account]
        acct.open_orders -= 1
        acct.reserved -= h.cash
        if h.qty:
            acct.selling[h.symbol] -= h.qty
        if h.sibling:
            other = self.holds.get(h.sibling)
            if other is not None:
                other.sibling = 0
        tr = self.trailing.pop(order_id, None)
        if tr is not None:
            same = self._trailing_in[tr.symbol]
            del same[order_id]
            if not same:
                del self._trailing_in[tr.symbol]
        b = self.brackets.get(order_id)
        if b is not None and not b.pending:
            del self.brackets[order_id]  # the entry ended with every fill covered

    def _pass_hold(self, order_id: int) -> None:
        """``order_id`` was cancelled because the other order of its pair fired: the
        other takes over its hold (the pair held the money or the instrument once)."""
        h = self.holds.get(order_id)
        if h is None or not h.sibling:
            return
        other = self.holds.get(h.sibling)
        if other is not None:
            other.cash += h.cash
            other.qty += h.qty
            h.cash = h.qty = 0
            other.sibling = h.sibling = 0

    def _settle(self, t: Trade) -> None:
        """Move cash, fees and the instrument between the two accounts, update their
        positions, and take the trade out of the two orders' holds."""
        inst = self.instruments[t.symbol]
        cash = t.price * t.qty * inst.mul // inst.div
        taker_fee = cash * inst.taker // BPS
        maker_fee = cash * inst.maker // BPS if t.maker_account > 0 else 0
        if t.taker_side == BUY:
            buyer, seller, buyer_fee, seller_fee = (
                t.taker_account,
                t.maker_account,
                taker_fee,
                maker_fee,
            )
        else:
            buyer, seller, buyer_fee, seller_fee = (
                t.maker_account,
                t.taker_account,
                maker_fee,
                taker_fee,
            )
        p = self.ledger.settle_trade(
            self._ts,
            t.seq,
            buyer=buyer,
            seller=seller,
            symbol=t.symbol,
            qty=t.qty,
            currency=inst.currency,
            cash=cash,
            buyer_fee=buyer_fee,
            seller_fee=seller_fee,
        )
        self._posted(p)
        for account, side, fee in ((buyer, BUY, buyer_fee), (seller, SELL, seller_fee)):
            if account <= 0:
                continue  # the paper venue's house keeps no positions
            acct = self.accounts[account]
            pos = self._position(acct, t.symbol)
            pos.apply_fill(side, t.qty, cash)  # type: ignore[arg-type]
            self._position_changed(account, t.symbol, pos)
            self._accounts_hit.add(account)
            is_taker = account == t.taker_account and side == t.taker_side
            oid = t.taker_order_id if is_taker else t.maker_order_id
            left = t.taker_remaining if is_taker else t.maker_remaining
            if oid in self.brackets:
                self.brackets[oid].pending += t.qty
                self._brackets_hit.add(oid)
            self._consume(oid, acct, t.qty, left, cash + fee if side == BUY else 0)
        if t.maker_account > 0:  # an engine trade moves the mark; a paper fill does not
            self._touched.add(t.symbol)
        same = self._trailing_in.get(t.symbol)
        if same:
            self._follow(same, t.price)

    def add_trailing(self, tr: Trailing) -> None:
        self.trailing[tr.order_id] = tr
        self._trailing_in.setdefault(tr.symbol, {})[tr.order_id] = tr

    def _follow(self, same: dict[int, Trailing], price: int) -> None:
        """Trailing stops in a symbol remember the best price traded since acceptance
        (only that symbol's: a trade costs nothing for the trailing stops of others)."""
        for tr in same.values():
            if (tr.side == SELL and price > tr.best) or (
                tr.side == BUY and (tr.best == 0 or price < tr.best)
            ):
                tr.best = price
                self._trail_hit.add(tr.order_id)

    def _consume(self, order_id: int, acct: Account, qty: int, left: int, cost: int) -> None:
        """A fill of ``qty`` (``left`` remaining after it) for ``cost`` (a buy's cash and
        fee) takes its share out of the order's hold; the end of the order frees the rest."""
        h = self.holds.get(order_id)
        if h is None:
            return  # a liquidation or an order that holds nothing
        if h.cash:
            if acct.kind == CASH and h.side == BUY:
                used = cost if cost < h.cash else h.cash
            else:
                used = h.cash * qty // (qty + left)
            h.cash -= used
            acct.reserved -= used
        if h.qty:
            used = qty if qty < h.qty else h.qty
            h.qty -= used
            acct.selling[h.symbol] -= used
        if left == 0:
            self._release(order_id)

    # -- kill switches and end of day ----------------------------------------------------

    def _kill_switch(self, c: SetKillSwitch) -> None:
        if c.account and c.account not in self.accounts:
            self._reject("kill", 0, "", str(Reject.UNKNOWN_ACCOUNT), "", c.account)
            return
        if c.account:
            self.kills.set_account(c.account, c.on)
        else:
            self.kills.set_platform(c.on)
        self._emit(KillSwitchSet, c.account, c.on)
        if c.on:
            self._cancel_all(c.account or None, str(CancelReason.KILL_SWITCH))

    def _cancel_all(self, account: int | None, reason: str) -> None:
        for oid in sorted(self.holds):
            h = self.holds.get(oid)
            if h is not None and (account is None or h.account == account):
                self._cancel_one(h, reason)

    def _cancel_one(self, h: Hold, reason: str) -> None:
        if h.venue == INTERNAL:
            self._run(self.engine.cancel(h.order_id, reason, self._ts))
        else:
            self.paper.seq = self.engine.seq
            events = self.paper.cancel(h.order_id, reason, self._ts)
            self.engine.seq = self.paper.seq
            self._run(events)

    def _expire_due(self) -> None:
        """GTD orders whose time has come by this command's timestamp expire first, on
        both venues (deterministic: the time is the journaled command's)."""
        ts = self._ts
        if self.engine.expiries.next_ts() and self.engine.expiries.next_ts() <= ts:
            self._run(self.engine.expire(ts))
        if self.paper.expiries.next_ts() and self.paper.expiries.next_ts() <= ts:
            self.paper.seq = self.engine.seq
            events = self.paper.expire(ts)
            self.engine.seq = self.paper.seq
            self._run(events)

    def _end_of_day(self, c: EndOfDay) -> None:
        """An instrument's end of day expires its DAY orders. The platform's (no symbol)
        expires those of the instruments on the platform's calendar, then starts a new
        day for client order ids and the daily loss limit: instruments with a calendar of
        their own end their day with their own ``EndOfDay``."""
        if c.symbol:
            inst = self.instruments.get(c.symbol)
            if inst is None:
                self._reject("eod", 0, c.symbol, str(Reject.UNKNOWN_SYMBOL), "", 0)
                return
            self._run(self.engine.process(c))
            self._run(self._paper(c))
            return
        own = [s for s, i in sorted(self.instruments.items()) if i.calendar]
        if not own:  # every instrument on the platform's calendar (and older journals)
            self._run(self.engine.process(c))
            self._run(self._paper(c))
        else:
            kept = set(own)
            for sym in sorted(self.engine.books):
                if sym not in kept:
                    one = EndOfDay(ts=c.ts, symbol=sym)
                    self._run(self.engine.process(one))
                    self._run(self._paper(one))
        self.client_ids.new_day(self.engine.seq)  # client order ids: unique per day
        for acct in self.accounts.values():
            acct.sod_pnl = self._pnl(acct)

    # -- contingent orders ---------------------------------------------------------------

    def _new_oco(self, c: NewOco) -> None:
        """The limit leg goes through risk as usual; the stop leg holds only what it needs
        beyond it, and takes the limit leg's hold if it fires first."""
        leg = NewOrder(
            ts=c.ts,
            order_id=c.limit_id,
            account=c.account,
            symbol=c.symbol,
            side=c.side,
            type=LIMIT,
            qty=c.qty,
            tif=c.tif,
            price=c.limit_price,
            client_order_id=c.client_order_id,
        )
        if c.stop_id == c.limit_id:
            self._reject("oco", c.stop_id, c.symbol, str(Reject.DUPLICATE_ORDER_ID), "", c.account)
            return
        self._new_order(leg)
        first = self.holds.get(c.limit_id)
        if first is None or self.engine.orders.get(c.limit_id) is None:
            return  # rejected, filled or on the paper venue (OCO runs on the engine only)
        stop = NewOrder(
            ts=c.ts,
            order_id=c.stop_id,
            account=c.account,
            symbol=c.symbol,
            side=c.side,
            type=STOP_LIMIT if c.stop_limit_price else STOP,
            qty=c.qty,
            tif=c.tif,
            price=c.stop_limit_price,
            stop_price=c.stop_price,
        )
        self._place_pair_leg(stop, first, "oco")

    def _place_pair_leg(self, stop: NewOrder, first: Hold, kind: str) -> None:
        """Place the stop leg of a pair whose resting leg is ``first`` and link them."""
        acct = self.accounts[first.account]
        reason, detail, protect = self._check_order(stop, acct)
        if reason:
            self._reject("n", stop.order_id, stop.symbol, reason, detail, acct.account)
            self._cancel_one(first, str(CancelReason.OCO))
            return
        stop = struct_replace(stop, protect_price=protect)
        inst = self.instruments[stop.symbol]
        basis = stop.price or protect
        need = Hold(stop.order_id, acct.account, stop.symbol, stop.side, INTERNAL, 0, 0)
        if not (acct.kind == CASH and stop.side == SELL):
            notional = cash_ceil(basis, stop.qty, inst.mul, inst.div)
            fees = fee_ceil(notional, max(inst.maker, inst.taker))
            full = notional + fees if acct.kind == CASH else fee_ceil(notional, inst.im) + fees
            if acct.kind == MARGIN and first.cash == 0:
                full = 0  # it reduces a position, like the first leg
            need.cash = max(full - first.cash, 0)
            if need.cash > self.buying_power(acct.account):
                reason = str(RiskReject.INSUFFICIENT_BUYING_POWER)
                self._reject("n", stop.order_id, stop.symbol, reason, "", acct.account)
                self._cancel_one(first, str(CancelReason.OCO))
                return
        self._submit(stop, need)
        second = self.holds.get(stop.order_id)
        if second is None or stop.order_id not in self.engine.books[stop.symbol].stops:
            # it fired at once (and may have filled and ended already): one leg has run,
            # so the other goes, or both would sell what the entry bought only once
            if first.order_id in self.holds:
                self._cancel_one(first, str(CancelReason.OCO))
            return
        first_live = self.holds.get(first.order_id)
        if first_live is None:
            self._cancel_one(second, str(CancelReason.OCO))
            return
        self.engine.link(first.order_id, stop.order_id)
        first.sibling, second.sibling = stop.order_id, first.order_id
        ids = (first.order_id, stop.order_id)
        if kind == "oco":
            self._emit(OrdersLinked, "oco", acct.account, stop.symbol, ids)

    def _new_bracket(self, c: NewBracket) -> None:
        ids = {c.entry_id, c.take_profit_id, c.stop_loss_id}
        problem = ""
        if len(ids) != 3 or any(i in self.holds for i in ids):
            problem = str(Reject.DUPLICATE_ORDER_ID)
        elif c.type != LIMIT and c.type != MARKET:
            problem = str(Reject.INVALID_TYPE)
        elif not self._bracket_prices_ok(c):
            problem = str(Reject.INVALID_PRICE)
        if problem:
            self._reject("brk", c.entry_id, c.symbol, problem, "", c.account)
            return
        acct = self.accounts.get(c.account)
        if acct is not None and acct.venue != INTERNAL:
            detail = "brackets run on the matching engine only"
            self._reject("brk", c.entry_id, c.symbol, str(Reject.INVALID_TYPE), detail, c.account)
            return
        self.brackets[c.entry_id] = Bracket(
            c.entry_id,
            c.account,
            c.symbol,
            c.side,
            c.take_profit_id,
            c.stop_loss_id,
            c.take_profit_price,
            c.stop_loss_price,
            c.stop_loss_limit_price,
        )
        entry = NewOrder(
            ts=c.ts,
            order_id=c.entry_id,
            account=c.account,
            symbol=c.symbol,
            side=c.side,
            type=c.type,
            qty=c.qty,
            tif=c.tif,
            price=c.price if c.type == LIMIT else 0,
            client_order_id=c.client_order_id,
        )
        mark = len(self._out)
        self._new_order(entry)
        accepted = any(
            isinstance(e, OrderAccepted) and e.order_id == c.entry_id for e in self._out[mark:]
        )
        if not accepted:
            del self.brackets[c.entry_id]
            self._brackets_hit.discard(c.entry_id)
            return
        if c.take_profit_price and c.stop_loss_price:
            ids3 = (c.entry_id, c.take_profit_id, c.stop_loss_id)
            self._emit(OrdersLinked, "bracket", c.account, c.symbol, ids3)
        else:  # one-triggers-other: the entry and its one exit
            exit_id = c.take_profit_id if c.take_profit_price else c.stop_loss_id
            self._emit(OrdersLinked, "oto", c.account, c.symbol, (c.entry_id, exit_id))

    @staticmethod
    def _bracket_prices_ok(c: NewBracket) -> bool:
        """At least one exit, prices positive, and (both exits) the take-profit on the
        profitable side of the stop-loss."""
        tp, sl, sl_limit = c.take_profit_price, c.stop_loss_price, c.stop_loss_limit_price
        if tp < 0 or sl < 0 or sl_limit < 0 or (tp == 0 and sl == 0):
            return False
        if sl_limit and not sl:
            return False
        if tp and sl:
            return tp > sl if c.side == BUY else tp < sl
        return True

    def _bracket_exits(self, b: Bracket) -> None:
        """Cover the entry's new fills with an exit pair: the first pair takes the ids the
        client chose, later ones (the entry kept filling after a pair closed) the core's."""
        qty, b.pending = b.pending, 0
        legs = [oid for oid, p in ((b.tp_id, b.tp_price), (b.sl_id, b.sl_price)) if p]
        if b.used_ids and all(oid in self.holds for oid in legs):
            # the exits are live: grow them by the new fills
            for oid in legs:
                o = self.engine.orders[oid]
                self._replace(
                    ReplaceOrder(
                        ts=self._ts,
                        order_id=oid,
                        symbol=b.symbol,
                        price=o.price,
                        qty=o.remaining + qty,
                        stop_price=o.stop_price if oid == b.sl_id else 0,
                    ),
                    internal=True,
                )
            return
        if b.used_ids:
            b.tp_id, b.sl_id = self._internal_id(), self._internal_id()
        b.used_ids = True
        acct = self.accounts[b.account]
        exit_side = SELL if b.side == BUY else BUY
        sl = NewOrder(
            ts=self._ts,
            order_id=b.sl_id,
            account=b.account,
            symbol=b.symbol,
            side=exit_side,
            type=STOP_LIMIT if b.sl_limit else STOP,
            qty=qty,
            price=b.sl_limit,
            stop_price=b.sl_price,
        )
        if not b.tp_price:  # an OTO's stop-loss alone
            self._place_exit(sl, acct)
            return
        tp = NewOrder(
            ts=self._ts,
            order_id=b.tp_id,
            account=b.account,
            symbol=b.symbol,
            side=exit_side,
            type=LIMIT,
            qty=qty,
            price=b.tp_price,
        )
        if not self._place_exit(tp, acct) or not b.sl_price:
            return  # refused, or an OTO's take-profit alone
        first = self.holds.get(tp.order_id)
        if first is None:
            return
        self._place_pair_leg(sl, first, "bracket")

    def _place_exit(self, o: NewOrder, acct: Account) -> bool:
        """Place one exit of a bracket or OTO with the hold an exit takes (``_exit_hold``);
        False if it was refused (the rejection is emitted)."""
        reason, detail, protect = self._check_order(o, acct)
        hold = None if reason else self._exit_hold(o, acct)
        if hold is None:
            reason = reason or str(RiskReject.SHORT_SALE_NOT_ALLOWED)
            self._reject("n", o.order_id, o.symbol, reason, detail, acct.account)
            return False
        if protect != o.protect_price:
            o = struct_replace(o, protect_price=protect)
        self._submit(o, hold)
        return True

    def _exit_hold(self, o: NewOrder, acct: Account) -> Hold | None:
        """An exit closes what the entry opened: a cash account's sell holds the quantity,
        a margin account's exit reduces and holds nothing."""
        if acct.kind == CASH and o.side == SELL:
            pos = acct.positions.get(o.symbol)
            free = (pos.qty if pos is not None else 0) - acct.selling.get(o.symbol, 0)
            if o.qty > free:
                return None
            return Hold(o.order_id, acct.account, o.symbol, SELL, INTERNAL, 0, o.qty)
        if acct.kind == CASH:  # covering a short is impossible in a cash account
            return None
        return Hold(o.order_id, acct.account, o.symbol, o.side, INTERNAL, 0, 0)

    def _internal_id(self) -> int:
        self.next_id += 1
        return self.next_id

    # -- post-trade: paper fills, trailing stops, bracket exits, margin --------------------

    def _post_trade(self) -> None:
        """Until nothing moves: feed moved prices to the paper venue, trail stops, place
        bracket exits, and check the margin of accounts whose risk changed."""
        liquidated: set[int] = set()
        for _ in range(MAX_ROUNDS):
            touched, self._touched = sorted(self._touched), set()
            hit, self._accounts_hit = self._accounts_hit, set()
            brackets, self._brackets_hit = sorted(self._brackets_hit), set()
            trails, self._trail_hit = sorted(self._trail_hit), set()
            if not (touched or hit or brackets or trails):
                return
            for sym in touched:  # the paper venue follows every price, not only while
                price = self.mark(sym)  # it has orders: its next market order fills there
                if price:
                    self.paper.seq = self.engine.seq
                    events = self.paper.on_price(sym, price, self._ts)
                    self.engine.seq = self.paper.seq
                    self._run(events)
            for oid in trails:
                self._trail(oid)
            for oid in brackets:
                b = self.brackets.get(oid)
                if b is not None and b.pending:
                    self._bracket_exits(b)
                if b is not None and oid not in self.holds and not b.pending:
                    self.brackets.pop(oid, None)  # placing the exits may have ended it
            for account in self._margin_accounts(touched, hit):
                self._check_margin(self.accounts[account], liquidated)
        raise AssertionError("post-trade processing did not settle")

    def _trail(self, order_id: int) -> None:
        tr = self.trailing.get(order_id)
        o = self.engine.orders.get(order_id)
        if tr is None or o is None or order_id not in self.engine.books[tr.symbol].stops:
            return
        tick = self.instruments[tr.symbol].tick
        dist = tr.amount or tr.best * tr.bps // BPS
        if tr.side == SELL:
            stop = tr.best - dist
            stop -= stop % tick
            if stop <= o.stop_price or stop <= 0:
                return
        else:
            stop = tr.best + dist
            stop += -stop % tick
            if stop >= o.stop_price:
                return
        self._run(self.engine.move_stop(order_id, stop, self._ts, tr.best))

    def _margin_accounts(self, touched: list[str], hit: set[int]) -> list[int]:
        """The margin accounts to check: those that traded or moved money, and those
        holding a touched symbol whose mark left the account's band for it."""
        found = {a for a in hit if self.accounts[a].kind == MARGIN}
        versions = self._band_version
        for sym in touched:
            heaps = self._bands.get(sym)
            if heaps is None:
                continue
            price = self.mark(sym)
            lows, highs = heaps
            while lows and -lows[0][0] > price:
                _, account, version = heapq.heappop(lows)
                if versions.get(account) == version:
                    found.add(account)
            while highs and highs[0][0] < price:
                _, account, version = heapq.heappop(highs)
                if versions.get(account) == version:
                    found.add(account)
        return sorted(found)

    def _set_bands(self, acct: Account) -> None:
        """Give each of the account's positions a price band inside which no margin
        threshold can be crossed, so that it needs no check while marks stay inside.

        The slack is the distance from equity to the nearest threshold (maintenance or
        liquidation), shared equally among the positions. A move of ``dp`` in one symbol
        changes equity by at most ``|qty| * dp`` of cash and each requirement by at most
        as much again (rates are at most 100%), plus three units of rounding; the band's
        half-width in price units keeps the sum of those below the share of the slack.
        An account under liquidation, or with no slack, gets an empty band: any move
        checks it.
        """
        account = acct.account
        version = self._band_version.get(account, 0) + 1
        self._band_version[account] = version
        held = [(sym, pos) for sym, pos in acct.positions.items() if pos.qty]
        if not held:
            return
        equity = self.equity(account)
        slack = min(
            abs(equity - self.margin_used(account, "mm")),
            abs(equity - self.margin_used(account, "liq")),
        )
        share = slack // len(held) - 4 if acct.margin_status != LIQUIDATING else 0
        for sym, pos in held:
            price = self.mark(sym)
            if not price:
                continue  # unmarked: valued at cost, no price moves it
            inst = self.instruments[sym]
            width = share * inst.div // (2 * abs(pos.qty) * inst.mul) if share > 0 else 0
            heaps = self._bands.get(sym)
            if heaps is None:
                heaps = self._bands[sym] = ([], [])
            heapq.heappush(heaps[0], (-(price - width), account, version))
            heapq.heappush(heaps[1], (price + width, account, version))
            if len(heaps[0]) > 2 * len(self._band_version) + BAND_SLACK:
                self._compact_bands(heaps)

    def _compact_bands(self, heaps: tuple[list[tuple[int, int, int]], ...]) -> None:
        """Drop the superseded entries of one symbol's band heaps (each account's older
        versions, which ``_margin_accounts`` would skip anyway). At most one entry per
        account is current, so a heap past twice the accounts is at least half stale and
        this costs O(1) per push, amortised; the checks made are unchanged."""
        versions = self._band_version
        for heap in heaps:
            heap[:] = [b for b in heap if versions.get(b[1]) == b[2]]
            heapq.heapify(heap)

    def _check_margin(self, acct: Account, liquidated: set[int]) -> None:
        self._margin_status(acct, liquidated)
        self._set_bands(acct)

    def _margin_status(self, acct: Account, liquidated: set[int]) -> None:
        account = acct.account
        equity = self.equity(account)
        maintenance = self.margin_used(account, "mm")
        below_liq = equity < self.margin_used(account, "liq") and any(
            p.qty for p in acct.positions.values()
        )
        if below_liq and account not in liquidated:
            liquidated.add(account)
            if acct.margin_status == OK:
                self._emit(MarginCall, account, equity, maintenance)
            acct.margin_status = LIQUIDATING
            self._liquidate(acct, equity, self.margin_used(account, "liq"))
        elif equity < maintenance or (equity < 0 and acct.margin_status != OK):
            if acct.margin_status == OK:
                self._emit(MarginCall, account, equity, maintenance)
            if not below_liq:
                acct.margin_status = CALL
        elif acct.margin_status != OK:
            acct.margin_status = OK
            self._emit(MarginRestored, account, equity, maintenance)

    def _liquidate(self, acct: Account, equity: int, requirement: int) -> None:
        """Cancel the account's orders, then close each position with a market order
        (protected by the default band around the mark), through the venue as usual."""
        self._cancel_all(acct.account, str(CancelReason.LIQUIDATION))
        for sym in sorted(acct.positions):
            pos = acct.positions[sym]
            mark = self.mark(sym)
            if not pos.qty or not mark:
                continue
            side = SELL if pos.qty > 0 else BUY
            qty = abs(pos.qty)
            oid = self._internal_id()
            self._emit(Liquidation, acct.account, oid, sym, side, qty, equity, requirement)
            tick = self.instruments[sym].tick
            order = NewOrder(
                ts=self._ts,
                order_id=oid,
                account=acct.account,
                symbol=sym,
                side=side,
                type=MARKET,
                qty=qty,
                tif=3,  # IOC
                protect_price=band_price(mark, DEFAULT_BAND_BPS, side == BUY, tick),
            )
            self._submit(order, Hold(oid, acct.account, sym, side, acct.venue, 0, 0))

    # -- helpers -------------------------------------------------------------------------

    def _value(self, symbol: str, pos: Position) -> int:
        """The cash value of ``|pos.qty|`` at the symbol's mark (its cost when unmarked)."""
        mark = self.mark(symbol)
        if not mark:
            return abs(pos.cost)
        inst = self.instruments[symbol]
        return cash_floor(mark, abs(pos.qty), inst.mul, inst.div)

    def _pnl(self, acct: Account) -> int:
        total = 0
        for sym, pos in acct.positions.items():
            total += pos.realized
            if pos.qty:
                total += pos.unrealized(self._value(sym, pos))
        return total


def _reduces(side: int, qty: int, position: int) -> bool:
    """Whether an order of ``qty`` moves ``position`` toward zero without crossing it."""
    if side == BUY:
        return position < 0 and qty <= -position
    return position > 0 and qty <= position
