"""Trading patterns from an account's fills (``round_trips``, ``patterns``), with the
conventions written down in ``docs/analytics.md``:

- Fills are matched first in, first out per symbol. A fill that adds to the position (or
  opens it) becomes a lot; a fill that reduces it closes the oldest lots first, and one
  that crosses through zero closes everything and opens the rest the other way.
- A *trade* is one closing fill with the lots it closed: its PnL is exact, in notional
  units (price units x quantity units: ``(exit - entry) x qty`` for a long, the opposite
  for a short), gross of fees (fees are reported as their own total); its holding time is
  the quantity-weighted mean of ``exit ts - lot ts``, in ns (integer division).
- Wins have PnL > 0, losses < 0, and breakeven trades count in neither (but in the count).
  Profit factor: the sum of wins over the absolute sum of losses (None without losses);
  expectancy: the mean PnL per trade, as a fraction (numerator, count).
- Activity by hour of day and by weekday counts every fill, in UTC (weekday 0 is Monday).
- Streaks are the longest runs of wins and of losses in closing order (breakeven ends both).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

NS: Final = 1_000_000_000
BUY: Final = 1


@dataclass(frozen=True)
class Fill:
    ts: int
    symbol: str
    side: int  # 1 buy, 2 sell
    price: int  # price units
    qty: int  # quantity units
    fee: int = 0  # currency units


@dataclass(frozen=True)
class Trade:
    symbol: str
    direction: str  # "long" (closed by a sell) or "short" (closed by a buy)
    qty: int
    entry_notional: int  # sum of lot price x qty
    exit_price: int
    exit_ts: int
    pnl: int  # notional units, gross of fees
    holding_ns: int


@dataclass
class _Lot:
    ts: int
    price: int
    qty: int  # > 0 long, < 0 short


def round_trips(fills: Iterable[Fill]) -> list[Trade]:
    """The closing trades of ``fills`` (in time order), FIFO per symbol."""
    lots: dict[str, deque[_Lot]] = {}
    out: list[Trade] = []
    for f in fills:
        if f.qty <= 0:
            raise ValueError("a fill's quantity is positive")
        book = lots.setdefault(f.symbol, deque())
        signed = f.qty if f.side == BUY else -f.qty
        left = signed
        closed_qty = closed_notional = pnl = held = 0
        while left and book and (book[0].qty > 0) != (left > 0):
            lot = book[0]
            take = min(abs(lot.qty), abs(left))
            direction = 1 if lot.qty > 0 else -1  # the lot's: long or short
            pnl += direction * (f.price - lot.price) * take
            closed_qty += take
            closed_notional += lot.price * take
            held += (f.ts - lot.ts) * take
            lot.qty -= direction * take
            left += direction * take
            if lot.qty == 0:
                book.popleft()
        if closed_qty:
            out.append(
                Trade(
                    symbol=f.symbol,
                    direction="long" if f.side != BUY else "short",
                    qty=closed_qty,
                    entry_notional=closed_notional,
                    exit_price=f.price,
                    exit_ts=f.ts,
                    pnl=pnl,
                    holding_ns=held // closed_qty,
                )
            )
        if left:
            book.append(_Lot(f.ts, f.price, left))
    return out


@dataclass(frozen=True)
class Patterns:
    trades: int
    wins: int
    losses: int
    win_rate: float | None  # wins / trades
    gross_profit: int  # notional units
    gross_loss: int  # notional units (<= 0)
    average_win: float | None
    average_loss: float | None
    profit_factor: float | None
    expectancy: float | None  # mean PnL per trade, notional units
    average_holding_ns: int | None
    fees: int  # currency units, every fill
    fills: int
    by_hour: list[int] = field(default_factory=list)  # 24 counts of fills, UTC
    by_weekday: list[int] = field(default_factory=list)  # 7 counts, Monday first
    largest_wins: list[Trade] = field(default_factory=list)
    largest_losses: list[Trade] = field(default_factory=list)
    longest_win_streak: int = 0
    longest_loss_streak: int = 0


def _same(symbol: str, notional: int) -> int:
    return notional


def patterns(
    fills: Iterable[Fill],
    *,
    top: int = 5,
    cash: Callable[[str, int], int] = _same,
    since: int | None = None,
    until: int | None = None,
) -> Patterns:
    """Win rate, averages, profit factor, expectancy, holding time, activity by hour and
    weekday, the largest winners and losers, and streaks (see the module's notes).
    ``cash(symbol, notional)``: a trade's PnL in the account's currency units (default:
    left in notional units); the sums and averages are then in those units. ``since`` /
    ``until``: only the trades closed, and the fills made, in [since, until) count (the
    lots they close may be older: every fill is matched)."""
    every = list(fills)

    def within(ts: int) -> bool:
        return (since is None or ts >= since) and (until is None or ts < until)

    fs = [f for f in every if within(f.ts)]
    trades = [
        Trade(
            t.symbol,
            t.direction,
            t.qty,
            t.entry_notional,
            t.exit_price,
            t.exit_ts,
            cash(t.symbol, t.pnl),
            t.holding_ns,
        )
        for t in round_trips(every)
        if within(t.exit_ts)
    ]
    wins = [t for t in trades if t.pnl > 0]
    losses = [t for t in trades if t.pnl < 0]
    profit = sum(t.pnl for t in wins)
    loss = sum(t.pnl for t in losses)
    by_hour = [0] * 24
    by_weekday = [0] * 7
    for f in fs:
        when = dt.datetime.fromtimestamp(f.ts // NS, dt.UTC)
        by_hour[when.hour] += 1
        by_weekday[when.weekday()] += 1
    run_w = run_l = best_w = best_l = 0
    for t in trades:
        run_w = run_w + 1 if t.pnl > 0 else 0
        run_l = run_l + 1 if t.pnl < 0 else 0
        best_w, best_l = max(best_w, run_w), max(best_l, run_l)
    n = len(trades)
    return Patterns(
        trades=n,
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / n if n else None,
        gross_profit=profit,
        gross_loss=loss,
        average_win=profit / len(wins) if wins else None,
        average_loss=loss / len(losses) if losses else None,
        profit_factor=profit / -loss if losses else None,
        expectancy=(profit + loss) / n if n else None,
        average_holding_ns=sum(t.holding_ns for t in trades) // n if n else None,
        fees=sum(f.fee for f in fs),
        fills=len(fs),
        by_hour=by_hour,
        by_weekday=by_weekday,
        largest_wins=sorted(wins, key=lambda t: -t.pnl)[:top],
        largest_losses=sorted(losses, key=lambda t: t.pnl)[:top],
        longest_win_streak=best_w,
        longest_loss_streak=best_l,
    )
