"""A market view built from the core's events alone, and its text rendering.

It keeps per symbol the last price, session open/high/low, volume, trade count and the
aggregate book from ``BookDelta`` events, and from the risk core's events the risk
rejects by reason, margin calls, liquidations and each account's positions
(``PositionChanged``) and fees (``LedgerPosted``), which give the PnL per kind of trader
at the last prices. So it works the same against an in-process core or a journaled
engine node (it never looks inside the core).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from mercato.domain import (
    BookDelta,
    Event,
    InstrumentRiskSet,
    LedgerPosted,
    Liquidation,
    MarginCall,
    MarginRestored,
    PositionChanged,
    Reject,
    Rejected,
    RiskReject,
    Trade,
    fees_of,
    format_decimal,
)

BUY: Final = 1
# the refusals that come from pre-trade risk rather than from the order's own form
RISK_REASONS: Final = frozenset({*map(str, RiskReject), str(Reject.ACCOUNT_LIQUIDATING)})


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
    """Counts, per-symbol market data and per-account results, updated from event batches.

    ``kinds`` maps accounts to the kind of trader that owns them, for the PnL by kind.
    Cash amounts are shown like prices: the simulator's instruments trade in USD with the
    price scale of the currency (price x qty is cash).
    """

    def __init__(
        self,
        symbols: Sequence[str],
        price_scale: int = 2,
        kinds: Mapping[int, str] | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.price_scale = price_scale
        self.by_symbol = {s: SymbolView() for s in symbols}
        self.kinds: dict[int, str] = dict(kinds or {})
        self.commands = 0
        self.events = 0
        self.trades = 0
        self.rejects: Counter[str] = Counter()
        self.risk_rejects: Counter[str] = Counter()  # by reason
        self.margin_calls = 0
        self.margin_restored = 0
        self.liquidations = 0
        self.reference: dict[str, int] = {}  # the mark before the first trade
        # (account, symbol) -> (qty, cost, realized), as of the last PositionChanged
        self.positions: dict[tuple[int, str], tuple[int, int, int]] = {}
        self.fees: Counter[int] = Counter()  # by account

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
            elif isinstance(ev, PositionChanged):
                self.positions[ev.account, ev.symbol] = (ev.qty, ev.cost, ev.realized)
            elif isinstance(ev, LedgerPosted):
                if ev.kind == "trade":
                    for account, fee in fees_of(ev.entries).items():
                        self.fees[account] += fee
            elif isinstance(ev, Rejected):
                self.rejects[f"{ev.command}:{ev.reason}"] += 1
                if ev.reason in RISK_REASONS:
                    self.risk_rejects[ev.reason] += 1
            elif isinstance(ev, MarginCall):
                self.margin_calls += 1
            elif isinstance(ev, MarginRestored):
                self.margin_restored += 1
            elif isinstance(ev, Liquidation):
                self.liquidations += 1
            elif isinstance(ev, InstrumentRiskSet):
                self.reference[ev.symbol] = ev.reference_price
        self.events += n

    def mark(self, symbol: str) -> int:
        v = self.by_symbol.get(symbol)
        return v.last if v is not None and v.last else self.reference.get(symbol, 0)

    def pnl_by_kind(self) -> dict[str, int]:
        """Realized plus unrealized PnL at the last prices, less fees, summed per kind of
        trader (in cash units; positions deposited before trading count at their cost)."""
        out = dict.fromkeys(self.kinds.values(), 0)
        marks = {s: self.mark(s) for s in self.by_symbol}
        for (account, symbol), (qty, cost, realized) in self.positions.items():
            kind = self.kinds.get(account)
            if kind is not None:
                mark = marks.get(symbol, 0)
                unrealized = qty * mark - cost if mark else 0
                out[kind] += realized + unrealized
        for account, fee in self.fees.items():
            kind = self.kinds.get(account)
            if kind is not None:
                out[kind] -= fee
        return out

    # -- rendering -----------------------------------------------------------------------

    def px(self, value: int) -> str:
        return format_decimal(value, self.price_scale) if value else "-"

    def money(self, value: int, sign: bool = False) -> str:
        """Cash units as 1,234.56 (exact: no float), with a leading + or - if ``sign``."""
        whole, frac = divmod(abs(value), 10**self.price_scale)
        text = f"{whole:,}.{frac:0{self.price_scale}d}" if self.price_scale else f"{whole:,}"
        if value < 0:
            return "-" + text
        return ("+" if sign and value else "") + text

    def risk_line(self) -> str:
        n = sum(self.risk_rejects.values())
        why = ", ".join(f"{r} {k:,}" for r, k in self.risk_rejects.most_common(3))
        return (
            f"  risk     rejected {n:,}{f' ({why})' if why else ''}  "
            f"margin calls {self.margin_calls:,} (restored {self.margin_restored:,})  "
            f"liquidations {self.liquidations:,}"
        )

    def pnl_line(self) -> str:
        parts = "  ".join(f"{k} {self.money(v, sign=True)}" for k, v in self.pnl_by_kind().items())
        return f"  pnl      {parts}  (after fees of {self.money(sum(self.fees.values()))})"

    def live_lines(self, elapsed_s: float, rate: float) -> list[str]:
        """A compact block: one header line, one line per symbol, then risk and PnL."""
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
        lines.append(self.risk_line())
        if self.kinds:
            lines.append(self.pnl_line())
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
        lines.append(self.risk_line())
        if self.kinds:
            lines.append(self.pnl_line())
        return lines
