"""A trading day in the simulator's virtual time (``SimDay``): continuous trading, a
closing auction, the close and the end of day, then a pre-open, an opening auction and
the next day's open, over and over, at fixed lengths of virtual time.

The simulator (``Simulator(day=...)``) submits the phase changes itself, as commands in its
own stream (``SetTradingStatus`` for every symbol, ``EndOfDay`` after the closes), so a run
is a replayable trading day: the same seed gives the same auctions, the same uncrosses and
the same DAY orders expiring at the same close. (A served demo with a simulated day runs
no session service: the simulator is the clock of its market.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from mercato.domain.types import TradingStatus

NS: Final = 1_000_000_000
OPEN, CLOSING, CLOSED = TradingStatus.OPEN, TradingStatus.CLOSING_AUCTION, TradingStatus.CLOSED
PRE_OPEN, OPENING = TradingStatus.PRE_OPEN, TradingStatus.OPENING_AUCTION


@dataclass(frozen=True)
class SimDay:
    """Lengths in virtual seconds; the cycle starts with continuous trading."""

    session_s: int = 300  # continuous trading
    closing_s: int = 10  # the closing auction
    closed_s: int = 20  # after the close (the end of day comes at its start)
    pre_open_s: int = 20  # orders collect, nothing matches
    opening_s: int = 10  # the opening auction

    def __post_init__(self) -> None:
        if self.session_s <= 0:
            raise ValueError("a simulated day needs some continuous trading")
        if self.closed_s <= 0:
            raise ValueError("a simulated day needs a close (closed_s > 0): its end of day")
        for name in ("closing_s", "pre_open_s", "opening_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def length_ns(self) -> int:
        return (
            self.session_s + self.closing_s + self.closed_s + self.pre_open_s + self.opening_s
        ) * NS

    def phase_at(self, elapsed_ns: int) -> tuple[TradingStatus, int]:
        """The phase at ``elapsed_ns`` of virtual time since the start, and the day's
        number (0 first; a day ends with its close and closed time, and the next begins
        with its pre-open)."""
        day, t = divmod(elapsed_ns, self.length_ns)
        for status, length in (
            (OPEN, self.session_s),
            (CLOSING, self.closing_s),
            (CLOSED, self.closed_s),
            (PRE_OPEN, self.pre_open_s),
            (OPENING, self.opening_s),
        ):
            if t < length * NS:
                return status, day
            t -= length * NS
        raise AssertionError("unreachable: t is below the day's length")


def parse_day(text: str) -> SimDay:
    """``SESSION[,CLOSING,CLOSED,PRE_OPEN,OPENING]`` in seconds (``300`` or
    ``300,10,20,20,10``), as ``mercato demo --day`` takes it."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise ValueError(f"--day: seconds as integers, not {text!r}") from None
    if not 1 <= len(parts) <= 5:
        raise ValueError("--day: SESSION[,CLOSING,CLOSED,PRE_OPEN,OPENING] seconds")
    names = ("session_s", "closing_s", "closed_s", "pre_open_s", "opening_s")
    return SimDay(**dict(zip(names, parts, strict=False)))
