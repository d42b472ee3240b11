"""Bars (OHLCV + trade count) built from trades as they arrive, on an injected clock.

Rules (also in ``docs/feeds.md``):

- A bar covers ``[start, start + interval)`` with ``start`` a multiple of the interval since
  the epoch (UTC): a day bar runs midnight to midnight UTC. A trade belongs to the bar of
  its own time (``MdTrade.ts``), never the time it arrived.
- The current bar closes when a trade of a later interval arrives or when ``advance(now)``
  reaches its end; the closed bar is returned so the caller can publish it. Intervals with
  no trade produce no bar. ``flush()`` closes the current bar at once (end of a replay).
- Open and close are the first and last trades *to arrive* in the bar.
- A trade older than the current bar, or of an interval that ``advance`` has passed, is
  *ignored* and counted in ``late``: a closed bar has been published and is not amended,
  and a past interval is not opened after the fact.
"""

from __future__ import annotations

from collections import deque

import msgspec

from mercato.marketdata.events import MdTrade

__all__ = ["INTERVALS", "Bar", "BarBuilder", "interval_ns"]

SECOND_NS = 1_000_000_000
INTERVALS: dict[str, int] = {
    "1s": SECOND_NS,
    "1m": 60 * SECOND_NS,
    "5m": 300 * SECOND_NS,
    "1h": 3_600 * SECOND_NS,
    "1d": 86_400 * SECOND_NS,
}


def interval_ns(name: str) -> int:
    """``"1m"`` -> 60_000_000_000; a ValueError names the known intervals."""
    try:
        return INTERVALS[name]
    except KeyError:
        raise ValueError(f"unknown interval {name!r}: one of {', '.join(INTERVALS)}") from None


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One bar. ``start`` and ``interval`` in ns; prices and volume at the instrument's scales."""

    symbol: str
    start: int
    interval: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    trades: int


class BarBuilder:
    """Bars of one symbol at one interval; keeps the last ``history`` closed bars."""

    __slots__ = (
        "_close",
        "_count",
        "_floor",
        "_high",
        "_low",
        "_open",
        "_start",
        "_volume",
        "history",
        "interval",
        "late",
        "symbol",
    )

    def __init__(self, symbol: str, interval: int, history: int = 1_000) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive: {interval}")
        if history < 0:
            raise ValueError(f"history must not be negative: {history}")
        self.symbol = symbol
        self.interval = interval
        self.history: deque[Bar] = deque(maxlen=history)
        self.late = 0  # trades ignored because their interval had already closed
        self._start: int | None = None  # the open bar's start; None: no open bar
        # The earliest start a trade's bar may have: older intervals are closed (or passed).
        self._floor = -(1 << 63)
        self._open = self._high = self._low = self._close = self._volume = self._count = 0

    def on_trade(self, t: MdTrade) -> list[Bar]:
        """Add ``t``; return the bar it closed (a trade of a later interval), if any."""
        assert t.symbol == self.symbol, (t.symbol, self.symbol)
        start = t.ts - t.ts % self.interval
        if start == self._start:
            if t.price > self._high:
                self._high = t.price
            elif t.price < self._low:
                self._low = t.price
            self._close = t.price
            self._volume += t.qty
            self._count += 1
            return []
        if start < self._floor:
            self.late += 1
            return []
        closed = [self._finish()] if self._start is not None else []
        self._start = self._floor = start
        self._open = self._high = self._low = self._close = t.price
        self._volume = t.qty
        self._count = 1
        return closed

    def restore(self, bars: list[Bar]) -> None:
        """Start from ``bars`` (oldest first, e.g. read back from the store after a
        restart): all but the newest are closed, the newest is the open bar."""
        if not bars:
            return
        *closed, b = bars
        self.history.extend(closed)
        self._start = self._floor = b.start
        self._open, self._high, self._low, self._close = b.open, b.high, b.low, b.close
        self._volume, self._count = b.volume, b.trades

    def advance(self, now: int) -> list[Bar]:
        """The clock reads ``now`` (ns): close the open bar if its interval has ended.

        From then on a trade of an interval that ended at or before ``now`` is late.
        """
        closed: list[Bar] = []
        if self._start is not None and now >= self._start + self.interval:
            closed.append(self._finish())
        floor = now - now % self.interval
        if floor > self._floor:
            self._floor = floor
        return closed

    def flush(self) -> list[Bar]:
        """Close the open bar now, whatever the time (the end of a replay)."""
        return [self._finish()] if self._start is not None else []

    def current(self) -> Bar | None:
        """The open bar as it stands, or None."""
        if self._start is None:
            return None
        return self._bar(self._start)

    def _bar(self, start: int) -> Bar:
        return Bar(
            self.symbol,
            start,
            self.interval,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self._count,
        )

    def _finish(self) -> Bar:
        assert self._start is not None
        bar = self._bar(self._start)
        self._floor = max(self._floor, self._start + self.interval)
        self._start = None
        self.history.append(bar)
        return bar
