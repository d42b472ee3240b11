"""Outside market data replayed from recordings: LOBSTER (Nasdaq L3) and Binance (spot).

Each format has a pure parser and replay (``mercato.feeds.lobster``, ``mercato.feeds.binance``)
that turn a recording into ``mercato.marketdata.events`` (an iterator: no clock, no I/O but
reading the file); ``mercato.feeds.run`` is what the ``mercato feed`` commands add (pacing,
summaries, CSV output). Formats and rules: ``docs/feeds.md``.
"""

from __future__ import annotations

__all__ = ["FeedError"]


class FeedError(ValueError):
    """A recording that cannot be read: ``line`` is its 1-based line number (0: not a line),
    ``path`` the file when the reader knows it."""

    def __init__(self, message: str, line: int = 0, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.path = path

    def __str__(self) -> str:
        if self.path:
            where = f"{self.path}:{self.line}" if self.line else self.path
        else:
            where = f"line {self.line}" if self.line else ""
        return f"{where}: {self.message}" if where else self.message
