"""A market view built from the engine's events alone, and its text rendering.

It keeps per symbol the last price, session open/high/low, volume, trade count and the
aggregate book from ``BookDelta`` events, so it works the same against an in-process
engine or a journaled engine node (it never looks inside the engine).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from mercato.domain import BookDelta, Event, Rejected, Trade, format_decimal

BUY = 1


class SymbolView:
    __slots__ = ("asks", "bids", "high", "last", "low", "notional", "open", "trades", "volume")

    def __init__(self) -> None:
        self.last = 0
        self.open = 0
        self.high = 0
        self.low = 0
        self.volume = 0
        self.notional = 0
        self.trades = 0
        self.bids: dict[int, int] = {}  # price -> aggregate resting qty
        self.asks: dict[int, int] = {}

    def best_bid(self) -> tuple[int, int]:
        if not self.bids:
            return 0, 0
        p = max(self.bids)
        return p, self.bids[p]

    def best_ask(self) -> tuple[int, int]:
        if not self.asks:
            return 0, 0
        p = min(self.asks)
        return p, self.asks[p]


class MarketView:
    """Counts and per-symbol market data, updated from event batches."""

    def __init__(self, symbols: Sequence[str], price_scale: int = 2) -> None:
        self.symbols = tuple(symbols)
        self.price_scale = price_scale
        self.by_symbol = {s: SymbolView() for s in symbols}
        self.commands = 0
        self.events = 0
        self.trades = 0
        self.rejects: Counter[str] = Counter()

    def apply(self, events: Iterable[Event]) -> None:
        by_symbol = self.by_symbol
        n = 0
        for ev in events:
            n += 1
            if isinstance(ev, BookDelta):
                v = by_symbol.get(ev.symbol)
                if v is not None:
                    levels = v.bids if ev.side == BUY else v.asks
                    if ev.qty:
                        levels[ev.price] = ev.qty
                    else:
                        levels.pop(ev.price, None)
            elif isinstance(ev, Trade):
                v = by_symbol.get(ev.symbol)
                if v is not None:
                    p = ev.price
                    if not v.trades:
                        v.open = v.high = v.low = p
                    elif p > v.high:
                        v.high = p
                    elif p < v.low:
                        v.low = p
                    v.last = p
                    v.volume += ev.qty
                    v.notional += p * ev.qty
                    v.trades += 1
                self.trades += 1
            elif isinstance(ev, Rejected):
                self.rejects[f"{ev.command}:{ev.reason}"] += 1
        self.events += n

    # -- rendering -----------------------------------------------------------------------

    def px(self, value: int) -> str:
        return format_decimal(value, self.price_scale) if value else "-"

    def live_lines(self, elapsed_s: float, rate: float) -> list[str]:
        """A compact block: one header line, then one line per symbol."""
        lines = [
            f"t={elapsed_s:7.1f}s  commands {self.commands:>10,}  ({rate:>9,.0f}/s)  "
            f"trades {self.trades:>9,}  rejected {sum(self.rejects.values()):>7,}"
        ]
        for s in self.symbols:
            v = self.by_symbol[s]
            bid, bid_q = v.best_bid()
            ask, ask_q = v.best_ask()
            lines.append(
                f"  {s:<8} last {self.px(v.last):>10}  "
                f"bid {bid_q:>6,} @ {self.px(bid):>10}  ask {self.px(ask):>10} x {ask_q:<6,}  "
                f"vol {v.volume:>11,}  trades {v.trades:>8,}"
            )
        return lines

    def summary_lines(self) -> list[str]:
        lines = [
            f"commands {self.commands:,}  events {self.events:,}  trades {self.trades:,}  "
            f"rejected {sum(self.rejects.values()):,}"
        ]
        if self.rejects:
            lines.append(
                "  rejects: " + ", ".join(f"{k} {n:,}" for k, n in sorted(self.rejects.items()))
            )
        lines.append(
            f"  {'symbol':<8} {'open':>10} {'high':>10} {'low':>10} {'last':>10} "
            f"{'vwap':>10} {'volume':>12} {'trades':>9}"
        )
        for s in self.symbols:
            v = self.by_symbol[s]
            vwap = v.notional // v.volume if v.volume else 0
            lines.append(
                f"  {s:<8} {self.px(v.open):>10} {self.px(v.high):>10} {self.px(v.low):>10} "
                f"{self.px(v.last):>10} {self.px(vwap):>10} {v.volume:>12,} {v.trades:>9,}"
            )
        return lines
