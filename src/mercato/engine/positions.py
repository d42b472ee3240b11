"""Positions for post-trade risk: signed quantity and an exact integer cost basis.

Pure and deterministic like the rest of the engine: no I/O, no clock, integers only.

A ``Position`` keeps ``cost``, the cash of the open quantity as a signed integer total,
never an average price, so nothing is lost to rounding: a long's cost is the cash paid for
it (>= 0), a short's is minus the cash received for it (<= 0). ``avg_price`` is an exact
``Fraction`` for display.

Rounding rules (the only two places where a division happens):

- Reducing a position by ``q`` of its ``|qty|`` releases ``cost * q / |qty|`` rounded
  toward zero (long and short are mirror images). Closing exactly is ``q == |qty|``, which
  releases ``cost`` itself, so whatever earlier partial reductions left behind comes out on
  the final close: over a full round trip the realized PnL is exact. Rounding toward zero
  also means a long's cost never turns negative nor a short's positive.
- A fill that crosses zero (long 10, sell 15) is split pro rata: the closing part gets
  ``cash * closing_qty // qty`` (``cash`` is never negative, so this is the floor) and the
  opening part gets the rest, so the two parts add up to the fill's cash exactly.

Invariant after every fill: ``realized - cost`` equals the sum of the fills' signed cash
(sells +, buys -). Hence realized + unrealized at a mark is exactly that sum plus the
position's signed marked value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

from mercato.domain.types import AccountId, Side, Symbol

Mark = Callable[[Symbol, int], int]
"""The cash value of a (positive) quantity of a symbol at its mark, in cash units."""


def marks_per_unit(prices: Mapping[Symbol, int]) -> Mark:
    """A ``Mark`` from cash values per unit of quantity: value = price x qty.

    A symbol without a mark raises ``KeyError``: risk must not price it at zero.
    """

    def value(symbol: Symbol, qty: int) -> int:
        return prices[symbol] * qty

    return value


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


@dataclass(slots=True)
class Position:
    """One (account, symbol): signed ``qty``, signed ``cost`` basis, and ``realized`` PnL."""

    qty: int = 0  # long > 0, short < 0
    cost: int = 0  # long: cash paid (>= 0); short: minus the cash received (<= 0)
    realized: int = 0  # total realized PnL of this position, in cash units

    @property
    def avg_price(self) -> Fraction | None:
        """Exact cash per unit of quantity (display only); ``None`` when flat.

        ``avg_price.as_integer_ratio()`` gives (numerator, denominator).
        """
        if self.qty == 0:
            return None
        return Fraction(abs(self.cost), abs(self.qty))

    def apply_fill(self, side: Side, qty: int, cash: int) -> int:
        """Apply one fill of ``qty`` for ``cash`` (its notional); return its realized PnL."""
        if side != Side.BUY and side != Side.SELL:
            raise ValueError(f"unknown side {side!r}")
        if qty <= 0:
            raise ValueError("a fill's quantity must be positive")
        if cash < 0:
            raise ValueError("a fill's cash must not be negative")
        delta = qty if side == Side.BUY else -qty
        flow = -cash if side == Side.BUY else cash  # signed cash of the fill
        held = abs(self.qty)
        if self.qty == 0 or (self.qty > 0) == (delta > 0):
            self._open(delta, flow)
            return 0
        if qty <= held:
            return self._reduce(delta, flow)
        # crosses zero: close all of the old position, open the rest at the fill's own price
        closing_cash = cash * held // qty
        closing_flow = -closing_cash if side == Side.BUY else closing_cash
        realized = self._reduce(-self.qty, closing_flow)
        self._open(_sign(delta) * (qty - held), flow - closing_flow)
        return realized

    def transfer_out(self, qty: int) -> int:
        """Take ``qty`` out of a long (a withdrawal of the instrument): its cost goes with it,
        pro rata and rounded toward zero like a sale, and nothing is realized. Returns that
        cost."""
        if qty <= 0 or qty > self.qty:
            raise ValueError("only a long's held quantity can be transferred out")
        released = self.cost * qty // self.qty
        self.qty -= qty
        self.cost -= released
        if self.qty == 0:  # the last of it takes what rounding left behind
            released += self.cost
            self.cost = 0
        self._check()
        return released

    def unrealized(self, mark_cash_value: int) -> int:
        """PnL against ``mark_cash_value``, the cash value of ``|qty|`` at the mark."""
        if mark_cash_value < 0:
            raise ValueError("a marked value must not be negative")
        return _sign(self.qty) * mark_cash_value - self.cost

    def _open(self, delta: int, flow: int) -> None:
        """Increase the position (or open it): the cash paid or received joins the cost."""
        self.qty += delta
        self.cost -= flow
        self._check()

    def _reduce(self, delta: int, flow: int) -> int:
        """Reduce by ``|delta| <= |qty|``; release cost pro rata, rounded toward zero."""
        held = abs(self.qty)
        q = abs(delta)
        released = _sign(self.cost) * (abs(self.cost) * q // held)
        self.qty += delta
        self.cost -= released
        realized = flow - released
        self.realized += realized
        self._check()
        return realized

    def _check(self) -> None:
        assert self.qty != 0 or self.cost == 0, "a flat position carries no cost"
        assert self.qty * self.cost >= 0, "long cost >= 0, short cost <= 0"


class Positions:
    """Positions by (account, symbol), with per-account and total exposure and PnL.

    Methods taking ``account=None`` sum over every account.
    """

    def __init__(self) -> None:
        self._positions: dict[tuple[AccountId, Symbol], Position] = {}

    def apply_fill(
        self, account: AccountId, symbol: Symbol, side: Side, qty: int, cash: int
    ) -> int:
        """Apply one fill to ``account``'s position in ``symbol``; return its realized PnL."""
        key = (account, symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = Position()
            realized = pos.apply_fill(side, qty, cash)  # raises before anything is stored
            self._positions[key] = pos
            return realized
        return pos.apply_fill(side, qty, cash)

    def ensure(self, account: AccountId, symbol: Symbol) -> Position:
        """The stored position, created flat if the account never held the symbol."""
        key = (account, symbol)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = Position()
        return pos

    def get(self, account: AccountId, symbol: Symbol) -> Position:
        """The position (flat and not stored if the account never traded the symbol)."""
        pos = self._positions.get((account, symbol))
        return Position() if pos is None else pos

    def accounts(self) -> list[AccountId]:
        return sorted({acct for acct, _ in self._positions})

    def items(self, account: AccountId | None = None) -> list[tuple[AccountId, Symbol, Position]]:
        """Every position ever opened (flat ones too), sorted by (account, symbol)."""
        return [
            (acct, sym, pos)
            for (acct, sym), pos in sorted(self._positions.items())
            if account is None or acct == account
        ]

    def _open(self, account: AccountId | None) -> Iterator[tuple[Symbol, Position]]:
        for (acct, sym), pos in sorted(self._positions.items()):
            if pos.qty and (account is None or acct == account):
                yield sym, pos

    def gross_exposure(self, mark: Mark, account: AccountId | None = None) -> int:
        """Sum of the marked values of the open positions, longs and shorts alike."""
        return sum(mark(sym, abs(pos.qty)) for sym, pos in self._open(account))

    def net_exposure(self, mark: Mark, account: AccountId | None = None) -> int:
        """Marked value of the longs minus that of the shorts."""
        return sum(_sign(pos.qty) * mark(sym, abs(pos.qty)) for sym, pos in self._open(account))

    def unrealized(self, mark: Mark, account: AccountId | None = None) -> int:
        return sum(pos.unrealized(mark(sym, abs(pos.qty))) for sym, pos in self._open(account))

    def realized(self, account: AccountId | None = None) -> int:
        return sum(
            pos.realized
            for (acct, _), pos in self._positions.items()
            if account is None or acct == account
        )
