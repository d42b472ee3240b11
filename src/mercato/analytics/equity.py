"""An account's equity curve from its ledger and the instruments' prices (``curve``).

The value at a point ``t`` is the account's cash plus each position marked to market, as
the core values them (``Core._value``): the balances are the ledger's (cash and every
instrument are assets of the double-entry ledger, so deposits of shares, trades and fees
are all in it) summed over the entries before ``t``; a position's mark is the close of
the last bar of that instrument's market trades that ends at or before ``t``, else its
reference price, and its value is ``cash_floor(mark, |qty|)`` (a short counts negative).
Points come at the end of each ``interval`` from ``start``; every value is an integer in
the account currency's units. With each point comes the period's *flow*: what deposits
and withdrawals brought in or took out during it (cash at its amount, an instrument at
the point's mark), so that returns can leave them out (``portfolio.performance``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mercato.engine.money import cash_floor


@dataclass(frozen=True)
class Pricing:
    mul: int  # cash = price x qty x mul / div (``money.cash_factor``)
    div: int
    reference: int  # the mark before the first trade (0: none known)


def curve(
    cash_asset: str,
    opening: Mapping[str, int],
    entries: Sequence[tuple[int, str, int, bool]],
    closes: Mapping[str, Sequence[tuple[int, int]]],
    pricing: Mapping[str, Pricing],
    *,
    start: int,
    end: int,
    interval: int,
) -> list[tuple[int, int, int]]:
    """(t, equity, flow) at ``start + interval``, ``start + 2 interval``, ... up to
    ``end``; the first point's flow counts from ``start``.

    ``opening``: balances before every entry given (the store's folded part); ``entries``:
    (ts, asset, amount, a transfer) in ledger order; ``closes``: per instrument, (bar end, close) in
    time order; ``pricing``: per instrument. Assets that are neither the cash asset nor
    a priced instrument (another currency) are left out.
    """
    if interval <= 0 or end < start:
        raise ValueError("a positive interval and start <= end")
    balances = dict(opening)
    i = 0
    marks: dict[str, int] = {s: p.reference for s, p in pricing.items()}
    cursor = dict.fromkeys(closes, 0)
    out: list[tuple[int, int, int]] = []
    while i < len(entries) and entries[i][0] < start:  # the balances at the start
        _, asset, amount, _ = entries[i]
        balances[asset] = balances.get(asset, 0) + amount
        i += 1
    t = start + interval
    while t <= end:
        moved: dict[str, int] = {}
        while i < len(entries) and entries[i][0] < t:
            _, asset, amount, transfer = entries[i]
            balances[asset] = balances.get(asset, 0) + amount
            if transfer:
                moved[asset] = moved.get(asset, 0) + amount
            i += 1
        for sym, bars in closes.items():
            k = cursor[sym]
            while k < len(bars) and bars[k][0] <= t:
                marks[sym] = bars[k][1]
                k += 1
            cursor[sym] = k
        value = balances.get(cash_asset, 0)
        for asset, qty in balances.items():
            p = pricing.get(asset)
            if p is None or qty == 0:
                continue
            v = cash_floor(marks.get(asset, 0), abs(qty), p.mul, p.div)
            value += v if qty > 0 else -v
        flow = moved.get(cash_asset, 0)
        for asset, qty in moved.items():
            p = pricing.get(asset)
            if p is not None and qty:
                v = cash_floor(marks.get(asset, 0), abs(qty), p.mul, p.div)
                flow += v if qty > 0 else -v
        out.append((t, value, flow))
        t += interval
    return out
