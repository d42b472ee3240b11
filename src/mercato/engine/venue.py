"""Venues behind one interface: where an account's orders go and how they execute.

Two venues exist today, both pure and deterministic: the internal matching engine
(``Engine``, wrapped here as ``InternalVenue``) and the paper venue (``PaperVenue`` in
``paper.py``). A FIX venue, routing to an outside exchange, comes later behind the same
protocol. Note the name: this is the venue *contract*; ``mercato.domain.types.Venue`` is the
enum that says which venue an account uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from mercato.domain.commands import Command
from mercato.domain.events import Event
from mercato.domain.orders import Order
from mercato.engine.engine import Engine


class Venue(Protocol):
    """Contract:

    - ``process`` applies one order command (``NewOrder``, ``CancelOrder``,
      ``ReplaceOrder``, ``EndOfDay``) synchronously and returns the events it caused, in
      the engine's vocabulary; it reads no clock, no randomness and does no I/O.
    - ``on_price`` tells the venue a symbol's market price (the internal book's last trade
      price, or an outside ``MarketPrice``); it returns the events that price caused (fills
      and triggers of resting orders), stamped with ``ts``.
    - ``seq`` is the shared global event sequence: the caller sets it before each call and
      reads it after; every event takes the next number, with no gap.
    - ``orders`` holds the venue's live orders (resting or waiting for their stop).

    The internal ``Engine`` satisfies it except ``on_price``: its stops trigger on its own
    trades, so ``InternalVenue`` answers ``on_price`` with nothing.
    """

    seq: int

    @property
    def orders(self) -> dict[int, Order]: ...

    def process(self, cmd: Command) -> list[Event]: ...

    def on_price(self, symbol: str, price: int, ts: int) -> list[Event]: ...


class InternalVenue:
    """The internal matching engine as a ``Venue`` (a thin adapter: no state of its own)."""

    __slots__ = ("engine",)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def seq(self) -> int:
        return self.engine.seq

    @seq.setter
    def seq(self, value: int) -> None:
        self.engine.seq = value

    @property
    def orders(self) -> dict[int, Order]:
        return self.engine.orders

    def process(self, cmd: Command) -> list[Event]:
        return self.engine.process(cmd)

    def on_price(self, symbol: str, price: int, ts: int) -> list[Event]:
        """Outside prices do not move the internal book: nothing happens."""
        return []


if TYPE_CHECKING:  # both venues satisfy the protocol (checked by mypy, never run)
    from mercato.engine.paper import PaperVenue

    def _conforms(engine: Engine) -> tuple[Venue, Venue]:
        return InternalVenue(engine), PaperVenue(engine)
