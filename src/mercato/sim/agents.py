"""The simulated traders: market makers, noise traders and momentum traders.

Each agent owns one account and decides one command at a time from what the simulator
tells it (fair value, the public tape, virtual time, a shared seeded ``random.Random``)
and from its own orders and positions, which it learns about only through the core's
events. No agent reads a clock or a global random source, so a seed replays the same
command stream.

Each kind of trader has an account kind and the money it starts with (``account_kind``,
``cash``, ``shares``): enough that its ordinary orders pass the core's pre-trade risk, so
that risk rejects stay rare and mean something (an account run down, a liquidation).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, Final

from mercato.domain import AccountKind, CancelOrder, Command, NewOrder, ReplaceOrder

if TYPE_CHECKING:
    from mercato.sim.market import Simulator

BUY: Final = 1
SELL: Final = 2
MARKET: Final = 1
LIMIT: Final = 2
STOP: Final = 3
STOP_LIMIT: Final = 4
GTC: Final = 1
DAY: Final = 2
IOC: Final = 3
FOK: Final = 4
OPG: Final = 5
CLS: Final = 6
OPEN: Final = 1  # trading statuses (mercato.domain.types.TradingStatus)
PRE_OPEN: Final = 4  # and above: an auction collects orders
CLOSING: Final = 6


USD: Final = 100  # cash units (cents) per dollar


class OwnOrder:
    """What an agent believes about one of its live orders.

    ``before`` holds (price, remaining, stop) from before a replace that is still unanswered,
    so that a refused replace puts them back.
    """

    __slots__ = (
        "before",
        "order_id",
        "price",
        "remaining",
        "side",
        "stop_price",
        "symbol",
        "tif",
        "type",
    )

    def __init__(
        self,
        order_id: int,
        symbol: str,
        side: int,
        type: int,
        tif: int,
        price: int,
        stop: int,
        qty: int,
    ) -> None:
        self.order_id = order_id
        self.symbol = symbol
        self.side = side
        self.type = type
        self.tif = tif
        self.price = price
        self.stop_price = stop
        self.remaining = qty
        self.before: tuple[int, int, int] | None = None

    @property
    def waiting_stop(self) -> bool:
        return self.type == STOP or self.type == STOP_LIMIT

    @property
    def resting(self) -> bool:
        """A limit order that stays in the book until filled or cancelled (or, DAY, until
        the end of the day)."""
        return self.type == LIMIT and (self.tif == GTC or self.tif == DAY)


class Agent(ABC):
    """One trader with one account. Subclasses implement ``act``."""

    kind = "agent"
    account_kind: ClassVar[AccountKind] = AccountKind.MARGIN
    cash: ClassVar[int] = 10_000_000 * USD  # deposited before trading starts
    shares: ClassVar[int] = 0  # of every symbol, deposited at the starting fair value

    def __init__(self, sim: Simulator, account: int) -> None:
        self.sim = sim
        self.account = account
        self.orders: dict[int, OwnOrder] = {}  # live as far as this agent knows
        # what the core says the account holds (``PositionChanged``): fills, deposits and
        # liquidations alike
        self.position: dict[str, int] = dict.fromkeys(sim.symbols, 0)

    @abstractmethod
    def act(self, now: int) -> Command | None:
        """The agent's next command at virtual time ``now``, or None when it has none."""

    # -- building commands ---------------------------------------------------------------

    def new(
        self,
        now: int,
        symbol: str,
        side: int,
        type: int,
        qty: int,
        tif: int = GTC,
        price: int = 0,
        stop: int = 0,
    ) -> NewOrder:
        oid = self.sim.new_order_id(self)
        self.orders[oid] = OwnOrder(oid, symbol, side, type, tif, price, stop, qty)
        return NewOrder(
            ts=now,
            order_id=oid,
            account=self.account,
            symbol=symbol,
            side=side,
            type=type,
            tif=tif,
            price=price,
            stop_price=stop,
            qty=qty,
        )

    def cancel(self, now: int, o: OwnOrder) -> CancelOrder:
        self.forget(o.order_id)
        return CancelOrder(ts=now, order_id=o.order_id, symbol=o.symbol)

    def replace(self, now: int, o: OwnOrder, price: int, qty: int, stop: int = 0) -> ReplaceOrder:
        o.before = (o.price, o.remaining, o.stop_price)
        o.price, o.remaining = price, qty
        if stop:
            o.stop_price = stop
        return ReplaceOrder(
            ts=now, order_id=o.order_id, symbol=o.symbol, price=price, qty=qty, stop_price=stop
        )

    # -- what the core says about this agent's orders ------------------------------------

    def filled(self, order_id: int, remaining: int) -> None:
        """A fill of one of this agent's orders (the position follows ``PositionChanged``)."""
        o = self.orders.get(order_id)
        if o is not None:
            o.remaining = remaining
            if o.before is not None:  # the order as it is until the replace is answered
                o.before = (o.before[0], remaining, o.before[2])
            if remaining == 0:
                self.forget(order_id)

    def replaced(self, order_id: int, price: int, qty: int, stop: int) -> None:
        o = self.orders.get(order_id)
        if o is not None:
            o.price, o.remaining, o.stop_price = price, qty, stop
            o.before = None

    def replace_refused(self, order_id: int) -> None:
        """A replace was refused (risk, or a stop that has just triggered): the order lives
        on as it was."""
        o = self.orders.get(order_id)
        if o is not None and o.before is not None:
            o.price, o.remaining, o.stop_price = o.before
            o.before = None

    def triggered(self, order_id: int) -> None:
        o = self.orders.get(order_id)
        if o is not None:
            o.type = MARKET if o.type == STOP else LIMIT

    def forget(self, order_id: int) -> None:
        """The order is over (or this agent no longer counts on it)."""
        self.orders.pop(order_id, None)


class MarketMaker(Agent):
    """Quotes both sides of every symbol, ``levels`` deep, around fair value.

    A missing quote (filled, or cancelled by self-trade prevention) is re-entered first;
    otherwise the quote farthest from its target is moved there with a replace. Quotes
    lean against inventory: a long maker lowers both sides.
    """

    kind = "maker"
    cash = 50_000_000 * USD  # quotes everywhere, and carries inventory on margin

    def __init__(
        self,
        sim: Simulator,
        account: int,
        *,
        half_spread: int,
        levels: int = 2,
        level_step: int = 2,
        size: tuple[int, int] = (100, 500),
        skew_per: int = 400,
    ) -> None:
        super().__init__(sim, account)
        self.half_spread = half_spread
        self.level_step = level_step
        self.size = size
        self.skew_per = skew_per
        self.slots: list[tuple[str, int, int]] = [
            (s, side, lvl) for s in sim.symbols for side in (BUY, SELL) for lvl in range(levels)
        ]
        self.quote: dict[tuple[str, int, int], int] = {}  # slot -> order id
        self.slot_of: dict[int, tuple[str, int, int]] = {}
        self.cursor = 0

    def target(self, symbol: str, side: int, level: int) -> int:
        fair = self.sim.fair_ticks(symbol)
        skew = self.position[symbol] // self.skew_per
        offset = self.half_spread + level * self.level_step
        return max(1, fair - offset - skew if side == BUY else fair + offset - skew)

    def act(self, now: int) -> Command | None:
        slots = self.slots
        n = len(slots)
        worst: tuple[str, int, int] | None = None
        worst_gap = 0
        start = self.cursor
        for i in range(n):
            slot = slots[(start + i) % n]
            oid = self.quote.get(slot)
            if oid is None:
                self.cursor = (start + i + 1) % n
                symbol, side, _ = slot
                lo, hi = self.size
                qty = self.sim.rng.randrange(lo, hi + 1, 10)
                cmd = self.new(now, symbol, side, LIMIT, qty, price=self.target(*slot))
                self.quote[slot] = cmd.order_id
                self.slot_of[cmd.order_id] = slot
                return cmd
            gap = abs(self.orders[oid].price - self.target(*slot))
            if gap > worst_gap:
                worst, worst_gap = slot, gap
        if worst is None:
            return None
        o = self.orders[self.quote[worst]]
        lo, hi = self.size
        return self.replace(now, o, self.target(*worst), self.sim.rng.randrange(lo, hi + 1, 10))

    def forget(self, order_id: int) -> None:
        super().forget(order_id)
        slot = self.slot_of.pop(order_id, None)
        if slot is not None and self.quote.get(slot) == order_id:
            del self.quote[slot]


class NoiseTrader(Agent):
    """Random market, resting limit, IOC and FOK orders near fair value, and cancels.

    A cash account that starts with ``shares`` of every symbol: it sells only what it holds
    and is not already offering, and sells instead of buying at twice its starting holding.
    """

    kind = "noise"
    account_kind = AccountKind.CASH
    cash = 50_000_000 * USD
    shares = 20_000

    def __init__(self, sim: Simulator, account: int, *, max_resting: int = 6) -> None:
        super().__init__(sim, account)
        self.max_resting = max_resting

    def act(self, now: int) -> Command:
        sim = self.sim
        rng = sim.rng
        symbol = rng.choice(sim.symbols)
        side = BUY if rng.random() < 0.5 else SELL
        if side == SELL and self.free_to_sell(symbol) < 300:  # at most what one order sells
            side = BUY
        elif side == BUY and self.position[symbol] >= 2 * self.shares:
            side = SELL
        sign = 1 if side == BUY else -1
        fair = sim.fair_ticks(symbol)
        r = rng.random()
        if sim.day is not None:
            return self._in_a_day(now, symbol, side, sign, fair, r)
        if r < 0.30:
            return self.new(now, symbol, side, MARKET, rng.randint(1, 100), tif=IOC)
        resting = [o for o in self.orders.values() if o.resting]
        if r < 0.60 or (r >= 0.92 and not resting):
            if len(resting) >= self.max_resting:
                return self.cancel(now, resting[0])  # the oldest
            price = max(1, fair - sign * rng.randint(1, 8))
            return self.new(now, symbol, side, LIMIT, rng.randint(1, 200), price=price)
        if r < 0.85:
            price = max(1, fair + sign * rng.randint(0, 3))
            return self.new(now, symbol, side, LIMIT, rng.randint(1, 150), tif=IOC, price=price)
        if r < 0.92:
            price = max(1, fair + sign * rng.randint(1, 4))
            return self.new(now, symbol, side, LIMIT, rng.randint(1, 300), tif=FOK, price=price)
        return self.cancel(now, resting[rng.randrange(len(resting))])

    def _in_a_day(
        self, now: int, symbol: str, side: int, sign: int, fair: int, r: float
    ) -> Command:
        """With a simulated trading day: resting orders are DAY orders; while an auction
        collects, orders that would be immediate wait for it (on-open orders before the
        opening, DAY orders in the closing auction); in continuous trading a few
        market-on-close orders wait for the close."""
        rng = self.sim.rng
        phase = self.sim.phase or OPEN
        calling = phase >= PRE_OPEN
        wait = CLS if phase == CLOSING else OPG  # (CLOSING: DAY below)
        resting = [o for o in self.orders.values() if o.resting]
        if r < 0.30:
            qty = rng.randint(1, 100)
            if calling:
                return self.new(now, symbol, side, MARKET, qty, tif=DAY if wait == CLS else OPG)
            if r < 0.02:
                return self.new(now, symbol, side, MARKET, qty, tif=CLS)
            return self.new(now, symbol, side, MARKET, qty, tif=IOC)
        if r < 0.60 or (r >= 0.92 and not resting):
            if len(resting) >= self.max_resting:
                return self.cancel(now, resting[0])  # the oldest
            price = max(1, fair - sign * rng.randint(1, 8))
            return self.new(now, symbol, side, LIMIT, rng.randint(1, 200), tif=DAY, price=price)
        if r < 0.92:
            price = max(1, fair + sign * rng.randint(0, 4))
            qty = rng.randint(1, 150)
            if calling:  # a limit that crosses: it takes part in the uncross
                tif = DAY if wait == CLS else OPG
                return self.new(now, symbol, side, LIMIT, qty, tif=tif, price=price)
            return self.new(now, symbol, side, LIMIT, qty, tif=IOC, price=price)
        return self.cancel(now, resting[rng.randrange(len(resting))])

    def free_to_sell(self, symbol: str) -> int:
        """What the account holds of ``symbol`` less what its live sells may still sell."""
        offered = sum(
            o.remaining for o in self.orders.values() if o.symbol == symbol and o.side == SELL
        )
        return self.position[symbol] - offered


class MomentumTrader(Agent):
    """Follows the recent trend of the tape, and protects or bets with stop orders."""

    kind = "momentum"

    def __init__(
        self,
        sim: Simulator,
        account: int,
        *,
        threshold: int = 4,
        max_position: int = 2000,
        stop_distance: tuple[int, int] = (3, 15),
    ) -> None:
        super().__init__(sim, account)
        self.threshold = threshold
        self.max_position = max_position
        self.stop_distance = stop_distance

    def act(self, now: int) -> Command | None:
        sim = self.sim
        rng = sim.rng
        symbol = rng.choice(sim.symbols)
        tape = sim.tape[symbol]
        if len(tape) < 8 or (sim.phase or OPEN) != OPEN:  # trends are for continuous trading
            return None
        last = tape[-1]
        signal = last - tape[0]
        pos = self.position[symbol]
        qty = rng.randint(10, 200)
        if signal >= self.threshold and pos + qty <= self.max_position:
            return self.new(now, symbol, BUY, MARKET, qty, tif=IOC)
        if signal <= -self.threshold and pos - qty >= -self.max_position:
            return self.new(now, symbol, SELL, MARKET, qty, tif=IOC)
        if rng.random() < 0.5:
            return None
        mine = [o for o in self.orders.values() if o.symbol == symbol]
        leftover = [o for o in mine if o.resting]  # triggered stop-limits that did not fill
        if leftover and rng.random() < 0.5:
            return self.cancel(now, leftover[0])
        stops = [o for o in mine if o.waiting_stop]
        distance = rng.randint(*self.stop_distance)
        if len(stops) >= 2:
            o = stops[0]
            if rng.random() < 0.5:
                return self.cancel(now, o)
            # trail the oldest stop to the same distance from the last trade
            stop = last + distance if o.side == BUY else max(1, last - distance)
            if stop == o.stop_price:
                return None
            price = 0 if o.type == STOP else _stop_limit(o.side, stop)
            return self.replace(now, o, price, o.remaining, stop)
        if pos > 0:
            side = SELL  # a stop-loss under a long position
        elif pos < 0:
            side = BUY
        else:
            side = BUY if rng.random() < 0.5 else SELL  # a breakout bet
        stop = last + distance if side == BUY else max(1, last - distance)
        qty = min(qty, abs(pos)) if pos else qty
        if rng.random() < 0.5:
            return self.new(now, symbol, side, STOP, qty, stop=stop)
        return self.new(
            now, symbol, side, STOP_LIMIT, qty, price=_stop_limit(side, stop), stop=stop
        )


def _stop_limit(side: int, stop: int) -> int:
    """The limit of a stop-limit: three ticks of room past the stop."""
    return stop + 3 if side == BUY else max(1, stop - 3)


def make_agents(
    sim: Simulator, first_account: int, makers: int, noise: int, momentum: int
) -> tuple[Sequence[Agent], Sequence[Agent], Sequence[Agent]]:
    """The default cast, with consecutive account ids starting at ``first_account``."""
    acct = first_account
    mm: list[Agent] = []
    for i in range(makers):
        mm.append(MarketMaker(sim, acct, half_spread=1 + i, levels=2, level_step=2 + i))
        acct += 1
    nt: list[Agent] = []
    for _ in range(noise):
        nt.append(NoiseTrader(sim, acct))
        acct += 1
    mo: list[Agent] = []
    for i in range(momentum):
        mo.append(MomentumTrader(sim, acct, threshold=3 + 2 * i))
        acct += 1
    return mm, nt, mo
