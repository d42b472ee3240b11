"""The deterministic core: books, matching, stops, snapshots and the state hash."""

from mercato.domain.errors import UnknownCommand
from mercato.engine.book import Book, BookSide, Level
from mercato.engine.engine import Engine
from mercato.engine.snapshot import capture, encode, restore, state_hash

__all__ = [
    "Book",
    "BookSide",
    "Engine",
    "Level",
    "UnknownCommand",
    "capture",
    "encode",
    "restore",
    "state_hash",
]
