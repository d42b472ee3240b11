"""A seeded market simulator: generated traders around drifting fair values.

The simulator produces commands for the platform's core (``mercato.engine.core.Core``):
first the instruments with their fees and margin rates and the traders' funded accounts,
then orders in batches, one per slice of virtual time. It learns what happened to them
only from the core's events for the whole batch (fills, positions, risk rejects, orders
the core cancelled itself). Virtual time
advances by exactly ``1/rate`` per command, whatever the wall clock does, and every
random draw comes from one ``random.Random(seed)``: the same seed, symbols and rate give
the same command stream, batch for batch, whether the engine runs in-process or behind a
journal. (The fair value is a float model parameter; every price sent is an int on tick.)
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Final

from mercato.domain import (
    AddInstrument,
    Command,
    CreateAccount,
    Deposit,
    EndOfDay,
    Event,
    OrderCancelled,
    OrderExpired,
    OrderReplaced,
    OrderTriggered,
    PositionChanged,
    Reject,
    Rejected,
    SetInstrumentRisk,
    SetTradingStatus,
    Trade,
)
from mercato.domain.types import TradingStatus
from mercato.sim.agents import Agent, make_agents
from mercato.sim.day import SimDay

NS: Final = 1_000_000_000
SIM_EPOCH_NS: Final = 1_704_205_800 * NS  # 2024-01-02 14:30:00 UTC, the default start
TAPE_LEN: Final = 32
_UNKNOWN_ORDER: Final = str(Reject.UNKNOWN_ORDER)
# How often each kind of trader gets the next command (a maker with nothing to re-quote,
# or a momentum trader with no view, passes it to a noise trader).
WEIGHTS: Final = (("maker", 0.55), ("momentum", 0.15), ("noise", 0.30))
# Every instrument's risk settings: fees, and initial / maintenance / liquidation margin.
MAKER_FEE_BPS: Final = 1
TAKER_FEE_BPS: Final = 3
MARGIN_BPS: Final = (5_000, 3_000, 2_000)


class Simulator:
    """Traders, fair values and the public tape for a set of symbols."""

    def __init__(
        self,
        symbols: Sequence[str],
        seed: int,
        *,
        rate: int = 1000,
        start_ns: int = SIM_EPOCH_NS,
        slice_ns: int = 10_000_000,
        first_order_id: int = 1,
        first_account: int = 1,
        makers: int = 3,
        noise: int = 6,
        momentum: int = 3,
        volatility: float = 0.002,
        day: SimDay | None = None,
    ) -> None:
        if not symbols:
            raise ValueError("the simulator needs at least one symbol")
        if len(set(symbols)) != len(symbols):
            raise ValueError("symbols must be distinct")
        if rate <= 0:
            raise ValueError("rate must be positive")
        if makers <= 0 or noise <= 0:
            raise ValueError("the simulator needs at least one market maker and one noise trader")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.seed = seed
        self.rate = rate
        self.start_ns = start_ns
        self.slice_ns = slice_ns
        self.volatility = volatility  # of the fair value, per square root of a second
        self.rng = random.Random(seed)
        rng = self.rng
        # fair values in ticks of 0.01, between 20.00 and 500.00
        self.fair: dict[str, float] = {s: float(rng.randint(2_000, 50_000)) for s in symbols}
        self.start_price: dict[str, int] = {s: round(f) for s, f in self.fair.items()}
        self.tape: dict[str, deque[int]] = {s: deque(maxlen=TAPE_LEN) for s in symbols}
        self.next_order_id = first_order_id
        self.owners: dict[int, Agent] = {}
        self.makers, self.noise, self.momentum = make_agents(
            self, first_account, makers, noise, momentum
        )
        self.agents: tuple[Agent, ...] = (*self.makers, *self.noise, *self.momentum)
        self.by_account: dict[int, Agent] = {a.account: a for a in self.agents}
        self.commands = 0  # commands produced so far
        self.slices = 0
        # a simulated trading day (``sim/day.py``): the phase last sent (None: none yet,
        # so the first batch sends the current one) and the day's number
        self.day = day
        self.phase: TradingStatus | None = None if day is not None else TradingStatus.OPEN
        self.day_number = 0

    # -- time ----------------------------------------------------------------------------

    @property
    def elapsed_ns(self) -> int:
        """Virtual time covered by the batches produced so far."""
        return self.slices * self.slice_ns

    @property
    def now_ns(self) -> int:
        return self.start_ns + self.elapsed_ns

    # -- what agents ask for -------------------------------------------------------------

    def fair_ticks(self, symbol: str) -> int:
        return round(self.fair[symbol])

    def new_order_id(self, agent: Agent) -> int:
        oid = self.next_order_id
        self.next_order_id = oid + 1
        self.owners[oid] = agent
        return oid

    # -- producing commands --------------------------------------------------------------

    def setup(self) -> list[Command]:
        """The instruments (tick 0.01, lot 1, each with its fees, margin rates and starting
        fair value as reference price), then every trader's account with its deposits.

        A pure function of the seed and the symbols, like the rest of the stream.
        """
        ts = self.start_ns
        im, mm, liq = MARGIN_BPS
        out: list[Command] = []
        for s in self.symbols:
            out.append(AddInstrument(ts=ts, symbol=s, tick_size=1, lot_size=1))
            out.append(
                SetInstrumentRisk(
                    ts=ts,
                    symbol=s,
                    maker_fee_bps=MAKER_FEE_BPS,
                    taker_fee_bps=TAKER_FEE_BPS,
                    initial_margin_bps=im,
                    maintenance_margin_bps=mm,
                    liquidation_margin_bps=liq,
                    reference_price=self.start_price[s],
                )
            )
        ref = 0  # the deposits' transfer ids
        for a in self.agents:
            out.append(CreateAccount(ts=ts, account=a.account, kind=a.account_kind))
            ref += 1
            out.append(Deposit(ts=ts, account=a.account, asset="USD", amount=a.cash, ref=ref))
            if a.shares:
                for s in self.symbols:  # cost: at the starting price (cash scale = price scale)
                    ref += 1
                    cost = a.shares * self.start_price[s]
                    out.append(
                        Deposit(
                            ts=ts, account=a.account, asset=s, amount=a.shares, ref=ref, cost=cost
                        )
                    )
        return out

    def next_batch(self) -> list[Command]:
        """The commands of the next slice of virtual time (possibly none at low rates)."""
        start = self.elapsed_ns
        self.slices += 1
        self._drift()
        due = self.elapsed_ns * self.rate // NS
        rate = self.rate
        out: list[Command] = []
        if self.day is not None:
            out.extend(self._phase_changes(start))
            if self.phase == TradingStatus.CLOSED:  # nothing to trade: time passes
                self.commands = due
                return out
        while self.commands < due:
            ts = self.start_ns + self.commands * NS // rate
            self.commands += 1
            out.append(self._one(ts))
        return out

    def _phase_changes(self, elapsed: int) -> list[Command]:
        """The day's phase at ``elapsed`` for every symbol, when it changed; an
        ``EndOfDay`` right after the close."""
        assert self.day is not None
        status, day = self.day.phase_at(elapsed)
        if status == self.phase:
            return []
        self.phase, self.day_number = status, day
        ts = self.start_ns + elapsed
        out: list[Command] = [
            SetTradingStatus(ts=ts, symbol=s, status=status) for s in self.symbols
        ]
        if status == TradingStatus.CLOSED:
            out.append(EndOfDay(ts=ts))
        return out

    def _drift(self) -> None:
        """Move every fair value by a log-normal step for one slice."""
        rng = self.rng
        sigma = self.volatility * math.sqrt(self.slice_ns / NS)
        for s in self.symbols:
            self.fair[s] = max(100.0, self.fair[s] * math.exp(rng.gauss(0.0, sigma)))

    def _one(self, ts: int) -> Command:
        rng = self.rng
        r = rng.random()
        cmd: Command | None = None
        if r < WEIGHTS[0][1]:
            cmd = self.makers[rng.randrange(len(self.makers))].act(ts)
        elif r < WEIGHTS[0][1] + WEIGHTS[1][1] and self.momentum:
            cmd = self.momentum[rng.randrange(len(self.momentum))].act(ts)
        if cmd is None:
            noise = self.noise[rng.randrange(len(self.noise))]
            cmd = noise.act(ts)
            assert cmd is not None
        return cmd

    # -- learning what happened ----------------------------------------------------------

    def on_events(self, events: Iterable[Event]) -> None:
        """Tell the agents what became of their orders and positions, and record the tape.

        Orders the core cancels on its own (a liquidation, a kill switch) end like any
        other; a liquidation's own orders belong to no agent, but their fills reach the
        agent's position through ``PositionChanged``.
        """
        owners = self.owners
        for ev in events:
            if isinstance(ev, Trade):
                self.tape[ev.symbol].append(ev.price)
                taker = owners.get(ev.taker_order_id)
                if taker is not None:
                    taker.filled(ev.taker_order_id, ev.taker_remaining)
                    if ev.taker_remaining == 0:
                        del owners[ev.taker_order_id]
                maker = owners.get(ev.maker_order_id)
                if maker is not None:
                    maker.filled(ev.maker_order_id, ev.maker_remaining)
                    if ev.maker_remaining == 0:
                        del owners[ev.maker_order_id]
            elif isinstance(ev, PositionChanged):
                agent = self.by_account.get(ev.account)
                if agent is not None:
                    agent.position[ev.symbol] = ev.qty
            elif isinstance(ev, OrderCancelled | OrderExpired):
                self._done(ev.order_id)
            elif isinstance(ev, OrderReplaced):
                agent = owners.get(ev.order_id)
                if agent is not None:
                    agent.replaced(ev.order_id, ev.price, ev.qty, ev.stop_price)
            elif isinstance(ev, OrderTriggered):
                agent = owners.get(ev.order_id)
                if agent is not None:
                    agent.triggered(ev.order_id)
            elif isinstance(ev, Rejected):
                if ev.command in ("n", "c") or ev.reason == _UNKNOWN_ORDER:
                    # A refused new order (pre-trade risk included) never lived; a cancel
                    # or replace of an unknown order means it is already over.
                    self._done(ev.order_id)
                elif ev.command == "r":
                    # Any other refused replace leaves the order live as it was.
                    agent = owners.get(ev.order_id)
                    if agent is not None:
                        agent.replace_refused(ev.order_id)

    def _done(self, order_id: int) -> None:
        agent = self.owners.pop(order_id, None)
        if agent is not None:
            agent.forget(order_id)
