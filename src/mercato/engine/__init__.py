"""The deterministic core: books, matching, stops, snapshots and the state hash; and the
pieces of the risk core (ledger, positions, pre-trade checks), not yet wired into
``Engine.process``."""

from mercato.domain.errors import UnknownCommand
from mercato.engine.book import Book, BookSide, Level
from mercato.engine.engine import Engine
from mercato.engine.ledger import InsufficientFunds, Ledger
from mercato.engine.positions import Position, Positions, marks_per_unit
from mercato.engine.risk import (
    KillSwitches,
    LimitsBook,
    RiskLimits,
    RiskReject,
    Throttle,
    check_new_order,
    collar_ok,
)
from mercato.engine.snapshot import capture, encode, restore, state_hash

__all__ = [
    "Book",
    "BookSide",
    "Engine",
    "InsufficientFunds",
    "KillSwitches",
    "Ledger",
    "Level",
    "LimitsBook",
    "Position",
    "Positions",
    "RiskLimits",
    "RiskReject",
    "Throttle",
    "UnknownCommand",
    "capture",
    "check_new_order",
    "collar_ok",
    "encode",
    "marks_per_unit",
    "restore",
    "state_hash",
]
